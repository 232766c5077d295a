/**
 * The plugin's commands and events. Every function rejects with an {@link AnysyncError}.
 *
 * @module
 */

import type { CallOptions } from "@connectrpc/connect";
import { Channel, invoke, type InvokeArgs } from "@tauri-apps/api/core";
import type { UnlistenFn } from "@tauri-apps/api/event";

import { createAnysyncClient, type AnysyncClient } from "./client.js";
import { AnysyncError } from "./errors.js";
import { HealthService, type HealthCheckResponse, type PingResponse } from "./proto.js";
import type { LogRecord, Status } from "./types.js";

/**
 * The event the plugin broadcasts on every change of the backend's {@link Status}, to every
 * webview, for apps (and Rust code, `app.listen`) that listen with `@tauri-apps/api/event`.
 * {@link onStatus} does not use it: it subscribes through a `Channel` behind the
 * `anysync:allow-subscribe-status` permission and gets the current status first.
 *
 * @example
 * ```ts
 * import { listen } from "@tauri-apps/api/event";
 * import { STATUS_EVENT, type Status } from "tauri-plugin-anysync-api";
 *
 * const unlisten = await listen<Status>(STATUS_EVENT, (event) => console.log(event.payload.state));
 * ```
 */
export const STATUS_EVENT = "anysync://status";

/**
 * The event the plugin broadcasts for every backend {@link LogRecord}, to every webview, for apps
 * (and Rust code) that listen with `@tauri-apps/api/event`. {@link onLog} does not use it: it
 * subscribes through a `Channel` behind the `anysync:allow-subscribe-logs` permission.
 *
 * @example
 * ```ts
 * import { listen } from "@tauri-apps/api/event";
 * import { LOG_EVENT, type LogRecord } from "tauri-plugin-anysync-api";
 *
 * const unlisten = await listen<LogRecord>(LOG_EVENT, (event) => console.log(event.payload.message));
 * ```
 */
export const LOG_EVENT = "anysync://log";

/** Each command of the plugin that is not a gRPC call, and what it resolves with. */
interface Commands {
  status: Status;
  restart: Status;
  logs: LogRecord[];
  subscribe_status: number;
  subscribe_logs: number;
  unsubscribe: null;
}

/** Invokes one of the plugin's commands; a rejection of any kind becomes an AnysyncError. */
async function call<C extends keyof Commands>(command: C, args?: InvokeArgs): Promise<Commands[C]> {
  try {
    return await invoke<Commands[C]>(`plugin:anysync|${command}`, args);
  } catch (error) {
    throw AnysyncError.from(error);
  }
}

let healthClient: AnysyncClient<typeof HealthService> | undefined;

/** The HealthService client over the shared default transport, made on first use. */
function healthService(): AnysyncClient<typeof HealthService> {
  healthClient ??= createAnysyncClient(HealthService);
  return healthClient;
}

/** The plugin's subscription commands and the argument naming each one's channel. */
const SUBSCRIPTIONS = {
  subscribe_status: "onStatus",
  subscribe_logs: "onLog",
} as const;

/** What each subscription's channel carries. */
interface Messages {
  subscribe_status: Status;
  subscribe_logs: LogRecord;
}

/**
 * Opens a subscription: a `Channel` whose messages go to `accept` until the returned function is
 * called, which tells the plugin to end it (best effort: the channel is deaf from then on anyway).
 */
async function subscribe<C extends keyof Messages>(
  command: C,
  accept: (message: Messages[C]) => void,
): Promise<UnlistenFn> {
  let open = true;
  const channel = new Channel<Messages[C]>((message) => {
    if (open) accept(message);
  });
  const id = await call(command, { [SUBSCRIPTIONS[command]]: channel });
  return () => {
    if (!open) return;
    open = false;
    call("unsubscribe", { id }).catch(() => undefined);
  };
}

/**
 * Sends `message` through the whole path (front end, plugin, gRPC, Go backend) and back: the
 * cheapest way to check that the backend answers, and to measure the round trip. A thin wrapper
 * of `anysync.v1.HealthService/Ping` through the generated client and {@link anysyncTransport}.
 *
 * Needs `anysync.v1.HealthService/*` in the `anysync:allow-call` scope (in `anysync:default`).
 *
 * @param message Any text; echoed unchanged.
 * @param options connect's call options: `signal` (an `AbortSignal`: `CANCELLED`) and `timeoutMs`
 * (`DEADLINE_EXCEEDED`; default: the plugin's `callTimeoutMs`).
 * @returns The echo and when the backend handled it (`handledAtUnixMicros`, a `bigint`).
 * @throws {@link AnysyncError} e.g. `UNAVAILABLE` while the backend restarts, `DEADLINE_EXCEEDED`,
 * `SIDECAR_FAILED`, `NOT_RUNNING`, or `PERMISSION_DENIED` without the permission.
 * @example
 * ```ts
 * import { ping } from "tauri-plugin-anysync-api";
 *
 * const { message, handledAtUnixMicros } = await ping("hello", { timeoutMs: 1_000 });
 * console.log(message, new Date(Number(handledAtUnixMicros / 1000n)));
 * ```
 */
export async function ping(message: string, options?: CallOptions): Promise<PingResponse> {
  return healthService().ping({ message }, options);
}

/**
 * Asks the backend whether it serves requests, with its version, launch-protocol version, pid and
 * uptime: `anysync.v1.HealthService/Check` through the generated client.
 *
 * Needs `anysync.v1.HealthService/*` in the `anysync:allow-call` scope (in `anysync:default`).
 *
 * @param options connect's call options: `signal` and `timeoutMs`, as for {@link ping}.
 * @returns The backend's answer (`uptimeMs` is a `bigint`).
 * @throws {@link AnysyncError} as {@link ping} does.
 * @example
 * ```ts
 * import { health, HealthCheckResponse_ServingStatus } from "tauri-plugin-anysync-api";
 *
 * const h = await health();
 * const serving = h.status === HealthCheckResponse_ServingStatus.SERVING;
 * console.log(`backend ${h.version}: ${serving ? "serving" : "not serving"}, up ${h.uptimeMs} ms`);
 * ```
 */
export async function health(options?: CallOptions): Promise<HealthCheckResponse> {
  return healthService().check({}, options);
}

/**
 * The supervisor's current status: state, pid, address, version, restarts and last error. It does
 * not call the backend, so it answers in every state.
 *
 * Needs the `anysync:allow-status` permission (in `anysync:default`).
 *
 * @returns The latest status.
 * @throws {@link AnysyncError} only when Tauri refuses the call, e.g. `PERMISSION_DENIED`.
 * @example
 * ```ts
 * import { status } from "tauri-plugin-anysync-api";
 *
 * // A one-off read; to follow the status, onStatus hands over the current one and every change.
 * const s = await status();
 * console.log(`backend is ${s.state} (#${s.seq})`);
 * ```
 */
export async function status(): Promise<Status> {
  return call("status");
}

/**
 * Restarts the backend (also out of the `failed` state) and resolves once it runs again. It waits
 * through the supervisor's own retries, so it settles only when the backend runs or the supervisor
 * gives up.
 *
 * A control action, so not in `anysync:default`: grant `anysync:allow-restart` in a capability.
 *
 * @returns The status once the backend is running again.
 * @throws {@link AnysyncError} `SIDECAR_FAILED` when the backend cannot be started (its
 * `details.cause` says why, e.g. `SIDECAR_NOT_FOUND` or `HANDSHAKE_TIMEOUT`), `NOT_RUNNING` when
 * the app is shutting down, or `PERMISSION_DENIED` without the permission.
 * @example
 * ```ts
 * import { isAnysyncError, restart } from "tauri-plugin-anysync-api";
 *
 * try {
 *   const s = await restart();
 *   console.log(`backend running again, pid ${s.pid ?? "?"}`);
 * } catch (error) {
 *   if (isAnysyncError(error, "PERMISSION_DENIED")) console.error("add anysync:allow-restart to a capability");
 * }
 * ```
 */
export async function restart(): Promise<Status> {
  return call("restart");
}

/**
 * The backend log records the plugin retained (a bounded ring, `plugins.anysync.logBuffer`),
 * oldest first. Together with {@link onLog} it gives the full log without gaps or duplicates:
 * subscribe first, then read the snapshot, and drop records whose `seq` was seen already.
 *
 * Needs the `anysync:allow-logs` permission (in `anysync:default`).
 *
 * @returns The retained records, oldest first.
 * @throws {@link AnysyncError} only when Tauri refuses the call, e.g. `PERMISSION_DENIED`.
 * @example
 * ```ts
 * import { logs, onLog, type LogRecord } from "tauri-plugin-anysync-api";
 *
 * const seen = new Set<number>();
 * const show = (record: LogRecord) => {
 *   if (seen.has(record.seq)) return;
 *   seen.add(record.seq);
 *   console.log(`[${record.level}] ${record.message}`);
 * };
 * const unlisten = await onLog(show); // first subscribe...
 * (await logs()).forEach(show); // ...then read what came before
 * ```
 */
export async function logs(): Promise<LogRecord[]> {
  return call("logs");
}

/**
 * Calls `handler` with the current {@link Status} at once, then with every change, until the
 * returned function is called. Each status carries a `seq` that grows with every change; a status
 * whose `seq` is not greater than the last one handed over is dropped, so a stale status never
 * overwrites a fresher one. The first call can come before the returned promise resolves.
 *
 * It subscribes through a Tauri `Channel` (`subscribe_status`), which ends when the page reloads or
 * its window closes; no event listener is involved.
 *
 * Needs the `anysync:allow-subscribe-status` permission (in `anysync:default`); stopping uses
 * `anysync:allow-unsubscribe` (in `anysync:default` too; without it the handler still stops).
 *
 * @param handler Called with the current status, then each newer one, in order.
 * @returns A function that stops the subscription, shaped as `listen`'s of `@tauri-apps/api/event`.
 * @throws {@link AnysyncError} e.g. `PERMISSION_DENIED` without the permission, or
 * `RESOURCE_EXHAUSTED` when the page already holds 32 status subscriptions.
 * @example
 * ```ts
 * import { onStatus } from "tauri-plugin-anysync-api";
 *
 * // The first call comes at once, with the current status: no separate status() needed.
 * const unlisten = await onStatus((s) => {
 *   console.log(`backend is ${s.state} (#${s.seq})`);
 *   if (s.state === "failed") console.error(`backend failed: ${s.lastError?.message ?? "unknown"}`);
 * });
 * // later, e.g. when the component unmounts:
 * unlisten();
 * ```
 */
export async function onStatus(handler: (status: Status) => void): Promise<UnlistenFn> {
  let last = -1;
  return subscribe("subscribe_status", (status) => {
    if (status.seq <= last) return;
    last = status.seq;
    handler(status);
  });
}

/**
 * Calls `handler` with every new backend {@link LogRecord}, as it arrives, until the returned
 * function is called. Records written before subscribing are in {@link logs}.
 *
 * It subscribes through a Tauri `Channel` (`subscribe_logs`), which ends when the page reloads or
 * its window closes; no event listener is involved.
 *
 * Needs the `anysync:allow-subscribe-logs` permission (in `anysync:default`); stopping uses
 * `anysync:allow-unsubscribe` (in `anysync:default` too; without it the handler still stops).
 *
 * @param handler Called with each record, in order.
 * @returns A function that stops the subscription, shaped as `listen`'s of `@tauri-apps/api/event`.
 * @throws {@link AnysyncError} e.g. `PERMISSION_DENIED` without the permission, or
 * `RESOURCE_EXHAUSTED` when the page already holds 32 log subscriptions.
 * @example
 * ```ts
 * import { onLog } from "tauri-plugin-anysync-api";
 *
 * const unlisten = await onLog((record) => {
 *   console.log(`[${record.level}] ${record.message}`, record.fields);
 * });
 * unlisten();
 * ```
 */
export async function onLog(handler: (record: LogRecord) => void): Promise<UnlistenFn> {
  return subscribe("subscribe_logs", handler);
}
