/**
 * `npm test`: every layer's checks and tests, in the order a failure is cheapest to find.
 *
 * Each step runs even when an earlier one failed, so one run shows everything that is broken; the
 * exit code is non-zero when any step failed. `--only=<name,...>` runs a subset (e.g. `--only=go,rust`).
 */
import { checkCross, lintWorkflows } from "./cross.ts";
import { clippyBuildEnv, goEnv, run } from "./lib.ts";

/** The Go modules: the plugin's backend, the example app's own, and the store's driver benchmark (bench/go-sqlite). */
const goModules = ["go-backend", "examples/tauri-app/backend", "bench/go-sqlite"];

interface Step {
  name: string;
  what: string;
  run: () => void;
}

const steps: Step[] = [
  { name: "gen", what: "generated code matches the .proto", run: () => run("npm", ["run", "--silent", "gen:check"]) },
  {
    name: "go-lint",
    what: "go vet, gofmt, tidy go.mod files, actionlint of the GitHub workflows",
    run: () => {
      for (const cwd of goModules) {
        run("go", ["vet", "./..."], { cwd, env: goEnv });
        // The example's module lists the plugin module's requirements too: a dependency added to
        // go-backend needs `go mod tidy` there as well.
        run("go", ["mod", "tidy", "-diff"], { cwd, env: { ...goEnv, GOFLAGS: "" } });
        run("bash", ["-c", 'out=$(gofmt -l .); [ -z "$out" ] || { echo "gofmt would change: $out"; exit 1; }'], { cwd });
      }
      lintWorkflows();
    },
  },
  {
    name: "rust-lint",
    what: "rustfmt, and clippy -D warnings on the build the rust step tests",
    run: () => {
      run("cargo", ["fmt", "--all", "--check"]);
      run("cargo", ["test", "--workspace", "--all-targets", "--locked", "--no-run"], { env: clippyBuildEnv() });
    },
  },
  { name: "cross", what: "plugin and build helper check and lint for Windows, macOS, Android, iOS", run: () => checkCross() },
  {
    name: "ts-lint",
    what: "eslint and tsc --strict",
    run: () => {
      run("npm", ["run", "--silent", "lint"]);
      run("npm", ["run", "--silent", "--workspaces", "--if-present", "typecheck"]);
    },
  },
  {
    name: "go",
    what: "Go unit and integration tests (race detector)",
    run: () => {
      for (const cwd of goModules) run("go", ["test", "-race", "-count=1", "./..."], { cwd, env: goEnv });
    },
  },
  {
    name: "rust",
    what: "Rust unit and integration tests",
    run: () => run("cargo", ["test", "--workspace", "--locked", "--no-fail-fast"], { env: clippyBuildEnv() }),
  },
  { name: "ts", what: "TypeScript API unit tests", run: () => run("npm", ["test", "--workspace", "guest-js"]) },
  { name: "e2e", what: "example app end to end in a real webview", run: () => run("npm", ["test", "--workspace", "e2e"]) },
  { name: "bench", what: "benchmark harness smoke run (no thresholds)", run: () => run("npm", ["run", "--silent", "bench:smoke"]) },
  {
    name: "app-author",
    what: "README's steps on a create-tauri-app app: build, installed .deb, ping, close, kill -9",
    run: () => run("npm", ["run", "--silent", "test:app-author"]),
  },
  {
    name: "package",
    what: "release hygiene, gomobile binding, sidecars for every desktop target, the installed .deb",
    run: () => {
      // Each part runs even when an earlier one failed; the step fails naming every failed part.
      const failed = ["check:package", "check:gomobile", "build:sidecars", "test:deb"].filter((script) => {
        try {
          run("npm", ["run", "--silent", script]);
          return false;
        } catch {
          return true;
        }
      });
      if (failed.length > 0) throw new Error(`failed: ${failed.map((s) => `npm run ${s}`).join(", ")}`);
    },
  },
];

const only = process.argv.find((arg) => arg.startsWith("--only="))?.slice("--only=".length).split(",");
const selected = only ? steps.filter((step) => only.includes(step.name)) : steps;
const results: { step: Step; ok: boolean; seconds: number; error?: string }[] = [];
for (const step of selected) {
  console.log(`\n=== ${step.name}: ${step.what}`);
  const started = performance.now();
  try {
    step.run();
    results.push({ step, ok: true, seconds: (performance.now() - started) / 1000 });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    results.push({ step, ok: false, seconds: (performance.now() - started) / 1000, error: message });
  }
}

console.log("\n=== summary");
for (const { step, ok, seconds, error } of results) {
  console.log(`${ok ? "PASS" : "FAIL"} ${step.name.padEnd(10)} ${seconds.toFixed(1).padStart(6)}s  ${error ?? step.what}`);
}
const failed = results.filter((r) => !r.ok).length;
console.log(`steps: ${results.length - failed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
