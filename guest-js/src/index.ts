/**
 * The TypeScript API of tauri-plugin-anysync: call the app's supervised Go backend, watch its
 * status and logs, and handle its errors by code.
 *
 * ```ts
 * import { AnysyncError, onStatus, ping } from "tauri-plugin-anysync-api";
 *
 * await onStatus((s) => console.log(`backend is ${s.state}`));
 * try {
 *   console.log((await ping("hello")).message);
 * } catch (error) {
 *   if (error instanceof AnysyncError) console.error(error.code, error.message);
 * }
 * ```
 *
 * @packageDocumentation
 */

export { LOG_EVENT, STATUS_EVENT, health, logs, onLog, onStatus, ping, restart, status } from "./api.js";
export { AnysyncError, ERROR_CODES, GRPC_CODES, PLUGIN_ERROR_CODES, isAnysyncError } from "./errors.js";
export type { AnysyncErrorCode, AnysyncErrorOptions, GrpcCode, PluginErrorCode } from "./errors.js";
export { HealthCheckResponse_ServingStatus } from "./proto.js";
export type { HealthCheckResponse, PingResponse } from "./proto.js";
export type { ErrorDetails, ErrorInfo, LogLevel, LogRecord, State, Status } from "./types.js";
