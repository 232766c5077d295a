/**
 * `npm test -w e2e`: builds the example app (incrementally; `--no-build` skips it), then runs the
 * end-to-end tests with node:test, under `xvfb-run -a dbus-run-session` when there is no display.
 * Extra arguments are passed to `node --test` (e.g. `--test-name-pattern=ping`).
 */
import { readdirSync } from "node:fs";
import path from "node:path";
import { buildAll } from "../scripts/build.ts";
import { repoRoot, runNodeWithDisplay } from "../scripts/lib.ts";
import { outDir } from "./harness.ts";

const args = process.argv.slice(2);
if (!args.includes("--no-build")) buildAll();
const passThrough = args.filter((arg) => arg !== "--no-build");

const e2eDir = path.join(repoRoot, "e2e");
const files = readdirSync(e2eDir)
  .filter((name) => name.endsWith(".test.ts"))
  .sort()
  .map((name) => path.join("e2e", name));
// One file at a time: each opens the app through the run's one tauri-driver port.
const nodeArgs = ["--import", "tsx", "--test", "--test-concurrency=1", "--test-reporter=spec", ...passThrough, ...files];

// The test report is on stdout; stderr carries the session bus's and the desktop portals' chatter
// (and anything the webview prints), so it goes to a file, shown when the run fails.
const stderrPath = path.join(outDir, "stderr.log");
const result = runNodeWithDisplay(nodeArgs, { stderrPath });
if (result.status !== 0) {
  console.error(`\n--- last lines of ${stderrPath}\n${result.stderrTail}`);
  console.error(`\ne2e failed; also see ${path.join(outDir, "tauri-driver.log")}`);
}
process.exitCode = result.status ?? 1;
