/**
 * `npm run fuzz`: the long fuzz run. Every Go fuzz target in go-backend runs `go test -fuzz` for a
 * while, then the Rust property tests of the handshake and log parsers run with many more cases.
 * The normal test run (`npm test`) only replays the Go seed corpora and a few hundred Rust cases.
 *
 *   npm run fuzz                                  60 s per Go target, 50000 Rust cases per property
 *   npm run fuzz -- --seconds=300 --cases=200000  longer
 *
 * Go writes each failing input to go-backend/<pkg>/testdata/fuzz/<Target>/: fix the bug and commit
 * the file, and the plain `go test` replays it from then on. Rust failures print the minimal input:
 * fix the bug and add the input as a plain `#[test]` at the end of tests/proptest_parsers.rs.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { goEnv, repoRoot, run } from "./lib.ts";

const options = new Map(
  process.argv.slice(2).map((arg) => {
    const match = /^--(seconds|cases)=(\d+)$/.exec(arg);
    if (!match) {
      console.error(`unknown argument ${arg}; use --seconds=N (per Go target) or --cases=N (per Rust property)`);
      process.exit(2);
    }
    return [match[1], Number(match[2])] as const;
  }),
);
const seconds = options.get("seconds") ?? 60;
const cases = options.get("cases") ?? 50_000;

const backend = path.join(repoRoot, "go-backend");

/** Every `func FuzzX(f *testing.F)` under go-backend, with its package directory. */
function goFuzzTargets(): { pkg: string; name: string }[] {
  const targets: { pkg: string; name: string }[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory() && entry.name !== "testdata") {
        walk(full);
      } else if (entry.name.endsWith("_test.go")) {
        for (const match of readFileSync(full, "utf8").matchAll(/^func (Fuzz\w+)\(\w+ \*testing\.F\)/gm)) {
          targets.push({ pkg: `./${path.relative(backend, dir)}`, name: match[1] ?? "" });
        }
      }
    }
  };
  walk(backend);
  return targets.sort((a, b) => `${a.pkg} ${a.name}`.localeCompare(`${b.pkg} ${b.name}`));
}

const targets = goFuzzTargets();
console.log(`Go fuzz targets (${String(seconds)} s each): ${targets.map((t) => `${t.pkg}:${t.name}`).join(", ")}`);
for (const { pkg, name } of targets) {
  run("go", ["test", "-run", "^$", "-fuzz", `^${name}$`, "-fuzztime", `${String(seconds)}s`, pkg], {
    cwd: backend,
    env: goEnv,
  });
}

console.log(`\nRust property tests, ${String(cases)} cases per property`);
run("cargo", ["test", "--locked", "--test", "proptest_parsers"], {
  env: { ...process.env, PROPTEST_CASES: String(cases) },
});
console.log("\nfuzz: nothing found");
