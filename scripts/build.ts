/**
 * `npm run build`: builds the TypeScript API (guest-js), then the example app with its front end
 * embedded (`tauri build --debug --no-bundle`); the app's build.rs builds the Go sidecar beside it.
 * Cargo and Go rebuild only what changed, so a second run takes seconds.
 *
 * The e2e suite and `npm run demo` import {@link buildAll} and {@link exampleAppBinary} from here.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { repoRoot, run } from "./lib.ts";

/** The example app's directory (its package.json, front end and `src-tauri/`). */
export const exampleAppDir = path.join(repoRoot, "examples", "tauri-app");

/** The workspace's target directory: `$CARGO_TARGET_DIR` when set, else `target/` at the root. */
export function cargoTargetDir(): string {
  const fromEnv = process.env.CARGO_TARGET_DIR;
  return fromEnv ? path.resolve(repoRoot, fromEnv) : path.join(repoRoot, "target");
}

/** The example app's executable, as `tauri build --debug` leaves it (the sidecar lies beside it). */
export function exampleAppBinary(): string {
  return path.join(cargoTargetDir(), "debug", process.platform === "win32" ? "tauri-app.exe" : "tauri-app");
}

/** The sidecar beside the app executable, where the plugin looks for it. */
export function exampleSidecarBinary(): string {
  return path.join(cargoTargetDir(), "debug", process.platform === "win32" ? "anysync-backend.exe" : "anysync-backend");
}

/** Builds guest-js (the package the example imports). */
export function buildGuestJs(): void {
  run("npm", ["run", "--silent", "--workspace", "guest-js", "build"]);
}

/**
 * Builds the example app in debug mode with its front end embedded (`beforeBuildCommand` runs vite),
 * without bundling. Returns the executable's path.
 */
export function buildExampleApp(): string {
  const tauri = path.join(repoRoot, "node_modules", ".bin", process.platform === "win32" ? "tauri.cmd" : "tauri");
  // `--locked` (after `--`, for cargo): Cargo.lock is committed and must already be up to date.
  run(tauri, ["build", "--debug", "--no-bundle", "--", "--locked"], { cwd: exampleAppDir });
  const binary = exampleAppBinary();
  if (!existsSync(binary)) {
    throw new Error(`tauri build finished but ${binary} is missing; is CARGO_TARGET_DIR or build.target set elsewhere?`);
  }
  return binary;
}

/** Everything `npm run build` does; returns the example app's executable. */
export function buildAll(): string {
  buildGuestJs();
  return buildExampleApp();
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const started = performance.now();
  const binary = buildAll();
  console.log(`\nbuilt ${path.relative(repoRoot, binary)} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}
