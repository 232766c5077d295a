/**
 * One error model from Go to TypeScript: the codes, and the error every API call rejects with.
 *
 * @module
 */

import { Code, ConnectError } from "@connectrpc/connect";

import type { ErrorDetails, ErrorInfo } from "./types.js";

/**
 * The gRPC status codes by their canonical names, in numeric order (`OK` is 0, `UNAUTHENTICATED`
 * is 16). The Go backend answers with these; the plugin itself also reports `UNAVAILABLE` (the
 * backend is restarting and did not come back within the call's deadline) and `DEADLINE_EXCEEDED`
 * (the backend did not answer in time).
 *
 * @example
 * ```ts
 * import { GRPC_CODES } from "tauri-plugin-anysync-api";
 *
 * const fromBackend = (GRPC_CODES as readonly string[]).includes(error.code);
 * ```
 */
export const GRPC_CODES = /* @__PURE__ */ Object.freeze([
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
] as const);

/**
 * The codes of failures in the plugin itself, before or around a gRPC call: finding, starting,
 * handshaking with and supervising the sidecar.
 *
 * @example
 * ```ts
 * import { PLUGIN_ERROR_CODES } from "tauri-plugin-anysync-api";
 *
 * const sidecarProblem = (PLUGIN_ERROR_CODES as readonly string[]).includes(error.code);
 * ```
 */
export const PLUGIN_ERROR_CODES = /* @__PURE__ */ Object.freeze([
  "SIDECAR_NOT_FOUND",
  "SPAWN_FAILED",
  "HANDSHAKE_TIMEOUT",
  "HANDSHAKE_INVALID",
  "INCOMPATIBLE_BACKEND",
  "SIDECAR_EXITED",
  "NOT_RUNNING",
  "SIDECAR_FAILED",
  "CONFIG",
  "IO",
] as const);

/**
 * Every code an {@link AnysyncError} can carry: {@link GRPC_CODES} followed by
 * {@link PLUGIN_ERROR_CODES}.
 *
 * @example
 * ```ts
 * import { ERROR_CODES } from "tauri-plugin-anysync-api";
 *
 * for (const code of ERROR_CODES) console.log(code); // "OK", "CANCELLED", ..., "IO"
 * ```
 */
export const ERROR_CODES = /* @__PURE__ */ Object.freeze([
  ...GRPC_CODES,
  ...PLUGIN_ERROR_CODES,
] as const);

/**
 * A gRPC status code name, as the Go backend reports it. See {@link GRPC_CODES}.
 *
 * | code | meaning |
 * | --- | --- |
 * | `OK` | not an error |
 * | `CANCELLED` | the operation was cancelled, typically by the caller |
 * | `UNKNOWN` | an error nobody could classify (also: an unrecognised rejection) |
 * | `INVALID_ARGUMENT` | the caller sent an invalid argument |
 * | `DEADLINE_EXCEEDED` | the backend did not answer within the call's deadline |
 * | `NOT_FOUND` | a requested entity was not found |
 * | `ALREADY_EXISTS` | the entity the caller tried to create exists |
 * | `PERMISSION_DENIED` | the caller may not do this (also: a Tauri capability is missing) |
 * | `RESOURCE_EXHAUSTED` | a quota, the message size or memory is exhausted |
 * | `FAILED_PRECONDITION` | the system is not in the state the operation needs |
 * | `ABORTED` | aborted, typically by a concurrency conflict |
 * | `OUT_OF_RANGE` | attempted past the valid range |
 * | `UNIMPLEMENTED` | the backend (or the plugin) does not implement this |
 * | `INTERNAL` | an internal invariant of the backend broke |
 * | `UNAVAILABLE` | the backend is unreachable right now; retrying may succeed |
 * | `DATA_LOSS` | unrecoverable data loss or corruption |
 * | `UNAUTHENTICATED` | the call lacked the launch token |
 *
 * @example
 * ```ts
 * import type { GrpcCode } from "tauri-plugin-anysync-api";
 *
 * const retryable: readonly GrpcCode[] = ["UNAVAILABLE", "DEADLINE_EXCEEDED"];
 * ```
 */
export type GrpcCode = (typeof GRPC_CODES)[number];

/**
 * A code of the plugin's own failures. See {@link PLUGIN_ERROR_CODES}.
 *
 * | code | meaning |
 * | --- | --- |
 * | `SIDECAR_NOT_FOUND` | the sidecar binary is not where the plugin looked (`details.path`) |
 * | `SPAWN_FAILED` | the operating system refused to start the sidecar (`details.path`) |
 * | `HANDSHAKE_TIMEOUT` | the sidecar did not become ready (handshake and a first SERVING health check) within `handshakeTimeoutMs` (`details.stderrTail`) |
 * | `HANDSHAKE_INVALID` | the sidecar's first stdout line was not a handshake |
 * | `INCOMPATIBLE_BACKEND` | the sidecar speaks another launch protocol (`details.expected`, `details.found`) |
 * | `SIDECAR_EXITED` | the sidecar exited before it was ready (`details.stderrTail`) |
 * | `NOT_RUNNING` | the backend is stopping or stopped (`details.state`) |
 * | `SIDECAR_FAILED` | the supervisor gave up restarting (`details.restarts`, `details.cause`) |
 * | `CONFIG` | a `plugins.anysync` setting is invalid (`details.key`) |
 * | `IO` | an I/O error talking to the sidecar |
 *
 * The launch failures (`SIDECAR_NOT_FOUND` to `SIDECAR_EXITED`) reach the front end in
 * `Status.lastError` and as `details.cause` of `SIDECAR_FAILED`; calls made while the backend
 * cannot run reject with `SIDECAR_FAILED` or `NOT_RUNNING`.
 *
 * @example
 * ```ts
 * import type { PluginErrorCode } from "tauri-plugin-anysync-api";
 *
 * const needsRestart: PluginErrorCode = "SIDECAR_FAILED";
 * ```
 */
export type PluginErrorCode = (typeof PLUGIN_ERROR_CODES)[number];

/**
 * The code of an {@link AnysyncError}: a gRPC code name ({@link GrpcCode}) when the Go backend
 * (or the transport to it) failed, or one of the plugin's own ({@link PluginErrorCode}) when the
 * sidecar could not be found, started or kept alive. The list of all of them is
 * {@link ERROR_CODES}.
 *
 * Rejections that do not come from the plugin are mapped too: Tauri's own refusals (a missing
 * capability: `PERMISSION_DENIED`; an unknown command or plugin: `UNIMPLEMENTED`; arguments of the
 * wrong type: `INVALID_ARGUMENT`) and anything else (`UNKNOWN`).
 *
 * @example
 * ```ts
 * import type { AnysyncErrorCode } from "tauri-plugin-anysync-api";
 *
 * function advice(code: AnysyncErrorCode): string {
 *   switch (code) {
 *     case "UNAVAILABLE":
 *     case "DEADLINE_EXCEEDED":
 *       return "The backend is busy or restarting; try again.";
 *     case "SIDECAR_FAILED":
 *       return "The backend keeps failing; fix the cause and call restart().";
 *     default:
 *       return "Unexpected error.";
 *   }
 * }
 * ```
 */
export type AnysyncErrorCode = GrpcCode | PluginErrorCode;

/**
 * The optional parts of a new {@link AnysyncError}.
 *
 * @example
 * ```ts
 * import { AnysyncError, type AnysyncErrorOptions } from "tauri-plugin-anysync-api";
 *
 * const options: AnysyncErrorOptions = { details: { key: "logLevel" } };
 * throw new AnysyncError("invalid log level", "CONFIG", options);
 * ```
 */
export interface AnysyncErrorOptions {
  /** Structured context, e.g. `{ path }` for `SIDECAR_NOT_FOUND`. */
  readonly details?: ErrorDetails;
  /** The value this error was made from (kept as the standard `Error.cause`). */
  readonly cause?: unknown;
}

/**
 * Marks every AnysyncError, from whichever copy of this package made it. `Symbol.for` gives the
 * same symbol to every copy in the page, so `instanceof` works across bundles.
 */
const brand = Symbol.for("tauri-plugin-anysync-api/AnysyncError");

function isErrorCode(value: unknown): value is AnysyncErrorCode {
  return typeof value === "string" && (ERROR_CODES as readonly string[]).includes(value);
}

/**
 * connect's numeric {@link Code} for each plugin code: the gRPC code a gRPC client would have seen
 * for the same failure. A fault only a fix can cure (a missing or incompatible sidecar, bad
 * configuration, a supervisor that gave up, a stopped backend) is `FailedPrecondition`; one that
 * may pass by itself (a sidecar that died or was slow to start, an I/O error) is `Unavailable`.
 */
const connectCodes: Readonly<Record<PluginErrorCode, Code>> = {
  SIDECAR_NOT_FOUND: Code.FailedPrecondition,
  SPAWN_FAILED: Code.FailedPrecondition,
  HANDSHAKE_TIMEOUT: Code.Unavailable,
  HANDSHAKE_INVALID: Code.FailedPrecondition,
  INCOMPATIBLE_BACKEND: Code.FailedPrecondition,
  SIDECAR_EXITED: Code.Unavailable,
  NOT_RUNNING: Code.FailedPrecondition,
  SIDECAR_FAILED: Code.FailedPrecondition,
  CONFIG: Code.FailedPrecondition,
  IO: Code.Unavailable,
};

/** connect's {@link Code} of each gRPC code, by number; `OK` is no failure and has no member. */
const grpcConnectCodes: Readonly<Record<GrpcCode, Code>> = {
  OK: Code.Unknown,
  CANCELLED: Code.Canceled,
  UNKNOWN: Code.Unknown,
  INVALID_ARGUMENT: Code.InvalidArgument,
  DEADLINE_EXCEEDED: Code.DeadlineExceeded,
  NOT_FOUND: Code.NotFound,
  ALREADY_EXISTS: Code.AlreadyExists,
  PERMISSION_DENIED: Code.PermissionDenied,
  RESOURCE_EXHAUSTED: Code.ResourceExhausted,
  FAILED_PRECONDITION: Code.FailedPrecondition,
  ABORTED: Code.Aborted,
  OUT_OF_RANGE: Code.OutOfRange,
  UNIMPLEMENTED: Code.Unimplemented,
  INTERNAL: Code.Internal,
  UNAVAILABLE: Code.Unavailable,
  DATA_LOSS: Code.DataLoss,
  UNAUTHENTICATED: Code.Unauthenticated,
};

/** connect's {@link Code} of an error code: the gRPC number, or the nearest one for a plugin code. */
function toConnectCode(code: AnysyncErrorCode): Code {
  return code in grpcConnectCodes ? grpcConnectCodes[code as GrpcCode] : connectCodes[code as PluginErrorCode];
}

/** The gRPC code name of connect's numeric code, when `value` is one. */
function grpcCodeOfNumber(value: unknown): GrpcCode | undefined {
  return typeof value === "number" && Number.isInteger(value) && value > 0 ? GRPC_CODES[value] : undefined;
}

function isObject(value: unknown): value is Readonly<Record<PropertyKey, unknown>> {
  return typeof value === "object" && value !== null;
}

/** Whether `value` is a plain object, as IPC results are (not an Error or another class). */
function isPlainObject(value: Readonly<Record<PropertyKey, unknown>>): boolean {
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** `options` plus `details` as sent, wrapped in `{ value }` when they are not an object. */
function withDetails(options: { readonly cause?: unknown }, details: unknown): AnysyncErrorOptions {
  if (details === undefined || details === null) return options;
  if (isObject(details) && !Array.isArray(details)) return { ...options, details };
  return { ...options, details: { value: details } };
}

/**
 * The code for a rejection that Tauri itself sends as a bare string, before the plugin runs.
 * The patterns are Tauri 2's messages: "anysync.ping not allowed. Permissions associated with
 * this command: ...", "Command ping not allowed by ACL", "plugin anysync not found",
 * "invalid args `message` for command `ping`: ...".
 */
function codeOfTauriMessage(text: string): AnysyncErrorCode {
  if (/\bnot allowed\b/i.test(text)) return "PERMISSION_DENIED";
  if (/^(?:command|plugin) \S+ not found$/i.test(text)) return "UNIMPLEMENTED";
  if (/^invalid args `/i.test(text)) return "INVALID_ARGUMENT";
  return "UNKNOWN";
}

/** A readable message for a rejection value that is neither an error nor a string. */
function describe(value: unknown): string {
  if (isObject(value)) {
    try {
      return JSON.stringify(value);
    } catch {
      // A cycle or a BigInt: fall back to the default conversion.
    }
  }
  return String(value);
}

/**
 * The error every function of this package rejects with: a typed {@link AnysyncErrorCode}, the
 * message (which says what happened and what to do), and structured `details` where there are
 * any.
 *
 * `instanceof AnysyncError` also recognises errors made by another copy of this package (two
 * bundles in one page), through a brand shared by all copies.
 *
 * @example
 * ```ts
 * import { AnysyncError, ping } from "tauri-plugin-anysync-api";
 *
 * try {
 *   await ping("hello");
 * } catch (error) {
 *   if (error instanceof AnysyncError && error.code === "SIDECAR_FAILED") {
 *     // The supervisor gave up; details.cause is the last launch failure, e.g. SIDECAR_NOT_FOUND.
 *     console.error(error.message, error.details?.cause?.code, error.details?.cause?.details?.path);
 *   }
 * }
 * ```
 */
export class AnysyncError extends Error {
  /**
   * What went wrong, as a gRPC code name or one of the plugin's own codes.
   *
   * @example
   * ```ts
   * if (error.code === "UNAVAILABLE") setTimeout(retry, 1_000);
   * ```
   */
  readonly code: AnysyncErrorCode;

  /**
   * Structured context, when the plugin sent some: `path`, `stderrTail`, `expected`/`found`,
   * `restarts`/`cause`, `key` or `state`, depending on the code (see {@link ErrorDetails}).
   *
   * @example
   * ```ts
   * if (error.code === "CONFIG") console.error(`fix plugins.anysync.${String(error.details?.key)}`);
   * ```
   */
  declare readonly details?: ErrorDetails;

  /**
   * Always `"AnysyncError"`.
   *
   * @example
   * ```ts
   * console.log(error.name); // "AnysyncError"
   * ```
   */
  override readonly name: string = "AnysyncError";

  /**
   * Makes an error; the functions of this package do this for you, so this is mostly useful in
   * tests and mocks.
   *
   * @param message What happened and what to do; kept unchanged as `message`.
   * @param code The code; `UNKNOWN` when not given.
   * @param options `details` and `cause`.
   * @example
   * ```ts
   * throw new AnysyncError("backend is stopped; call restart()", "NOT_RUNNING", {
   *   details: { state: "stopped" },
   * });
   * ```
   */
  constructor(message: string, code: AnysyncErrorCode = "UNKNOWN", options: AnysyncErrorOptions = {}) {
    super(message, "cause" in options ? { cause: options.cause } : undefined);
    this.code = code;
    if (options.details !== undefined) this.details = options.details;
    Object.defineProperty(this, brand, { value: true });
  }

  /**
   * Converts any rejection or caught value into an AnysyncError:
   * - an AnysyncError (from any copy of this package) is returned unchanged;
   * - the plugin's `{ code, message, details? }` keeps its code, message and details (a code this
   *   version does not know becomes `UNKNOWN`, with the object kept as `cause`);
   * - a string (Tauri rejects with one before the plugin runs) keeps its text, with the code
   *   `PERMISSION_DENIED` when it says "not allowed", `UNIMPLEMENTED` for "command/plugin ... not
   *   found", `INVALID_ARGUMENT` for "invalid args ...", else `UNKNOWN`;
   * - an `Error` (or any object with a string `message`) keeps its message, its `details`, and
   *   itself as `cause`; its code is its own `code` property when that is an
   *   {@link AnysyncErrorCode}, connect's numeric code by its name for a `ConnectError` (whose
   *   message loses connect's `[code]` prefix), else `CANCELLED` for an `AbortError`,
   *   `DEADLINE_EXCEEDED` for a `TimeoutError`, `UNKNOWN` otherwise;
   * - anything else is `UNKNOWN`, with the value described in the message and kept as `cause`.
   *
   * @param reason The value to convert, typically what a `catch` caught.
   * @returns An AnysyncError; never throws.
   * @example
   * ```ts
   * import { AnysyncError } from "tauri-plugin-anysync-api";
   * import { invoke } from "@tauri-apps/api/core";
   *
   * try {
   *   await invoke("plugin:anysync|status");
   * } catch (error) {
   *   const e = AnysyncError.from(error);
   *   console.error(e.code, e.message);
   * }
   * ```
   */
  static from(reason: unknown): AnysyncError {
    if (reason instanceof AnysyncError) return reason;
    if (typeof reason === "string") return new AnysyncError(reason, codeOfTauriMessage(reason));
    if (isObject(reason) && typeof reason.message === "string") {
      // Structural, not `instanceof Error`: errors of another realm (an iframe, jsdom) count too.
      const { code, message, details, name } = reason;
      if (isErrorCode(code)) {
        // The plugin's `{ code, message, details? }` (the usual case) needs no `cause`: it is all here.
        return new AnysyncError(message, code, withDetails(isPlainObject(reason) ? {} : { cause: reason }, details));
      }
      const options = withDetails({ cause: reason }, details);
      const grpc = name === "ConnectError" ? grpcCodeOfNumber(code) : undefined;
      if (grpc !== undefined) {
        // connect's own error (e.g. from an interceptor): its code by name, its message without the
        // "[code]" prefix connect adds.
        const text = typeof reason.rawMessage === "string" ? reason.rawMessage : message;
        return new AnysyncError(text, grpc, { cause: reason });
      }
      if (name === "AbortError") return new AnysyncError(message, "CANCELLED", options);
      if (name === "TimeoutError") return new AnysyncError(message, "DEADLINE_EXCEEDED", options);
      return new AnysyncError(message, "UNKNOWN", options);
    }
    return new AnysyncError(describe(reason), "UNKNOWN", { cause: reason });
  }

  /**
   * Whether `value` is an AnysyncError, including one made by another copy of this package.
   * Called by `instanceof`; subclasses of AnysyncError keep the ordinary prototype check.
   *
   * @example
   * ```ts
   * // `other` comes from a second bundle of tauri-plugin-anysync-api in the same page.
   * other instanceof AnysyncError; // true
   * ```
   */
  static override [Symbol.hasInstance](this: unknown, value: unknown): boolean {
    if (this !== AnysyncError) {
      return typeof this === "function" && Function.prototype[Symbol.hasInstance].call(this, value);
    }
    return isObject(value) && value[brand] === true;
  }

  /**
   * The code as connect-es's numeric `Code` (from `@connectrpc/connect`), for code written against
   * connect: a gRPC code is its own number (`UNAVAILABLE` is `Code.Unavailable`, 14); a plugin code
   * is the nearest gRPC code: `FailedPrecondition` for what needs a fix first (`SIDECAR_NOT_FOUND`,
   * `SPAWN_FAILED`, `HANDSHAKE_INVALID`, `INCOMPATIBLE_BACKEND`, `NOT_RUNNING`, `SIDECAR_FAILED`,
   * `CONFIG`), `Unavailable` for what may pass (`HANDSHAKE_TIMEOUT`, `SIDECAR_EXITED`, `IO`).
   * `OK`, which is no failure and has no `Code` member, is `Code.Unknown`.
   *
   * @example
   * ```ts
   * import { Code } from "@connectrpc/connect";
   *
   * if (error instanceof AnysyncError && error.connectCode === Code.Unavailable) retryLater();
   * ```
   */
  get connectCode(): Code {
    return toConnectCode(this.code);
  }

  /**
   * This error as connect-es's `ConnectError`, for code that handles connect's errors only:
   * `code` is {@link AnysyncError.connectCode}, `rawMessage` this message, `cause` this error (so
   * the plugin code and `details` stay reachable). `ConnectError.from(error)` would not do: it
   * knows nothing of this class and answers `Code.Unknown`.
   *
   * @returns A new ConnectError.
   * @example
   * ```ts
   * import { ConnectError } from "@connectrpc/connect";
   *
   * const e: ConnectError = AnysyncError.from(caught).toConnectError();
   * console.log(e.code, e.rawMessage, (e.cause as AnysyncError).code);
   * ```
   */
  toConnectError(): ConnectError {
    return new ConnectError(this.message, this.connectCode, undefined, undefined, this);
  }

  /**
   * The plain `{ code, message, details? }` form, as the plugin sends it; `JSON.stringify(error)`
   * uses it, and {@link AnysyncError.from} turns it back into an AnysyncError.
   *
   * @example
   * ```ts
   * console.log(JSON.stringify(error)); // {"code":"UNAVAILABLE","message":"backend unavailable: ..."}
   * ```
   */
  toJSON(): ErrorInfo {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

/**
 * Whether `value` is an {@link AnysyncError} (from any copy of this package), optionally with one
 * of the given codes; a type guard that narrows `code` too.
 *
 * @param value Typically what a `catch` caught.
 * @param codes When given, the error's code must be one of them.
 * @example
 * ```ts
 * import { isAnysyncError, health } from "tauri-plugin-anysync-api";
 *
 * try {
 *   await health();
 * } catch (error) {
 *   if (isAnysyncError(error, "UNAVAILABLE", "DEADLINE_EXCEEDED")) {
 *     // error.code is "UNAVAILABLE" | "DEADLINE_EXCEEDED" here: retry later.
 *   }
 * }
 * ```
 */
export function isAnysyncError<C extends AnysyncErrorCode = AnysyncErrorCode>(
  value: unknown,
  ...codes: readonly C[]
): value is AnysyncError & { readonly code: C } {
  if (!(value instanceof AnysyncError)) return false;
  return codes.length === 0 || (codes as readonly AnysyncErrorCode[]).includes(value.code);
}
