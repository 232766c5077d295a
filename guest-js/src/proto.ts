/**
 * The response types generated from `go-backend/api/proto/anysync/v1/health.proto` (ts-proto,
 * types only; `npm run gen`), re-exported under the names the API uses. The plugin's JSON is
 * exactly these shapes: int64 fields are numbers, enums are their value names.
 *
 * @module
 */

import * as generated from "./generated/anysync/v1/health.js";

/**
 * The answer to {@link ping}: the echo, and when the backend handled it.
 * Generated from the `anysync.v1.PingResponse` message.
 *
 * @example
 * ```ts
 * import { ping, type PingResponse } from "tauri-plugin-anysync-api";
 *
 * const sent = Date.now();
 * const reply: PingResponse = await ping("hello");
 * console.log(reply.message, `handled ${reply.handledAtUnixMicros / 1000 - sent} ms after sending`);
 * ```
 */
export type PingResponse = generated.PingResponse;

/**
 * The answer to {@link health}: whether the backend serves requests, its identity and uptime.
 * Generated from the `anysync.v1.HealthCheckResponse` message.
 *
 * @example
 * ```ts
 * import { health, type HealthCheckResponse } from "tauri-plugin-anysync-api";
 *
 * const h: HealthCheckResponse = await health();
 * console.log(`backend ${h.version} (pid ${h.pid}, protocol ${h.protocolVersion}), up ${h.uptimeMs} ms`);
 * ```
 */
export type HealthCheckResponse = generated.HealthCheckResponse;

/**
 * Whether the backend accepts new work ({@link HealthCheckResponse.status}): the value names of the
 * `anysync.v1.HealthCheckResponse.ServingStatus` enum, as a type and as a constant object.
 *
 * | value | meaning |
 * | --- | --- |
 * | `SERVING_STATUS_UNSPECIFIED` | the backend did not say; treat as not serving |
 * | `SERVING_STATUS_SERVING` | the backend accepts and handles requests |
 * | `SERVING_STATUS_NOT_SERVING` | the backend is shutting down or not ready |
 *
 * @example
 * ```ts
 * import { health, HealthCheckResponse_ServingStatus } from "tauri-plugin-anysync-api";
 *
 * const { status } = await health();
 * if (status === HealthCheckResponse_ServingStatus.SERVING_STATUS_SERVING) console.log("serving");
 * ```
 */
export const HealthCheckResponse_ServingStatus = generated.HealthCheckResponse_ServingStatus;

/**
 * One value of {@link HealthCheckResponse_ServingStatus}: `"SERVING_STATUS_UNSPECIFIED"`,
 * `"SERVING_STATUS_SERVING"` or `"SERVING_STATUS_NOT_SERVING"`.
 *
 * @example
 * ```ts
 * import type { HealthCheckResponse_ServingStatus } from "tauri-plugin-anysync-api";
 *
 * const serving: HealthCheckResponse_ServingStatus = "SERVING_STATUS_SERVING";
 * ```
 */
export type HealthCheckResponse_ServingStatus = generated.HealthCheckResponse_ServingStatus;
