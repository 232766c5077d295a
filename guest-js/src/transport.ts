/**
 * A connect-es `Transport` over Tauri IPC: every generated client's calls go to the plugin's
 * `call` and `stream` commands as raw protobuf bytes, as `docs/call-path.md` specifies (the
 * contract between this file and the Rust plugin).
 *
 * @module
 */

import {
  create,
  isMessage,
  fromBinary,
  toBinary,
  type DescMessage,
  type DescMethodStreaming,
  type DescMethodUnary,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import type { StreamResponse, Transport, UnaryResponse } from "@connectrpc/connect";
import { Channel, invoke } from "@tauri-apps/api/core";

import { AnysyncError } from "./errors.js";

/** The credit a stream starts with when {@link AnysyncTransportOptions.streamWindow} is not given. */
const DEFAULT_STREAM_WINDOW = 1024;
/** The most credit the plugin accepts in one grant (docs/call-path.md). */
const MAX_CREDIT = 1024;
/** The byte credit a stream starts with when {@link AnysyncTransportOptions.streamWindowBytes} is not given. */
const DEFAULT_STREAM_WINDOW_BYTES = 4 * 1024 * 1024;
/** The largest byte window this transport opens a stream with. */
const MAX_STREAM_WINDOW_BYTES = 64 * 1024 * 1024;
/**
 * How long after its deadline a call is failed here when the plugin has not answered. The plugin
 * enforces the deadline itself and says more (e.g. `UNAVAILABLE` for a backend that did not come
 * back from a restart in time), so this is only the safety net for an answer that never comes.
 */
const DEADLINE_GRACE_MS = 500;

/** Frame kinds on a stream's channel (docs/call-path.md). */
const FRAME_MESSAGE = 0;
const FRAME_END = 1;
const FRAME_HEADER_BYTES = 5;

/**
 * Options of {@link anysyncTransport}.
 *
 * @example
 * ```ts
 * import { anysyncTransport, type AnysyncTransportOptions } from "tauri-plugin-anysync-api";
 *
 * const options: AnysyncTransportOptions = { streamWindow: 8, defaultTimeoutMs: 5_000 };
 * const transport = anysyncTransport(options);
 * ```
 */
export interface AnysyncTransportOptions {
  /**
   * How many messages of one server stream may be on their way to or waiting in the page at once
   * (1 to 1024; default 1024). The stream opens with this much credit; each message the app takes
   * out of the iterator is given back, in batches of half the window, so the plugin never sends
   * more than the app has room for and a consumer that stops reading stops the Go handler's `Send`.
   */
  readonly streamWindow?: number;
  /**
   * How many bytes of one server stream's messages may be on their way to or waiting in the page
   * at once (1 to 64 MiB; default 4 MiB), beside {@link streamWindow}: the plugin takes a message
   * only while byte credit is left, so at most this plus one message is in flight. Many small
   * messages flow under a large message window, large ones stay bounded in bytes.
   */
  readonly streamWindowBytes?: number;
  /**
   * The deadline in milliseconds of calls that give no `timeoutMs` of their own. Without it, a
   * unary call has the plugin's `callTimeoutMs` and a stream has none.
   */
  readonly defaultTimeoutMs?: number;
}

/** `package.Service/Method`, the name the plugin routes by. */
function methodName(method: DescMethodUnary | DescMethodStreaming): string {
  return `${method.parent.typeName}/${method.name}`;
}

let callIdPrefix: string | undefined;
let callIdCounter = 0;

/**
 * A fresh `anysync-call-id`: unique in the webview even with several copies of this package in
 * the page (a random prefix per copy), at most 64 characters of `[A-Za-z0-9_-]`.
 */
function nextCallId(): string {
  if (callIdPrefix === undefined) {
    const random = crypto.getRandomValues(new Uint32Array(2));
    callIdPrefix = Array.from(random, (n) => n.toString(36)).join("");
  }
  callIdCounter += 1;
  return `${callIdPrefix}-${callIdCounter.toString(36)}`;
}

/** The deadline to use, in whole milliseconds, or undefined for none. */
function deadlineOf(timeoutMs: number | undefined, fallback: number | undefined): number | undefined {
  const value = timeoutMs ?? fallback;
  if (value === undefined) return undefined;
  if (Number.isNaN(value)) {
    throw new AnysyncError(`timeoutMs must be a number of milliseconds, got ${String(value)}`, "INVALID_ARGUMENT");
  }
  return Number.isFinite(value) ? Math.max(0, Math.ceil(value)) : undefined;
}

function cancelled(name: string, reason: unknown): AnysyncError {
  return new AnysyncError(`${name}: cancelled by the caller`, "CANCELLED", { cause: reason });
}

function deadlineExceeded(name: string, ms: number): AnysyncError {
  return new AnysyncError(`${name}: no answer within the deadline of ${String(ms)} ms`, "DEADLINE_EXCEEDED");
}

/** The request's protobuf bytes; a request that does not fit the schema is INVALID_ARGUMENT. */
function encode<I extends DescMessage>(schema: I, input: MessageInitShape<I>, name: string): Uint8Array {
  try {
    // A message of this type already (what `create` makes) needs no copy; a plain object does.
    const message = isMessage(input, schema) ? input : create(schema, input);
    return toBinary(schema, message);
  } catch (error) {
    throw new AnysyncError(`${name}: cannot encode the request: ${String(error)}`, "INVALID_ARGUMENT", { cause: error });
  }
}

/** Bytes as the IPC hands them over: an ArrayBuffer for raw answers (a view or an array in mocks). */
function bytesOf(value: unknown): Uint8Array | undefined {
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (Array.isArray(value) && value.every((n) => typeof n === "number")) return Uint8Array.from(value);
  // Another realm's ArrayBuffer (an iframe, jsdom next to Node) fails `instanceof`.
  if (Object.prototype.toString.call(value) === "[object ArrayBuffer]") return new Uint8Array(value as ArrayBuffer);
  return undefined;
}

/** The response message from the plugin's answer; anything that is not one is INTERNAL. */
function decode<O extends DescMessage>(schema: O, answer: unknown, name: string): MessageShape<O> {
  const bytes = bytesOf(answer);
  if (bytes === undefined) {
    throw new AnysyncError(`${name}: the plugin answered ${typeof answer}, not protobuf bytes`, "INTERNAL", { cause: answer });
  }
  try {
    return fromBinary(schema, bytes);
  } catch (error) {
    throw new AnysyncError(`${name}: cannot decode the response as ${schema.typeName}: ${String(error)}`, "INTERNAL", {
      cause: error,
    });
  }
}

/** Tells the plugin to cancel call or stream `id`; it ignores ids it does not know. */
function sendCancel(id: string): void {
  invoke("plugin:anysync|cancel", { id }).catch(() => {
    // Nothing to do: the call is over here already, and a failed cancel ends with the webview.
  });
}

/**
 * Runs `start` (which settles through the callbacks) until it settles, the signal aborts
 * (`CANCELLED`) or the deadline plus a grace passes (`DEADLINE_EXCEEDED`); the last two send
 * `cancel` for `id`.
 */
function unaryCall(
  name: string,
  id: string,
  signal: AbortSignal | undefined,
  deadline: number | undefined,
  start: () => Promise<unknown>,
): Promise<unknown> {
  // Nothing to race the answer against: no wrapper, no listener, no timer (the common call).
  if (signal === undefined && deadline === undefined) {
    return start().catch((error: unknown) => {
      throw AnysyncError.from(error);
    });
  }
  return new Promise((resolve, reject) => {
    let settled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = (): void => {
      stop(cancelled(name, signal?.reason));
    };
    const finish = (): boolean => {
      if (settled) return false;
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      clearTimeout(timer);
      return true;
    };
    function stop(error: AnysyncError): void {
      if (!finish()) return;
      sendCancel(id);
      reject(error);
    }
    signal?.addEventListener("abort", onAbort, { once: true });
    if (deadline !== undefined) {
      timer = setTimeout(() => {
        stop(deadlineExceeded(name, deadline));
      }, deadline + DEADLINE_GRACE_MS);
    }
    start().then(
      (answer) => {
        if (finish()) resolve(answer);
      },
      (error: unknown) => {
        if (finish()) reject(AnysyncError.from(error));
      },
    );
  });
}

/** One frame of a stream's channel. */
interface Frame {
  readonly kind: number;
  readonly body: Uint8Array;
}

/**
 * Splits a stream's channel payloads into frames, `[kind: u8][length: u32 LE][body]`, whatever
 * the payload boundaries: several frames in one payload, or one frame across several.
 */
class FrameDecoder {
  #pending: Uint8Array = new Uint8Array(0);

  push(chunk: Uint8Array): Frame[] {
    let buffer = chunk;
    if (this.#pending.length > 0) {
      buffer = new Uint8Array(this.#pending.length + chunk.length);
      buffer.set(this.#pending);
      buffer.set(chunk, this.#pending.length);
    }
    const frames: Frame[] = [];
    const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    let offset = 0;
    while (buffer.length - offset >= FRAME_HEADER_BYTES) {
      const kind = view.getUint8(offset);
      if (kind !== FRAME_MESSAGE && kind !== FRAME_END) throw new Error(`unknown frame kind ${String(kind)}`);
      const length = view.getUint32(offset + 1, true);
      const end = offset + FRAME_HEADER_BYTES + length;
      if (end > buffer.length) break;
      frames.push({ kind, body: buffer.subarray(offset + FRAME_HEADER_BYTES, end) });
      offset = end;
    }
    this.#pending = buffer.slice(offset);
    return frames;
  }
}

/** The error an end frame carries: empty for OK, else the plugin's JSON `{ code, message, details? }`. */
function endError(body: Uint8Array, name: string): AnysyncError | undefined {
  if (body.length === 0) return undefined;
  const text = new TextDecoder().decode(body);
  try {
    return AnysyncError.from(JSON.parse(text));
  } catch (error) {
    return new AnysyncError(`${name}: the stream ended with an unreadable error: ${text}`, "INTERNAL", { cause: error });
  }
}

/**
 * One server stream: opens it on the plugin with a Channel, buffers the messages the channel
 * brings (never more than the credit granted), hands them out as an async iterator, and grants
 * credit back as the app takes them.
 */
class ServerStream<O extends DescMessage> implements AsyncIterableIterator<MessageShape<O>> {
  readonly #schema: O;
  readonly #name: string;
  readonly #id: string;
  readonly #window: number;
  readonly #windowBytes: number;
  readonly #signal: AbortSignal | undefined;
  readonly #decoder = new FrameDecoder();
  /** Message bodies received and not yet handed out. */
  readonly #queue: Uint8Array[] = [];
  /** How the stream ended, once it did: `error` undefined for OK. Buffered messages go first. */
  #end: { readonly error: AnysyncError | undefined } | undefined;
  /** Whether the plugin may still send (no end frame, not refused, not cancelled by us). */
  #open = false;
  /** Whether the iterator is done: it returned the end, or the app left it. */
  #closed = false;
  #granted: number;
  #received = 0;
  #takenSinceGrant = 0;
  #grantedBytes: number;
  #receivedBytes = 0;
  #takenBytesSinceGrant = 0;
  #wake: (() => void) | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #onAbort = (): void => {
    this.#fail(cancelled(this.#name, this.#signal?.reason));
  };

  constructor(schema: O, name: string, id: string, window: { messages: number; bytes: number }, signal: AbortSignal | undefined) {
    this.#schema = schema;
    this.#name = name;
    this.#id = id;
    this.#window = window.messages;
    this.#granted = window.messages;
    this.#windowBytes = window.bytes;
    this.#grantedBytes = window.bytes;
    this.#signal = signal;
  }

  /** Opens the stream: registers the channel with the plugin, arms the signal and the deadline. */
  start(request: Uint8Array, deadline: number | undefined): void {
    if (this.#signal?.aborted === true) {
      this.#end = { error: cancelled(this.#name, this.#signal.reason) };
      return;
    }
    if (deadline === 0) {
      this.#end = { error: deadlineExceeded(this.#name, 0) };
      return;
    }
    let channel: Channel;
    try {
      channel = new Channel<unknown>((payload) => {
        this.#onPayload(payload);
      });
    } catch (error) {
      // Not in a Tauri webview (no `__TAURI_INTERNALS__`), or the IPC is broken.
      this.#end = { error: AnysyncError.from(error) };
      return;
    }
    const headers: Record<string, string> = {
      "anysync-method": this.#name,
      "anysync-call-id": this.#id,
      "anysync-channel": channel.toJSON(),
      "anysync-credit": String(this.#window),
      "anysync-credit-bytes": String(this.#windowBytes),
    };
    if (deadline !== undefined) {
      headers["anysync-timeout-ms"] = String(deadline);
      this.#timer = setTimeout(() => {
        this.#fail(deadlineExceeded(this.#name, deadline));
      }, deadline + DEADLINE_GRACE_MS);
    }
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
    this.#open = true;
    invoke("plugin:anysync|stream", request, { headers }).catch((error: unknown) => {
      // Refused before it was registered: nothing will ever arrive on the channel. Its callback
      // stays registered with Tauri (there is no public way to drop it) but holds nothing now.
      channel.onmessage = () => undefined;
      this.#open = false;
      this.#fail(AnysyncError.from(error));
    });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<MessageShape<O>, undefined>> {
    for (;;) {
      if (this.#closed) return { done: true, value: undefined };
      if (this.#signal?.aborted === true && this.#end?.error?.code !== "CANCELLED") {
        // Also after a graceful end: an aborted loop stops at once, without the buffered messages.
        this.#end = undefined;
        this.#fail(cancelled(this.#name, this.#signal.reason));
      }
      const body = this.#queue.shift();
      if (body !== undefined) {
        this.#taken(body.length);
        try {
          return { done: false, value: fromBinary(this.#schema, body) };
        } catch (error) {
          this.#fail(
            new AnysyncError(`${this.#name}: cannot decode a message as ${this.#schema.typeName}: ${String(error)}`, "INTERNAL", {
              cause: error,
            }),
          );
          continue;
        }
      }
      if (this.#end !== undefined) {
        this.#close();
        if (this.#end.error !== undefined) throw this.#end.error;
        return { done: true, value: undefined };
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  /** The app left the loop (`break`, `return`, a throw in the loop body): cancel the stream. */
  return(): Promise<IteratorResult<MessageShape<O>, undefined>> {
    if (!this.#closed) {
      this.#end ??= { error: undefined };
      this.#queue.length = 0;
      this.#close();
      // A next() still waiting (return() called beside the loop) ends too.
      this.#notify();
    }
    return Promise.resolve({ done: true, value: undefined });
  }

  /**
   * Counts a message of `bytes` bytes handed to the app, and gives its credit back once half the
   * message window or half the byte window was taken.
   */
  #taken(bytes: number): void {
    this.#takenSinceGrant += 1;
    this.#takenBytesSinceGrant += bytes;
    const half = this.#takenSinceGrant >= Math.ceil(this.#window / 2) || this.#takenBytesSinceGrant >= Math.ceil(this.#windowBytes / 2);
    if (!this.#open || !half) return;
    const n = this.#takenSinceGrant;
    const given = this.#takenBytesSinceGrant;
    this.#takenSinceGrant = 0;
    this.#takenBytesSinceGrant = 0;
    this.#granted += n;
    this.#grantedBytes += given;
    // Empty messages spend no byte credit, so there may be none to give back.
    const args = given > 0 ? { id: this.#id, n, bytes: given } : { id: this.#id, n };
    invoke("plugin:anysync|credit", args).catch((error: unknown) => {
      // The plugin ignores unknown ids, so this is a real refusal: without credit the stream
      // would stall forever, so end it with the reason.
      this.#fail(AnysyncError.from(error));
    });
  }

  #onPayload(payload: unknown): void {
    if (this.#end !== undefined) return;
    const bytes = bytesOf(payload);
    try {
      if (bytes === undefined) throw new Error(`a channel payload of type ${typeof payload}, not bytes`);
      for (const frame of this.#decoder.push(bytes)) {
        if (frame.kind === FRAME_END) {
          this.#open = false;
          this.#end = { error: endError(frame.body, this.#name) };
          this.#dispose();
          break;
        }
        this.#received += 1;
        if (this.#received > this.#granted) {
          throw new Error(`the plugin sent message ${String(this.#received)} with credit for ${String(this.#granted)}`);
        }
        // A message may be taken while any byte credit is left, so only one can overshoot.
        if (this.#receivedBytes >= this.#grantedBytes) {
          throw new Error(`the plugin sent a message beyond the byte credit (${String(this.#grantedBytes)} bytes granted)`);
        }
        this.#receivedBytes += frame.body.length;
        this.#queue.push(frame.body);
      }
    } catch (error) {
      this.#fail(new AnysyncError(`${this.#name}: stream protocol error: ${String(error)}`, "INTERNAL", { cause: error }));
    }
    this.#notify();
  }

  /** Ends the stream here with `error` (dropping what is buffered), and cancels it on the plugin. */
  #fail(error: AnysyncError): void {
    if (this.#end !== undefined) return;
    this.#end = { error };
    this.#queue.length = 0;
    this.#dispose();
    this.#notify();
  }

  #close(): void {
    this.#closed = true;
    this.#dispose();
  }

  /** Stops the deadline and the signal listener, and cancels the plugin's side if it is open. */
  #dispose(): void {
    clearTimeout(this.#timer);
    this.#signal?.removeEventListener("abort", this.#onAbort);
    if (this.#open) {
      this.#open = false;
      sendCancel(this.#id);
    }
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

/** The one request message of a server-streaming call. */
async function onlyMessage<I extends DescMessage>(
  input: AsyncIterable<MessageInitShape<I>>,
  name: string,
): Promise<MessageInitShape<I>> {
  for await (const message of input) return message;
  throw new AnysyncError(`${name}: a server-streaming call needs its request message`, "INVALID_ARGUMENT");
}

/**
 * A connect-es `Transport` that carries every call of a generated client over Tauri IPC to the
 * plugin, which forwards it to the Go backend: unary calls through the plugin's `call` command,
 * server-streaming calls through `stream` with a Tauri `Channel` and end-to-end flow control.
 * Client- and bidi-streaming methods reject with `UNIMPLEMENTED`.
 *
 * - `signal` (an `AbortSignal`) cancels the call on the plugin and in Go; the call rejects (a
 *   stream's loop throws) with `CANCELLED`. Leaving a `for await` loop (`break`, `return`, a
 *   throw) cancels a stream the same way, without an error.
 * - `timeoutMs` is the call's deadline, sent to the plugin (which enforces it, up to its
 *   `callTimeoutMs` for unary calls); when it passes: `DEADLINE_EXCEEDED` (or `UNAVAILABLE` when
 *   the backend did not come back from a restart in time).
 * - `headers` of a call are not carried to the backend in this version.
 * - Every failure is an {@link AnysyncError} with the gRPC code from Go or the plugin's own code;
 *   its `connectCode` and `toConnectError()` bridge to connect's `Code` and `ConnectError`.
 *
 * @param options The stream window and a default deadline.
 * @returns A transport for connect's `createClient` (or {@link createAnysyncClient}).
 * @throws {@link AnysyncError} `INVALID_ARGUMENT` for an option out of range.
 * @example
 * ```ts
 * import { createClient } from "@connectrpc/connect";
 * import { anysyncTransport, HealthService } from "tauri-plugin-anysync-api";
 * import { CounterService } from "./gen/example/v1/counter_pb.js";
 *
 * const transport = anysyncTransport({ streamWindow: 16 });
 * const health = createClient(HealthService, transport);
 * console.log((await health.ping({ message: "hi" })).message);
 *
 * const counters = createClient(CounterService, transport);
 * const controller = new AbortController();
 * for await (const counter of counters.watch({ name: "clicks" }, { signal: controller.signal })) {
 *   console.log(counter.value);
 *   if (counter.value >= 10n) break; // cancels the stream in Go
 * }
 * ```
 */
export function anysyncTransport(options: AnysyncTransportOptions = {}): Transport {
  const window = options.streamWindow ?? DEFAULT_STREAM_WINDOW;
  if (!Number.isInteger(window) || window < 1 || window > MAX_CREDIT) {
    throw new AnysyncError(`streamWindow must be an integer from 1 to ${String(MAX_CREDIT)}, got ${String(window)}`, "INVALID_ARGUMENT");
  }
  const windowBytes = options.streamWindowBytes ?? DEFAULT_STREAM_WINDOW_BYTES;
  if (!Number.isInteger(windowBytes) || windowBytes < 1 || windowBytes > MAX_STREAM_WINDOW_BYTES) {
    throw new AnysyncError(
      `streamWindowBytes must be an integer from 1 to ${String(MAX_STREAM_WINDOW_BYTES)}, got ${String(windowBytes)}`,
      "INVALID_ARGUMENT",
    );
  }
  const { defaultTimeoutMs } = options;
  if (defaultTimeoutMs !== undefined && !(defaultTimeoutMs > 0)) {
    throw new AnysyncError(`defaultTimeoutMs must be a positive number of milliseconds, got ${String(defaultTimeoutMs)}`, "INVALID_ARGUMENT");
  }

  return {
    async unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      _header: HeadersInit | undefined,
      input: MessageInitShape<I>,
    ): Promise<UnaryResponse<I, O>> {
      const name = methodName(method);
      const request = encode(method.input, input, name);
      const deadline = deadlineOf(timeoutMs, defaultTimeoutMs);
      if (signal?.aborted === true) throw cancelled(name, signal.reason);
      if (deadline === 0) throw deadlineExceeded(name, 0);
      const id = nextCallId();
      const headers: Record<string, string> = { "anysync-method": name, "anysync-call-id": id };
      if (deadline !== undefined) headers["anysync-timeout-ms"] = String(deadline);
      const answer = await unaryCall(name, id, signal, deadline, () => invoke("plugin:anysync|call", request, { headers }));
      return {
        stream: false,
        service: method.parent,
        method,
        header: new Headers(),
        trailer: new Headers(),
        message: decode(method.output, answer, name),
      };
    },

    async stream<I extends DescMessage, O extends DescMessage>(
      method: DescMethodStreaming<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      _header: HeadersInit | undefined,
      input: AsyncIterable<MessageInitShape<I>>,
    ): Promise<StreamResponse<I, O>> {
      const name = methodName(method);
      if (method.methodKind !== "server_streaming") {
        const kind = method.methodKind === "client_streaming" ? "client-streaming" : "bidi-streaming";
        throw new AnysyncError(
          `${name} is a ${kind} method; the plugin carries unary and server-streaming calls only`,
          "UNIMPLEMENTED",
        );
      }
      const request = encode(method.input, await onlyMessage(input, name), name);
      const deadline = deadlineOf(timeoutMs, defaultTimeoutMs);
      const stream = new ServerStream(method.output, name, nextCallId(), { messages: window, bytes: windowBytes }, signal);
      stream.start(request, deadline);
      return {
        stream: true,
        service: method.parent,
        method,
        header: new Headers(),
        trailer: new Headers(),
        message: stream,
      };
    },
  };
}
