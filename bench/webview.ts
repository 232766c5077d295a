/**
 * The webview side of `npm run bench` (B1 and V2), run by bench/run.ts under Xvfb: opens the bench
 * build of the example app through tauri-driver and, in the page, makes back-to-back sequential
 * calls in interleaved blocks: B1 `bench_noop` (an app command that never leaves Rust), then V2
 * `plugin:anysync|ping` (webview -> Rust -> Go, the typed JSON command), G2 the same ping through the
 * generated HealthService client over the generic path (`plugin:anysync|call`, protobuf bytes), and
 * so on.
 *
 * Timing: WebKit's `performance.now()` is coarse (1 ms), so each call reports where it arrived
 * instead: `bench_noop` answers with Rust's clock, ping with the Go handler's (`handledAtUnixMicros`),
 * both microseconds of the same wall clock. In a loop of sequential calls the gap between two
 * consecutive arrivals is exactly one full webview round trip (plus the loop's own few JS steps,
 * the same for both). The page's `performance.now()` over the whole block is a coarse cross-check.
 *
 * With --store-dir DIR it also runs the store benchmarks (bench/store.ts) against plugin-sql and
 * plugin-store, with the backend's spaces in DIR.
 *
 * With --store-only (and --store-dir) it runs the store benchmarks alone.
 *
 * Usage: node --import tsx bench/webview.ts --app PATH --out FILE [--smoke] [--store-dir DIR [--store-only]]
 */
import { writeFileSync } from "node:fs";
import { openApp, parentPid, rssKib, startDriver, waitFor, type Browser } from "../e2e/harness.ts";
import { FULL_SIZES, SMOKE_SIZES, storeWebview } from "./store.ts";

interface BlockResult {
  /** Arrival times of the block's calls, microseconds since the Unix epoch. */
  stamps: number[];
  /** The page's own measure of the block (coarse). */
  pageMs: number;
  error?: string;
}

/** One block in the page: `calls` sequential invokes of `command`, returning every arrival stamp. */
const BLOCK_SCRIPT = `
  const [command, args, calls] = arguments;
  const invoke = window.__TAURI_INTERNALS__.invoke;
  // G2: the generated HealthService client over the generic path, as an app calls it.
  const health = window.anysyncExample.health;
  // R2: the same bytes through plugin:anysync|call by hand, without protobuf-es or connect-es:
  // it splits G2's cost between the TypeScript client and the IPC + Rust path.
  const text = new TextEncoder().encode(args.message || "");
  const request = new Uint8Array([0x0a, text.length, ...text]);
  const headers = { headers: { "anysync-method": "anysync.v1.HealthService/Ping" } };
  const handledAt = (buffer) => {
    const bytes = new Uint8Array(buffer);
    for (let i = 0; i < bytes.length; ) {
      const tag = bytes[i++];
      if (tag === 0x0a) { i += bytes[i] + 1; continue; }
      let value = 0, scale = 1;
      for (;;) { const b = bytes[i++]; value += (b & 0x7f) * scale; scale *= 128; if (b < 0x80) break; }
      if (tag === 0x10) return value;
    }
    return 0;
  };
  const call =
    command === "client:ping" ? () => health.ping(args)
    : command === "raw:ping" ? () => invoke("plugin:anysync|call", request, headers).then(handledAt)
    : () => invoke(command, args);
  return (async () => {
    const stamps = new Array(calls);
    const t0 = performance.now();
    try {
      for (let i = 0; i < calls; i++) {
        const answer = await call();
        stamps[i] = typeof answer === "number" ? answer : Number(answer.handledAtUnixMicros);
      }
    } catch (error) {
      return { stamps: [], pageMs: 0, error: String(error && (error.code || error.message) || JSON.stringify(error)) };
    }
    return { stamps, pageMs: performance.now() - t0 };
  })();
`;

const READY_SCRIPT = `
  const internals = window.__TAURI_INTERNALS__;
  if (!internals || typeof internals.invoke !== "function" || !window.anysyncExample) return Promise.resolve(false);
  return internals.invoke("plugin:anysync|ping", { message: "ready" }).then(() => true, () => false);
`;

/**
 * One stream throughput sample in the page: S0 is `bench_stream` (Rust alone over a Channel, one
 * raw payload per message), G3 the example's `CounterService/Tick` through the generated client
 * (Go -> gRPC -> Rust with credit -> framed Channel payloads -> the transport's async iterator).
 */
const STREAM_SCRIPT = `
  const [variant, count, size] = arguments;
  const { counter, Channel } = window.anysyncExample;
  const invoke = window.__TAURI_INTERNALS__.invoke;
  return (async () => {
    let received = 0, bytes = 0;
    const t0 = performance.now();
    try {
      if (variant === "S0") {
        let resolve;
        const done = new Promise((r) => (resolve = r));
        const channel = new Channel();
        channel.onmessage = (message) => {
          received++;
          bytes += message.byteLength;
          if (received === count) resolve();
        };
        await invoke("bench_stream", { onMessage: channel, count, size });
        await done;
      } else {
        for await (const tick of counter.tick({ count: BigInt(count), intervalMs: 0, payloadBytes: size })) {
          received++;
          bytes += tick.payload.length;
        }
      }
    } catch (e) {
      return { failed: String((e && (e.code || e.message)) || e) };
    }
    return { ms: performance.now() - t0, received, bytes };
  })();
`;

/** Go `Send` to the loop body at a steady rate: microseconds of the same wall clock (1 ms steps in WebKit). */
const LATENCY_SCRIPT = `
  const [count, intervalMs] = arguments;
  const { counter } = window.anysyncExample;
  return (async () => {
    const latencyUs = [];
    try {
      for await (const tick of counter.tick({ count: BigInt(count), intervalMs, payloadBytes: 64 })) {
        latencyUs.push(Date.now() * 1000 - Number(tick.sentAtUnixMicros));
      }
    } catch (e) {
      return { failed: String((e && (e.code || e.message)) || e) };
    }
    return { latencyUs };
  })();
`;

interface StreamSample {
  variant: "S0" | "G3";
  size: number;
  round: number;
  count: number;
  ms: number;
}

async function streamSample(browser: Browser, variant: "S0" | "G3", count: number, size: number): Promise<number> {
  const result = (await browser.execute(STREAM_SCRIPT, variant, count, size)) as unknown as {
    failed?: string;
    ms: number;
    received: number;
  };
  if (result.failed !== undefined) throw new Error(`${variant} stream of ${count} x ${size} B failed in the page: ${result.failed}`);
  if (result.received !== count) throw new Error(`${variant}: ${result.received} of ${count} messages arrived`);
  return result.ms;
}

/** Memory of the sidecar and the app before and after `stallMs` of a 64 KiB stream nobody reads. */
async function stall(browser: Browser, stallMs: number): Promise<Record<string, number>> {
  const status = (await browser.execute(`return window.__TAURI_INTERNALS__.invoke("plugin:anysync|status")`)) as unknown as {
    pid: number;
  };
  const sidecar = status.pid;
  const app = parentPid(sidecar);
  if (app === undefined) throw new Error(`the sidecar ${String(sidecar)} has no parent process`);
  const before = { sidecarKib: rssKib(sidecar), appKib: rssKib(app) };
  await browser.execute(`
    const iterator = window.anysyncExample.counter.tick({ count: 0n, intervalMs: 0, payloadBytes: 65536 })[Symbol.asyncIterator]();
    window.__stalled = iterator;
    return iterator.next().then(() => true);
  `);
  const stalledAt = Date.now();
  await waitFor("the stall to last", () => Date.now() - stalledAt >= stallMs, { timeoutMs: stallMs + 5_000, intervalMs: 100 });
  const stats = (await browser.execute(
    `return window.anysyncExample.counter.stats({}).then((s) => ({ ticksSent: Number(s.ticksSent), sendBlocked: s.sendBlocked }))`,
  )) as unknown as { ticksSent: number; sendBlocked: boolean };
  const after = { sidecarKib: rssKib(sidecar), appKib: rssKib(app) };
  await browser.execute(`return window.__stalled.return().then(() => true)`);
  return {
    stallMs,
    sidecarKibBefore: before.sidecarKib,
    sidecarKibAfter: after.sidecarKib,
    appKibBefore: before.appKib,
    appKibAfter: after.appKib,
    ticksSent: stats.ticksSent,
    sendBlocked: stats.sendBlocked ? 1 : 0,
  };
}

function option(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

/**
 * B1 `bench_noop`, V2 `plugin:anysync|ping`, and P1 `plugin:anysync|status`: a plugin command that
 * never leaves Rust (sync, so it runs on the main thread), timed only by the page over the block: it
 * separates the cost of a plugin command (ACL of a plugin permission, the plugin's state) from the
 * Go leg in V2.
 */
type Variant = "B1" | "V2" | "G2" | "R2" | "P1";

/** What each variant invokes, with its arguments. */
const COMMANDS: Record<Variant, [string, Record<string, unknown>]> = {
  B1: ["bench_noop", {}],
  V2: ["plugin:anysync|ping", { message: "x".repeat(16) }],
  G2: ["client:ping", { message: "x".repeat(16) }],
  R2: ["raw:ping", { message: "x".repeat(16) }],
  P1: ["plugin:anysync|status", {}],
};

async function block(browser: Browser, variant: Variant, calls: number): Promise<BlockResult> {
  const [command, args] = COMMANDS[variant];
  const result = (await browser.execute(BLOCK_SCRIPT, command, args, calls)) as unknown as BlockResult;
  if (result.error !== undefined) throw new Error(`${variant} (${command}) failed in the page: ${result.error}`);
  return result;
}

async function main(): Promise<void> {
  const app = option("--app");
  const out = option("--out");
  if (!app || !out) throw new Error("usage: webview.ts --app PATH --out FILE [--smoke]");
  const smoke = process.argv.includes("--smoke");
  const rounds = smoke ? 2 : 8;
  // +1: n calls give n gaps between arrivals.
  const calls = (smoke ? 100 : 300) + 1;

  const storeDir = option("--store-dir");
  // Read by the bench app (src/bench_app.rs): the backend's spaces go to the run's scratch directory.
  if (storeDir !== undefined) process.env.ANYSYNC_BENCH_DATA_DIR = storeDir;
  const driver = await startDriver();
  let browser: Browser | undefined;
  try {
    browser = await openApp(app);
    const session = browser;
    await waitFor("the bench app's page and a running backend", async () => session.execute(READY_SCRIPT), {
      timeoutMs: 60_000,
      intervalMs: 200,
    });
    if (storeDir !== undefined && process.argv.includes("--store-only")) {
      writeFileSync(out, JSON.stringify({ smoke, store: await storeWebview(session, storeDir, smoke ? SMOKE_SIZES : FULL_SIZES) }));
      console.log(`webview: wrote ${out}`);
      return;
    }
    // Warm-up: JIT, IPC protocol handler, the plugin's client.
    await block(session, "B1", 200);
    await block(session, "V2", 200);
    await block(session, "G2", 200);
    await block(session, "R2", 200);
    await block(session, "P1", 200);
    const blocks: { variant: string; round: number; gapsUs: number[]; pageMs: number }[] = [];
    for (let round = 0; round < rounds; round++) {
      for (const variant of ["B1", "V2", "G2", "R2", "P1"] as const) {
        const { stamps, pageMs } = await block(session, variant, calls);
        // P1 answers with a status, not a time: it has only the page's measure.
        const gapsUs = variant === "P1" ? [] : stamps.slice(1).map((stamp, i) => stamp - (stamps[i] ?? stamp));
        blocks.push({ variant, round, gapsUs, pageMs });
      }
      // A2: the Rust -> Go leg of V2 alone, inside the app (bench_rust_pings times each ping in Rust).
      // A2I and A2S: the same with 1 ms between pings, idle (everything parks) or spinning (only Go parks).
      for (const [variant, idle] of [["A2", "none"], ["A2I", "sleep"], ["A2S", "spin"]] as const) {
        const samples = (await session.execute(
          `return window.__TAURI_INTERNALS__.invoke("bench_rust_pings", { count: arguments[0], idle: arguments[1] })`,
          calls - 1,
          idle,
        )) as unknown as number[];
        blocks.push({ variant, round, gapsUs: samples, pageMs: 0 });
      }
    }

    // Streams: throughput at three message sizes against S0, interleaved per round.
    const streamCounts: Record<number, number> = smoke ? { 64: 2_000, 1024: 2_000, 65536: 200 } : { 64: 20_000, 1024: 20_000, 65536: 2_000 };
    const streamRounds = smoke ? 1 : 3;
    await streamSample(session, "S0", 200, 64);
    await streamSample(session, "G3", 200, 64);
    const streams: StreamSample[] = [];
    for (let round = 0; round < streamRounds; round++) {
      for (const size of [64, 1024, 65536]) {
        const count = streamCounts[size] ?? 1_000;
        for (const variant of ["S0", "G3"] as const) {
          streams.push({ variant, size, round, count, ms: await streamSample(session, variant, count, size) });
        }
      }
    }
    const latency = (await session.execute(LATENCY_SCRIPT, smoke ? 100 : 1_000, 10)) as unknown as {
      failed?: string;
      latencyUs: number[];
    };
    if (latency.failed !== undefined) throw new Error(`stream latency failed in the page: ${latency.failed}`);
    const stalled = await stall(session, smoke ? 1_000 : 5_000);
    const store = storeDir === undefined ? undefined : await storeWebview(session, storeDir, smoke ? SMOKE_SIZES : FULL_SIZES);

    writeFileSync(
      out,
      JSON.stringify({ smoke, callsPerBlock: calls - 1, blocks, streams, streamLatencyUs: latency.latencyUs, stall: stalled, store }),
    );
    console.log(`webview: wrote ${out}`);
  } finally {
    await browser?.deleteSession().catch(() => undefined);
    await driver.stop();
  }
}

await main();
