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
 * Usage: node --import tsx bench/webview.ts --app PATH --out FILE [--smoke]
 */
import { writeFileSync } from "node:fs";
import { openApp, startDriver, waitFor, type Browser } from "../e2e/harness.ts";

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
  const call = command === "client:ping" ? () => health.ping(args) : () => invoke(command, args);
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
type Variant = "B1" | "V2" | "G2" | "P1";

/** What each variant invokes, with its arguments. */
const COMMANDS: Record<Variant, [string, Record<string, unknown>]> = {
  B1: ["bench_noop", {}],
  V2: ["plugin:anysync|ping", { message: "x".repeat(16) }],
  G2: ["client:ping", { message: "x".repeat(16) }],
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

  const driver = await startDriver();
  let browser: Browser | undefined;
  try {
    browser = await openApp(app);
    const session = browser;
    await waitFor("the bench app's page and a running backend", async () => session.execute(READY_SCRIPT), {
      timeoutMs: 60_000,
      intervalMs: 200,
    });
    // Warm-up: JIT, IPC protocol handler, the plugin's client.
    await block(session, "B1", 200);
    await block(session, "V2", 200);
    await block(session, "G2", 200);
    await block(session, "P1", 200);
    const blocks: { variant: string; round: number; gapsUs: number[]; pageMs: number }[] = [];
    for (let round = 0; round < rounds; round++) {
      for (const variant of ["B1", "V2", "G2", "P1"] as const) {
        const { stamps, pageMs } = await block(session, variant, calls);
        // P1 answers with a status, not a time: it has only the page's measure.
        const gapsUs = variant === "P1" ? [] : stamps.slice(1).map((stamp, i) => stamp - (stamps[i] ?? stamp));
        blocks.push({ variant, round, gapsUs, pageMs });
      }
    }
    writeFileSync(out, JSON.stringify({ smoke, callsPerBlock: calls - 1, blocks }));
    console.log(`webview: wrote ${out}`);
  } finally {
    await browser?.deleteSession().catch(() => undefined);
    await driver.stop();
  }
}

await main();
