/**
 * Small process helpers shared by the repo's tooling scripts (gen, test, demo, build).
 * Every command inherits stdio so its own output stays visible, and a failure names the command.
 */
import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Absolute path of the repository root. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Where pinned helper tools (protoc plugins, tauri-driver) are installed; git-ignored. */
export const toolsBin = path.join(repoRoot, ".tools", "bin");

/** Environment for every Go command: never download a toolchain, never write go.mod implicitly. */
export const goEnv: NodeJS.ProcessEnv = { ...process.env, GOTOOLCHAIN: "local", GOFLAGS: "-mod=readonly" };

/**
 * Environment for the Cargo build that the lint and test steps share: every workspace crate (not its
 * dependencies) compiles through clippy-driver with `-D warnings`, as `cargo clippy` arranges it
 * (`RUSTC_WORKSPACE_WRAPPER`, the lint flags in `CLIPPY_ARGS`), but in the test build itself instead
 * of a `cargo check` beside it. So the dependency tree is compiled once, not once more in check mode
 * (that was most of a cold run's 10-minute lint step), and a lint finding fails the build the tests
 * would use. Cargo records the wrapper and `CLIPPY_ARGS` per crate, so a build with this environment
 * and one without it rebuild the workspace crates (never the dependencies) for each other.
 */
export function clippyBuildEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  // The driver of the toolchain Cargo uses, where `cargo clippy` finds it too (beside rustc).
  const sysroot = capture("rustc", ["--print", "sysroot"], { env: base });
  const driver = path.join(sysroot, "bin", process.platform === "win32" ? "clippy-driver.exe" : "clippy-driver");
  if (!existsSync(driver)) throw new Error(`missing ${driver}: install clippy (rustup component add clippy)`);
  return { ...base, RUSTC_WORKSPACE_WRAPPER: driver, CLIPPY_ARGS: ["-D", "warnings"].map((arg) => `${arg}__CLIPPY_HACKERY__`).join("") };
}

/** Runs a command to completion, throwing an Error that names it when it fails. */
export function run(command: string, args: readonly string[], options: SpawnSyncOptions = {}): void {
  const shown = [command, ...args].join(" ");
  console.log(`$ ${shown}`);
  const result = spawnSync(command, args, { stdio: "inherit", cwd: repoRoot, ...options });
  if (result.error) throw new Error(`${shown}: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`${shown}: exited with ${result.status ?? result.signal}`);
}

/** Runs a command and returns its trimmed stdout, throwing when it fails. */
export function capture(command: string, args: readonly string[], options: SpawnSyncOptions = {}): string {
  const result = spawnSync(command, args, { cwd: repoRoot, encoding: "utf8", ...options });
  if (result.error) throw new Error(`${command} ${args.join(" ")}: ${result.error.message}`);
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(" ")}: exited with ${result.status}\n${String(result.stderr)}`);
  }
  return String(result.stdout).trim();
}

/** Installs a Go tool at an exact version into `.tools/bin`, skipping the work when it is there already. */
export function goInstallPinned(binary: string, modulePath: string, version: string): string {
  const target = path.join(toolsBin, `${binary}@${version}`);
  if (!existsSync(target)) {
    run("go", ["install", `${modulePath}@${version}`], {
      env: { ...goEnv, GOFLAGS: "", GOBIN: path.join(repoRoot, ".tools", "stage", `${binary}@${version}`) },
    });
    run("mkdir", ["-p", toolsBin]);
    run("cp", [path.join(repoRoot, ".tools", "stage", `${binary}@${version}`, binary), target]);
  }
  return target;
}

/** How a {@link runNodeWithDisplay} run ended. */
export interface DisplayRunResult {
  /** The exit status, or null when a signal ended it. */
  status: number | null;
  /** The signal that ended it, if one did. */
  signal: NodeJS.Signals | null;
  /** The last lines of its stderr when it failed; empty when it succeeded. */
  stderrTail: string;
}

/**
 * Runs `node <nodeArgs>` with a display and a session bus, as the webview needs: under `xvfb-run -a`
 * when there is no display, and `dbus-run-session` when there is no bus. Its stdout stays visible; its
 * stderr (the bus's, the desktop portals' and the webview's chatter) goes to `stderrPath`, and its last
 * `tailLines` lines come back when the run fails.
 */
export function runNodeWithDisplay(
  nodeArgs: readonly string[],
  options: { stderrPath: string; stdin?: "inherit" | "ignore"; env?: NodeJS.ProcessEnv; tailLines?: number },
): DisplayRunResult {
  const headless = !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY;
  const noBus = !process.env.DBUS_SESSION_BUS_ADDRESS;
  const wrapper = [
    ...(headless ? ["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24"] : []),
    ...(headless || noBus ? ["dbus-run-session", "--"] : []),
  ];
  const [command = process.execPath, ...args] = [...wrapper, process.execPath, ...nodeArgs];
  console.log(`$ ${[command, ...args].join(" ")}`);
  mkdirSync(path.dirname(options.stderrPath), { recursive: true });
  const stderr = openSync(options.stderrPath, "w");
  const result = spawnSync(command, args, {
    cwd: repoRoot,
    stdio: [options.stdin ?? "inherit", "inherit", stderr],
    env: options.env ?? process.env,
  });
  closeSync(stderr);
  if (result.error) throw new Error(`${command}: ${result.error.message}`);
  const failed = result.status !== 0;
  const stderrTail = failed
    ? readFileSync(options.stderrPath, "utf8").trimEnd().split("\n").slice(-(options.tailLines ?? 40)).join("\n")
    : "";
  return { status: result.status, signal: result.signal, stderrTail };
}
