/**
 * The TypeScript API of tauri-plugin-anysync: call the app's supervised Go backend through
 * generated clients, keep documents in its store (`openSpace`), watch its status and logs, and handle
 * its errors by code.
 *
 * ```ts
 * import { AnysyncError, createAnysyncClient, HealthService, onStatus } from "tauri-plugin-anysync-api";
 *
 * await onStatus((s) => console.log(`backend is ${s.state}`));
 * try {
 *   const client = createAnysyncClient(HealthService);
 *   console.log((await client.ping({ message: "hello" })).message);
 * } catch (error) {
 *   if (error instanceof AnysyncError) console.error(error.code, error.message);
 * }
 * ```
 *
 * @packageDocumentation
 */

export { LOG_EVENT, STATUS_EVENT, health, logs, onLog, onStatus, ping, restart, status } from "./api.js";
export { createAnysyncClient } from "./client.js";
export type { AnysyncClient } from "./client.js";
export { AnysyncError, ERROR_CODES, GRPC_CODES, PLUGIN_ERROR_CODES, isAnysyncError } from "./errors.js";
export type { AnysyncErrorCode, AnysyncErrorOptions, GrpcCode, PluginErrorCode } from "./errors.js";
export {
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus,
  HealthService,
  PingRequestSchema,
  PingResponseSchema,
} from "./proto.js";
export type { HealthCheckRequest, HealthCheckResponse, PingRequest, PingResponse } from "./proto.js";
export { deleteSpace, listSpaces, openSpace } from "./store.js";
export type {
  BatchOp,
  Change,
  ChangeKind,
  Collection,
  DocMeta,
  Explanation,
  Filter,
  FindOptions,
  FindResult,
  IndexInfo,
  IndexOptions,
  Modifiers,
  NewDoc,
  OpenSpaceOptions,
  Sort,
  Space,
  StoredDoc,
  WatchOptions,
  WriteOptions,
} from "./store.js";
export { anysyncTransport } from "./transport.js";
export type { AnysyncTransportOptions } from "./transport.js";
export type { ErrorDetails, ErrorInfo, LogLevel, LogRecord, State, Status } from "./types.js";
