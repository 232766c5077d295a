/**
 * `npm run build:sidecars`: cross-compiles the Go sidecar for every desktop target Tauri supports into
 * `target/sidecars/anysync-backend-<target-triple>[.exe]` (the names `bundle.externalBin` expects),
 * checks that each file is an executable of the right format and CPU architecture by parsing its
 * header, and prints the sizes.
 *
 * The Go command line is the one the build-script helper (crates/tauri-plugin-anysync-build) uses:
 * `CGO_ENABLED=0`, so Go needs no C toolchain for any target; `-trimpath -buildvcs=false -ldflags "-s -w"`
 * (and `-H=windowsgui` for Windows).
 *
 * By default it builds {@link BUILT_BY_DEFAULT} (one target per OS and 32-bit Windows, as the cross
 * step does for the Rust crates) and resolves the other three: `go list -deps` for their GOOS/GOARCH,
 * which fails when any package the sidecar imports (modernc's SQLite and libc, whose generated code
 * is per port, among them) has no files for that port. A cold build is a minute per target, most of
 * it compiling SQLite's translation again for each GOOS/GOARCH. `--all` builds all seven,
 * `--only=<triple,...>` builds those named, `--out=<dir>` writes elsewhere.
 */
import { mkdirSync, readFileSync, renameSync, statSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { cargoTargetDir } from "./build.ts";
import { capture, goEnv, repoRoot, run } from "./lib.ts";

/** Executable formats the check tells apart. */
export type ExecutableFormat = "elf" | "mach-o" | "pe";

/** One desktop target: the Rust triple, what Go calls it, and what the binary must look like. */
export interface SidecarTarget {
  triple: string;
  goos: "linux" | "darwin" | "windows";
  goarch: "amd64" | "arm64" | "386";
  format: ExecutableFormat;
  /** The CPU in the header, by the names {@link inspectExecutable} returns. */
  arch: "x86_64" | "aarch64" | "i386";
}

/** Every desktop target Tauri v2 builds apps for (its prebuilt CLI targets), in a stable order. */
export const DESKTOP_TARGETS: readonly SidecarTarget[] = [
  { triple: "x86_64-unknown-linux-gnu", goos: "linux", goarch: "amd64", format: "elf", arch: "x86_64" },
  { triple: "aarch64-unknown-linux-gnu", goos: "linux", goarch: "arm64", format: "elf", arch: "aarch64" },
  { triple: "x86_64-apple-darwin", goos: "darwin", goarch: "amd64", format: "mach-o", arch: "x86_64" },
  { triple: "aarch64-apple-darwin", goos: "darwin", goarch: "arm64", format: "mach-o", arch: "aarch64" },
  { triple: "x86_64-pc-windows-msvc", goos: "windows", goarch: "amd64", format: "pe", arch: "x86_64" },
  { triple: "aarch64-pc-windows-msvc", goos: "windows", goarch: "arm64", format: "pe", arch: "aarch64" },
  { triple: "i686-pc-windows-msvc", goos: "windows", goarch: "386", format: "pe", arch: "i386" },
];

/**
 * The targets built by default; the others of {@link DESKTOP_TARGETS} are only resolved. Go's code
 * for a port differs by architecture in the dependencies (modernc's generated files), which is why
 * the siblings are still resolved for their own GOARCH rather than skipped.
 */
export const BUILT_BY_DEFAULT: readonly string[] = ["x86_64-unknown-linux-gnu", "aarch64-apple-darwin", "x86_64-pc-windows-msvc", "i686-pc-windows-msvc"];

/** The Go module of the sidecar. */
export const goBackendDir = path.join(repoRoot, "go-backend");

/** The file name Tauri's `externalBin` expects for a target. */
export function sidecarFileName(target: SidecarTarget): string {
  return `anysync-backend-${target.triple}${target.goos === "windows" ? ".exe" : ""}`;
}

/** What an executable's header says. */
export interface ExecutableInfo {
  format: ExecutableFormat;
  arch: string;
  /** 32 or 64. */
  bits: number;
  /** For ELF and PE: whether the header marks it as an executable (not a shared library or object). */
  executable: boolean;
}

const ELF_MACHINES: Record<number, string> = { 0x03: "i386", 0x3e: "x86_64", 0xb7: "aarch64", 0x28: "arm" };
const PE_MACHINES: Record<number, string> = { 0x014c: "i386", 0x8664: "x86_64", 0xaa64: "aarch64" };
const MACHO_CPUS: Record<number, string> = { 0x01000007: "x86_64", 0x0100000c: "aarch64", 7: "i386" };

/**
 * Reads the format, CPU and word size of an ELF, Mach-O (thin, either byte order) or PE executable
 * from its header. Throws for anything else, naming what the first bytes were.
 */
export function inspectExecutable(bytes: Buffer): ExecutableInfo {
  // ELF: 7f 'E' 'L' 'F', class (1 = 32-bit, 2 = 64-bit), data (1 = little endian), ..., e_type at 16, e_machine at 18.
  if (bytes.length >= 20 && bytes.readUInt32BE(0) === 0x7f454c46) {
    const little = bytes[5] === 1;
    const type = little ? bytes.readUInt16LE(16) : bytes.readUInt16BE(16);
    const machine = little ? bytes.readUInt16LE(18) : bytes.readUInt16BE(18);
    // ET_EXEC (2), or ET_DYN (3) for position-independent executables.
    return { format: "elf", arch: ELF_MACHINES[machine] ?? `elf-machine-0x${machine.toString(16)}`, bits: bytes[4] === 2 ? 64 : 32, executable: type === 2 || type === 3 };
  }
  // Mach-O thin: magic feedface (32-bit) / feedfacf (64-bit), in either byte order; cputype follows.
  if (bytes.length >= 16) {
    const magicBE = bytes.readUInt32BE(0);
    const magicLE = bytes.readUInt32LE(0);
    for (const [magic, read] of [
      [magicBE, (offset: number) => bytes.readUInt32BE(offset)],
      [magicLE, (offset: number) => bytes.readUInt32LE(offset)],
    ] as const) {
      if (magic === 0xfeedface || magic === 0xfeedfacf) {
        const cpu = read(4);
        // filetype at 12: MH_EXECUTE = 2.
        return { format: "mach-o", arch: MACHO_CPUS[cpu] ?? `macho-cpu-0x${cpu.toString(16)}`, bits: magic === 0xfeedfacf ? 64 : 32, executable: read(12) === 2 };
      }
    }
  }
  // PE: 'MZ', e_lfanew at 0x3c points to 'PE\0\0', then the COFF header: Machine, ..., Characteristics at +22,
  // then the optional header whose magic says PE32 (0x10b) or PE32+ (0x20b).
  if (bytes.length >= 0x40 && bytes.readUInt16LE(0) === 0x5a4d) {
    const pe = bytes.readUInt32LE(0x3c);
    if (bytes.length >= pe + 26 && bytes.readUInt32LE(pe) === 0x00004550) {
      const machine = bytes.readUInt16LE(pe + 4);
      const characteristics = bytes.readUInt16LE(pe + 22);
      const optionalMagic = bytes.readUInt16LE(pe + 24);
      const IMAGE_FILE_EXECUTABLE_IMAGE = 0x0002;
      const IMAGE_FILE_DLL = 0x2000;
      return {
        format: "pe",
        arch: PE_MACHINES[machine] ?? `pe-machine-0x${machine.toString(16)}`,
        bits: optionalMagic === 0x20b ? 64 : 32,
        executable: (characteristics & IMAGE_FILE_EXECUTABLE_IMAGE) !== 0 && (characteristics & IMAGE_FILE_DLL) === 0,
      };
    }
  }
  throw new Error(`not an ELF, Mach-O or PE executable (starts with ${bytes.subarray(0, 8).toString("hex")})`);
}

/** Throws unless the file at `file` is an executable for `target`. Returns what its header says. */
export function checkSidecar(file: string, target: SidecarTarget): ExecutableInfo {
  const info = inspectExecutable(readFileSync(file));
  const bits = target.arch === "i386" ? 32 : 64;
  const problems = [
    info.format !== target.format && `format ${info.format}, want ${target.format}`,
    info.arch !== target.arch && `architecture ${info.arch}, want ${target.arch}`,
    info.bits !== bits && `${info.bits}-bit, want ${bits}-bit`,
    !info.executable && "not marked executable in its header",
  ].filter((p) => p !== false);
  if (problems.length > 0) throw new Error(`${file} is not a sidecar for ${target.triple}: ${problems.join("; ")}`);
  return info;
}

/** A built and checked sidecar. */
export interface BuiltSidecar {
  target: SidecarTarget;
  file: string;
  bytes: number;
  info: ExecutableInfo;
}

/** The environment of a Go command for `target`, as the build helper sets it. */
function targetEnv(target: SidecarTarget): NodeJS.ProcessEnv {
  return { ...goEnv, CGO_ENABLED: "0", GOWORK: "off", GOOS: target.goos, GOARCH: target.goarch, GOARM: "" };
}

/** Cross-compiles the sidecar for one target into `outDir`, then checks it. */
export function buildSidecar(target: SidecarTarget, outDir: string): BuiltSidecar {
  mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, sidecarFileName(target));
  // Build under a temporary name, so an interrupted build never leaves a truncated sidecar behind.
  const staged = `${file}.${process.pid}.tmp`;
  // The helper's flags: Windows sidecars are GUI-subsystem executables, which get no console window.
  const ldflags = target.goos === "windows" ? "-s -w -H=windowsgui" : "-s -w";
  run("go", ["build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", staged, "./cmd/server"], {
    cwd: goBackendDir,
    env: targetEnv(target),
  });
  renameSync(staged, file);
  const info = checkSidecar(file, target);
  return { target, file, bytes: statSync(file).size, info };
}

/**
 * Resolves every package the sidecar imports for `target` without compiling one (`go list -deps`,
 * which exits non-zero when a package has no files for that GOOS/GOARCH or does not load). Returns
 * how many packages it resolved.
 */
export function resolveSidecar(target: SidecarTarget): number {
  const packages = capture("go", ["list", "-deps", "./cmd/server"], { cwd: goBackendDir, env: targetEnv(target) });
  return packages.split("\n").filter((line) => line !== "").length;
}

/** Builds every target of {@link DESKTOP_TARGETS} (or those named in `only`). */
export function buildAllSidecars(outDir: string, only?: readonly string[]): BuiltSidecar[] {
  const targets = only ? DESKTOP_TARGETS.filter((t) => only.includes(t.triple)) : DESKTOP_TARGETS;
  const unknown = only?.filter((triple) => !DESKTOP_TARGETS.some((t) => t.triple === triple)) ?? [];
  if (unknown.length > 0) {
    throw new Error(`unknown target(s) ${unknown.join(", ")}; known: ${DESKTOP_TARGETS.map((t) => t.triple).join(", ")}`);
  }
  return targets.map((target) => buildSidecar(target, outDir));
}

/** `12.3 MiB`. */
export function mebibytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const outDir = path.resolve(arg("out") ?? path.join(cargoTargetDir(), "sidecars"));
  const only = process.argv.includes("--all") ? DESKTOP_TARGETS.map((t) => t.triple) : (arg("only")?.split(",") ?? BUILT_BY_DEFAULT);
  const started = performance.now();
  const built = buildAllSidecars(outDir, only);
  const resolved = DESKTOP_TARGETS.filter((t) => !only.includes(t.triple)).map((target) => ({ target, packages: resolveSidecar(target) }));
  console.log(`\nsidecars in ${path.relative(repoRoot, outDir) || "."} (${((performance.now() - started) / 1000).toFixed(1)} s):`);
  for (const { target, file, bytes, info } of built) {
    console.log(
      `  ${path.basename(file).padEnd(48)} ${String(bytes).padStart(10)} B  ${mebibytes(bytes).padStart(9)}  ` +
        `${info.format} ${info.arch} ${info.bits}-bit  ok (${target.goos}/${target.goarch})`,
    );
  }
  for (const { target, packages } of resolved) {
    console.log(`  ${sidecarFileName(target).padEnd(48)} not built: its ${packages} packages resolve for ${target.goos}/${target.goarch} (--all builds it)`);
  }
}
