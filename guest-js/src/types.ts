/**
 * The shapes the plugin sends that have no `.proto` message: the supervisor's status, backend log
 * records and errors. They mirror `src/models.rs` and `src/error.rs` of the Rust plugin (serde,
 * camelCase; an `Option` is `T | null`).
 *
 * @module
 */

import type { AnysyncErrorCode } from "./errors.js";

/**
 * The supervisor's lifecycle state:
 * `starting -> running -> unhealthy -> restarting -> running | failed`, and
 * `running -> stopping -> stopped`.
 *
 * | state | meaning |
 * | --- | --- |
 * | `starting` | the first launch is under way |
 * | `running` | the backend is connected and answering |
 * | `unhealthy` | health checks failed; the backend is about to be restarted |
 * | `restarting` | the backend died or was unhealthy and is being started again |
 * | `failed` | too many failures, or one a restart cannot fix; waiting for {@link restart} |
 * | `stopping` | the backend is being shut down |
 * | `stopped` | the backend is shut down |
 *
 * @example
 * ```ts
 * import { status, type State } from "tauri-plugin-anysync-api";
 *
 * const state: State = (await status()).state;
 * const usable = state === "running";
 * ```
 */
export type State = "starting" | "running" | "unhealthy" | "restarting" | "failed" | "stopping" | "stopped";

/**
 * A snapshot of the supervised backend: what {@link status} and {@link restart} return, what
 * {@link onStatus} hands over, and what every `anysync://status` event carries.
 *
 * @example
 * ```ts
 * import { status, type Status } from "tauri-plugin-anysync-api";
 *
 * const s: Status = await status();
 * if (s.state === "running") console.log(`backend ${s.version ?? "?"} on ${s.addr ?? "?"} (pid ${s.pid ?? "?"})`);
 * if (s.lastError) console.warn(`last failure: ${s.lastError.code}: ${s.lastError.message}`);
 * ```
 */
export interface Status {
  /**
   * Grows with every status the supervisor publishes (0 before the first): of two statuses, the
   * one with the higher `seq` is the fresher. {@link onStatus} drops any status not newer than
   * the last it handed over.
   */
  seq: number;
  /** The lifecycle state. */
  state: State;
  /** The backend's process id, while a process exists. */
  pid: number | null;
  /** The backend's loopback address (`127.0.0.1:PORT`), while running. */
  addr: string | null;
  /** The backend's version from its handshake, once known. */
  version: string | null;
  /** How many times the backend was restarted since the plugin started. */
  restarts: number;
  /** The last failure, kept until the next one (recovery does not clear it). */
  lastError: ErrorInfo | null;
  /** When this state was entered, milliseconds since the Unix epoch. */
  sinceMs: number;
  /** When the current backend process became ready, milliseconds since the Unix epoch. */
  runningSinceMs: number | null;
}

/**
 * Severity of a backend log record, as Go's `log/slog` names it (lower-cased).
 *
 * @example
 * ```ts
 * import type { LogLevel } from "tauri-plugin-anysync-api";
 *
 * const rank: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
 * ```
 */
export type LogLevel = "debug" | "info" | "warn" | "error";

/**
 * One line the backend wrote to its stderr, parsed: what {@link logs} returns, what {@link onLog}
 * hands over, and what every `anysync://log` event carries.
 *
 * @example
 * ```ts
 * import { onLog, type LogRecord } from "tauri-plugin-anysync-api";
 *
 * await onLog((record: LogRecord) => {
 *   if (record.level === "error") console.error(`[backend ${record.pid ?? "?"}] ${record.message}`, record.fields);
 * });
 * ```
 */
export interface LogRecord {
  /**
   * Increases by one per record for the plugin's lifetime, so {@link logs} and
   * {@link onLog} can be merged without duplicates.
   */
  seq: number;
  /** The backend's timestamp (RFC 3339), if it gave one. */
  time: string | null;
  /** Severity; a line that is not JSON is `info` (or `error` while the backend is dying). */
  level: LogLevel;
  /** The message (slog's `msg`), or the whole line when it is not JSON. */
  message: string;
  /** Every other attribute of the record. */
  fields: Record<string, unknown>;
  /** The backend process that wrote it. */
  pid: number | null;
}

/**
 * An error as the plugin sends it: the rejection value of a failed command, and
 * {@link Status.lastError}. {@link AnysyncError.from} turns it into an {@link AnysyncError}.
 *
 * @example
 * ```ts
 * import { status, type ErrorInfo } from "tauri-plugin-anysync-api";
 *
 * const last: ErrorInfo | null = (await status()).lastError;
 * if (last?.code === "SIDECAR_EXITED") console.warn(last.details?.stderrTail);
 * ```
 */
export interface ErrorInfo {
  /** A gRPC code name (`"UNAVAILABLE"`) or a plugin code (`"SIDECAR_NOT_FOUND"`). */
  code: AnysyncErrorCode;
  /** What happened and what to do. */
  message: string;
  /** Structured context; absent when there is none. */
  details?: ErrorDetails;
}

/**
 * Structured context of an error. Which keys are present depends on the code; other keys may
 * appear in later versions.
 *
 * | key | codes |
 * | --- | --- |
 * | `path` | `SIDECAR_NOT_FOUND`, `SPAWN_FAILED` |
 * | `stderrTail` | `HANDSHAKE_TIMEOUT`, `SIDECAR_EXITED` (when the sidecar wrote any) |
 * | `expected`, `found` | `INCOMPATIBLE_BACKEND` |
 * | `restarts`, `cause` | `SIDECAR_FAILED` |
 * | `key` | `CONFIG` |
 * | `state` | `NOT_RUNNING` |
 *
 * @example
 * ```ts
 * import { isAnysyncError, type ErrorDetails } from "tauri-plugin-anysync-api";
 *
 * if (isAnysyncError(error, "SIDECAR_FAILED")) {
 *   const details: ErrorDetails | undefined = error.details;
 *   console.error(`gave up after ${details?.restarts ?? 0} restarts: ${details?.cause?.message ?? ""}`);
 * }
 * ```
 */
export interface ErrorDetails {
  /** The sidecar binary the plugin looked for or tried to start. */
  readonly path?: string;
  /** The last lines the sidecar wrote to stderr. */
  readonly stderrTail?: readonly string[];
  /** The launch-protocol version this plugin speaks. */
  readonly expected?: number;
  /** The launch-protocol version the backend announced. */
  readonly found?: number;
  /** Restarts attempted before the supervisor gave up. */
  readonly restarts?: number;
  /** The last failure before the supervisor gave up. */
  readonly cause?: ErrorInfo;
  /** The offending configuration key, as written in tauri.conf.json. */
  readonly key?: string;
  /** The supervisor's state when a call found the backend not running. */
  readonly state?: State;
  /** Any other context. */
  readonly [key: string]: unknown;
}
