/**
 * The plugin's own services and messages, generated from `go-backend/api/proto` by protobuf-es v2
 * (`npm run gen`, into `src/gen/`), re-exported under the names the API uses. Nothing here is
 * written by hand but the documentation: the shapes are the generated ones, so they cannot drift
 * from the `.proto`. 64-bit integers are `bigint`, enums are numeric TypeScript enums, and every
 * message carries its `$typeName`.
 *
 * @module
 */

import * as health from "./gen/anysync/v1/health_pb.js";

/**
 * The descriptor of `anysync.v1.HealthService` (`Check`, `Ping`): give it to
 * {@link createAnysyncClient} (or connect's `createClient` with {@link anysyncTransport}) for a
 * typed client. The default permission set (`anysync:default`) allows all of its methods.
 *
 * @example
 * ```ts
 * import { HealthService, createAnysyncClient } from "tauri-plugin-anysync-api";
 *
 * const client = createAnysyncClient(HealthService);
 * const { message } = await client.ping({ message: "hello" }, { timeoutMs: 1_000 });
 * ```
 */
export const HealthService = health.HealthService;

/**
 * The schema of {@link HealthCheckRequest} (`anysync.v1.HealthCheckRequest`), for `create`,
 * `toBinary` and `fromBinary` of `@bufbuild/protobuf`.
 *
 * @example
 * ```ts
 * import { create } from "@bufbuild/protobuf";
 * import { HealthCheckRequestSchema } from "tauri-plugin-anysync-api";
 *
 * const request = create(HealthCheckRequestSchema);
 * ```
 */
export const HealthCheckRequestSchema = health.HealthCheckRequestSchema;

/**
 * The request of `HealthService/Check`; it carries no parameters.
 * Generated from the `anysync.v1.HealthCheckRequest` message.
 *
 * @example
 * ```ts
 * import { create } from "@bufbuild/protobuf";
 * import { HealthCheckRequestSchema, type HealthCheckRequest } from "tauri-plugin-anysync-api";
 *
 * const request: HealthCheckRequest = create(HealthCheckRequestSchema);
 * ```
 */
export type HealthCheckRequest = health.HealthCheckRequest;

/**
 * The schema of {@link HealthCheckResponse} (`anysync.v1.HealthCheckResponse`).
 *
 * @example
 * ```ts
 * import { toJson } from "@bufbuild/protobuf";
 * import { HealthCheckResponseSchema, health } from "tauri-plugin-anysync-api";
 *
 * console.log(toJson(HealthCheckResponseSchema, await health())); // { status: "SERVING_STATUS_SERVING", ... }
 * ```
 */
export const HealthCheckResponseSchema = health.HealthCheckResponseSchema;

/**
 * The answer to {@link health} (`HealthService/Check`): whether the backend serves requests, its
 * version, launch-protocol version, pid and uptime. `uptimeMs` is an int64, so a `bigint`.
 * Generated from the `anysync.v1.HealthCheckResponse` message.
 *
 * @example
 * ```ts
 * import { health, type HealthCheckResponse } from "tauri-plugin-anysync-api";
 *
 * const h: HealthCheckResponse = await health();
 * console.log(`backend ${h.version} (pid ${h.pid}, protocol ${h.protocolVersion}), up ${Number(h.uptimeMs)} ms`);
 * ```
 */
export type HealthCheckResponse = health.HealthCheckResponse;

/**
 * Whether the backend accepts new work ({@link HealthCheckResponse.status}): the generated
 * numeric enum of `anysync.v1.HealthCheckResponse.ServingStatus`, a type and a value (its reverse
 * mapping gives the name: `HealthCheckResponse_ServingStatus[1]` is `"SERVING"`).
 *
 * | member | value | meaning |
 * | --- | --- | --- |
 * | `UNSPECIFIED` | 0 | the backend did not say; treat as not serving |
 * | `SERVING` | 1 | the backend accepts and handles requests |
 * | `NOT_SERVING` | 2 | the backend is shutting down or not ready |
 *
 * @example
 * ```ts
 * import { health, HealthCheckResponse_ServingStatus } from "tauri-plugin-anysync-api";
 *
 * const { status } = await health();
 * if (status === HealthCheckResponse_ServingStatus.SERVING) console.log("serving");
 * console.log(HealthCheckResponse_ServingStatus[status]); // "SERVING"
 * ```
 */
export const HealthCheckResponse_ServingStatus = health.HealthCheckResponse_ServingStatus;

/**
 * One value of {@link HealthCheckResponse_ServingStatus}.
 *
 * @example
 * ```ts
 * import { HealthCheckResponse_ServingStatus } from "tauri-plugin-anysync-api";
 *
 * const serving: HealthCheckResponse_ServingStatus = HealthCheckResponse_ServingStatus.SERVING;
 * ```
 */
export type HealthCheckResponse_ServingStatus = health.HealthCheckResponse_ServingStatus;

/**
 * The schema of {@link PingRequest} (`anysync.v1.PingRequest`).
 *
 * @example
 * ```ts
 * import { create, toBinary } from "@bufbuild/protobuf";
 * import { PingRequestSchema } from "tauri-plugin-anysync-api";
 *
 * const bytes = toBinary(PingRequestSchema, create(PingRequestSchema, { message: "hello" }));
 * ```
 */
export const PingRequestSchema = health.PingRequestSchema;

/**
 * The request of `HealthService/Ping`: the text to echo.
 * Generated from the `anysync.v1.PingRequest` message.
 *
 * @example
 * ```ts
 * import { create } from "@bufbuild/protobuf";
 * import { PingRequestSchema, type PingRequest } from "tauri-plugin-anysync-api";
 *
 * const request: PingRequest = create(PingRequestSchema, { message: "hello" });
 * ```
 */
export type PingRequest = health.PingRequest;

/**
 * The schema of {@link PingResponse} (`anysync.v1.PingResponse`).
 *
 * @example
 * ```ts
 * import { fromBinary } from "@bufbuild/protobuf";
 * import { PingResponseSchema } from "tauri-plugin-anysync-api";
 *
 * const reply = fromBinary(PingResponseSchema, bytes);
 * ```
 */
export const PingResponseSchema = health.PingResponseSchema;

/**
 * The answer to {@link ping} (`HealthService/Ping`): the echo, and when the backend handled it.
 * `handledAtUnixMicros` is an int64, so a `bigint` (microseconds since the Unix epoch).
 * Generated from the `anysync.v1.PingResponse` message.
 *
 * @example
 * ```ts
 * import { ping, type PingResponse } from "tauri-plugin-anysync-api";
 *
 * const sent = Date.now();
 * const reply: PingResponse = await ping("hello");
 * console.log(reply.message, `handled ${Number(reply.handledAtUnixMicros / 1000n) - sent} ms after sending`);
 * ```
 */
export type PingResponse = health.PingResponse;
