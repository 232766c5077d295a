/**
 * `npm run check:cross` (the `cross` step of `npm test`): the plugin crate and the build-helper crate
 * type-check and lint clean (`clippy -D warnings`) for every platform Tauri supports on desktop and
 * mobile besides this machine's own (one target per OS and a 32-bit one, {@link CROSS_TARGETS}),
 * without a linker or an SDK for any of them.
 *
 * rustup cannot download other targets' standard libraries here, so the step uses Debian's second
 * Rust toolchain (`rustc-web`, `cargo-web`, `rust-web-clippy`, `rust-web-src`; installed by .ci/setup),
 * whose standard library source lets Cargo build std for any target itself (`-Zbuild-std`). That is
 * a nightly flag, which this stable compiler accepts with `RUSTC_BOOTSTRAP=1`, set for this one command
 * only. Every binary of that toolchain is called by its full path, because rustup's stay first on PATH
 * (and Cargo looks up `cargo-clippy` in `~/.cargo/bin` first); everything else keeps the main toolchain.
 *
 * One Cargo invocation checks every target, so the build scripts and proc-macros (host code) are built
 * once. `cargo clippy` runs the compiler's whole analysis of each crate, as `cargo check` does, and adds
 * the lints: every error `cargo check` would report, it reports. So no separate `cargo check` runs; it
 * would only re-analyse the two crates for each target (see README, "Supported platforms").
 *
 * Its own target dir (default `~/.cache/anysync/target-cross`, or `ANYSYNC_CROSS_TARGET_DIR`), so it
 * never invalidates the main one. `ANYSYNC_CROSS_TARGETS=a,b` checks only those targets (for a quick
 * look at one platform while fixing it), `ANYSYNC_CROSS_TARGETS=all` every target Tauri supports.
 */
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { capture, run } from "./lib.ts";

/** Every target Tauri supports, desktop and mobile, other than this machine's x86_64 Linux. */
export const ALL_CROSS_TARGETS = [
  "x86_64-pc-windows-msvc",
  "aarch64-pc-windows-msvc",
  "i686-pc-windows-msvc",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "aarch64-linux-android",
  "armv7-linux-androideabi",
  "x86_64-linux-android",
  "aarch64-apple-ios",
  "aarch64-apple-ios-sim",
] as const;

/**
 * What the step checks by default: one target per operating system, and a 32-bit one (Windows x86).
 * Neither crate has code that depends on the architecture (no `cfg(target_arch)`, `target_abi`,
 * `target_env` or `target_pointer_width`; the build helper reads those of the app's target as data,
 * at run time), so a sibling of the same OS (Windows arm64, macOS x64, Android armv7 and x64, the iOS
 * simulator) compiles the code its sibling here does, and checking tauri's and tokio's dependency
 * trees again for each cost half of the step: 15 of a cold CI run's 78 minutes on 2026-12-02. In
 * the first run of all ten, every sibling reported exactly what its sibling here did.
 * `ANYSYNC_CROSS_TARGETS=all` checks all ten.
 */
export const CROSS_TARGETS = [
  "x86_64-pc-windows-msvc",
  "i686-pc-windows-msvc",
  "aarch64-apple-darwin",
  "aarch64-linux-android",
  "aarch64-apple-ios",
] as const satisfies readonly (typeof ALL_CROSS_TARGETS)[number][];

/** The crates an app compiles for its target: the plugin, and the helper its build script links. */
export const CROSS_CRATES = ["tauri-plugin-anysync", "tauri-plugin-anysync-build"] as const;

/** Debian's second toolchain, by full path (what `dpkg -L` lists for its packages). */
export const DEBIAN_TOOLCHAIN = {
  cargo: "/usr/bin/cargo",
  rustc: "/usr/bin/rustc",
  rustdoc: "/usr/bin/rustdoc",
  cargoClippy: "/usr/bin/cargo-clippy",
  /** The standard library's source, which `-Zbuild-std` compiles for each target. */
  stdLockfile: "/usr/lib/rustlib/src/rust/library/Cargo.lock",
} as const;

/** The Debian packages that provide {@link DEBIAN_TOOLCHAIN}. */
export const DEBIAN_PACKAGES = ["rustc-web", "cargo-web", "rust-web-clippy", "rust-web-src"] as const;

/** Where the cross check builds: its own target dir, never the main one. */
export function crossTargetDir(): string {
  return path.resolve(process.env.ANYSYNC_CROSS_TARGET_DIR ?? path.join(os.homedir(), ".cache", "anysync", "target-cross"));
}

/**
 * The targets to check: {@link CROSS_TARGETS}, all of {@link ALL_CROSS_TARGETS} (`all`), or those
 * `ANYSYNC_CROSS_TARGETS` names.
 */
export function selectedTargets(list = process.env.ANYSYNC_CROSS_TARGETS): string[] {
  if (!list) return [...CROSS_TARGETS];
  if (list.trim() === "all") return [...ALL_CROSS_TARGETS];
  const wanted = list
    .split(",")
    .map((t) => t.trim())
    .filter((t) => t !== "");
  const unknown = wanted.filter((t) => !(ALL_CROSS_TARGETS as readonly string[]).includes(t));
  if (unknown.length > 0) throw new Error(`ANYSYNC_CROSS_TARGETS names targets the check does not cover: ${unknown.join(", ")}`);
  return wanted;
}

/**
 * The environment of the one cargo command: the Debian compiler and cargo everywhere (build scripts
 * and clippy read `RUSTC`, `CARGO`), `RUSTC_BOOTSTRAP=1` for `-Zbuild-std`, the cross target dir;
 * without rustup's toolchain choice or a wrapper, which would bring the main toolchain back in, and
 * without `RUSTFLAGS` meant for this machine's own target.
 */
export function crossEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const dropped = new Set(["RUSTUP_TOOLCHAIN", "RUSTC_WRAPPER", "RUSTC_WORKSPACE_WRAPPER", "CARGO_BUILD_TARGET", "RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS"]);
  const env = Object.fromEntries(Object.entries(base).filter(([name]) => !dropped.has(name)));
  return {
    ...env,
    RUSTC_BOOTSTRAP: "1",
    RUSTC: DEBIAN_TOOLCHAIN.rustc,
    RUSTDOC: DEBIAN_TOOLCHAIN.rustdoc,
    CARGO: DEBIAN_TOOLCHAIN.cargo,
    CARGO_TARGET_DIR: crossTargetDir(),
  };
}

/** The arguments of `cargo-clippy` for `targets`: both crates, std built for each, `-D warnings`. */
export function clippyArgs(targets: readonly string[]): string[] {
  return [
    "clippy",
    "--locked",
    // One run reports every target's findings, not only the first failing one's.
    "--keep-going",
    "-Zbuild-std=std,panic_abort",
    ...CROSS_CRATES.flatMap((crate) => ["-p", crate]),
    ...targets.flatMap((target) => ["--target", target]),
    "--",
    "-D",
    "warnings",
  ];
}

/** Runs the check; throws naming what is missing or what failed. */
export function checkCross(targets: readonly string[] = selectedTargets()): void {
  const missing = Object.values(DEBIAN_TOOLCHAIN).filter((file) => !existsSync(file));
  if (missing.length > 0) {
    throw new Error(`missing ${missing.join(", ")}: run bash .ci/setup (it installs Debian's ${DEBIAN_PACKAGES.join(" ")})`);
  }
  const rustc = capture(DEBIAN_TOOLCHAIN.rustc, ["--version"]);
  const clippy = capture(DEBIAN_TOOLCHAIN.cargoClippy, ["clippy", "--version"], { env: crossEnv() });
  let main = "none on PATH";
  try {
    main = capture("rustc", ["--version"]);
  } catch {
    // No main toolchain: the reason below still holds.
  }
  console.log(
    `compiler: ${DEBIAN_TOOLCHAIN.rustc} (${rustc}, ${clippy}), not the main toolchain (${main}): rustup cannot ` +
      `download other targets' standard libraries here, and Debian's rust-web-src lets Cargo build std for ` +
      `each target (-Zbuild-std, RUSTC_BOOTSTRAP=1 for this command only)`,
  );
  console.log(`targets: ${targets.join(" ")}\ncrates: ${CROSS_CRATES.join(" ")}\ntarget dir: ${crossTargetDir()}`);
  run(DEBIAN_TOOLCHAIN.cargoClippy, clippyArgs(targets), { env: crossEnv() });
}

/** actionlint, which .ci/setup installs into `$ANYSYNC_TOOLS_DIR/bin` (default `~/.cache/anysync/tools`). */
export function actionlintPath(): string {
  const tools = path.resolve(process.env.ANYSYNC_TOOLS_DIR ?? path.join(os.homedir(), ".cache", "anysync", "tools"));
  return path.join(tools, "bin", "actionlint");
}

/**
 * Checks `.github/workflows/*.yml` with actionlint: GitHub Actions cannot run here, so this is what
 * keeps the Windows and macOS jobs well-formed (expressions, runner labels, action inputs, and the
 * `run:` scripts through shellcheck when it is installed).
 */
export function lintWorkflows(): void {
  const actionlint = actionlintPath();
  if (!existsSync(actionlint)) throw new Error(`missing ${actionlint}: run bash .ci/setup (it installs actionlint)`);
  run(actionlint, ["-no-color"]);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  checkCross();
}
