/**
 * Typed clients for any service in the `.proto` trees: the plugin's and the app's own.
 *
 * @module
 */

import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Client, type Transport } from "@connectrpc/connect";

import { anysyncTransport } from "./transport.js";

/**
 * A typed client of `S`, as connect-es's `createClient` makes it: one method per RPC, in
 * lowerCamelCase. A unary method returns a promise of the response message; a server-streaming
 * method returns an `AsyncIterable` of them. Every method takes the request (a message or a plain
 * object of its fields) and optional call options: `signal`, `timeoutMs`.
 *
 * @example
 * ```ts
 * import { createAnysyncClient, HealthService, type AnysyncClient } from "tauri-plugin-anysync-api";
 *
 * const client: AnysyncClient<typeof HealthService> = createAnysyncClient(HealthService);
 * const reply = await client.ping({ message: "hi" });
 * ```
 */
export type AnysyncClient<S extends DescService> = Client<S>;

let sharedTransport: Transport | undefined;

/** The transport with default options, made on first use (importing the package does nothing). */
export function defaultTransport(): Transport {
  sharedTransport ??= anysyncTransport();
  return sharedTransport;
}

/**
 * A typed client of a generated service, calling the Go backend through the plugin: connect's
 * `createClient(service, transport)` with {@link anysyncTransport} (default options, one shared
 * instance) unless another transport is given. The front end may call only the methods its
 * capabilities allow (`anysync:allow-call` scopes; `anysync:default` allows the plugin's health
 * services); any other rejects with `PERMISSION_DENIED` before anything reaches Go.
 *
 * @param service The service descriptor from the generated `*_pb.ts`, e.g. {@link HealthService}.
 * @param transport Another transport, e.g. `anysyncTransport({ streamWindow: 8 })`.
 * @returns The client; every method rejects (or its stream throws) with an {@link AnysyncError}.
 * @example
 * ```ts
 * import { createAnysyncClient, isAnysyncError } from "tauri-plugin-anysync-api";
 * import { CounterService } from "./gen/example/v1/counter_pb.js";
 *
 * const counters = createAnysyncClient(CounterService);
 * try {
 *   const { value } = await counters.add({ name: "clicks", delta: 1n }, { timeoutMs: 2_000 });
 *   console.log(value);
 * } catch (error) {
 *   if (isAnysyncError(error, "PERMISSION_DENIED")) console.error("allow example.v1.CounterService/* in a capability");
 * }
 * ```
 */
export function createAnysyncClient<S extends DescService>(service: S, transport?: Transport): Client<S> {
  return createClient(service, transport ?? defaultTransport());
}
