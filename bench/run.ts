/**
 * `npm run bench` (full run, writes bench/RESULTS.md) and `npm run bench:smoke` (a few hundred
 * samples, no thresholds, writes target/bench/RESULTS.smoke.md): builds what it measures, runs the
 * Rust-side driver (bench/rust: B0, B2, B3, V1, V3, V4, V5, V6) and the webview side
 * (bench/webview.ts under Xvfb: B1, V2, ...; the store benchmarks of bench/store.ts) and the store's
 * Go floor, then prints and writes the numbers with the targets of issues 6, 12, 13 and 14. See
 * bench/README.md for the method.
 *
 * Options: --smoke; --no-build (use what was built before); --store-only (the store benchmarks alone:
 * rewrites only the store section of RESULTS.md). With ANYSYNC_BENCH_PROFILE=release the
 * Rust driver is a release build and a full run writes bench/RESULTS.release.md instead.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { buildGuestJs, cargoTargetDir } from "../scripts/build.ts";
import { capture, goEnv, repoRoot, run, runNodeWithDisplay } from "../scripts/lib.ts";
import { bytes, median, mib, ratio, sectionOf, summarize, us, withSection, type SectionMarkers, type Summary } from "./stats.ts";
import { FULL_SIZES, SMOKE_SIZES, runStoreFloor, storeReport, withStoreSection, type StoreWebviewOut } from "./store.ts";

const smoke = process.argv.includes("--smoke");
const noBuild = process.argv.includes("--no-build");
const storeOnly = process.argv.includes("--store-only");
const started = performance.now();
const outDir = path.join(cargoTargetDir(), "bench");
const binDir = path.join(outDir, "bin");
/**
 * The build profile of the driver and the bench app: release with `--release` (or
 * ANYSYNC_BENCH_PROFILE=release), as an app's users run it; else debug, as CI runs it.
 */
const profile = process.argv.includes("--release") || process.env.ANYSYNC_BENCH_PROFILE === "release" ? "release" : "debug";
const releaseFlag = profile === "release" ? ["--release"] : [];
const driverBinary = path.join(cargoTargetDir(), profile, "anysync-bench");
const benchApp = path.join(cargoTargetDir(), profile, "anysync-bench-app");
mkdirSync(binDir, { recursive: true });

const loadBefore = os.loadavg();
const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(" / ");

// ------------------------------------------------------------------------------------------ build

function build(): void {
  const t0 = performance.now();
  // The sidecar as the plugin ships it (CGO off, trimmed), and the Go baselines.
  const goBuild = { cwd: path.join(repoRoot, "go-backend"), env: { ...goEnv, CGO_ENABLED: "0" } };
  run("go", ["build", "-trimpath", "-o", path.join(binDir, "anysync-backend"), "./cmd/server"], goBuild);
  run("go", ["build", "-trimpath", "-o", binDir + path.sep, "./cmd/bench-echo", "./cmd/bench-nop", "./cmd/bench-grpc"], goBuild);
  if (!storeOnly) run("cargo", ["build", "--locked", "-p", "anysync-bench", ...releaseFlag]);
  // The example app's front end, then the app with its bench command (front end embedded).
  buildGuestJs();
  run("npm", ["run", "--silent", "--workspace", "examples/tauri-app", "build"]);
  run("cargo", [
    "build",
    "--locked",
    "-p",
    "tauri-app",
    "--bin",
    "anysync-bench-app",
    "--features",
    "bench,tauri/custom-protocol",
    ...releaseFlag,
  ]);
  console.log(`bench: built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

if (!noBuild) build();

// ------------------------------------------------------------------------------------------- run

const rustOut = path.join(outDir, smoke ? "rust.smoke.json" : "rust.json");
const webviewOut = path.join(outDir, smoke ? "webview.smoke.json" : "webview.json");
// The store benchmarks' files (the backend's spaces, plugin-sql's database, plugin-store's JSON): fresh every run.
const storeDir = path.join(outDir, "store-data");
rmSync(storeDir, { recursive: true, force: true });
mkdirSync(storeDir, { recursive: true });
const runStarted = performance.now();

function runWebview(out: string, extra: readonly string[] = []): void {
  const script = path.join(repoRoot, "bench", "webview.ts");
  const args = ["--import", "tsx", script, "--app", benchApp, "--out", out, "--store-dir", storeDir, ...extra, ...(smoke ? ["--smoke"] : [])];
  const result = runNodeWithDisplay(args, {
    stderrPath: path.join(outDir, "webview.stderr.log"),
    stdin: "ignore",
    tailLines: 30,
  });
  if (result.status !== 0) {
    throw new Error(`the webview part failed (${String(result.status ?? result.signal)}):\n${result.stderrTail}`);
  }
}

const storeFloorOut = path.join(outDir, smoke ? "store-floor.smoke.json" : "store-floor.json");
const loadText = (a: number[], b: number[]) => `${load(a)} before the run, ${load(b)} after the webview part`;
if (storeOnly) {
  const out = path.join(outDir, smoke ? "webview-store.smoke.json" : "webview-store.json");
  runWebview(out, ["--store-only"]);
  const loadWebview = os.loadavg();
  const floor = runStoreFloor(smoke ? SMOKE_SIZES : FULL_SIZES, storeFloorOut);
  const web = (JSON.parse(readFileSync(out, "utf8")) as { store: StoreWebviewOut }).store;
  const { lines, targets } = storeReport(web, floor, loadText(loadBefore, loadWebview), profile);
  // The targets inside the section (before its end marker): a full run lists them in the targets table.
  lines.splice(-1, 0, ...targets.map((t) => `- ${t.pass ? "PASS" : "**MISS**"} ${t.what}: ${t.measured}`), "");
  const section = lines.join("\n");
  console.log(`\n${section}`);
  const file = smoke ? path.join(outDir, "RESULTS.store.smoke.md") : path.join(repoRoot, "bench", profile === "release" ? "RESULTS.release.md" : "RESULTS.md");
  writeFileSync(file, smoke ? section : withStoreSection(existsSync(file) ? readFileSync(file, "utf8") : "", section));
  console.log(`bench: wrote ${path.relative(repoRoot, file)} in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  process.exit(0);
}

run(driverBinary, [
  "--sidecar",
  path.join(binDir, "anysync-backend"),
  "--echo",
  path.join(binDir, "bench-echo"),
  "--nop",
  path.join(binDir, "bench-nop"),
  "--grpc",
  path.join(binDir, "bench-grpc"),
  "--out",
  rustOut,
  ...(smoke ? ["--smoke"] : []),
]);

runWebview(webviewOut);
const loadWebview = os.loadavg();
const storeFloor = runStoreFloor(smoke ? SMOKE_SIZES : FULL_SIZES, storeFloorOut);
const runSeconds = (performance.now() - runStarted) / 1000;
const loadAfter = os.loadavg();

// --------------------------------------------------------------------------------------- analyse

interface RustBlock {
  variant: string;
  size: number;
  conc: number;
  round: number;
  wallNs: number;
  samplesNs: number[];
}
interface RustOut {
  blocks: RustBlock[];
  v5: {
    kills: number;
    streams: number;
    recoveryNs: number[];
    calls: number;
    ok: number;
    failedByCode: Record<string, number>;
    failedNs: number[];
    inFlightAtKill: number;
    maxCallNs: number;
    hungOver2s: number;
    unfinishedStreams: number;
  };
  cpu: Record<"B0" | "V1", { calls: number; rustUsPerCall: number; goUsPerCall: number }>;
  rss: { b3IdleKib: number; v6IdleKib: number; v6AfterKib: number; v6Calls: number; v1AfterAllKib: number | null };
}
interface WebviewOut {
  callsPerBlock: number;
  blocks: { variant: string; round: number; gapsUs: number[]; pageMs: number }[];
  streams: { variant: "S0" | "G3"; size: number; round: number; count: number; ms: number }[];
  streamLatencyUs: number[];
  store: StoreWebviewOut;
  stall: {
    stallMs: number;
    sidecarKibBefore: number;
    sidecarKibAfter: number;
    appKibBefore: number;
    appKibAfter: number;
    ticksSent: number;
    sendBlocked: number;
  };
}

const rust = JSON.parse(readFileSync(rustOut, "utf8")) as RustOut;
const webview = JSON.parse(readFileSync(webviewOut, "utf8")) as WebviewOut;

/** A variant's blocks, samples in µs, by round. */
interface Series {
  rounds: Map<number, { samples: number[]; wallUs: number }>;
  all: Summary;
  /** Calls per second over the blocks' wall time. */
  throughput: number;
}

function series(blocks: { round: number; samples: number[]; wallUs: number }[]): Series {
  const rounds = new Map<number, { samples: number[]; wallUs: number }>();
  for (const b of blocks) rounds.set(b.round, { samples: b.samples, wallUs: b.wallUs });
  const all = summarize(blocks.flatMap((b) => b.samples));
  const wall = blocks.reduce((a, b) => a + b.wallUs, 0);
  return { rounds, all, throughput: (all.n / wall) * 1e6 };
}

function rustSeries(variant: string, size: number, conc = 1): Series {
  return series(
    rust.blocks
      .filter((b) => b.variant === variant && b.size === size && b.conc === conc)
      .map((b) => ({ round: b.round, samples: b.samplesNs.map((ns) => ns / 1000), wallUs: b.wallNs / 1000 })),
  );
}

function webviewSeries(variant: string): Series {
  return series(
    webview.blocks
      .filter((b) => b.variant === variant)
      .map((b) => ({ round: b.round, samples: b.gapsUs, wallUs: b.gapsUs.reduce((x, y) => x + y, 0) })),
  );
}

/** The median over rounds of `f(a's block, b's block)`. */
function blockRatio(a: Series, b: Series, f: (x: number[], y: number[]) => number): number {
  const values: number[] = [];
  for (const [round, block] of a.rounds) {
    const other = b.rounds.get(round);
    if (other) values.push(f(block.samples, other.samples));
  }
  return median(values);
}
const p50Ratio = (a: Series, b: Series) => blockRatio(a, b, (x, y) => summarize(x).p50 / summarize(y).p50);
const p99Ratio = (a: Series, b: Series) => blockRatio(a, b, (x, y) => summarize(x).p99 / summarize(y).p99);
function throughputRatio(a: Series, b: Series): number {
  const values: number[] = [];
  for (const [round, block] of a.rounds) {
    const other = b.rounds.get(round);
    if (other) values.push(block.samples.length / block.wallUs / (other.samples.length / other.wallUs));
  }
  return median(values);
}

const b0 = rustSeries("B0", 16);
const v1 = [1, 16, 64].map((conc) => ({ conc, s: rustSeries("V1", 16, conc) }));
const v1c1 = v1[0]?.s ?? b0;
const v1c16 = v1[1]?.s ?? b0;
const v1g = rustSeries("V1G", 16);
const sizes = [16, 1024, 65536, 1048576];
const v3 = sizes.map((size) => ({ size, v: rustSeries("V3", size), b: rustSeries("B0", size) }));
const b2 = rustSeries("B2", 0);
const v4 = rustSeries("V4", 0);
const b1 = webviewSeries("B1");
const v2 = webviewSeries("V2");
const g2 = webviewSeries("G2");
const r2 = webviewSeries("R2");
const a2 = webviewSeries("A2");
const a2i = webviewSeries("A2I");
const a2s = webviewSeries("A2S");
const v5 = rust.v5;
const v5Recovery = summarize(v5.recoveryNs.map((ns) => ns / 1000));
const v5Failed = summarize(v5.failedNs.map((ns) => ns / 1000));
const v5Codes = Object.entries(v5.failedByCode);
const v5FailedTotal = v5Codes.reduce((a, [, n]) => a + n, 0);
const rss = rust.rss;

/** Per message size: messages per second of S0 and G3 (median over rounds) and G3's ratio to S0. */
const streamSizes = [64, 1024, 65536];
const streamRates = streamSizes.map((size) => {
  const rate = (variant: "S0" | "G3") =>
    median(webview.streams.filter((x) => x.variant === variant && x.size === size).map((x) => (x.count / x.ms) * 1000));
  const rounds = [...new Set(webview.streams.map((x) => x.round))];
  const ratios = rounds.map((round) => {
    const pick = (variant: "S0" | "G3") => webview.streams.find((x) => x.variant === variant && x.size === size && x.round === round);
    const [g, b] = [pick("G3"), pick("S0")];
    return g && b ? g.count / g.ms / (b.count / b.ms) : Number.NaN;
  });
  return { size, s0: rate("S0"), g3: rate("G3"), ratio: median(ratios.filter((r) => Number.isFinite(r))) };
});
const streamLatency = summarize(webview.streamLatencyUs);

// ---------------------------------------------------------------------------------------- targets

interface Target {
  what: string;
  measured: string;
  pass: boolean;
}
const targets: Target[] = [];
function target(what: string, measured: string, pass: boolean): void {
  targets.push({ what, measured, pass });
}
const v1RatioB0 = p50Ratio(v1c1, b0);
target("V1 conc 1 p50 <= 100 µs", us(v1c1.all.p50), v1c1.all.p50 <= 100);
target("V1 conc 1 p50 <= 8x B0 p50 (median of block ratios)", ratio(v1RatioB0), v1RatioB0 <= 8);
target("V1 conc 1 p99 <= 3x its p50", `${us(v1c1.all.p99)} = ${ratio(v1c1.all.p99 / v1c1.all.p50)}`, v1c1.all.p99 <= 3 * v1c1.all.p50);
const c16Gain = throughputRatio(v1c16, v1c1);
target(
  "V1 conc 16 throughput >= 3x conc 1 (median of block ratios)",
  `${v1c16.throughput.toFixed(0)}/s vs ${v1c1.throughput.toFixed(0)}/s = ${ratio(c16Gain)}`,
  c16Gain >= 3,
);
target("V1/V3 errors = 0 (any error aborts the driver)", "0", true);
const v1gp50 = p50Ratio(v1g, v1c1);
const v1gp99 = p99Ratio(v1g, v1c1);
target("V1G generic path from Rust p50 <= V1 typed ping p50 (issue 12)", `${us(v1g.all.p50)} vs ${us(v1c1.all.p50)} = ${ratio(v1gp50)}`, v1gp50 <= 1);
target("V1G generic path from Rust p99 <= 1.05x V1 p99 (issue 12)", `${us(v1g.all.p99)} vs ${us(v1c1.all.p99)} = ${ratio(v1gp99)}`, v1gp99 <= 1.05);
const v2b1p50 = p50Ratio(v2, b1);
const v2b1p99 = p99Ratio(v2, b1);
target("V2 p50 <= 1.3x B1 p50 (median of block ratios)", `${us(v2.all.p50)} vs ${us(b1.all.p50)} = ${ratio(v2b1p50)}`, v2b1p50 <= 1.3);
target("V2 p99 <= 1.6x B1 p99 (median of block ratios)", `${us(v2.all.p99)} vs ${us(b1.all.p99)} = ${ratio(v2b1p99)}`, v2b1p99 <= 1.6);
target("V2 p50 <= 1 ms", us(v2.all.p50), v2.all.p50 <= 1000);
const g2v2p50 = p50Ratio(g2, v2);
const g2v2p99 = p99Ratio(g2, v2);
target("G2 generic path p50 <= V2 typed ping p50 (issue 12)", `${us(g2.all.p50)} vs ${us(v2.all.p50)} = ${ratio(g2v2p50)}`, g2v2p50 <= 1);
target("G2 generic path p99 <= 1.05x V2 p99 (issue 12)", `${us(g2.all.p99)} vs ${us(v2.all.p99)} = ${ratio(g2v2p99)}`, g2v2p99 <= 1.05);
const small = streamRates[0];
if (small) target("G3 stream of 64 B messages >= 50 000 msg/s (issue 13)", `${small.g3.toFixed(0)} msg/s`, small.g3 >= 50_000);
for (const r of streamRates) {
  target(`G3 stream at ${bytes(r.size)} >= 0.5x S0 (issue 13)`, `${r.g3.toFixed(0)} vs ${r.s0.toFixed(0)} msg/s = ${ratio(r.ratio)}`, r.ratio >= 0.5);
}
target("Go Send -> TS loop body p99 <= 2 ms at 100 msg/s (issue 13)", us(streamLatency.p99), streamLatency.p99 <= 2_000);
const v4b2 = p50Ratio(v4, b2);
target("V4 p50 <= 25 ms", us(v4.all.p50), v4.all.p50 <= 25_000);
target("V4 p50 <= 10x B2 p50 (median of block ratios)", `${us(b2.all.p50)} B2 → ${ratio(v4b2)}`, v4b2 <= 10);
target("V5 recovery p50 <= 50 ms", us(v5Recovery.p50), v5Recovery.p50 <= 50_000);
target("V5 recovery p99 <= 150 ms", us(v5Recovery.p99), v5Recovery.p99 <= 150_000);
const onlyUnavailable = v5Codes.every(([code]) => code === "UNAVAILABLE");
target(
  "V5 failed calls are UNAVAILABLE and fast (max <= 100 ms)",
  `${v5FailedTotal} failed (${v5Codes.map(([c, n]) => `${c} ${n}`).join(", ") || "none"}), max ${us(v5Failed.max)}`,
  onlyUnavailable && !(v5Failed.max > 100_000),
);
target(
  "V5 none hang (> 2 s), none lost (every call answered)",
  `${v5.hungOver2s} hung, ${v5.unfinishedStreams} unfinished streams, ${v5.calls} calls = ${v5.ok} ok + ${v5FailedTotal} failed`,
  v5.hungOver2s === 0 && v5.unfinishedStreams === 0 && v5.calls === v5.ok + v5FailedTotal,
);
target("V6 idle RSS <= 15 MiB", mib(rss.v6IdleKib), rss.v6IdleKib <= 15 * 1024);
target("V6 idle RSS <= 2x B3", `${mib(rss.b3IdleKib)} B3 → ${ratio(rss.v6IdleKib / rss.b3IdleKib)}`, rss.v6IdleKib <= 2 * rss.b3IdleKib);
// Issue 17's goals are for release builds: a debug run shows them too, for comparison.
const tag = `(issue 17, ${profile} build)`;
target(`V2 p50 <= 1.2x B1 p50 ${tag}`, ratio(v2b1p50), v2b1p50 <= 1.2);
target(`V2 p99 <= 1.4x B1 p99 ${tag}`, ratio(v2b1p99), v2b1p99 <= 1.4);
target(`V1 conc 1 p50 <= 3x B0 p50 ${tag}`, ratio(v1RatioB0), v1RatioB0 <= 3);
target(`CPU per V1 call <= 25 µs Rust ${tag}`, us(rust.cpu.V1.rustUsPerCall), rust.cpu.V1.rustUsPerCall <= 25);
target(`CPU per V1 call <= 30 µs Go ${tag}`, us(rust.cpu.V1.goUsPerCall), rust.cpu.V1.goUsPerCall <= 30);
target(`V4 p50 <= 5x B2 p50 ${tag}`, ratio(v4b2), v4b2 <= 5);
target(`V6 idle RSS <= 1.2x B3 ${tag}`, ratio(rss.v6IdleKib / rss.b3IdleKib), rss.v6IdleKib <= 1.2 * rss.b3IdleKib);

const store = storeReport(webview.store, storeFloor, loadText(loadBefore, loadWebview), profile);
targets.push(...store.targets);

// ---------------------------------------------------------------------------------------- report

function row(name: string, s: Summary, extra = ""): string {
  return `| ${name} | ${s.n} | ${us(s.p50)} | ${us(s.p99)} | ${us(s.max)} | ${extra} |`;
}
const cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? os.cpus()[0]?.model ?? "unknown";
const commit = capture("git", ["rev-parse", "--short=12", "HEAD"]);
const dirty = capture("git", ["status", "--porcelain"]) !== "";

const lines: string[] = [
  smoke ? "# Benchmark results (smoke run: few samples, no thresholds)" : "# Benchmark results",
  "",
  `Written by \`npm run ${smoke ? "bench:smoke" : "bench"}\` (bench/run.ts); method in [bench/README.md](README.md).`,
  "",
  "| machine | |",
  "| --- | --- |",
  `| date | ${new Date().toISOString()} |`,
  `| git commit | ${commit}${dirty ? " (work tree with uncommitted changes)" : ""} |`,
  `| CPU | ${cpuModel}, ${os.cpus().length} logical CPUs (nproc) |`,
  `| memory | ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB |`,
  `| kernel | ${os.type()} ${os.release()} |`,
  `| load average (1/5/15 min) | before ${load(loadBefore)}, after ${load(loadAfter)} |`,
  `| builds | Rust driver and bench app: ${profile}; Go: go build -trimpath, CGO off |`,
  `| run time | ${runSeconds.toFixed(0)} s measuring, ${((performance.now() - started) / 1000).toFixed(0)} s with builds |`,
  "",
];
if (!smoke) {
  lines.push("## Targets (issues 6, 12, 13, 14)", "", "| target | measured | |", "| --- | --- | --- |");
  for (const t of targets) lines.push(`| ${t.what} | ${t.measured} | ${t.pass ? "PASS" : "**MISS**"} |`);
  lines.push("");
}
lines.push(
  "## Round trips",
  "",
  "Latency per call; B0/V1/V3 timed in Rust with `Instant`, B1/V2 as the gap between consecutive arrivals of back-to-back calls (see README).",
  "",
  "| variant | samples | p50 | p99 | max | throughput, ratios (median of per-block ratios) |",
  "| --- | --- | --- | --- | --- | --- |",
  row("B0 raw TCP echo Rust ↔ Go, 16 B", b0.all, `${b0.throughput.toFixed(0)}/s`),
  ...v1.map(({ conc, s }) =>
    row(
      `V1 Rust → Go ping (Supervisor, auth), 16 B, conc ${conc}`,
      s.all,
      `${s.throughput.toFixed(0)}/s${conc === 1 ? `; p50 ${ratio(v1RatioB0)} B0` : `; ${ratio(throughputRatio(s, v1c1))} conc-1 throughput`}`,
    ),
  ),
  row(
    "V1G Rust → Go ping through the generic path (`Supervisor::call`, prost bytes), conc 1",
    v1g.all,
    `${v1g.throughput.toFixed(0)}/s; p50 ${ratio(v1gp50)} V1, p99 ${ratio(v1gp99)} V1`,
  ),
  row("B1 webview → no-op app command (Rust)", b1.all, `${b1.throughput.toFixed(0)}/s`),
  row("V2 webview → Rust → Go ping, typed JSON command", v2.all, `${v2.throughput.toFixed(0)}/s; p50 ${ratio(v2b1p50)} B1, p99 ${ratio(v2b1p99)} B1`),
  row(
    "G2 webview → Rust → Go ping, generated client over the generic path",
    g2.all,
    `${g2.throughput.toFixed(0)}/s; p50 ${ratio(g2v2p50)} V2, p99 ${ratio(g2v2p99)} V2`,
  ),
  row(
    "R2 webview → Rust → Go ping, the same bytes through `plugin:anysync|call` by hand (no protobuf-es, no connect-es)",
    r2.all,
    `${r2.throughput.toFixed(0)}/s; p50 ${ratio(p50Ratio(r2, v2))} V2; G2 p50 ${ratio(p50Ratio(g2, r2))} R2`,
  ),
  row(
    "A2 Rust → Go ping inside the app (`app.anysync().ping()` on Tauri's runtime, back-to-back, timed in Rust): V2's Go leg alone",
    a2.all,
    `${a2.throughput.toFixed(0)}/s; V2 p50 - B1 p50 = ${us(v2.all.p50 - b1.all.p50)}, ${ratio((v2.all.p50 - b1.all.p50) / a2.all.p50)} A2`,
  ),
  row(
    "A2I the same with a 1 ms timer sleep before each ping: the app's workers and the sidecar idle between calls, as between calls from the page",
    a2i.all,
    `p50 ${ratio(a2i.all.p50 / a2.all.p50)} A2`,
  ),
  row("A2S the same with 1 ms of spinning before each ping: the app's worker busy, only the sidecar idle", a2s.all, `p50 ${ratio(a2s.all.p50 / a2.all.p50)} A2`),
  "",
  `Page-side cross-check (performance.now() over whole blocks of ${webview.callsPerBlock} calls): ` +
    ["B1", "V2", "G2", "R2", "P1"]
      .map((variant) => {
        const blocks = webview.blocks.filter((b) => b.variant === variant);
        const perCall = median(blocks.map((b) => (b.pageMs * 1000) / webview.callsPerBlock));
        return `${variant === "P1" ? "P1 (`plugin:anysync|status`, a sync plugin command that never leaves Rust)" : variant} ${us(perCall)} per call`;
      })
      .join(", ") +
    ".",
  "",
  "## Server streams to the webview (issue 13)",
  "",
  "S0: Rust alone sends the messages over a Channel, one raw payload each (the Tauri floor). G3: the example's",
  "`CounterService/Tick` through the generated client: Go `Send` -> gRPC -> Rust with credit (windows of 1024 messages and 4 MiB) ->",
  "framed Channel payloads -> the transport's async iterator. Messages per second over whole streams, median of rounds.",
  "",
  "| message size | S0 msg/s | S0 MiB/s | G3 msg/s | G3 MiB/s | G3 / S0 |",
  "| --- | --- | --- | --- | --- | --- |",
  ...streamRates.map(
    (r) =>
      `| ${bytes(r.size)} | ${r.s0.toFixed(0)} | ${((r.s0 * r.size) / 2 ** 20).toFixed(1)} | ${r.g3.toFixed(0)} | ${((r.g3 * r.size) / 2 ** 20).toFixed(1)} | ${ratio(r.ratio)} |`,
  ),
  "",
  `Latency from Go's \`Send\` to the loop body at 100 msg/s (${streamLatency.n} ticks; the page's clock has 1 ms steps): ` +
    `p50 ${us(streamLatency.p50)}, p99 ${us(streamLatency.p99)}, max ${us(streamLatency.max)}.`,
  "",
  `Stalled consumer (a 64 KiB stream the page stops reading for ${(webview.stall.stallMs / 1000).toFixed(0)} s): ` +
    `sidecar ${mib(webview.stall.sidecarKibBefore)} -> ${mib(webview.stall.sidecarKibAfter)}, ` +
    `app ${mib(webview.stall.appKibBefore)} -> ${mib(webview.stall.appKibAfter)}, ` +
    `Go blocked in Send: ${webview.stall.sendBlocked ? "yes" : "no"} (ticks handed to Send since the backend started: ${webview.stall.ticksSent}).`,
  "",
  "CPU time per call at concurrency 1 (user + system from /proc, summed over all blocks; independent of load):",
  "",
  "| | Rust process | Go process |",
  "| --- | --- | --- |",
  `| B0 raw echo, 16 B | ${us(rust.cpu.B0.rustUsPerCall)} | ${us(rust.cpu.B0.goUsPerCall)} |`,
  `| V1 ping, 16 B | ${us(rust.cpu.V1.rustUsPerCall)} | ${us(rust.cpu.V1.goUsPerCall)} |`,
  "",
  "## Payloads (V3: the V1 path at concurrency 1, against B0 at the same size)",
  "",
  "| size | samples | B0 p50 | V3 p50 | V3 p99 | V3 max | V3 p50 / B0 p50 | V3 MiB/s each way |",
  "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ...v3.map(
    ({ size, v, b }) =>
      `| ${bytes(size)} | ${v.all.n} | ${us(b.all.p50)} | ${us(v.all.p50)} | ${us(v.all.p99)} | ${us(v.all.max)} | ${ratio(p50Ratio(v, b))} | ${((size / v.all.p50) * 1e6 / 2 ** 20).toFixed(1)} |`,
  ),
  "",
  "## Start-up, crash recovery, memory",
  "",
  "| variant | samples | p50 | p99 | max | notes |",
  "| --- | --- | --- | --- | --- | --- |",
  row("B2 spawn-and-exit of a trivial Go binary", b2.all),
  row("V4 fresh Supervisor → first healthy call", v4.all, `p50 ${ratio(v4b2)} B2`),
  row(
    `V5 SIGKILL → first successful call started after it (${v5.streams} ping streams)`,
    v5Recovery,
    `${v5.calls} calls: ${v5.ok} ok, ${v5FailedTotal} failed (${v5Codes.map(([c, n]) => `${c} ${n}`).join(", ") || "none"}); ${v5.inFlightAtKill} in flight at a kill; failed calls took p50 ${us(v5Failed.p50)}, max ${us(v5Failed.max)}; slowest call ${us(v5.maxCallNs / 1000)}`,
  ),
  "",
  "| memory (VmRSS) | |",
  "| --- | --- |",
  `| B3 minimal grpc-go server, idle (one connection) | ${mib(rss.b3IdleKib)} |`,
  `| V6 sidecar idle after start | ${mib(rss.v6IdleKib)} |`,
  `| V6 sidecar after ${rss.v6Calls} pings | ${mib(rss.v6AfterKib)} |`,
  `| sidecar after all of V1 and V3 (incl. 1 MiB messages) | ${rss.v1AfterAllKib === null ? "n/a" : mib(rss.v1AfterAllKib)} |`,
  "",
  ...store.lines,
);

const report = lines.join("\n");
console.log(`\n${report}`);
// RESULTS.md holds the debug run and, in a section of its own, the targets of the last release run,
// whose full report is RESULTS.release.md; each kind of run keeps the other's part.
const reportPath = smoke
  ? path.join(outDir, "RESULTS.smoke.md")
  : path.join(repoRoot, "bench", profile === "release" ? "RESULTS.release.md" : "RESULTS.md");
const RELEASE: SectionMarkers = {
  begin: "<!-- release: generated by `npm run bench -- --release`; a debug run keeps it -->",
  end: "<!-- /release -->",
};
const ANALYSIS = "<!-- analysis: kept across runs -->";
const readOr = (file: string): string => (existsSync(file) ? readFileSync(file, "utf8") : "");
if (smoke) {
  writeFileSync(reportPath, report);
} else {
  // Keep the hand-written analysis below the generated part when re-running.
  const previous = readOr(reportPath);
  const at = previous.indexOf(ANALYSIS);
  const analysis = at >= 0 ? previous.slice(at) : `${ANALYSIS}\n`;
  const kept = profile === "debug" ? sectionOf(previous, RELEASE) : undefined;
  writeFileSync(reportPath, `${report}\n${kept ? `${kept}\n\n` : ""}${analysis}`);
  if (profile === "release") {
    const summary = [
      RELEASE.begin,
      "## Release builds",
      "",
      `The driver, the bench app and the sidecar as an app's users get them, measured ${new Date().toISOString()} at commit ${commit}${dirty ? " (work tree with uncommitted changes)" : ""}, load average before ${load(loadBefore)}, after ${load(loadAfter)}. Every figure: [RESULTS.release.md](RESULTS.release.md).`,
      "",
      "| target | measured | |",
      "| --- | --- | --- |",
      ...targets.map((t) => `| ${t.what} | ${t.measured} | ${t.pass ? "PASS" : "**MISS**"} |`),
      RELEASE.end,
    ].join("\n");
    const debugReport = path.join(repoRoot, "bench", "RESULTS.md");
    writeFileSync(debugReport, withSection(readOr(debugReport), RELEASE, summary, ANALYSIS));
  }
}
console.log(`bench: wrote ${path.relative(repoRoot, reportPath)} in ${((performance.now() - started) / 1000).toFixed(0)} s`);
