/**
 * The example's page: everything an app author would show of the plugin. Every element the e2e
 * suite reads has an `id`; results carry machine-readable `data-*` attributes beside their text.
 */
import {
  AnysyncError,
  HealthService,
  createAnysyncClient,
  type AnysyncClient,
  HealthCheckResponse_ServingStatus,
  health,
  logs,
  onLog,
  onStatus,
  ping,
  restart,
  type LogRecord,
  type Status,
  anysyncTransport,
  openSpace,
} from "tauri-plugin-anysync-api";

import { Channel } from "@tauri-apps/api/core";

import { CounterService, type Counter } from "./gen/example/v1/counter_pb.js";
import { setupNotes, type NotesHooks } from "./notes.js";
import { act, byId, clearError, showError } from "./page.js";

/** The example's own service, through the client generated from its .proto. */
const counter = createAnysyncClient(CounterService);

declare global {
  interface Window {
    /**
     * The page's generated clients, for the e2e suite, the benchmarks and the devtools console, and
     * Tauri's `Channel` for the benchmarks' baseline stream (scripts injected by WebDriver cannot
     * import modules).
     */
    anysyncExample: {
      counter: AnysyncClient<typeof CounterService>;
      health: AnysyncClient<typeof HealthService>;
      Channel: typeof Channel;
      onStatus: typeof onStatus;
      /** The notes panel (src/notes.ts): its collection, the changes its live list applied. */
      notes: NotesHooks;
      /** The store layer and the transport factory, for a second client beside the page's. */
      openSpace: typeof openSpace;
      anysyncTransport: typeof anysyncTransport;
    };
  }
}
window.anysyncExample = {
  counter,
  health: createAnysyncClient(HealthService),
  Channel,
  onStatus,
  notes: setupNotes(),
  openSpace,
  anysyncTransport,
};

/** Most state-history entries and log records kept on the page. */
const MAX_HISTORY = 50;
const MAX_LOGS = 200;
/** The oversized ping: bigger than the backend's `ANYSYNC_MAX_MESSAGE_BYTES` (64 KiB in tauri.conf.json). */
const OVERSIZED_BYTES = 100 * 1024;

const ui = {
  state: byId("status-state", HTMLElement),
  pid: byId("status-pid", HTMLElement),
  addr: byId("status-addr", HTMLElement),
  version: byId("status-version", HTMLElement),
  restarts: byId("status-restarts", HTMLElement),
  uptime: byId("status-uptime", HTMLElement),
  lastError: byId("status-last-error", HTMLElement),
  history: byId("state-history", HTMLOListElement),
  restartButton: byId("restart-button", HTMLButtonElement),
  restartResult: byId("restart-result", HTMLElement),
  restartError: byId("restart-error", HTMLElement),
  pingForm: byId("ping-form", HTMLFormElement),
  pingInput: byId("ping-input", HTMLInputElement),
  pingButton: byId("ping-button", HTMLButtonElement),
  pingEcho: byId("ping-echo", HTMLElement),
  pingRtt: byId("ping-rtt", HTMLElement),
  pingOversized: byId("ping-oversized-button", HTMLButtonElement),
  pingError: byId("ping-error", HTMLElement),
  healthButton: byId("health-button", HTMLButtonElement),
  healthStatus: byId("health-status", HTMLElement),
  healthVersion: byId("health-version", HTMLElement),
  healthUptime: byId("health-uptime", HTMLElement),
  healthError: byId("health-error", HTMLElement),
  logList: byId("log-list", HTMLOListElement),
  logsCount: byId("logs-count", HTMLElement),
  logsError: byId("logs-error", HTMLElement),
  counterLive: byId("counter-live", HTMLElement),
  counterValue: byId("counter-value", HTMLElement),
  counterVersion: byId("counter-version", HTMLElement),
  counterAdd: byId("counter-add", HTMLButtonElement),
  counterReset: byId("counter-reset", HTMLButtonElement),
  counterError: byId("counter-error", HTMLElement),
  tickerStart: byId("ticker-start", HTMLButtonElement),
  tickerStop: byId("ticker-stop", HTMLButtonElement),
  tickerCount: byId("ticker-count", HTMLElement),
  tickerError: byId("ticker-error", HTMLElement),
};

// ---------------------------------------------------------------- status

let current: Status | undefined;

function clock(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number, width = 2) => String(n).padStart(width, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function duration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  if (h) return `${h} h ${String(m).padStart(2, "0")} min`;
  if (m) return `${m} min ${String(rest).padStart(2, "0")} s`;
  return `${rest} s`;
}

function renderUptime(): void {
  const since = current?.state === "running" ? current.runningSinceMs : null;
  ui.uptime.textContent = since ? duration(Date.now() - since) : "–";
}

/** Appends to the visible state history when the state (or the process) changed. */
function recordHistory(s: Status): void {
  const last = ui.history.lastElementChild as HTMLLIElement | null;
  const pid = s.pid == null ? "" : String(s.pid);
  if (last?.dataset.state === s.state && last.dataset.pid === pid) return;
  const item = document.createElement("li");
  item.dataset.state = s.state;
  item.dataset.pid = pid;
  const time = document.createElement("time");
  time.textContent = clock(s.sinceMs);
  const badge = document.createElement("span");
  badge.className = "badge";
  badge.dataset.state = s.state;
  badge.textContent = s.state;
  item.append(time, badge, pid ? ` pid ${pid}` : "");
  ui.history.append(item);
  while (ui.history.childElementCount > MAX_HISTORY) ui.history.firstElementChild?.remove();
}

function renderStatus(s: Status): void {
  current = s;
  ui.state.textContent = s.state;
  ui.state.dataset.state = s.state;
  ui.pid.textContent = s.pid == null ? "–" : String(s.pid);
  ui.pid.dataset.pid = s.pid == null ? "" : String(s.pid);
  ui.addr.textContent = s.addr ?? "–";
  ui.version.textContent = s.version ?? "–";
  ui.restarts.textContent = String(s.restarts);
  if (s.lastError) {
    ui.lastError.dataset.code = s.lastError.code;
    ui.lastError.textContent = `${s.lastError.code}: ${s.lastError.message}`;
  } else {
    ui.lastError.dataset.code = "";
    ui.lastError.textContent = "none";
  }
  recordHistory(s);
  renderUptime();
}

// ---------------------------------------------------------------- logs

const seen = new Set<number>();

function addLog(record: LogRecord): void {
  if (seen.has(record.seq)) return;
  seen.add(record.seq);
  const item = document.createElement("li");
  item.dataset.level = record.level;
  item.dataset.seq = String(record.seq);
  const time = document.createElement("time");
  time.textContent = record.time ? clock(Date.parse(record.time)) : "";
  const level = document.createElement("span");
  level.className = "level";
  level.textContent = record.level;
  const message = document.createElement("span");
  message.className = "message";
  message.textContent = record.message;
  const fields = document.createElement("span");
  fields.className = "fields";
  fields.textContent = Object.entries(record.fields)
    .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
    .join(" ");
  item.append(time, level, message, fields);
  // Newest first; a record from logs() may arrive after a newer one from onLog.
  const older = [...ui.logList.children].find((li) => Number((li as HTMLElement).dataset.seq) < record.seq);
  ui.logList.insertBefore(item, older ?? null);
  while (ui.logList.childElementCount > MAX_LOGS) ui.logList.lastElementChild?.remove();
  ui.logsCount.textContent = `${seen.size} record${seen.size === 1 ? "" : "s"}`;
}

// ---------------------------------------------------------------- actions

ui.pingForm.addEventListener("submit", (event) => {
  event.preventDefault();
  void act(ui.pingButton, ui.pingError, async () => {
    ui.pingEcho.textContent = "…";
    const started = performance.now();
    const response = await ping(ui.pingInput.value);
    const ms = performance.now() - started;
    ui.pingEcho.textContent = response.message;
    ui.pingRtt.dataset.ms = ms.toFixed(2);
    ui.pingRtt.dataset.count = String(Number(ui.pingRtt.dataset.count ?? 0) + 1);
    ui.pingRtt.textContent = `${ms.toFixed(1)} ms`;
  });
});

ui.pingOversized.addEventListener("click", () => {
  void act(ui.pingOversized, ui.pingError, async () => {
    const response = await ping("x".repeat(OVERSIZED_BYTES));
    // The backend's limit was raised or not applied: say so instead of failing silently.
    ui.pingEcho.textContent = `(${response.message.length} bytes echoed: no limit hit)`;
  });
});

ui.healthButton.addEventListener("click", () => {
  void act(ui.healthButton, ui.healthError, async () => {
    const response = await health();
    // A generated enum: its reverse mapping names the value ("SERVING"); the data attribute keeps
    // the proto's full value name.
    const name = HealthCheckResponse_ServingStatus[response.status];
    ui.healthStatus.textContent = name;
    ui.healthStatus.dataset.status = `SERVING_STATUS_${name}`;
    ui.healthVersion.textContent = response.version;
    ui.healthUptime.textContent = duration(Number(response.uptimeMs));
  });
});

ui.restartButton.addEventListener("click", () => {
  void act(ui.restartButton, ui.restartError, async () => {
    ui.restartResult.textContent = "restarting…";
    const s = await restart();
    ui.restartResult.textContent = `now ${s.state}, pid ${s.pid ?? "–"}`;
  });
});

// ---------------------------------------------------------------- the example's own service

/** The counter the page shows. */
const COUNTER = "page";
/** How long the live counter waits before it subscribes again after the backend went away. */
const RESUBSCRIBE_MS = 250;

function renderCounter(value: Counter): void {
  ui.counterValue.textContent = String(value.value);
  ui.counterValue.dataset.value = String(value.value);
  ui.counterVersion.textContent = String(value.version);
  ui.counterVersion.dataset.version = String(value.version);
}

function setLive(state: "running" | "restarting", text: string): void {
  ui.counterLive.dataset.state = state;
  ui.counterLive.textContent = text;
}

/**
 * Keeps the counter on the page live: a Watch stream, subscribed again whenever it ends (a restart of
 * the backend ends every stream with UNAVAILABLE; the next subscription starts with the current value).
 */
async function watchCounter(): Promise<never> {
  for (;;) {
    try {
      setLive("running", "live");
      for await (const value of counter.watch({ name: COUNTER })) renderCounter(value);
    } catch (error) {
      if (!(error instanceof AnysyncError) || !["UNAVAILABLE", "NOT_RUNNING", "SIDECAR_FAILED"].includes(error.code)) {
        showError(ui.counterError, error);
      }
    }
    setLive("restarting", "reconnecting");
    await new Promise((resolve) => setTimeout(resolve, RESUBSCRIBE_MS));
  }
}

ui.counterAdd.addEventListener("click", () => {
  void act(ui.counterAdd, ui.counterError, async () => {
    await counter.add({ name: COUNTER, delta: 1n });
  });
});

ui.counterReset.addEventListener("click", () => {
  void act(ui.counterReset, ui.counterError, async () => {
    // Refused by the plugin: the capability grants CounterService/* except Reset.
    await counter.reset({ name: COUNTER });
  });
});

let ticker: AbortController | undefined;

ui.tickerStart.addEventListener("click", () => {
  const controller = new AbortController();
  ticker = controller;
  ui.tickerStart.disabled = true;
  ui.tickerStop.disabled = false;
  clearError(ui.tickerError);
  void (async () => {
    try {
      for await (const tick of counter.tick({ count: 0n, intervalMs: 100 }, { signal: controller.signal })) {
        ui.tickerCount.dataset.count = String(tick.seq);
        ui.tickerCount.textContent = `${tick.seq} ticks`;
      }
    } catch (error) {
      if (!controller.signal.aborted) showError(ui.tickerError, error);
    } finally {
      ui.tickerStart.disabled = false;
      ui.tickerStop.disabled = true;
    }
  })();
});

ui.tickerStop.addEventListener("click", () => {
  ticker?.abort();
});

// ---------------------------------------------------------------- start-up

async function start(): Promise<void> {
  // onStatus hands over the current status first, then every change (stale ones dropped by seq).
  await onStatus(renderStatus);
  // Subscribe first, then read the retained records, so none falls in between.
  await onLog(addLog);
  try {
    for (const record of await logs()) addLog(record);
  } catch (error) {
    showError(ui.logsError, error);
  }
  setInterval(renderUptime, 250);
  void watchCounter();
  document.body.dataset.ready = "true";
}

start().catch((error: unknown) => showError(ui.lastError, error));
