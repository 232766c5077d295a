/**
 * Smoke test of the example app as a user installs it: the files of its `.deb`, unpacked into a
 * directory (`dpkg-deb -x`), started through tauri-driver from there. It proves that the bundle
 * carries the sidecar where the plugin looks for it (beside the app executable, `usr/bin/`), that
 * the bundled front end is embedded, and that the installed app reaches `running` and answers a ping.
 *
 * Run by `npm run test:deb` (scripts/deb.ts builds and unpacks the .deb, then runs this file with a
 * display); `ANYSYNC_INSTALLED_ROOT` names the unpacked tree. Not a `*.test.ts`, so the e2e suite of
 * the debug build does not pick it up.
 */
import assert from "node:assert/strict";
import { readlinkSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { openApp, processName, startDriver, waitFor, type Browser, type Driver } from "./harness.ts";

const root = process.env.ANYSYNC_INSTALLED_ROOT;
const appBinary = root ? path.join(root, "usr", "bin", "tauri-app") : "";
const sidecarBinary = root ? path.join(root, "usr", "bin", "anysync-backend") : "";

let driver: Driver | undefined;
let browser: Browser | undefined;

function session(): Browser {
  assert.ok(browser, "no app session (see the before hook's error)");
  return browser;
}

describe("the installed .deb", { timeout: 120_000 }, () => {
  before(async () => {
    assert.ok(root, "set ANYSYNC_INSTALLED_ROOT to the unpacked .deb (npm run test:deb does)");
    driver = await startDriver();
    browser = await openApp(appBinary);
  });

  after(async () => {
    await browser?.deleteSession().catch(() => undefined);
    await driver?.stop();
  });

  it("runs the bundled sidecar from beside the installed executable", async (t) => {
    const pid = await waitFor(
      "the page to show state running with a pid",
      async () => {
        const state = await session().$("#status-state").getAttribute("data-state");
        const pid = Number((await session().$("#status-pid").getAttribute("data-pid")) ?? 0);
        return state === "running" && pid > 0 ? pid : undefined;
      },
      { timeoutMs: 30_000 },
    );
    assert.equal(processName(pid), "anysync-backend");
    // The process's executable is the unpacked bundle's, not the debug build's beside target/debug.
    assert.equal(readlinkSync(`/proc/${pid}/exe`), sidecarBinary);
    t.diagnostic(`sidecar pid ${pid}: ${sidecarBinary}`);
  });

  it("answers a ping", async (t) => {
    const message = `hello from the installed .deb ${Date.now()}`;
    await session().$("#ping-input").setValue(message);
    await session().$("#ping-button").click();
    await waitFor("the ping to complete", async () => Number(await session().$("#ping-rtt").getAttribute("data-count")) === 1);
    assert.equal(await session().$("#ping-echo").getText(), message);
    assert.equal(await session().$("#ping-error").getAttribute("data-code"), "");
    t.diagnostic(`ping: ${await session().$("#ping-rtt").getText()}`);
  });
});
