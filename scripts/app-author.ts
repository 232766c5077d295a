/**
 * `npm run test:app-author`: the app author's path, from `create-tauri-app` to an installed .deb.
 *
 * 1. Scaffolds a new app with `create-tauri-app` ({@link CREATE_TAURI_APP}, template vanilla-ts, npm)
 *    under `~/.cache/anysync/app-author/` (outside this repository, whose Cargo workspace would
 *    otherwise claim it);
 * 2. applies README.md's "Use it in your app" steps to it mechanically, each snippet as README.md
 *    has it (so the two cannot drift): path dependencies on this repository's crates and an
 *    `npm pack`ed tarball of guest-js, `lib.rs`, `build.rs`, `.gitignore`, the merged
 *    `tauri.conf.json` and capability, the profile lines, the TypeScript call;
 * 3. compiles every TypeScript snippet of README.md and guest-js/README.md under the scaffold's own
 *    tsconfig (`strict`, `noUnusedLocals`, ...), the way a pasted example meets `tauri build`;
 * 4. builds the app (`tauri build --debug --bundles deb`) and checks that git ignores the sidecar
 *    the build helper wrote into `src-tauri/binaries/`;
 * 5. unpacks the .deb and runs the installed app under Xvfb through tauri-driver: the page's ping
 *    answer, read over WebDriver; then the window closed from the page, as its close button does,
 *    after which the sidecar must have logged a graceful stop and exited 0, and the app exited 0;
 *    then a second run whose app is `kill -9`ed, after which no sidecar may be left.
 *
 * Cheap on a machine that ran the rest of `npm test`: the scaffold starts from this workspace's
 * Cargo.lock and builds into the same target directory with the same profile, so every dependency
 * the workspace compiled is reused and only what the scaffold adds (tauri-plugin-opener and the app
 * itself) is compiled. The test-only changes (not README steps) are the lockfile, the profile's
 * debug-info settings (the workspace's, passed as `--config`), a probe module that shows the ping on
 * the page and `core:window:allow-close` for closing the window from it.
 *
 * `--without-profile` leaves out README's profile lines, to measure what they are worth (the
 * probe's ping median is printed either way).
 */
import assert from "node:assert/strict";
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  closeAndCheckGracefulStop,
  isRunning,
  openApp,
  outDir,
  parentPid,
  processName,
  startDriver,
  waitFor,
  type Browser,
  type GracefulClose,
} from "../e2e/harness.ts";
import { cargoTargetDir, exampleAppDir } from "./build.ts";
import { capture, repoRoot, run, runNodeWithDisplay } from "./lib.ts";
import { inspectExecutable } from "./sidecars.ts";

/** The create-tauri-app release the path is tested with (it carries its prebuilt binary). */
export const CREATE_TAURI_APP = "create-tauri-app@4.7.4";
/** The scaffold's name: its directory, Cargo package, executable and .deb. */
const APP = "anysync-app-author";
/** Where README's "until published" commands say the clone of this repository is. */
const README_CLONE = "../tauri-plugin-anysync";
/** What the probe pings with, and the page must show. */
const PING_TEXT = "hello from the app author's app";

const workRoot = process.env.ANYSYNC_APP_AUTHOR_DIR ?? path.join(os.homedir(), ".cache", "anysync", "app-author");
const appDir = path.join(workRoot, APP);
const tauriDir = path.join(appDir, "src-tauri");

/** One fenced code block of a Markdown file. */
interface Snippet {
  lang: string;
  text: string;
  /** Where it is, `README.md:42`, for messages. */
  where: string;
}

/** The fenced code blocks of `markdown` (indented ones inside list items too, dedented). */
export function snippets(markdown: string, file: string, firstLine = 1): Snippet[] {
  const found: Snippet[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(\w*)\s*$/.exec(lines[i] ?? "");
    if (!open) continue;
    const indent = open[1]?.length ?? 0;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !/^\s*```\s*$/.test(lines[j] ?? ""); j++) body.push((lines[j] ?? "").slice(indent));
    found.push({ lang: open[2] ?? "", text: `${body.join("\n")}\n`, where: `${file}:${i + firstLine}` });
    i = j;
  }
  return found;
}

/** README.md's "## Use it in your app" section, up to the next `## ` heading, and its first line. */
function useItSection(): { text: string; firstLine: number } {
  const readme = readFileSync(path.join(repoRoot, "README.md"), "utf8");
  const start = readme.indexOf("\n## Use it in your app\n");
  assert.ok(start >= 0, 'README.md has no "## Use it in your app" section');
  const end = readme.indexOf("\n## ", start + 1);
  return { text: readme.slice(start + 1, end < 0 ? undefined : end), firstLine: readme.slice(0, start + 1).split("\n").length };
}

/** The one snippet of `lang` containing `needle`: README's step it stands for. */
function step(all: Snippet[], lang: string, needle: string): Snippet {
  const matches = all.filter((s) => s.lang === lang && s.text.includes(needle));
  const [only] = matches;
  assert.ok(only && matches.length === 1, `README's "Use it in your app" must have exactly one \`${lang}\` snippet with ${JSON.stringify(needle)}; it has ${matches.length}`);
  return only;
}

type Json = null | boolean | number | string | Json[] | JsonObject;
interface JsonObject {
  [key: string]: Json;
}

/** Merges `patch` into `base` as README says to: objects key by key, arrays gain missing items. */
export function merge(base: Json, patch: Json): Json {
  if (Array.isArray(base) && Array.isArray(patch)) {
    return [...base, ...patch.filter((item) => !base.some((b) => JSON.stringify(b) === JSON.stringify(item)))];
  }
  if (base && patch && typeof base === "object" && typeof patch === "object" && !Array.isArray(base) && !Array.isArray(patch)) {
    const out: JsonObject = { ...base };
    for (const [key, value] of Object.entries(patch)) out[key] = key in base ? merge(base[key] as Json, value) : value;
    return out;
  }
  return patch;
}

function mergeJsonFile(file: string, patch: Json): void {
  const merged = merge(JSON.parse(readFileSync(file, "utf8")) as Json, patch);
  writeFileSync(file, `${JSON.stringify(merged, null, 2)}\n`);
}

function phase<T>(name: string, timings: Record<string, number>, work: () => T): T {
  console.log(`\n=== app-author: ${name}`);
  const started = performance.now();
  const result = work();
  timings[name] = Math.round((performance.now() - started) / 100) / 10;
  return result;
}

/** Steps 1-4: scaffold, apply README, compile the snippets, build the .deb. Returns the .deb. */
function prepare(timings: Record<string, number>, withProfile: boolean): string {
  const { text: section, firstLine } = useItSection();
  const steps = snippets(section, "README.md", firstLine);
  // npm takes what its cache has (the scaffold's packages are the same every run) without asking
  // the registry first.
  const env = { ...process.env, CARGO_TARGET_DIR: cargoTargetDir(), npm_config_prefer_offline: "true", npm_config_audit: "false", npm_config_fund: "false" };

  phase("scaffold", timings, () => {
    rmSync(appDir, { recursive: true, force: true });
    mkdirSync(workRoot, { recursive: true });
    run("npx", ["--yes", CREATE_TAURI_APP, APP, "--template", "vanilla-ts", "--manager", "npm", "--identifier", "dev.anysync.appauthor", "--yes"], { cwd: workRoot });
  });

  phase("README steps", timings, () => {
    // Test-only: start from the workspace's lockfile, so the scaffold resolves to the versions the
    // workspace already compiled.
    copyFileSync(path.join(repoRoot, "Cargo.lock"), path.join(tauriDir, "Cargo.lock"));
    // 1. The crates and the package, from this repository (README's "until published" commands).
    const add = step(steps, "sh", `--path ${README_CLONE}`);
    run("bash", ["-euo", "pipefail", "-c", add.text.replaceAll(README_CLONE, repoRoot)], { cwd: appDir, env });
    // 2. The plugin, registered in lib.rs.
    const register = step(steps, "rust", "tauri_plugin_anysync::init()");
    const line = register.text.split("\n").find((l) => l.includes("tauri_plugin_anysync::init()"))?.trim() ?? "";
    const libRs = path.join(tauriDir, "src", "lib.rs");
    const lib = readFileSync(libRs, "utf8");
    const anchor = /^(\s*)tauri::Builder::default\(\)\n/m.exec(lib);
    assert.ok(anchor, `${libRs} has no \`tauri::Builder::default()\` line for ${register.where}`);
    const at = anchor.index + anchor[0].length;
    writeFileSync(libRs, `${lib.slice(0, at)}${anchor[1] ?? ""}    ${line}\n${lib.slice(at)}`);
    // 3. build.rs, and the sidecar's directory git-ignored.
    writeFileSync(path.join(tauriDir, "build.rs"), step(steps, "rust", "fn main()").text);
    const ignore = path.join(tauriDir, ".gitignore");
    writeFileSync(ignore, `${readFileSync(ignore, "utf8").trimEnd()}\n${step(steps, "gitignore", "binaries").text}`);
    // 4. tauri.conf.json and the capability, merged.
    mergeJsonFile(path.join(tauriDir, "tauri.conf.json"), JSON.parse(step(steps, "json", "externalBin").text) as Json);
    mergeJsonFile(path.join(tauriDir, "capabilities", "default.json"), JSON.parse(step(steps, "json", '"permissions"').text) as Json);
    // 5. The profile lines.
    if (withProfile) {
      const cargoToml = path.join(tauriDir, "Cargo.toml");
      writeFileSync(cargoToml, `${readFileSync(cargoToml, "utf8").trimEnd()}\n\n${step(steps, "toml", "[profile.dev.package]").text}`);
    }
    // 6. The call, as a module of the page.
    writeFileSync(path.join(appDir, "src", "anysync.ts"), step(steps, "ts", "onStatus(").text);

    // Test-only: a probe that shows the ping on the page and times it, and the permission to close
    // the window from the page.
    writeFileSync(path.join(appDir, "src", "probe.ts"), PROBE);
    const main = path.join(appDir, "src", "main.ts");
    writeFileSync(main, `import "./anysync";\nimport "./probe";\n${readFileSync(main, "utf8")}`);
    mergeJsonFile(path.join(tauriDir, "capabilities", "default.json"), { permissions: ["core:window:allow-close"] });
  });

  phase("snippets compile", timings, () => compileSnippets());

  phase("tauri build", timings, () => {
    // Test-only: the workspace's debug-info settings, so its compiled dependencies are reused.
    const sameProfile = ['profile.dev.debug="line-tables-only"', 'profile.dev.package."*".debug=false'].flatMap((c) => ["--config", c]);
    run(path.join(appDir, "node_modules", ".bin", "tauri"), ["build", "--debug", "--bundles", "deb", "--", ...sameProfile], { cwd: appDir, env });
  });

  const triple = /^host: (.+)$/m.exec(capture("rustc", ["-vV"]))?.[1] ?? "";
  const built = path.join(tauriDir, "binaries", `my-app-backend-${triple}`);
  assert.ok(existsSync(built), `the build helper wrote no ${built}`);
  run("git", ["init", "-q"], { cwd: appDir });
  const untracked = capture("git", ["status", "--porcelain", "--untracked-files=all", "--", "src-tauri/binaries"], { cwd: appDir });
  assert.equal(untracked, "", `git sees the built sidecar (README's .gitignore line missing?):\n${untracked}`);

  const debDir = path.join(cargoTargetDir(), "debug", "bundle", "deb");
  const deb = readdirSync(debDir).find((name) => name.startsWith(`${APP}_`) && name.endsWith(".deb"));
  assert.ok(deb, `no ${APP}_*.deb in ${debDir}`);
  return path.join(debDir, deb);
}

/** The test's own module on the scaffold's page: the ping answer and its round-trip time, shown. */
const PROBE = `import { onStatus, ping } from "tauri-plugin-anysync-api";

const body = document.body;
await onStatus((s) => {
  body.dataset.state = s.state;
  body.dataset.pid = String(s.pid ?? 0);
});
body.dataset.ping = (await ping(${JSON.stringify(PING_TEXT)})).message;
for (let i = 0; i < 50; i++) await ping("warm-up");
// Batches, timed as a whole: WebKit coarsens performance.now() to about a millisecond.
const perPingUs: number[] = [];
for (let batch = 0; batch < 21; batch++) {
  const started = performance.now();
  for (let i = 0; i < 50; i++) await ping("timed");
  perPingUs.push(((performance.now() - started) * 1000) / 50);
}
perPingUs.sort((a, b) => a - b);
body.dataset.pingMedianUs = String(Math.round(perPingUs[10] ?? 0));
body.dataset.pingP90Us = String(Math.round(perPingUs[18] ?? 0));
`;

/** Compiles every TypeScript snippet of README.md and guest-js/README.md under the scaffold's tsconfig. */
function compileSnippets(): void {
  const all = [
    ...snippets(readFileSync(path.join(repoRoot, "README.md"), "utf8"), "README.md"),
    ...snippets(readFileSync(path.join(repoRoot, "guest-js", "README.md"), "utf8"), "guest-js/README.md"),
  ].filter((s) => s.lang === "ts");
  // Snippets import an app's generated clients as `./gen/...`: the example's, here.
  cpSync(path.join(exampleAppDir, "src", "gen"), path.join(appDir, "src", "gen"), { recursive: true });
  const files = all.map((snippet, i) => {
    const file = path.join(appDir, "src", `snippet-${i + 1}.ts`);
    writeFileSync(file, snippet.text);
    return { file, snippet };
  });
  try {
    run(path.join(appDir, "node_modules", ".bin", "tsc"), ["--noEmit", "-p", "."], { cwd: appDir });
  } catch (error) {
    const map = files.map(({ file, snippet }) => `  src/${path.basename(file)} is ${snippet.where}`).join("\n");
    throw new Error(`a README snippet does not compile under the create-tauri-app tsconfig (above):\n${map}\n${String(error)}`);
  } finally {
    for (const { file } of files) rmSync(file);
    rmSync(path.join(appDir, "src", "gen"), { recursive: true, force: true });
  }
  console.log(`${files.length} TypeScript snippets compile: ${files.map(({ snippet }) => snippet.where).join(", ")}`);
}

/** What the run phase measured. */
interface RunReport {
  pingMedianUs: number;
  pingP90Us: number;
  close: GracefulClose;
  sidecarGoneAfterKillMs: number;
}

async function pageData(browser: Browser): Promise<Record<string, string | undefined>> {
  return (await browser.execute("return { ...document.body.dataset }")) as unknown as Record<string, string | undefined>;
}

/** Step 5, under a display: the unpacked app, closed normally, then killed. */
async function runInstalled(root: string): Promise<RunReport> {
  const app = path.join(root, "usr", "bin", APP);
  const sidecarPath = path.join(root, "usr", "bin", "my-app-backend");
  const driver = await startDriver();
  let browser: Browser | undefined;
  try {
    const first = await openApp(app);
    browser = first;
    const page = await waitFor("the page to show the ping answer and its timing", async () => {
      const data = await pageData(first);
      return data.ping && data.pingMedianUs ? data : undefined;
    }, { timeoutMs: 60_000 });
    assert.equal(page.ping, PING_TEXT);
    const pid = Number(page.pid);
    assert.equal(page.state, "running");
    assert.equal(readlinkSync(`/proc/${pid}/exe`), sidecarPath, "the page's pid is the installed sidecar");
    const appPid = parentPid(pid);
    assert.ok(appPid && readlinkSync(`/proc/${appPid}/exe`) === app, `the sidecar's parent ${appPid} is the installed app`);
    console.log(`ping answered "${page.ping}"; round trip from the page (21 batches of 50): median ${page.pingMedianUs} µs, p90 ${page.pingP90Us} µs per ping`);

    const close = await closeAndCheckGracefulStop(first, pid, appPid);
    await first.deleteSession().catch(() => undefined);
    browser = undefined;
    console.log(
      `window closed: sidecar exited 0 after ${close.sidecarGoneMs} ms ("${String(close.lastRecord.msg)}", ` +
        `${String(close.lastRecord.durationMs)} ms), app exited 0 ${close.appAfterSidecarMs.toFixed(1)} ms after it`,
    );

    const again = await openApp(app);
    browser = again;
    const second = await waitFor("the second run's sidecar", async () => {
      const data = await pageData(again);
      return data.state === "running" && Number(data.pid) > 0 ? Number(data.pid) : undefined;
    }, { timeoutMs: 60_000 });
    const secondApp = parentPid(second);
    assert.ok(secondApp && processName(secondApp), "the second app runs");
    process.kill(secondApp, "SIGKILL");
    const killed = Date.now();
    await waitFor(`sidecar ${second} to exit after kill -9 of app ${secondApp}`, () => !isRunning(second), { timeoutMs: 5_000, intervalMs: 20 });
    const sidecarGoneAfterKillMs = Date.now() - killed;
    await browser.deleteSession().catch(() => undefined);
    browser = undefined;
    console.log(`kill -9 of the app: its sidecar gone ${sidecarGoneAfterKillMs} ms later`);
    return {
      pingMedianUs: Number(page.pingMedianUs),
      pingP90Us: Number(page.pingP90Us),
      close,
      sidecarGoneAfterKillMs,
    };
  } finally {
    await browser?.deleteSession().catch(() => undefined);
    await driver.stop();
  }
}

const reportPath = path.join(outDir, "app-author.json");

async function main(): Promise<void> {
  const runRoot = process.argv.find((a) => a.startsWith("--run="))?.slice("--run=".length);
  if (runRoot) {
    writeFileSync(reportPath, `${JSON.stringify(await runInstalled(runRoot), null, 2)}\n`);
    return;
  }
  const timings: Record<string, number> = {};
  const started = performance.now();
  const deb = prepare(timings, !process.argv.includes("--without-profile"));
  const root = mkdtempSync(path.join(os.tmpdir(), "anysync-app-author-"));
  try {
    run("dpkg-deb", ["-x", deb, root]);
    for (const name of [APP, "my-app-backend"]) {
      const file = path.join(root, "usr", "bin", name);
      assert.ok(existsSync(file) && (statSync(file).mode & 0o111) !== 0, `the .deb has no executable usr/bin/${name}`);
      const info = inspectExecutable(readFileSync(file));
      assert.ok(info.format === "elf" && info.executable, `usr/bin/${name} is ${info.format}, not an ELF executable`);
    }
    mkdirSync(outDir, { recursive: true });
    rmSync(reportPath, { force: true });
    const result = phase("run the installed app", timings, () =>
      runNodeWithDisplay(["--import", "tsx", fileURLToPath(import.meta.url), `--run=${root}`], { stderrPath: path.join(outDir, "app-author-stderr.log") }),
    );
    if (result.status !== 0) throw new Error(`the installed app's run failed:\n${result.stderrTail}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  const report = JSON.parse(readFileSync(reportPath, "utf8")) as RunReport;
  const total = Math.round((performance.now() - started) / 100) / 10;
  console.log(`\napp-author: passed in ${total} s (${Object.entries(timings).map(([k, s]) => `${k} ${s} s`).join(", ")})`);
  writeFileSync(reportPath, `${JSON.stringify({ ...report, timings, totalSeconds: total }, null, 2)}\n`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exitCode = 1;
  });
}
