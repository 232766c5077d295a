/**
 * `npm run check:gomobile`: proves that the Go backend's gomobile boundary (`go-backend/api`) still
 * binds for Android and iOS. It runs gobind (the generator behind `gomobile bind`, which needs no
 * NDK or Xcode) for Java and Objective-C over `./api` and fails when gobind reports an error or
 * leaves anything out: gobind writes `// skipped ... unsupported ...` comments for exported API it
 * cannot bind, and fails with `unsupported type` for worse.
 *
 * gobind needs `golang.org/x/mobile/bind` importable from the bound module. So that the shipped
 * module's go.mod stays free of it, the check binds through a throw-away Go workspace of two modules:
 * go-backend itself and a shim module that requires golang.org/x/mobile at {@link X_MOBILE_VERSION}.
 * The shim's go.sum is resolved from the module cache (or the Go module proxy the first time).
 *
 * The check first binds a fixture package with unsupported exports and insists that it is caught, so
 * a gobind that stopped reporting problems cannot make the check pass silently.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { goEnv, repoRoot, run, toolsBin } from "./lib.ts";
import { goBackendDir } from "./sidecars.ts";

/** The golang.org/x/mobile pseudo-version gobind and its bind packages come from (it has no tags). */
export const X_MOBILE_VERSION = "v0.0.0-20261011034528-197770444867";
/** The package of the backend that must stay bindable. */
export const BOUND_PACKAGE = "./api";

/** Where pinned tools live: `$ANYSYNC_TOOLS_DIR/bin` (set by .ci/setup), else `.tools/bin`. */
export function toolsBinDir(): string {
  return process.env.ANYSYNC_TOOLS_DIR ? path.join(path.resolve(process.env.ANYSYNC_TOOLS_DIR), "bin") : toolsBin;
}

/** gobind at {@link X_MOBILE_VERSION}, installed on first use. */
export function ensureGobind(): string {
  const binary = path.join(toolsBinDir(), `gobind@${X_MOBILE_VERSION}`);
  if (!existsSync(binary)) {
    const stage = mkdtempSync(path.join(os.tmpdir(), "anysync-gobind-"));
    try {
      run("go", ["install", `golang.org/x/mobile/cmd/gobind@${X_MOBILE_VERSION}`], { env: { ...goEnv, GOFLAGS: "", GOBIN: stage } });
      mkdirSync(path.dirname(binary), { recursive: true });
      run("cp", [path.join(stage, "gobind"), binary]);
    } finally {
      rmSync(stage, { recursive: true, force: true });
    }
  }
  return binary;
}

/** A Go workspace of go-backend plus a shim module requiring golang.org/x/mobile. */
interface Workspace {
  dir: string;
  goWork: string;
  /** The shim module, where fixture packages go. */
  shim: string;
}

function createWorkspace(): Workspace {
  const dir = mkdtempSync(path.join(os.tmpdir(), "anysync-gomobile-"));
  const shim = path.join(dir, "shim");
  mkdirSync(shim);
  const goVersion = /^go\s+(\S+)/m.exec(readFileSync(path.join(goBackendDir, "go.mod"), "utf8"))?.[1] ?? "1.24";
  writeFileSync(
    path.join(shim, "go.mod"),
    `module anysync.local/gomobileshim\n\ngo ${goVersion}\n\nrequire golang.org/x/mobile ${X_MOBILE_VERSION}\n`,
  );
  // Keeps golang.org/x/mobile/bind (and with it bind/java and bind/objc) in the shim's build list.
  writeFileSync(path.join(shim, "tools.go"), `//go:build tools\n\npackage gomobileshim\n\nimport _ "golang.org/x/mobile/bind"\n`);
  const env = { ...goEnv, GOFLAGS: "-mod=mod", GOWORK: "off" };
  run("go", ["mod", "tidy"], { cwd: shim, env });
  run("go", ["work", "init", "./shim", goBackendDir], { cwd: dir, env: { ...goEnv, GOFLAGS: "" } });
  return { dir, goWork: path.join(dir, "go.work"), shim };
}

/** What gobind produced and what was wrong with it. */
export interface BindResult {
  files: string[];
  problems: string[];
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath, entry.name));
}

/**
 * Runs gobind for Java and Objective-C over `pkg` (relative to `cwd`) and collects every problem:
 * a non-zero exit, `unsupported` in its output, and every `skipped` comment in the generated files.
 */
export function bind(gobind: string, ws: Workspace, cwd: string, pkg: string): BindResult {
  const outDir = mkdtempSync(path.join(ws.dir, "out-"));
  const args = ["-lang=java,objc", "-outdir", outDir, pkg];
  console.log(`$ (cd ${cwd} && GOWORK=${ws.goWork} ${gobind} ${args.join(" ")})`);
  const result = spawnSync(gobind, args, { cwd, encoding: "utf8", env: { ...goEnv, GOFLAGS: "", GOWORK: ws.goWork } });
  const problems: string[] = [];
  if (result.error) problems.push(`gobind did not run: ${result.error.message}`);
  const output = `${result.stdout}${result.stderr}`.trim();
  if (result.status !== 0) problems.push(`gobind exited with ${result.status ?? result.signal}: ${output}`);
  else if (/unsupported|skipped/i.test(output)) problems.push(`gobind reported: ${output}`);
  const files = existsSync(outDir) ? listFiles(outDir) : [];
  for (const file of files) {
    readFileSync(file, "utf8")
      .split("\n")
      .forEach((line, index) => {
        if (/\bskipped\b|\bunsupported\b/i.test(line)) {
          problems.push(`${path.relative(outDir, file)}:${index + 1}: ${line.trim()}`);
        }
      });
  }
  return { files: files.map((file) => path.relative(outDir, file)), problems };
}

/** A package with exports gobind cannot bind: a map field, a channel parameter, a variadic function. */
const UNBINDABLE_FIXTURE = `// Package unbindable holds exports gobind cannot bind; the check must catch every one.
package unbindable

// T has a map field.
type T struct {
	M  map[string]int
	OK string
}

// Chan takes a channel.
func Chan(c chan int) {}

// Sum is variadic.
func Sum(xs ...int) int { return len(xs) }
`;

/** The whole check; throws with every problem found. Returns the generated files of the real package. */
export function checkGomobile(): string[] {
  const gobind = ensureGobind();
  const ws = createWorkspace();
  try {
    const fixtureDir = path.join(ws.shim, "unbindable");
    mkdirSync(fixtureDir);
    writeFileSync(path.join(fixtureDir, "unbindable.go"), UNBINDABLE_FIXTURE);
    const fixture = bind(gobind, ws, ws.shim, "./unbindable");
    for (const name of ["M", "Chan", "Sum"]) {
      if (!fixture.problems.some((p) => p.includes(` ${name} `) || p.includes(`.${name} `))) {
        throw new Error(`the check is blind: gobind's report on the fixture does not name ${name}:\n${fixture.problems.join("\n")}`);
      }
    }

    const real = bind(gobind, ws, goBackendDir, BOUND_PACKAGE);
    if (real.problems.length > 0) {
      throw new Error(
        `go-backend/api is not gomobile-compatible (export only functions, structs and interfaces of strings, ` +
          `numbers, booleans, []byte and error):\n  ${real.problems.join("\n  ")}`,
      );
    }
    for (const expected of ["java/api/Api.java", "src/gobind/Api.objc.h"]) {
      if (!real.files.includes(expected)) {
        throw new Error(`gobind did not generate ${expected}; it generated: ${real.files.join(", ")}`);
      }
    }
    return real.files;
  } finally {
    rmSync(ws.dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const files = checkGomobile();
  console.log(`\ngo-backend/api binds for Java and Objective-C with nothing skipped (${files.length} files): ${files.join(", ")}`);
  console.log(`(repo: ${path.relative(repoRoot, goBackendDir)}, golang.org/x/mobile ${X_MOBILE_VERSION})`);
}
