/**
 * The example app end to end, through its real webview: the page shows the backend's status, pings
 * it, checks its health, survives a SIGKILL of the sidecar, shows a backend error code, and leaves no
 * process behind when killed (WebDriver's Delete Session SIGKILLs the app) or closed the way a person
 * closes it (its window closed, the sidecar stopped gracefully, the app exits). One app session for
 * the tests up to the kill, a second one for the close; the tests run in order and build on each
 * other (the restart test expects `restarts` to go from 0 to 1).
 *
 * Run with `npm test -w e2e` (builds the app, provides a display); this file alone needs a display
 * and a built app: `node --import tsx --test e2e/app.test.ts`.
 */
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { repoRoot } from "../scripts/lib.ts";
import {
  closeAndCheckGracefulStop,
  isRunning,
  openApp,
  outDir,
  pageReady,
  parentPid,
  processName,
  startDriver,
  waitFor,
  type Browser,
  type Driver,
} from "./harness.ts";

/** The page as the tests see it: one round trip per poll. */
interface Snapshot {
  state: string;
  pid: number;
  addr: string;
  version: string;
  restarts: number;
  uptime: string;
  lastErrorCode: string;
  history: { state: string; pid: number }[];
}

// A string, not a function: tsx's transpiled functions may reference helpers the page lacks.
const SNAPSHOT_SCRIPT = `
  const el = (id) => document.getElementById(id);
  return {
    state: el("status-state").dataset.state,
    pid: Number(el("status-pid").dataset.pid || 0),
    addr: el("status-addr").textContent,
    version: el("status-version").textContent,
    restarts: Number(el("status-restarts").textContent),
    uptime: el("status-uptime").textContent,
    lastErrorCode: el("status-last-error").dataset.code,
    history: [...document.querySelectorAll("#state-history li")].map((li) => ({
      state: li.dataset.state,
      pid: Number(li.dataset.pid || 0),
    })),
  };
`;

let driver: Driver | undefined;
let browser: Browser | undefined;
/** What the run saw, written to target/e2e/summary.json for `npm run demo`. */
const summary: Record<string, unknown> = {};

function session(): Browser {
  assert.ok(browser, "no app session (see the before hook's error)");
  return browser;
}

async function snapshot(): Promise<Snapshot> {
  return (await session().execute(SNAPSHOT_SCRIPT)) as unknown as Snapshot;
}

async function text(id: string): Promise<string> {
  return session().$(`#${id}`).getText();
}

async function attribute(id: string, name: string): Promise<string> {
  return (await session().$(`#${id}`).getAttribute(name)) ?? "";
}

async function running(what: string, timeoutMs = 30_000): Promise<Snapshot> {
  return waitFor(
    what,
    async () => {
      const s = await snapshot();
      return s.state === "running" && s.pid > 0 ? s : undefined;
    },
    { timeoutMs },
  );
}

describe("example app", { timeout: 300_000 }, () => {
  before(async () => {
    driver = await startDriver();
    const started = Date.now();
    browser = await openApp();
    summary.sessionStartMs = Date.now() - started;
  });

  after(async () => {
    await browser?.deleteSession().catch(() => undefined);
    await driver?.stop();
    mkdirSync(outDir, { recursive: true });
    writeFileSync(path.join(outDir, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
  });

  it("shows the backend running", async (t) => {
    const s = await running("the page to show state running with a pid");
    assert.match(s.addr, /^127\.0\.0\.1:\d+$/);
    assert.equal(s.version, "0.1.0");
    assert.equal(s.restarts, 0);
    assert.equal(processName(s.pid), "anysync-backend", `pid ${s.pid} on the page is the sidecar`);
    assert.deepEqual(
      s.history.map((h) => h.state).at(-1),
      "running",
      `history: ${JSON.stringify(s.history)}`,
    );
    // The uptime ticks from runningSinceMs.
    const first = s.uptime;
    await waitFor("the uptime to tick", async () => (await text("status-uptime")) !== first, { timeoutMs: 3_000 });
    summary.running = { pid: s.pid, addr: s.addr, version: s.version, states: s.history.map((h) => h.state) };
    t.diagnostic(`running: pid ${s.pid} at ${s.addr}, states ${s.history.map((h) => h.state).join(" -> ")}`);
  });

  it("pings: echoes the text and shows a round-trip time", async (t) => {
    const message = `hello from e2e ${Date.now()}`;
    await session().$("#ping-input").setValue(message);
    const roundTrips: number[] = [];
    // The first call also opens the gRPC connection; the later ones show the steady state.
    for (let i = 1; i <= 5; i++) {
      await session().$("#ping-button").click();
      await waitFor(`ping ${i} to complete`, async () => Number(await attribute("ping-rtt", "data-count")) === i);
      assert.equal(await text("ping-echo"), message);
      assert.equal(await attribute("ping-error", "data-code"), "");
      assert.match(await text("ping-rtt"), /^\d+\.\d ms$/);
      const ms = Number(await attribute("ping-rtt", "data-ms"));
      assert.ok(Number.isFinite(ms) && ms >= 0, `round trip ${ms} ms`);
      roundTrips.push(ms);
    }
    const sorted = [...roundTrips].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    summary.ping = { message, roundTripsMs: roundTrips, medianMs: median, lastShown: await text("ping-rtt") };
    t.diagnostic(`ping round trips shown on the page: ${roundTrips.map((ms) => `${ms.toFixed(1)} ms`).join(", ")}`);
  });

  it("checks health: SERVING and version 0.1.0", async (t) => {
    await session().$("#health-button").click();
    await waitFor("health to show SERVING", async () => (await text("health-status")) === "SERVING");
    assert.equal(await text("health-version"), "0.1.0");
    assert.equal(await attribute("health-error", "data-code"), "");
    summary.health = { status: await text("health-status"), version: await text("health-version") };
    t.diagnostic(`health: ${await text("health-status")}, version ${await text("health-version")}`);
  });

  it("restarts a SIGKILLed sidecar: restarting, then running with a new pid", async (t) => {
    const before = await running("the backend to run before the kill");
    process.kill(before.pid, "SIGKILL");
    const after = await waitFor(
      "the page to show running with a new pid",
      async () => {
        const s = await snapshot();
        return s.state === "running" && s.pid > 0 && s.pid !== before.pid ? s : undefined;
      },
      { timeoutMs: 20_000 },
    );
    assert.equal(after.restarts, 1);
    assert.equal(isRunning(before.pid), false, "the killed sidecar is gone");
    assert.equal(processName(after.pid), "anysync-backend");

    // The visible history went running(old) -> restarting -> ... -> running(new).
    const history = after.history;
    const killed = history.findLastIndex((h) => h.state === "running" && h.pid === before.pid);
    const restarted = history.findLastIndex((h) => h.state === "running" && h.pid === after.pid);
    assert.ok(killed >= 0 && restarted > killed, `history: ${JSON.stringify(history)}`);
    const between = history.slice(killed + 1, restarted).map((h) => h.state);
    assert.ok(between.includes("restarting"), `states between the two runs: ${between.join(", ")}`);
    assert.notEqual(after.lastErrorCode, "", "the crash is reported as the last error");

    summary.restart = {
      oldPid: before.pid,
      newPid: after.pid,
      restarts: after.restarts,
      states: ["running", ...between, "running"],
      lastErrorCode: after.lastErrorCode,
    };
    t.diagnostic(
      `sidecar ${before.pid} killed -> ${["running", ...between, "running"].join(" -> ")}, new pid ${after.pid}, ` +
        `restarts ${after.restarts}, last error ${after.lastErrorCode}`,
    );
  });

  it("shows RESOURCE_EXHAUSTED for a ping above the backend's message limit", async (t) => {
    await session().$("#ping-oversized-button").click();
    const code = await waitFor("an error code on the page", async () => (await attribute("ping-error", "data-code")) || undefined);
    assert.equal(code, "RESOURCE_EXHAUSTED", await text("ping-error"));
    const s = await snapshot();
    assert.equal(s.state, "running", "a rejected request leaves the backend running");
    summary.oversizedPing = { shown: await text("ping-error") };
    t.diagnostic(`oversized ping: ${await text("ping-error")}`);
  });

  it("restarts the backend from the page (anysync:allow-restart)", async (t) => {
    const before = await running("the backend to run before the restart");
    await session().$("#restart-button").click();
    const after = await waitFor("the page to show running with a new pid after restart()", async () => {
      const s = await snapshot();
      return s.state === "running" && s.pid > 0 && s.pid !== before.pid ? s : undefined;
    });
    await waitFor("restart() to answer", async () => (await text("restart-result")).startsWith("now running"));
    assert.equal(await attribute("restart-error", "data-code"), "");
    assert.equal(isRunning(before.pid), false, "the old sidecar is gone");
    summary.restartButton = { oldPid: before.pid, newPid: after.pid, shown: await text("restart-result") };
    t.diagnostic(`restart button: pid ${before.pid} -> ${after.pid}, page says "${await text("restart-result")}"`);
  });

  it("takes a screenshot of the running app", async (t) => {
    mkdirSync(outDir, { recursive: true });
    const file = path.join(outDir, "screenshot.png");
    await session().saveScreenshot(file);
    assert.ok(readFileSync(file).subarray(1, 4).toString() === "PNG", "a PNG");
    if (process.env.ANYSYNC_UPDATE_SCREENSHOT === "1") {
      const docs = path.join(repoRoot, "docs", "screenshot.png");
      mkdirSync(path.dirname(docs), { recursive: true });
      copyFileSync(file, docs);
      t.diagnostic(`screenshot: ${path.relative(repoRoot, docs)}`);
    } else {
      t.diagnostic(`screenshot: ${path.relative(repoRoot, file)} (ANYSYNC_UPDATE_SCREENSHOT=1 updates docs/screenshot.png)`);
    }
    summary.screenshot = file;
  });

  it("leaves no sidecar behind when the app closes", async (t) => {
    const s = await running("the backend to run before closing");
    const appPid = parentPid(s.pid);
    assert.ok(appPid && processName(appPid)?.startsWith("tauri-app"), `the sidecar's parent ${appPid} is the app`);
    const closed = Date.now();
    await session().deleteSession();
    browser = undefined;
    await waitFor(`sidecar ${s.pid} to exit`, () => !isRunning(s.pid), { timeoutMs: 2_000, intervalMs: 20 });
    const sidecarGoneMs = Date.now() - closed;
    await waitFor(`app ${appPid} to exit`, () => !isRunning(appPid), { timeoutMs: 5_000, intervalMs: 20 });
    summary.close = { sidecarPid: s.pid, appPid, sidecarGoneMs };
    t.diagnostic(`closed: sidecar ${s.pid} gone ${sidecarGoneMs} ms after the session ended, app ${appPid} gone too`);
  });

  it("closing the window stops the sidecar gracefully and the app exits cleanly", async (t) => {
    // Its own app session: the one before ended with the kill test (or is ended here when that
    // test was filtered out; WebKitWebDriver holds one session at a time).
    await browser?.deleteSession().catch(() => undefined);
    browser = await openApp();
    await pageReady(session());
    const s = await running("the backend to run before closing the window");
    const appPid = parentPid(s.pid);
    assert.ok(appPid && processName(appPid)?.startsWith("tauri-app"), `the sidecar's parent ${appPid} is the app`);
    try {
      const close = await closeAndCheckGracefulStop(session(), s.pid, appPid);
      summary.windowClose = { sidecarPid: s.pid, appPid, ...close };
      t.diagnostic(
        `window closed: sidecar ${s.pid} exited 0 after ${close.sidecarGoneMs} ms, its last record ` +
          `"${String(close.lastRecord.msg)}" (${String(close.lastRecord.durationMs)} ms, reason "${String(close.lastRecord.reason)}"); ` +
          `app ${appPid} exited 0 ${close.appAfterSidecarMs.toFixed(1)} ms later`,
      );
    } finally {
      // The app is gone; the session ends with it.
      await browser.deleteSession().catch(() => undefined);
      browser = undefined;
    }
  });
});
