/**
 * A fake plugin behind Tauri's IPC, faithful where the transport depends on it:
 * - `mockIPC` from `@tauri-apps/api/mocks` installs `window.__TAURI_INTERNALS__`; its handler does
 *   not see invoke options, so `mockPlugin` wraps the installed `invoke` to record the headers too;
 * - a `Channel` registers its callback with `__TAURI_INTERNALS__.transformCallback` (the mock keeps
 *   it in a map) and is sent as `__CHANNEL__:<id>`; Tauri delivers each payload by calling that
 *   callback with `{ message, index }` (raw payloads arrive as an ArrayBuffer) and closes with
 *   `{ end: true, index }` when Rust drops the channel. `FakeChannel` does exactly that through the
 *   mock's `runCallback` (JSON payloads arrive as the value itself).
 */
import { create, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { mockIPC } from "@tauri-apps/api/mocks";

import type { ErrorInfo } from "../src/index.js";

/** One command the page sent, with its payload and headers. */
export interface Invocation {
  readonly cmd: string;
  readonly payload: unknown;
  readonly headers: Readonly<Record<string, string>>;
}

interface Internals {
  invoke: (cmd: string, args: unknown, options?: { headers?: HeadersInit }) => Promise<unknown>;
  runCallback: (id: number, data: unknown) => void;
  callbacks: Map<number, unknown>;
}

function internals(): Internals {
  return (window as unknown as { __TAURI_INTERNALS__: Internals }).__TAURI_INTERNALS__;
}

/**
 * Mocks the IPC (events included) and answers the plugin's commands with `handler`, recording
 * every command that is not the event plugin's.
 */
export function mockPlugin(handler: (invocation: Invocation) => unknown): Invocation[] {
  const calls: Invocation[] = [];
  mockIPC(() => undefined, { shouldMockEvents: true });
  const tauri = internals();
  const mocked = tauri.invoke;
  tauri.invoke = async (cmd, args, options) => {
    if (cmd.startsWith("plugin:event|")) return mocked(cmd, args, options);
    const invocation = { cmd, payload: args, headers: Object.fromEntries(new Headers(options?.headers)) };
    calls.push(invocation);
    return handler(invocation);
  };
  return calls;
}

/** How many Tauri callbacks are registered (channels and listeners). */
export function registeredCallbacks(): number {
  return internals().callbacks.size;
}

/** The Rust end of a Channel the page created: sends payloads to it the way Tauri delivers them. */
export class FakeChannel {
  readonly id: number;
  #index = 0;

  /** The channel the `anysync-channel` header names. */
  constructor(header: string | undefined) {
    const match = /^__CHANNEL__:(\d+)$/.exec(header ?? "");
    if (match?.[1] === undefined) throw new Error(`not a channel header: ${String(header)}`);
    this.id = Number(match[1]);
  }

  /** One channel payload (raw bytes: the page receives an ArrayBuffer). */
  send(bytes: Uint8Array): void {
    internals().runCallback(this.id, { message: bytes.slice().buffer, index: this.#index++ });
  }

  /** One JSON channel payload (a `Channel<T>` of a serde type: the page receives the value). */
  sendJson(message: unknown): void {
    internals().runCallback(this.id, { message, index: this.#index++ });
  }

  /** What Tauri sends when Rust drops the channel. */
  close(): void {
    internals().runCallback(this.id, { end: true, index: this.#index });
  }
}

/** One frame of the stream protocol: `[kind: u8][length: u32 LE][body]`. */
export function frame(kind: number, body: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(5 + body.length);
  new DataView(bytes.buffer).setUint8(0, kind);
  new DataView(bytes.buffer).setUint32(1, body.length, true);
  bytes.set(body, 5);
  return bytes;
}

/** A message frame holding `init` encoded as `schema`. */
export function messageFrame<S extends DescMessage>(schema: S, init: MessageInitShape<S>): Uint8Array {
  return frame(0, toBinary(schema, create(schema, init)));
}

/** An end frame: OK without an error, else the plugin's JSON error. */
export function endFrame(error?: ErrorInfo): Uint8Array {
  return frame(1, error === undefined ? new Uint8Array(0) : new TextEncoder().encode(JSON.stringify(error)));
}

/** The bytes of all parts, one after the other. */
export function concat(...parts: readonly Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.length;
  }
  return bytes;
}

/** The ArrayBuffer the plugin answers a unary call with. */
export function answer<S extends DescMessage>(schema: S, init: MessageInitShape<S>): ArrayBuffer {
  return toBinary(schema, create(schema, init)).slice().buffer;
}

/** Lets every pending promise callback and zero-delay timer run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 0));
}

/** A promise that never settles: a plugin that does not answer (yet). */
export function never(): Promise<never> {
  return new Promise<never>(() => undefined);
}
