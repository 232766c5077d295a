/**
 * `npm run check:package`: release hygiene, checked without publishing anything.
 *
 * - versions: one version everywhere: `workspace.package.version` in Cargo.toml, every Cargo package,
 *   every package.json of the npm workspace, the example's tauri.conf.json, the Go backend's
 *   `version.Version`, and a CHANGELOG.md section for it;
 * - licenses: LICENSE-MIT and LICENSE-APACHE at the root, `MIT OR Apache-2.0` on every package;
 * - dependencies: every direct dependency of every Cargo.toml, package.json and go.mod is explained
 *   in DEPENDENCIES.md, and nothing there is stale;
 * - crates: `cargo package --list` of both published crates holds what they need (Rust sources, the
 *   generated stubs, permissions, the IIFE script, the Go sources the build helper compiles) and
 *   nothing else (no tests, test data, examples, node_modules); the packaged Go sources build the
 *   sidecar on their own;
 * - npm: `npm pack --dry-run --json` of guest-js holds the ESM and CJS builds with their types and
 *   nothing else, and the real tarball installs into an empty project and imports from ESM and CJS.
 *
 * Each check runs even when an earlier one failed; `--only=<name,...>` runs a subset.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { cargoTargetDir } from "./build.ts";
import { capture, goEnv, repoRoot, run } from "./lib.ts";

/** The license of every package, as Tauri's own plugins have it. */
export const LICENSE = "MIT OR Apache-2.0";
/** The crates this repository publishes. */
export const PUBLISHED_CRATES = ["tauri-plugin-anysync", "tauri-plugin-anysync-build"] as const;
/** The npm package this repository publishes. */
export const PUBLISHED_NPM_WORKSPACE = "guest-js";

const read = (rel: string) => readFileSync(path.join(repoRoot, rel), "utf8");

interface CargoDependency {
  name: string;
  kind: "dev" | "build" | null;
  path?: string;
}
interface CargoPackage {
  name: string;
  version: string;
  license: string | null;
  manifest_path: string;
  publish: string[] | null;
  dependencies: CargoDependency[];
}

function cargoWorkspace(): CargoPackage[] {
  const metadata = JSON.parse(capture("cargo", ["metadata", "--no-deps", "--format-version", "1", "--locked", "--offline"])) as {
    packages: CargoPackage[];
  };
  return metadata.packages;
}

interface PackageJson {
  name?: string;
  version?: string;
  private?: boolean;
  license?: string;
  workspaces?: string[];
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

/** The root package.json and every workspace's, by path relative to the root. */
export function packageJsons(): Map<string, PackageJson> {
  const root = JSON.parse(read("package.json")) as PackageJson;
  const result = new Map<string, PackageJson>([["package.json", root]]);
  for (const workspace of root.workspaces ?? []) {
    const rel = path.join(workspace, "package.json");
    if (existsSync(path.join(repoRoot, rel))) result.set(rel, JSON.parse(read(rel)) as PackageJson);
  }
  return result;
}

/** The Go backend's version constant. */
export function goVersion(): string {
  const source = read("go-backend/internal/version/version.go");
  const match = /^\s*(?:const|var)\s+Version\s*=\s*"([^"]+)"/m.exec(source);
  if (!match?.[1]) throw new Error("go-backend/internal/version/version.go: no `Version = \"...\"` found");
  return match[1];
}

/** The workspace version from Cargo.toml's `[workspace.package]`: the one the others must match. */
export function workspaceVersion(): string {
  const section = /^\[workspace\.package\]\s*$([\s\S]*?)(?=^\[)/m.exec(read("Cargo.toml"))?.[1] ?? "";
  const version = /^version\s*=\s*"([^"]+)"/m.exec(section)?.[1];
  if (!version) throw new Error("Cargo.toml has no [workspace.package] version");
  return version;
}

function checkVersions(): string[] {
  const want = workspaceVersion();
  const problems: string[] = [];
  const expect = (what: string, found: string | undefined) => {
    if (found !== want) problems.push(`${what} is ${found ?? "missing"}, want ${want} (Cargo.toml [workspace.package])`);
  };
  for (const pkg of cargoWorkspace()) expect(`crate ${pkg.name} (${path.relative(repoRoot, pkg.manifest_path)})`, pkg.version);
  for (const [rel, pkg] of packageJsons()) expect(`${rel} version`, pkg.version);
  // A workspace that depends on the published npm package must ask for this version of it.
  for (const [rel, pkg] of packageJsons()) {
    const range = { ...pkg.dependencies, ...pkg.devDependencies }["tauri-plugin-anysync-api"];
    if (range !== undefined && range !== `^${want}` && range !== want) {
      problems.push(`${rel} depends on tauri-plugin-anysync-api ${range}, want ^${want}`);
    }
  }
  const conf = JSON.parse(read("examples/tauri-app/src-tauri/tauri.conf.json")) as { version?: string };
  expect("examples/tauri-app/src-tauri/tauri.conf.json version", conf.version);
  expect("go-backend/internal/version/version.go Version", goVersion());
  if (!new RegExp(`^## \\[?${want.replaceAll(".", "\\.")}\\]?`, "m").test(read("CHANGELOG.md"))) {
    problems.push(`CHANGELOG.md has no "## [${want}]" section`);
  }
  return problems;
}

function checkLicenses(): string[] {
  const problems: string[] = [];
  for (const [file, needle] of [
    ["LICENSE-MIT", "Permission is hereby granted, free of charge"],
    ["LICENSE-APACHE", "Apache License"],
  ] as const) {
    if (!existsSync(path.join(repoRoot, file)) || !read(file).includes(needle)) problems.push(`${file} is missing or is not the ${file.slice(8)} license text`);
  }
  for (const pkg of cargoWorkspace()) {
    if (pkg.license !== LICENSE) problems.push(`crate ${pkg.name}: license ${pkg.license ?? "missing"}, want ${LICENSE}`);
  }
  for (const [rel, pkg] of packageJsons()) {
    if (pkg.license !== LICENSE) problems.push(`${rel}: license ${pkg.license ?? "missing"}, want ${LICENSE}`);
  }
  return problems;
}

/** Every direct dependency of the repository, per ecosystem, with where it is declared. */
export function directDependencies(): Map<string, { ecosystem: "Rust" | "npm" | "Go"; where: Set<string> }> {
  const deps = new Map<string, { ecosystem: "Rust" | "npm" | "Go"; where: Set<string> }>();
  const add = (ecosystem: "Rust" | "npm" | "Go", name: string, where: string) => {
    const key = `${ecosystem}:${name}`;
    const entry = deps.get(key) ?? { ecosystem, where: new Set<string>() };
    entry.where.add(where);
    deps.set(key, entry);
  };
  const cargo = cargoWorkspace();
  const workspaceCrates = new Set(cargo.map((pkg) => pkg.name));
  for (const pkg of cargo) {
    for (const dep of pkg.dependencies) {
      if (!workspaceCrates.has(dep.name)) add("Rust", dep.name, pkg.name);
    }
  }
  const workspacePackages = new Set([...packageJsons().values()].map((pkg) => pkg.name));
  for (const [rel, pkg] of packageJsons()) {
    for (const name of Object.keys({ ...pkg.dependencies, ...pkg.devDependencies, ...pkg.peerDependencies, ...pkg.optionalDependencies })) {
      if (!workspacePackages.has(name)) add("npm", name, rel);
    }
  }
  // go.mod: `require` lines (single or in a block) without `// indirect`.
  const goMod = read("go-backend/go.mod");
  for (const line of goMod.split("\n")) {
    const match = /^\s*(?:require\s+)?([a-z0-9.-]+\.[a-z]{2,}\/\S+)\s+v\S+(.*)$/.exec(line);
    if (match?.[1] && !match[2]?.includes("// indirect") && !line.trim().startsWith("module")) add("Go", match[1], "go-backend/go.mod");
  }
  return deps;
}

/** The names DEPENDENCIES.md lists: the first backticked cell of each table row, per `## Rust|npm|Go` section. */
export function listedDependencies(): Set<string> {
  const listed = new Set<string>();
  let ecosystem: string | undefined;
  for (const line of read("DEPENDENCIES.md").split("\n")) {
    const heading = /^##\s+(Rust|npm|Go)\b/.exec(line);
    if (heading) ecosystem = heading[1];
    else if (line.startsWith("## ")) ecosystem = undefined;
    const row = /^\|\s*`([^`]+)`/.exec(line);
    if (ecosystem && row?.[1]) listed.add(`${ecosystem}:${row[1]}`);
  }
  return listed;
}

function checkDependencies(): string[] {
  const actual = directDependencies();
  const listed = listedDependencies();
  const problems: string[] = [];
  for (const [key, { where }] of actual) {
    if (!listed.has(key)) problems.push(`${key.replace(":", " dependency ")} (in ${[...where].join(", ")}) is not explained in DEPENDENCIES.md`);
  }
  for (const key of listed) {
    if (!actual.has(key)) problems.push(`DEPENDENCIES.md lists ${key.replace(":", " dependency ")}, which no manifest declares any more`);
  }
  return problems;
}

/** Paths no published package may contain. */
const FORBIDDEN = [
  /(^|\/)node_modules\//,
  /(^|\/)target\//,
  /(^|\/)testdata\//,
  /_test\.go$/,
  /(^|\/)tests?\//,
  /\.test\.ts$/,
  /^(examples|e2e|bench|tools|scripts|docs|\.ci)\//,
  /\.(log|tmp)$/,
];

function checkList(what: string, files: readonly string[], required: readonly string[]): string[] {
  const problems: string[] = [];
  for (const file of required) if (!files.includes(file)) problems.push(`${what} lacks ${file}`);
  for (const file of files) {
    const rule = FORBIDDEN.find((pattern) => pattern.test(file));
    if (rule) problems.push(`${what} contains ${file} (matches ${String(rule)})`);
  }
  return problems;
}

function cargoPackageList(crate: string): string[] {
  return capture("cargo", ["package", "--list", "--allow-dirty", "--offline", "-p", crate]).split("\n").filter(Boolean);
}

function checkCrates(): string[] {
  const problems: string[] = [];
  const plugin = cargoPackageList("tauri-plugin-anysync");
  console.log(`tauri-plugin-anysync: ${plugin.length} files`);
  problems.push(
    ...checkList("crate tauri-plugin-anysync", plugin, [
      "Cargo.toml",
      "build.rs",
      "README.md",
      "CHANGELOG.md",
      "LICENSE-MIT",
      "LICENSE-APACHE",
      "src/lib.rs",
      "src/mobile.rs",
      "src/generated/anysync.v1.rs",
      "permissions/default.toml",
      "guest-js/api-iife.js",
      "go-backend/go.mod",
      "go-backend/go.sum",
      "go-backend/cmd/server/main.go",
      "go-backend/api/api.go",
      "go-backend/api/proto/anysync/v1/health.proto",
      "go-backend/api/proto/anysync/v1/health.pb.go",
      "go-backend/api/proto/anysync/v1/health_grpc.pb.go",
      "go-backend/internal/version/version.go",
    ]),
  );
  // Every Rust source of the crate is packaged (a new module must not be left out by `include`).
  const rustSources = readdirSync(path.join(repoRoot, "src"), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".rs"))
    .map((e) => path.relative(repoRoot, path.join(e.parentPath, e.name)));
  for (const file of rustSources) if (!plugin.includes(file)) problems.push(`crate tauri-plugin-anysync lacks ${file}`);

  const helper = cargoPackageList("tauri-plugin-anysync-build");
  console.log(`tauri-plugin-anysync-build: ${helper.length} files`);
  problems.push(...checkList("crate tauri-plugin-anysync-build", helper, ["Cargo.toml", "README.md", "src/lib.rs"]));

  // The packaged Go sources alone must build the sidecar: that is all the build helper gets.
  run("cargo", ["package", "--no-verify", "--allow-dirty", "--offline", "-p", "tauri-plugin-anysync"]);
  const version = workspaceVersion();
  const crateFile = path.join(cargoTargetDir(), "package", `tauri-plugin-anysync-${version}.crate`);
  const scratch = mkdtempSync(path.join(os.tmpdir(), "anysync-crate-"));
  try {
    run("tar", ["-xzf", crateFile, "-C", scratch]);
    const goDir = path.join(scratch, `tauri-plugin-anysync-${version}`, "go-backend");
    run("go", ["build", "-trimpath", "-o", path.join(scratch, "anysync-backend"), "./cmd/server"], {
      cwd: goDir,
      env: { ...goEnv, CGO_ENABLED: "0", GOWORK: "off" },
    });
    const versionOut = capture(path.join(scratch, "anysync-backend"), ["--version"]);
    if (!versionOut.includes(version)) problems.push(`the sidecar built from the packaged crate says ${JSON.stringify(versionOut)}, want ${version}`);
  } catch (error) {
    problems.push(`the Go sources packaged in ${path.relative(repoRoot, crateFile)} do not build the sidecar: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return problems;
}

interface PackResult {
  filename: string;
  files: { path: string; size: number }[];
}

function checkNpm(): string[] {
  const problems: string[] = [];
  // Build first, then pack without lifecycle scripts: `prepack`'s build output would corrupt the JSON.
  run("npm", ["run", "--silent", "--workspace", PUBLISHED_NPM_WORKSPACE, "build"]);
  const dryRun = JSON.parse(
    capture("npm", ["pack", "--dry-run", "--json", "--ignore-scripts", "--workspace", PUBLISHED_NPM_WORKSPACE]),
  ) as PackResult[];
  const files = dryRun[0]?.files.map((f) => f.path) ?? [];
  console.log(`${PUBLISHED_NPM_WORKSPACE}: ${files.join(", ")}`);
  problems.push(
    ...checkList(`npm package ${PUBLISHED_NPM_WORKSPACE}`, files, [
      "package.json",
      "README.md",
      "dist/index.js",
      "dist/index.cjs",
      "dist/index.d.ts",
      "dist/index.d.cts",
    ]),
  );
  for (const file of files) {
    if (!/^(package\.json|README\.md|LICENSE[-\w]*|dist\/.+)$/.test(file)) problems.push(`npm package ${PUBLISHED_NPM_WORKSPACE} contains ${file}, which is not part of its API`);
  }
  // The types generated from the .proto reach the published declarations.
  const types = readFileSync(path.join(repoRoot, PUBLISHED_NPM_WORKSPACE, "dist", "index.d.ts"), "utf8");
  for (const name of ["HealthCheckResponse", "PingResponse", "HealthCheckResponse_ServingStatus"]) {
    if (!types.includes(name)) problems.push(`dist/index.d.ts lacks ${name}, generated from the .proto`);
  }

  // The real tarball installs into an empty project and imports from ESM and CJS.
  const scratch = mkdtempSync(path.join(os.tmpdir(), "anysync-npm-"));
  try {
    run("npm", ["pack", "--silent", "--ignore-scripts", "--workspace", PUBLISHED_NPM_WORKSPACE, "--pack-destination", scratch]);
    const tarball = readdirSync(scratch).find((f) => f.endsWith(".tgz"));
    if (!tarball) throw new Error("npm pack wrote no tarball");
    const project = path.join(scratch, "project");
    mkdirSync(project);
    writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "install-check", private: true, type: "module" }));
    run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts", path.join(scratch, tarball)], { cwd: project });
    const probe = (args: string[]) => {
      const result = spawnSync(process.execPath, args, { cwd: project, encoding: "utf8" });
      if (result.status !== 0) throw new Error(`node ${args.join(" ")}: ${result.stderr}`);
      return result.stdout.trim();
    };
    const esm = probe(["--input-type=module", "-e", "const m = await import('tauri-plugin-anysync-api'); console.log(typeof m.ping, m.ERROR_CODES.length)"]);
    const cjs = probe(["--input-type=commonjs", "-e", "const m = require('tauri-plugin-anysync-api'); console.log(typeof m.ping, m.ERROR_CODES.length)"]);
    if (!esm.startsWith("function ") || esm !== cjs) problems.push(`the installed package imports differently: ESM ${esm}, CJS ${cjs}`);
  } catch (error) {
    problems.push(`the npm tarball does not install and import: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return problems;
}

/** The checks, by name. */
export const CHECKS: Record<string, () => string[]> = {
  versions: checkVersions,
  licenses: checkLicenses,
  dependencies: checkDependencies,
  crates: checkCrates,
  npm: checkNpm,
};

/** Runs the checks (all, or those named); throws listing every problem. */
export function checkPackages(only?: readonly string[]): void {
  const failures: string[] = [];
  for (const [name, check] of Object.entries(CHECKS)) {
    if (only && !only.includes(name)) continue;
    console.log(`\n--- ${name}`);
    let problems: string[];
    try {
      problems = check();
    } catch (error) {
      problems = [error instanceof Error ? error.message : String(error)];
    }
    for (const problem of problems) console.error(`  FAIL ${problem}`);
    if (problems.length === 0) console.log(`  ok`);
    failures.push(...problems.map((p) => `${name}: ${p}`));
  }
  if (failures.length > 0) throw new Error(`${failures.length} release-hygiene problem(s):\n  ${failures.join("\n  ")}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const only = process.argv.find((arg) => arg.startsWith("--only="))?.slice("--only=".length).split(",");
  checkPackages(only);
  console.log(`\nrelease hygiene: ok (version ${workspaceVersion()})`);
}
