/**
 * The generic call and stream paths end to end, through the example app's real webview: clients
 * generated from the .proto (the plugin's HealthService and the example's own CounterService) call
 * Go through `plugin:anysync|call` and `plugin:anysync|stream`, and the Go side reports what it saw
 * (`CounterService/Stats`). One app session for the file, separate from app.test.ts (this file kills
 * and restarts the sidecar at will).
 *
 * The page exposes its clients as `window.anysyncExample` (examples/tauri-app/src/main.ts); the
 * scripts below run in the page and return plain JSON (bigints become numbers).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { isRunning, openApp, pageReady, parentPid, rssKib, runningBackendPid, startDriver, waitFor, type Browser, type Driver } from "./harness.ts";

let driver: Driver | undefined;
let browser: Browser | undefined;
/** Streams the page holds open by itself: its live counter (`CounterService/Watch`). */
const PAGE_STREAMS = 1;

function session(): Browser {
  assert.ok(browser, "no app session (see the before hook's error)");
  return browser;
}

/**
 * Runs `body` (the text of an async function body; `counter`, `health`, `invoke` and `args` are in
 * scope, and `window.anysyncExample.onStatus`) in the page and returns what it returns. A thrown
 * error comes back as `{ thrown: code, message }` (never `error`: WebDriver takes a result with an
 * `error` key for a failed command).
 */
async function inPage<T>(body: string, ...args: unknown[]): Promise<T> {
  const script = `
    const args = Array.from(arguments);
    const { counter, health } = window.anysyncExample;
    const invoke = window.__TAURI_INTERNALS__.invoke;
    return (async () => { ${body} })().catch((e) => ({ thrown: String(e && e.code || e), message: String(e && e.message) }));
  `;
  return (await session().execute(script, ...args)) as T;
}

interface Stats {
  cancelledCalls: number;
  cancelledStreams: number;
  openStreams: number;
  ticksSent: number;
  lastCancelledAtUnixMicros: number;
  sendBlocked: boolean;
}

const STATS = `
  const s = await counter.stats({});
  return {
    cancelledCalls: Number(s.cancelledCalls),
    cancelledStreams: Number(s.cancelledStreams),
    openStreams: s.openStreams,
    ticksSent: Number(s.ticksSent),
    lastCancelledAtUnixMicros: Number(s.lastCancelledAtUnixMicros),
    sendBlocked: s.sendBlocked,
  };
`;

async function stats(): Promise<Stats> {
  return inPage<Stats>(STATS);
}

async function sidecarPid(): Promise<number> {
  return runningBackendPid(session());
}

/** Resident memory of a process in MiB (Linux). */
function rssMiB(pid: number): number {
  return rssKib(pid) / 1024;
}

describe("generated clients over the generic path", { timeout: 600_000 }, () => {
  before(async () => {
    driver = await startDriver();
    browser = await openApp();
    await pageReady(session());
    await sidecarPid();
    await waitFor("the page's live counter stream to be open in Go", async () => (await stats()).openStreams === PAGE_STREAMS);
  });

  after(async () => {
    await browser?.deleteSession().catch(() => undefined);
    await driver?.stop();
  });

  it("calls the plugin's HealthService and the example's own CounterService", async (t) => {
    const answer = await inPage<{ echo: string; serving: number; added: number; got: number }>(`
      const echo = (await health.ping({ message: "generic" })).message;
      const serving = (await health.check({})).status;
      const added = Number((await counter.add({ name: "e2e", delta: 5n })).value);
      const got = Number((await counter.get({ name: "e2e" })).value);
      return { echo, serving, added, got };
    `);
    assert.deepEqual(answer, { echo: "generic", serving: 1, added: 5, got: 5 });
    t.diagnostic(`HealthService/Ping, /Check and CounterService/Add, /Get answered: ${JSON.stringify(answer)}`);
  });

  it("refuses a method outside the capability's scope in Rust: PERMISSION_DENIED, Go never runs it", async (t) => {
    const answer = await inPage<{ code: string; message: string; after: number }>(`
      let code = "", message = "";
      try { await counter.reset({ name: "e2e" }); } catch (e) { code = e.code; message = e.message; }
      const after = Number((await counter.get({ name: "e2e" })).value);
      return { code, message, after };
    `);
    assert.equal(answer.code, "PERMISSION_DENIED", answer.message);
    assert.match(answer.message, /example\.v1\.CounterService\/Reset/);
    assert.match(answer.message, /anysync:allow-call/);
    assert.equal(answer.after, 5, "the counter was not reset: the call never reached Go");
    t.diagnostic(`denied: ${answer.message}`);
  });

  it("an abort before the answer cancels the Go handler's context", async (t) => {
    const before = await stats();
    const answer = await inPage<{ code: string; abortedAtMs: number }>(`
      const controller = new AbortController();
      const call = counter.sleep({ durationMs: 10000 }, { signal: controller.signal });
      await new Promise((resolve) => setTimeout(resolve, 300));
      const abortedAtMs = Date.now();
      controller.abort();
      try { await call; return { code: "resolved", abortedAtMs }; } catch (e) { return { code: e.code, abortedAtMs }; }
    `);
    assert.equal(answer.code, "CANCELLED");
    const seen = await waitFor("Go to count the cancelled Sleep", async () => {
      const s = await stats();
      return s.cancelledCalls > before.cancelledCalls ? s : undefined;
    });
    const latencyMs = seen.lastCancelledAtUnixMicros / 1000 - answer.abortedAtMs;
    assert.ok(latencyMs < 50, `the handler saw its context done ${latencyMs.toFixed(1)} ms after the abort`);
    t.diagnostic(`abort -> Go ctx.Done: ${latencyMs.toFixed(1)} ms (page clock has 1 ms resolution)`);
  });

  it("a deadline shorter than the handler fails DEADLINE_EXCEEDED", async () => {
    const answer = await inPage<{ code: string; message: string }>(`
      try { await counter.sleep({ durationMs: 5000 }, { timeoutMs: 300 }); return { code: "resolved", message: "" }; }
      catch (e) { return { code: e.code, message: e.message }; }
    `);
    assert.equal(answer.code, "DEADLINE_EXCEEDED", answer.message);
  });

  it("a request at the backend's message limit round-trips; one byte more is RESOURCE_EXHAUSTED", async () => {
    // ANYSYNC_MAX_MESSAGE_BYTES is 65536 in the example's tauri.conf.json; a PingRequest of n bytes
    // of text is 1 (tag) + 3 (length varint) + n bytes.
    const limit = 65536;
    const answer = await inPage<{ ok: number; over: string }>(
      `
      const [limit] = args;
      const ok = (await health.ping({ message: "x".repeat(limit - 4) })).message.length;
      let over = "";
      try { await health.ping({ message: "x".repeat(limit - 3) }); } catch (e) { over = e.code; }
      return { ok, over };
    `,
      limit,
    );
    assert.equal(answer.ok, limit - 4);
    assert.equal(answer.over, "RESOURCE_EXHAUSTED");
  });

  it("bytes that are not the request message give a typed error, and the backend keeps serving", async () => {
    const answer = await inPage<{ code: string; message: string; echo: string }>(`
      let code = "", message = "";
      try {
        await invoke("plugin:anysync|call", new Uint8Array([0x0a, 0xff, 0x01]), { headers: { "anysync-method": "anysync.v1.HealthService/Ping" } });
      } catch (e) { code = e.code; message = e.message; }
      const echo = (await health.ping({ message: "still here" })).message;
      return { code, message, echo };
    `);
    assert.ok(["INVALID_ARGUMENT", "INTERNAL"].includes(answer.code), `${answer.code}: ${answer.message}`);
    assert.equal(answer.echo, "still here");
  });

  it("streams ticks in order to the end", async (t) => {
    const answer = await inPage<{ seqs: number[] }>(`
      const seqs = [];
      for await (const tick of counter.tick({ count: 200n, intervalMs: 0, payloadBytes: 16 })) seqs.push(Number(tick.seq));
      return { seqs };
    `);
    assert.deepEqual(answer.seqs, Array.from({ length: 200 }, (_, i) => i + 1));
    t.diagnostic("200 ticks arrived in order and the stream completed");
  });

  it("a stalled consumer blocks Go's Send: memory stays flat in the sidecar and the app", async (t) => {
    const pid = await sidecarPid();
    const appPid = parentPid(pid);
    assert.ok(appPid, `the sidecar ${pid} has a parent`);
    const base = await stats();
    await inPage(`
      const iterator = counter.tick({ count: 0n, intervalMs: 0, payloadBytes: 65536 })[Symbol.asyncIterator]();
      window.__stalled = iterator;
      await iterator.next();
      return {};
    `);
    const blocked = await waitFor("Go to block in Send", async () => {
      const s = await stats();
      return s.sendBlocked ? s : undefined;
    });
    const sidecarBefore = rssMiB(pid);
    const appBefore = rssMiB(appPid);
    // Stay stalled: the ticks Go manages to hand over must not grow while nobody reads.
    const sentAtBlock = blocked.ticksSent - base.ticksSent;
    const stalledAt = Date.now();
    await waitFor(
      "3 s of stall to pass with Go blocked",
      async () => {
        const s = await stats();
        assert.ok(s.sendBlocked, "Go stays blocked in Send");
        return Date.now() - stalledAt >= 3000 ? s : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 250 },
    );
    const after = await stats();
    const sentTotal = after.ticksSent - base.ticksSent;
    const sidecarGrowth = rssMiB(pid) - sidecarBefore;
    const appGrowth = rssMiB(appPid) - appBefore;
    assert.ok(sentTotal === sentAtBlock, `ticks handed to Send grew from ${sentAtBlock} to ${sentTotal} while stalled`);
    assert.ok(sentTotal < 200, `${sentTotal} ticks of 64 KiB in flight`);
    assert.ok(sidecarGrowth < 16 && appGrowth < 32, `RSS growth: sidecar ${sidecarGrowth.toFixed(1)} MiB, app ${appGrowth.toFixed(1)} MiB`);
    await inPage(`await window.__stalled.return(); return {};`);
    await waitFor("the stalled stream to close in Go", async () => (await stats()).openStreams === PAGE_STREAMS);
    t.diagnostic(
      `stalled 64 KiB stream: ${sentTotal} ticks in flight, RSS growth sidecar ${sidecarGrowth.toFixed(1)} MiB, app ${appGrowth.toFixed(1)} MiB`,
    );
  });

  it("breaking out of the loop cancels the stream in Go", async (t) => {
    const before = await stats();
    const answer = await inPage<{ brokeAtMs: number }>(`
      let brokeAtMs = 0;
      for await (const tick of counter.tick({ count: 0n, intervalMs: 5, payloadBytes: 0 })) {
        if (tick.seq >= 3n) { brokeAtMs = Date.now(); break; }
      }
      return { brokeAtMs };
    `);
    const seen = await waitFor("Go to count the cancelled stream", async () => {
      const s = await stats();
      return s.cancelledStreams > before.cancelledStreams && s.openStreams === PAGE_STREAMS ? s : undefined;
    });
    const latencyMs = seen.lastCancelledAtUnixMicros / 1000 - answer.brokeAtMs;
    assert.ok(latencyMs < 50, `break -> Go ctx.Done ${latencyMs.toFixed(1)} ms`);
    t.diagnostic(`break -> Go ctx.Done: ${latencyMs.toFixed(1)} ms`);
  });

  it("a page reload cancels the streams the page opened", async () => {
    await inPage(`
      window.__reloadStreams = [0, 1, 2].map(() => (async () => { for await (const _ of counter.tick({ count: 0n, intervalMs: 50 })) {} })().catch(() => {}));
      return {};
    `);
    await waitFor("three open streams in Go", async () => (await stats()).openStreams === PAGE_STREAMS + 3);
    await session().refresh();
    await pageReady(session(), 30_000);
    await waitFor("Go to see every stream of the old page end", async () => (await stats()).openStreams === PAGE_STREAMS, { timeoutMs: 5_000 });
  });

  it("200 open streams do not slow or fail unary calls", async (t) => {
    const answer = await inPage<{ failures: number; calls: number; maxMs: number; open: number }>(`
      const controller = new AbortController();
      const streams = Array.from({ length: 200 }, () =>
        (async () => { for await (const _ of counter.tick({ count: 0n, intervalMs: 100 }, { signal: controller.signal })) {} })().catch(() => {}));
      const deadline = Date.now() + 10000;
      while ((await counter.stats({})).openStreams < 200 + args[0] && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const open = (await counter.stats({})).openStreams - args[0];
      let failures = 0, maxMs = 0;
      const calls = 200;
      for (let i = 0; i < calls; i++) {
        const t0 = performance.now();
        try { await counter.add({ name: "load", delta: 1n }); } catch { failures++; }
        maxMs = Math.max(maxMs, performance.now() - t0);
      }
      controller.abort();
      await Promise.all(streams);
      return { failures, calls, maxMs, open };
    `, PAGE_STREAMS);
    assert.equal(answer.open, 200, "200 streams were open in Go during the unary load");
    assert.equal(answer.failures, 0);
    assert.ok(answer.maxMs < 1000, `slowest unary call ${answer.maxMs} ms`);
    await waitFor("every stream to close in Go", async () => (await stats()).openStreams === PAGE_STREAMS, { timeoutMs: 10_000 });
    t.diagnostic(`200 open streams: ${answer.calls} unary calls, ${answer.failures} failed, slowest ${answer.maxMs.toFixed(1)} ms`);
  });

  it("kill -9 of the sidecar ends an open stream with UNAVAILABLE; resubscribing works", async (t) => {
    const pid = await sidecarPid();
    await inPage(`
      window.__killed = { ticks: 0, code: "" };
      (async () => {
        try { for await (const _ of counter.tick({ count: 0n, intervalMs: 20 })) window.__killed.ticks++; window.__killed.code = "OK"; }
        catch (e) { window.__killed.code = e.code; }
      })();
      return {};
    `);
    await waitFor("ticks to flow", async () => (await inPage<{ ticks: number }>(`return window.__killed;`)).ticks > 3);
    process.kill(pid, "SIGKILL");
    const ended = await waitFor("the stream to end", async () => {
      const k = await inPage<{ ticks: number; code: string }>(`return window.__killed;`);
      return k.code ? k : undefined;
    });
    assert.equal(ended.code, "UNAVAILABLE");
    assert.equal(isRunning(pid), false);
    const newPid = await sidecarPid();
    assert.notEqual(newPid, pid);
    const again = await inPage<{ seqs: number[] }>(`
      const seqs = [];
      for await (const tick of counter.tick({ count: 3n, intervalMs: 0 })) seqs.push(Number(tick.seq));
      return { seqs };
    `);
    assert.deepEqual(again.seqs, [1, 2, 3]);
    t.diagnostic(`stream ended ${ended.code} after ${ended.ticks} ticks; resubscribed to the new sidecar ${newPid}`);
  });

  it("a call made during restart() waits for the new backend and succeeds", async () => {
    const before = await sidecarPid();
    const answer = await inPage<{ values: number[]; restartedTo: number }>(`
      const restart = invoke("plugin:anysync|restart");
      const calls = [];
      for (let i = 0; i < 20; i++) {
        calls.push(counter.get({ name: "e2e" }).then((c) => Number(c.value)));
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const values = await Promise.all(calls);
      const s = await restart;
      return { values, restartedTo: s.pid };
    `);
    assert.ok(!("thrown" in answer), JSON.stringify(answer));
    assert.equal(answer.values.length, 20, "every call made around restart() succeeded");
    assert.notEqual(answer.restartedTo, before);
  });

  it("onStatus hands the page the current status at once, then restarting and running with higher seqs", async (t) => {
    await sidecarPid();
    const answer = await inPage<{ atOnce: number; seen: { state: string; seq: number; pid: number | null }[] }>(`
      const seen = [];
      const unlisten = await window.anysyncExample.onStatus((s) => seen.push({ state: s.state, seq: s.seq, pid: s.pid }));
      const atOnce = seen.length;
      await invoke("plugin:anysync|restart");
      const first = seen[0];
      const done = () => seen.some((s) => s.state === "restarting") && seen.at(-1).state === "running" && seen.at(-1).seq > first.seq;
      for (const deadline = Date.now() + 10000; !done() && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
      unlisten();
      return { atOnce, seen };
    `);
    assert.ok(!("thrown" in answer), JSON.stringify(answer));
    const { atOnce, seen } = answer;
    assert.ok(atOnce >= 1, `a status arrived before onStatus resolved: ${JSON.stringify(seen)}`);
    assert.equal(seen[0]?.state, "running", JSON.stringify(seen));
    const seqs = seen.map((s) => s.seq);
    assert.ok(seqs.every((seq, i) => i === 0 || seq > (seqs[i - 1] ?? 0)), `seq grows: ${JSON.stringify(seqs)}`);
    const restarting = seen.findIndex((s) => s.state === "restarting");
    const last = seen.at(-1);
    assert.ok(restarting > 0, JSON.stringify(seen));
    assert.equal(last?.state, "running", JSON.stringify(seen));
    assert.notEqual(last.pid, seen[0].pid, "a new backend");
    t.diagnostic(`statuses seen: ${seen.map((s) => `${s.state}#${s.seq}`).join(" -> ")}`);
  });
});
