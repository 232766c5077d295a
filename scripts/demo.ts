/**
 * `npm run demo`: builds everything, then drives the example app end to end through its real webview
 * (the e2e suite, under Xvfb when there is no display) and tells what the page showed.
 *
 *   npm run demo                   build, run the app through the e2e suite, print a summary
 *   npm run demo -- --screenshot   the same, and update docs/screenshot.png
 *   npm run demo -- --open         build, then just launch the app for a person to use
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { buildAll, cargoTargetDir } from "./build.ts";
import { repoRoot } from "./lib.ts";

const args = process.argv.slice(2);
const unknown = args.filter((arg) => !["--open", "--screenshot"].includes(arg));
if (unknown.length > 0) {
  console.error(`unknown argument ${unknown.join(" ")}; use --open or --screenshot`);
  process.exit(2);
}

const binary = buildAll();

if (args.includes("--open")) {
  if (!process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) {
    console.error("--open needs a display (DISPLAY or WAYLAND_DISPLAY); without one, `npm run demo` runs it headless");
    process.exit(1);
  }
  console.log(`\nlaunching ${path.relative(repoRoot, binary)}; close its window to end the demo`);
  const result = spawnSync(binary, [], { stdio: "inherit" });
  process.exit(result.status ?? 1);
}

const summaryPath = path.join(cargoTargetDir(), "e2e", "summary.json");
const e2e = spawnSync(process.execPath, ["--import", "tsx", path.join("e2e", "run.ts"), "--no-build"], {
  cwd: repoRoot,
  stdio: "inherit",
  env: { ...process.env, ...(args.includes("--screenshot") ? { ANYSYNC_UPDATE_SCREENSHOT: "1" } : {}) },
});

interface Summary {
  sessionStartMs?: number;
  running?: { pid: number; addr: string; version: string };
  ping?: { roundTripsMs: number[]; medianMs: number };
  health?: { status: string; version: string };
  restart?: { oldPid: number; newPid: number; states: string[]; restarts: number; lastErrorCode: string };
  oversizedPing?: { shown: string };
  close?: { sidecarPid: number; sidecarGoneMs: number };
  screenshot?: string;
}

if (existsSync(summaryPath)) {
  const s = JSON.parse(readFileSync(summaryPath, "utf8")) as Summary;
  const lines = [
    s.running &&
      `status      running: backend ${s.running.version}, pid ${s.running.pid}, ${s.running.addr} (app session up in ${s.sessionStartMs} ms)`,
    s.ping &&
      `ping        round trips on the page: ${s.ping.roundTripsMs.map((ms) => ms.toFixed(1)).join(", ")} ms (median ${s.ping.medianMs.toFixed(1)} ms)`,
    s.health && `health      ${s.health.status}, version ${s.health.version}`,
    s.restart &&
      `crash       SIGKILL of pid ${s.restart.oldPid}: ${s.restart.states.join(" -> ")}, new pid ${s.restart.newPid}, restarts ${s.restart.restarts} (last error ${s.restart.lastErrorCode})`,
    s.oversizedPing && `error code  100 KiB ping: ${s.oversizedPing.shown}`,
    s.close && `close       app closed; sidecar ${s.close.sidecarPid} gone after ${s.close.sidecarGoneMs} ms`,
    s.screenshot && `screenshot  ${path.relative(repoRoot, s.screenshot)}${args.includes("--screenshot") ? " (and docs/screenshot.png)" : ""}`,
  ].filter(Boolean);
  console.log(`\n=== what the demo showed\n${lines.join("\n")}`);
}
if (e2e.status !== 0) console.error("\nthe demo failed; see the test report above");
process.exitCode = e2e.status ?? 1;
