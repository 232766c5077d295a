/**
 * What the end-to-end tests stand on: tauri-driver (installed into `.tools/`) in front of
 * WebKitWebDriver, one WebdriverIO session on the example app, and polling with deadlines.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { remote } from "webdriverio";
import { cargoTargetDir, exampleAppBinary } from "../scripts/build.ts";
import { run, toolsBin } from "../scripts/lib.ts";

/** The tauri-driver release the suite is tested with. */
export const TAURI_DRIVER_VERSION = "2.1.0";
/** WebKitGTK's WebDriver (Debian package webkit2gtk-driver). */
export const NATIVE_DRIVER = process.env.ANYSYNC_NATIVE_DRIVER ?? "/usr/bin/WebKitWebDriver";
export const DRIVER_HOST = "127.0.0.1";
export const DRIVER_PORT = 4444;
/** Logs and artifacts of a run (git-ignored with `target/`). */
export const outDir = path.join(cargoTargetDir(), "e2e");

/** The webview's environment for a headless machine; test environments only, never the shipped app. */
export function webviewEnv(): NodeJS.ProcessEnv {
  return {
    NO_AT_BRIDGE: "1",
    WEBKIT_DISABLE_DMABUF_RENDERER: "1",
    WEBKIT_DISABLE_COMPOSITING_MODE: "1",
    // WebKit's bubblewrap sandbox cannot start as root (e.g. in a container).
    ...(process.getuid?.() === 0 ? { WEBKIT_DISABLE_SANDBOX_THIS_IS_DANGEROUS: "1" } : {}),
  };
}

/**
 * tauri-driver from `$ANYSYNC_TOOLS_DIR/bin` (where .ci/setup puts it) or else `.tools/bin`; when it is
 * not there, `cargo install`s {@link TAURI_DRIVER_VERSION} into that directory first.
 */
export function ensureTauriDriver(): string {
  const root = process.env.ANYSYNC_TOOLS_DIR ? path.resolve(process.env.ANYSYNC_TOOLS_DIR) : path.dirname(toolsBin);
  const binary = path.join(root, "bin", process.platform === "win32" ? "tauri-driver.exe" : "tauri-driver");
  if (!existsSync(binary)) {
    run("cargo", ["install", "tauri-driver", "--version", TAURI_DRIVER_VERSION, "--locked", "--root", root]);
  }
  return binary;
}

/** Polls `probe` until it returns a value that is not `undefined`/`false`, or throws at the deadline. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 15_000, intervalMs = 100 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Whether a process runs. A zombie (exited, not yet reaped by its new parent) counts as gone. */
export function isRunning(pid: number): boolean {
  if (process.platform === "linux") {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      // Field 3, after the parenthesised command name (which may itself contain spaces).
      return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
    } catch {
      return false;
    }
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The command name of a running process (Linux), for making sure a pid is what we think it is. */
export function processName(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return undefined;
  }
}

/** The parent pid of a process (Linux /proc), or undefined when it is gone. */
export function parentPid(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 4, after the parenthesised command name (which may itself contain spaces).
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}

/** Resident memory of a process in KiB (Linux /proc `VmRSS`). */
export function rssKib(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8")
    .split("\n")
    .find((l) => l.startsWith("VmRSS:"));
  return Number(line?.split(/\s+/)[1] ?? 0);
}

function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: DRIVER_HOST, port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** A running tauri-driver. */
export interface Driver {
  /** Where its output (and WebKitWebDriver's, and the app's) goes. */
  logPath: string;
  /** Stops it (and with it WebKitWebDriver). Safe to call more than once. */
  stop(): Promise<void>;
}

/** Starts the run's one tauri-driver and waits until it accepts connections. */
export async function startDriver(): Promise<Driver> {
  const binary = ensureTauriDriver();
  if (!existsSync(NATIVE_DRIVER)) {
    throw new Error(`${NATIVE_DRIVER} is missing: install Debian's webkit2gtk-driver (or set ANYSYNC_NATIVE_DRIVER)`);
  }
  if (await portAccepts(DRIVER_PORT)) {
    throw new Error(`port ${DRIVER_PORT} is already taken (a tauri-driver left from another run?); stop it first`);
  }
  mkdirSync(outDir, { recursive: true });
  const logPath = path.join(outDir, "tauri-driver.log");
  const log = createWriteStream(logPath);
  const child: ChildProcess = spawn(
    binary,
    ["--port", String(DRIVER_PORT), "--native-port", String(DRIVER_PORT + 1), "--native-driver", NATIVE_DRIVER],
    // Its own process group, so stopping it also stops WebKitWebDriver and anything left under it.
    { env: { ...process.env, ...webviewEnv() }, stdio: ["ignore", "pipe", "pipe"], detached: true },
  );
  const killGroup = (signal: NodeJS.Signals) => {
    try {
      if (child.pid) process.kill(-child.pid, signal);
    } catch {
      // Already gone.
    }
  };
  // Even when the test process ends abruptly, leave no driver holding the port.
  const onExit = () => killGroup("SIGKILL");
  process.once("exit", onExit);
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let running = true;
  void exited.then(() => (running = false));

  // tauri-driver listens at once and starts WebKitWebDriver beside it; a session requested before
  // the native driver listens gets its connection dropped (UND_ERR_SOCKET), so wait for both.
  await waitFor(
    `tauri-driver on ${DRIVER_HOST}:${DRIVER_PORT} and WebKitWebDriver on ${String(DRIVER_PORT + 1)} (log: ${logPath})`,
    async () => {
      if (!running) throw new Error(`tauri-driver exited; see ${logPath}`);
      return (await portAccepts(DRIVER_PORT)) && (await portAccepts(DRIVER_PORT + 1));
    },
    { timeoutMs: 15_000 },
  );

  return {
    logPath,
    async stop() {
      if (running) {
        killGroup("SIGTERM");
        const timer = setTimeout(() => killGroup("SIGKILL"), 3_000);
        await exited;
        clearTimeout(timer);
      }
      process.removeListener("exit", onExit);
      log.end();
    },
  };
}

/** A WebdriverIO session on the example app. */
export type Browser = Awaited<ReturnType<typeof remote>>;

/** Opens a session on the example app through tauri-driver: this launches the app. */
export async function openApp(application = exampleAppBinary()): Promise<Browser> {
  if (!existsSync(application)) {
    throw new Error(`${application} is missing: run \`npm run build\` (or \`npm test -w e2e\`, which builds it)`);
  }
  return remote({
    hostname: DRIVER_HOST,
    port: DRIVER_PORT,
    logLevel: "warn",
    connectionRetryTimeout: 60_000,
    connectionRetryCount: 0,
    // No browserName: WebKitGTK calls itself MiniBrowser and the capability match would fail.
    capabilities: { "tauri:options": { application } } as WebdriverIO.Capabilities,
  });
}

/** Waits until the example's page says it is ready (`<body data-ready="true">`, set by main.ts). */
export async function pageReady(browser: Browser, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    "the page to be ready",
    async () => ((await browser.execute("return document.body.dataset.ready")) as unknown) === "true",
    { timeoutMs },
  );
}

/**
 * The pid of the app's backend, once `plugin:anysync|status` reports it running (also across a
 * restart: the status may say `restarting` or the call fail meanwhile).
 */
export async function runningBackendPid(browser: Browser, { timeoutMs = 15_000 }: { timeoutMs?: number } = {}): Promise<number> {
  return waitFor(
    "a running backend with a pid",
    async () => {
      const s = (await browser.execute(
        `return window.__TAURI_INTERNALS__.invoke("plugin:anysync|status").then((s) => ({ state: s.state, pid: s.pid }));`,
      )) as unknown as { state: string; pid: number | null };
      return s.state === "running" && s.pid ? s.pid : undefined;
    },
    { timeoutMs },
  );
}

/** How a traced process ended, as the kernel reported it to the tracer. */
export interface TracedExit {
  /** The exit status, or null when a signal ended it. */
  exitCode: number | null;
  /** The signal that ended it (`SIGKILL`), if one did. */
  signal: string | null;
  /** What it wrote to stderr while traced, one entry per write, in order. */
  stderr: string[];
  /** When it exited, in seconds since the Unix epoch (the tracer's clock, microseconds). */
  atSec: number;
}

/** A tracer attached to a running process; see {@link traceExit}. */
export interface ExitTrace {
  /** Resolves once the process has exited, with how. */
  exited: Promise<TracedExit>;
  /** Detaches the tracer if the process still runs. Safe to call more than once. */
  stop(): void;
}

/** One C string literal as strace prints it (`"{\"msg\":...}\n"`), decoded. */
function unescapeStrace(literal: string): string {
  return literal.replace(/\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)/g, (_, code: string) => {
    if (code.startsWith("x")) return String.fromCharCode(parseInt(code.slice(1), 16));
    if (/^[0-7]+$/.test(code)) return String.fromCharCode(parseInt(code, 8));
    return ({ n: "\n", t: "\t", r: "\r", v: "\v", f: "\f" } as Record<string, string>)[code] ?? code;
  });
}

/**
 * Attaches strace to a running process to learn what only its parent could otherwise see: its exit
 * status, and what it writes to stderr until then (for the sidecar, its last log records; `threads`
 * traces every thread, as a Go program writes from any). Returns once the kernel reports the tracer
 * in `/proc/<pid>/status`, so nothing the process does after that is missed.
 */
export async function traceExit(pid: number, what: string, { threads = true }: { threads?: boolean } = {}): Promise<ExitTrace> {
  mkdirSync(outDir, { recursive: true });
  const log = path.join(outDir, `strace-${what}-${pid}.log`);
  // `-q`, not `-qq`: the second q also drops the "+++ exited with N +++" lines this reads.
  const args = [...(threads ? ["-f"] : []), "-q", "-ttt", "-s", "4096", "-e", "trace=write", "-e", "signal=none", "-o", log, "-p", String(pid)];
  const tracer = spawn("strace", args, {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let complaint = "";
  tracer.stderr.on("data", (chunk: Buffer) => (complaint += chunk.toString()));
  const ended = new Promise<void>((resolve, reject) => {
    tracer.once("error", (error) => reject(new Error(`strace (apt install strace): ${error.message}`)));
    tracer.once("exit", () => resolve());
  });
  ended.catch(() => undefined);
  await waitFor(`strace to attach to ${what} ${pid}`, () => {
    if (tracer.exitCode !== null) throw new Error(`strace exited: ${complaint || "no output"}`);
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    return /^TracerPid:\s*[1-9]/m.test(status);
  }, { timeoutMs: 10_000, intervalMs: 20 });
  const exited = ended.then((): TracedExit => {
    const lines = readFileSync(log, "utf8").split("\n");
    const stderr = lines
      .map((line) => /write\(2, "(.*)"(?:\.\.\.)?, \d+\)/.exec(line)?.[1])
      .filter((s): s is string => s !== undefined)
      .map(unescapeStrace);
    for (const line of lines) {
      const atSec = Number(/(\d+\.\d+) \+\+\+/.exec(line)?.[1]);
      const code = /\+\+\+ exited with (\d+) \+\+\+/.exec(line);
      if (code) return { exitCode: Number(code[1]), signal: null, stderr, atSec };
      const signal = /\+\+\+ killed by (SIG\w+)/.exec(line);
      if (signal?.[1]) return { exitCode: null, signal: signal[1], stderr, atSec };
    }
    throw new Error(`strace ended without seeing ${what} ${pid} exit (see ${log}): ${complaint}`);
  });
  return {
    exited,
    stop() {
      if (tracer.exitCode === null) tracer.kill("SIGINT");
    },
  };
}

/** A sidecar's log record (Go's slog JSON), the fields the tests read. */
export interface LogRecordLine {
  msg?: string;
  level?: string;
  /** On "backend stopped": whether the grace ran out and connections were cut. */
  forced?: boolean;
  durationMs?: number;
  reason?: string;
}

/** The JSON log records in what a sidecar wrote to stderr (a write may carry more than one). */
export function logRecords(stderr: readonly string[]): LogRecordLine[] {
  return stderr
    .flatMap((chunk) => chunk.split("\n"))
    .filter((line) => line.startsWith("{"))
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as LogRecordLine];
      } catch {
        return [];
      }
    });
}

/**
 * Closes a window from its page the way its close button does, through Tauri's window API
 * (`getCurrentWindow().close()` is this `plugin:window|close` call; the capability needs
 * `core:window:allow-close`). Not awaited in the page: the page goes away with its window, and
 * the WebDriver answer may go with it (an "unknown error"), so the caller judges by what the
 * processes do next. A refusal is left in `document.body.dataset.closeError`.
 */
export async function closeWindowFromPage(browser: Browser, label = "main"): Promise<void> {
  await browser.execute(`
    setTimeout(() => {
      window.__TAURI_INTERNALS__
        .invoke("plugin:window|close", { label: ${JSON.stringify(label)} })
        .catch((error) => { document.body.dataset.closeError = JSON.stringify(error); });
    }, 0);
    return true;
  `).catch((error: unknown) => {
    console.log(`closing the window: WebDriver's answer was lost with the page (${error instanceof Error ? error.message.split("\n")[0] : String(error)})`);
  });
}

/** `promise`, or a rejection naming `what` once `timeoutMs` have passed without it settling. */
export async function within<T>(promise: Promise<T>, what: string, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** What closing the window showed, for the tests' diagnostics. */
export interface GracefulClose {
  /** From the close request to the sidecar's exit. */
  sidecarGoneMs: number;
  /** The sidecar's last log record. */
  lastRecord: LogRecordLine;
  /** How long the app lived on after its sidecar exited. */
  appAfterSidecarMs: number;
}

/**
 * Closes the app's window from its page ({@link closeWindowFromPage}) and checks that the plugin
 * stopped the sidecar gracefully before the app ended: the sidecar's last log record is "backend
 * stopped" within its grace (not forced), it exited with status 0, and the app exited with status
 * 0 after it. The plugin's exit hook is what orders the two: without it the sidecar would still
 * stop (stdin EOF, `PR_SET_PDEATHSIG`), but only once the app was gone.
 */
export async function closeAndCheckGracefulStop(browser: Browser, sidecarPid: number, appPid: number): Promise<GracefulClose> {
  const sidecar = await traceExit(sidecarPid, "sidecar");
  const app = await traceExit(appPid, "app", { threads: false });
  try {
    const closed = Date.now();
    await closeWindowFromPage(browser);
    const sidecarExit = await within(sidecar.exited, "the sidecar to exit after the window closed", 10_000);
    const sidecarGoneMs = Date.now() - closed;
    const appExit = await within(app.exited, "the app to exit after its last window closed", 10_000);
    assert.deepEqual([sidecarExit.exitCode, sidecarExit.signal], [0, null], "the sidecar exited with status 0");
    const lastRecord: LogRecordLine | undefined = logRecords(sidecarExit.stderr).at(-1);
    assert.equal(lastRecord?.msg, "backend stopped", `the sidecar's last record: ${JSON.stringify(lastRecord)}`);
    assert.equal(lastRecord.forced, false, "it stopped within its grace, nothing cut off");
    assert.deepEqual([appExit.exitCode, appExit.signal], [0, null], "the app exited with status 0");
    const appAfterSidecarMs = (appExit.atSec - sidecarExit.atSec) * 1000;
    assert.ok(appAfterSidecarMs >= 0, `the app waited for its sidecar: the sidecar exited ${(-appAfterSidecarMs).toFixed(1)} ms after the app`);
    return { sidecarGoneMs, lastRecord, appAfterSidecarMs };
  } finally {
    sidecar.stop();
    app.stop();
  }
}
