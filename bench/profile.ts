/**
 * `npm run bench:profile`: where one V1 call's CPU goes, on both sides, as committed SVGs.
 *
 * Builds the release driver (bench/rust) and the profiled sidecar (go-backend/cmd/bench-profiled:
 * the shipped services plus a pprof CPU profile of the whole run), then runs the driver's profile
 * mode (V1 on the generic path, 16 B, concurrency 1, back to back) under `perf record`. Writes
 * `bench/profiles/rust-v1.svg` (perf samples of the driver process, a flame graph by inferno) and
 * `bench/profiles/go-v1.svg` (the sidecar's pprof samples, the same kind of flame graph), plus the
 * top functions of each side as text beside them.
 *
 * Needs `perf` (Debian: linux-perf) and inferno (`cargo install inferno`; this script installs it
 * into $ANYSYNC_TOOLS_DIR when it is missing). Options: --seconds=N (default 8), --no-build.
 */
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { cargoTargetDir } from "../scripts/build.ts";
import { capture, goEnv, repoRoot, run } from "../scripts/lib.ts";

const seconds = Number(process.argv.find((a) => a.startsWith("--seconds="))?.slice("--seconds=".length) ?? "8");
const noBuild = process.argv.includes("--no-build");
const profilesDir = path.join(repoRoot, "bench", "profiles");
const binDir = path.join(cargoTargetDir(), "bench", "bin");
const driver = path.join(cargoTargetDir(), "release", "anysync-bench");
const sidecar = path.join(binDir, "anysync-backend-profiled");
const toolsDir = process.env.ANYSYNC_TOOLS_DIR ?? path.join(os.homedir(), ".cache", "anysync", "tools");
/** inferno's version, pinned so the SVGs of two runs differ only by what they measured. */
const INFERNO = "0.12.8";

/** The path of one of inferno's binaries, installing inferno from the crate registry first if needed. */
function inferno(binary: "inferno-collapse-perf" | "inferno-flamegraph"): string {
  const installed = path.join(toolsDir, "bin", binary);
  if (!existsSync(installed)) {
    run("cargo", ["install", "--locked", "--root", toolsDir, "--version", INFERNO, "inferno"]);
  }
  return installed;
}

/** Runs `command` with `input` on stdin and returns its stdout, throwing when it fails. */
function pipe(command: string, args: readonly string[], input: string): string {
  const result = spawnSync(command, args, { input, encoding: "utf8", maxBuffer: 1 << 30 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")}: ${result.stderr || result.error?.message}`);
  return result.stdout;
}

/**
 * pprof's `-traces` text (blocks of `<time> frame` / `frame`... separated by dashed lines, leaf
 * first) as folded stacks (`root;...;leaf <count>`), what inferno-flamegraph reads.
 */
export function pprofTracesToFolded(traces: string): string {
  const folded = new Map<string, number>();
  for (const block of traces.split(/^-+\+-+$/m)) {
    const lines = block.split("\n").filter((l) => l.trim() !== "");
    const first = lines[0]?.match(/^\s*([\d.]+)(ns|us|µs|ms|s)\s+(.*)$/);
    if (!first?.[3]) continue;
    const unit = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1e3 }[first[2] as "ns" | "us" | "µs" | "ms" | "s"];
    const ms = Number(first[1]) * unit;
    const frames = [first[3], ...lines.slice(1).map((l) => l.trim())].map((frame) => frame.replace(/;/g, ","));
    const stack = frames.reverse().join(";");
    folded.set(stack, (folded.get(stack) ?? 0) + Math.round(ms * 1000));
  }
  return [...folded].map(([stack, count]) => `${stack} ${count}`).join("\n") + "\n";
}

/** The `count` frames with the most samples under them (inclusive), with their own (self) share. */
export function topOfFolded(folded: string, count: number): string {
  const inclusive = new Map<string, number>();
  const self = new Map<string, number>();
  let total = 0;
  for (const line of folded.split("\n")) {
    const at = line.lastIndexOf(" ");
    if (at < 0) continue;
    const samples = Number(line.slice(at + 1));
    const frames = line.slice(0, at).split(";");
    total += samples;
    for (const frame of new Set(frames)) inclusive.set(frame, (inclusive.get(frame) ?? 0) + samples);
    const leaf = frames[frames.length - 1] ?? "";
    self.set(leaf, (self.get(leaf) ?? 0) + samples);
  }
  const pct = (n: number): string => `${((100 * n) / Math.max(total, 1)).toFixed(1).padStart(5)}%`;
  const rows = [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, count);
  return ["inclusive   self  frame", ...rows.map(([frame, n]) => `${pct(n)} ${pct(self.get(frame) ?? 0)}  ${frame}`)].join("\n") + "\n";
}

function build(): void {
  run("cargo", ["build", "--release", "--locked", "-p", "anysync-bench"]);
  run("go", ["build", "-trimpath", "-o", sidecar, "./cmd/bench-profiled"], {
    cwd: path.join(repoRoot, "go-backend"),
    env: { ...goEnv, CGO_ENABLED: "0" },
  });
}

function main(): void {
  if (!noBuild) build();
  mkdirSync(profilesDir, { recursive: true });
  const work = mkdtempSync(path.join(os.tmpdir(), "anysync-profile-"));
  const perfData = path.join(work, "perf.data");
  const goProfile = path.join(work, "go.pprof");
  // perf follows the driver's children too; only the driver's own samples are kept below.
  const result = spawnSync(
    "perf",
    ["record", "-F", "1999", "--call-graph", "dwarf,32768", "-o", perfData, "--", driver, "--sidecar", sidecar, "--profile-seconds", String(seconds)],
    { encoding: "utf8", env: { ...process.env, BENCH_CPU_PROFILE: goProfile }, stdio: ["ignore", "pipe", "inherit"] },
  );
  if (result.status !== 0) throw new Error(`perf record: exited with ${result.status ?? result.signal}`);
  const summary = result.stdout.split("\n").find((l) => l.startsWith("PROFILE "));
  if (!summary) throw new Error(`the driver printed no PROFILE line:\n${result.stdout}`);
  console.log(summary);

  const driverPid = (/driverPid=(\d+)/.exec(summary))?.[1];
  if (!driverPid) throw new Error(`no driverPid in ${summary}`);
  const script = capture("perf", ["script", "-i", perfData, "--pid", driverPid], { maxBuffer: 1 << 30 });
  const rustFolded = pipe(inferno("inferno-collapse-perf"), ["--all"], script);
  const title = (side: string): string => `${side}: V1 generic ping, 16 B, concurrency 1, ${seconds} s (${summary.slice("PROFILE ".length)})`;
  writeFileSync(path.join(profilesDir, "rust-v1.svg"), pipe(inferno("inferno-flamegraph"), ["--title", title("Rust driver (perf)")], rustFolded));

  const traces = capture("go", ["tool", "pprof", "-traces", sidecar, goProfile], { cwd: path.join(repoRoot, "go-backend"), maxBuffer: 1 << 30 });
  writeFileSync(
    path.join(profilesDir, "go-v1.svg"),
    pipe(inferno("inferno-flamegraph"), ["--title", title("Go sidecar (pprof)"), "--countname", "µs"], pprofTracesToFolded(traces)),
  );
  const goTop = capture("go", ["tool", "pprof", "-top", "-nodecount=40", sidecar, goProfile], { cwd: path.join(repoRoot, "go-backend") });
  writeFileSync(path.join(profilesDir, "go-v1-top.txt"), goTop + "\n");
  writeFileSync(path.join(profilesDir, "rust-v1-top.txt"), topOfFolded(rustFolded, 60));
  console.log(`bench: profiles in ${path.relative(repoRoot, profilesDir)} (perf data kept in ${work})`);
}

main();
