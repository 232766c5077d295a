/**
 * The Tauri IPC transport against a fake plugin that speaks docs/call-path.md: unary calls
 * (`call`, `cancel`) and server streams (`stream`, a Channel, frames, `credit`, `cancel`), with
 * real protobuf encoding of generated messages.
 */
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { clearMocks } from "@tauri-apps/api/mocks";
import { afterEach, describe, expect, it } from "vitest";

import {
  AnysyncError,
  PingRequestSchema,
  PingResponseSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus,
  anysyncTransport,
  createAnysyncClient,
  health,
  ping,
  type ErrorInfo,
} from "../src/index.js";
import {
  CountRequestSchema,
  CountResponseSchema,
  EchoRequestSchema,
  EchoResponseSchema,
  TransportTestService,
} from "./gen/transporttest/v1/transport_pb.js";
import {
  FakeChannel,
  answer,
  concat,
  endFrame,
  frame,
  messageFrame,
  mockPlugin,
  never,
  settle,
  type Invocation,
} from "./ipc.js";
import { rejectWith } from "./fixtures.js";

afterEach(() => {
  clearMocks();
});

const ECHO = "transporttest.v1.TransportTestService/Echo";
const COUNT = "transporttest.v1.TransportTestService/Count";
const CALL_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** What a promise rejected with; fails when it resolves. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection, got a value");
}

/** Every message of a stream, in order. */
async function drain<T>(messages: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const message of messages) all.push(message);
  return all;
}

/** A fake `call` that echoes EchoRequest as EchoResponse. */
function echoPlugin(): Invocation[] {
  return mockPlugin(({ cmd, payload }) => {
    if (cmd !== "plugin:anysync|call") return undefined;
    const request = fromBinary(EchoRequestSchema, payload as Uint8Array);
    return answer(EchoResponseSchema, { text: request.text, number: request.number });
  });
}

describe("unary calls", () => {
  it("round-trip real protobuf bytes through plugin:anysync|call", async () => {
    const calls = echoPlugin();
    const client = createAnysyncClient(TransportTestService);
    const reply = await client.echo({ text: "héllo ✓", number: 2n ** 62n + 1n });
    expect(reply).toMatchObject({ $typeName: "transporttest.v1.EchoResponse", text: "héllo ✓", number: 2n ** 62n + 1n });
    expect(calls).toHaveLength(1);
    expect(calls[0]?.cmd).toBe("plugin:anysync|call");
    expect(calls[0]?.payload).toBeInstanceOf(Uint8Array);
  });

  it("sends the method name and a fresh call id, and the deadline only when there is one", async () => {
    const calls = echoPlugin();
    const client = createAnysyncClient(TransportTestService);
    await client.echo({ text: "a" });
    await client.echo({ text: "b" }, { timeoutMs: 1_500 });
    const [first, second] = calls.map((call) => call.headers);
    expect(first).toEqual({ "anysync-method": ECHO, "anysync-call-id": expect.stringMatching(CALL_ID) as string });
    expect(second).toEqual({
      "anysync-method": ECHO,
      "anysync-call-id": expect.stringMatching(CALL_ID) as string,
      "anysync-timeout-ms": "1500",
    });
    expect(first?.["anysync-call-id"]).not.toBe(second?.["anysync-call-id"]);
  });

  it("rounds a fractional timeout up and applies defaultTimeoutMs to calls without one", async () => {
    const calls = echoPlugin();
    const client = createAnysyncClient(TransportTestService, anysyncTransport({ defaultTimeoutMs: 2_000 }));
    await client.echo({ text: "a" });
    await client.echo({ text: "b" }, { timeoutMs: 10.2 });
    expect(calls.map((call) => call.headers["anysync-timeout-ms"])).toEqual(["2000", "11"]);
  });

  it("rejects with the plugin's code, usable as connect's Code too", async () => {
    const sent: ErrorInfo = { code: "NOT_FOUND", message: "no such counter", details: { key: "x" } };
    mockPlugin(() => rejectWith(sent));
    const error = await rejection(createAnysyncClient(TransportTestService).echo({ text: "a" }));
    expect(error).toBeInstanceOf(AnysyncError);
    expect(error).toMatchObject({ code: "NOT_FOUND", message: "no such counter", details: { key: "x" } });
    const anysync = error as AnysyncError;
    expect(anysync.connectCode).toBe(Code.NotFound);
    const connect = anysync.toConnectError();
    expect(connect).toBeInstanceOf(ConnectError);
    expect(connect).toMatchObject({ code: Code.NotFound, rawMessage: "no such counter" });
    expect(connect.cause).toBe(anysync);
    expect(AnysyncError.from(connect)).toMatchObject({ code: "NOT_FOUND", message: "no such counter" });
  });

  it.each([
    { sent: { code: "SIDECAR_FAILED", message: "gave up" }, code: "SIDECAR_FAILED", connect: Code.FailedPrecondition },
    { sent: { code: "UNAVAILABLE", message: "restarting" }, code: "UNAVAILABLE", connect: Code.Unavailable },
    { sent: "anysync.call not allowed. Permissions: anysync:allow-call", code: "PERMISSION_DENIED", connect: Code.PermissionDenied },
  ])("maps $code to connect's Code $connect", async ({ sent, code, connect }) => {
    mockPlugin(() => rejectWith(sent));
    const error = await rejection(createAnysyncClient(TransportTestService).echo({ text: "a" }));
    expect(error).toMatchObject({ code, connectCode: connect });
  });

  it("rejects an answer that is not the response message with INTERNAL", async () => {
    mockPlugin(() => new Uint8Array([0xff, 0xff, 0xff]).buffer);
    await expect(createAnysyncClient(TransportTestService).echo({ text: "a" })).rejects.toMatchObject({
      code: "INTERNAL",
      message: expect.stringContaining("cannot decode the response as transporttest.v1.EchoResponse") as string,
    });
    mockPlugin(() => ({ not: "bytes" }));
    await expect(createAnysyncClient(TransportTestService).echo({ text: "a" })).rejects.toMatchObject({ code: "INTERNAL" });
  });

  it("fails DEADLINE_EXCEEDED when the plugin does not answer in time, and cancels the call", async () => {
    const calls = mockPlugin(({ cmd }) => (cmd === "plugin:anysync|call" ? never() : undefined));
    const started = performance.now();
    const error = await rejection(createAnysyncClient(TransportTestService).echo({ text: "a" }, { timeoutMs: 20 }));
    expect(error).toMatchObject({ code: "DEADLINE_EXCEEDED", connectCode: Code.DeadlineExceeded });
    // The plugin has the deadline too (and the better error); this is the safety net after it.
    expect(performance.now() - started).toBeGreaterThanOrEqual(20);
    const id = calls[0]?.headers["anysync-call-id"];
    expect(calls.map((call) => [call.cmd, call.payload])).toEqual([
      ["plugin:anysync|call", expect.any(Uint8Array)],
      ["plugin:anysync|cancel", { id }],
    ]);
  });

  it("keeps the plugin's own error when it answers the deadline first", async () => {
    mockPlugin(() => rejectWith({ code: "UNAVAILABLE", message: "backend did not come back within 20 ms" }));
    await expect(createAnysyncClient(TransportTestService).echo({ text: "a" }, { timeoutMs: 20 })).rejects.toMatchObject({
      code: "UNAVAILABLE",
    });
  });

  it("sends cancel with the call's id on an abort before the answer, and rejects CANCELLED", async () => {
    const calls = mockPlugin(({ cmd }) => (cmd === "plugin:anysync|call" ? never() : undefined));
    const controller = new AbortController();
    const pending = rejection(createAnysyncClient(TransportTestService).echo({ text: "a" }, { signal: controller.signal }));
    await settle();
    controller.abort(new Error("user left"));
    const error = await pending;
    expect(error).toMatchObject({ code: "CANCELLED", connectCode: Code.Canceled });
    const id = calls[0]?.headers["anysync-call-id"];
    expect(id).toMatch(CALL_ID);
    expect(calls[1]).toEqual({ cmd: "plugin:anysync|cancel", payload: { id }, headers: {} });
  });

  it("does not invoke anything for an already aborted signal or a zero deadline", async () => {
    const calls = echoPlugin();
    const client = createAnysyncClient(TransportTestService);
    await expect(client.echo({ text: "a" }, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: "CANCELLED" });
    await expect(client.echo({ text: "a" }, { timeoutMs: 0 })).rejects.toMatchObject({ code: "DEADLINE_EXCEEDED" });
    expect(calls).toEqual([]);
  });

  it("refuses client- and bidi-streaming methods with UNIMPLEMENTED", async () => {
    const calls = echoPlugin();
    const client = createAnysyncClient(TransportTestService);
    async function* chunks() {
      await Promise.resolve();
      yield { chunk: new Uint8Array([1]) };
    }
    await expect(client.upload(chunks())).rejects.toMatchObject({
      code: "UNIMPLEMENTED",
      message: expect.stringContaining("Upload is a client-streaming method") as string,
    });
    async function* lines() {
      await Promise.resolve();
      yield { line: "hi" };
    }
    await expect(drain(client.chat(lines()))).rejects.toMatchObject({ code: "UNIMPLEMENTED", message: expect.stringContaining("bidi-streaming") as string });
    expect(calls).toEqual([]);
  });

  it("validates the transport's options", () => {
    for (const streamWindow of [0, 1025, 1.5, Number.NaN]) {
      expect(() => anysyncTransport({ streamWindow })).toThrow(AnysyncError);
    }
    expect(() => anysyncTransport({ defaultTimeoutMs: 0 })).toThrow(/defaultTimeoutMs/);
    expect(() => anysyncTransport({ streamWindow: 1024, defaultTimeoutMs: 1 })).not.toThrow();
  });
});

describe("ping() and health()", () => {
  it("call anysync.v1.HealthService through the transport and resolve with the generated messages", async () => {
    const calls = mockPlugin(({ headers, payload }) => {
      if (headers["anysync-method"] === "anysync.v1.HealthService/Ping") {
        const { message } = fromBinary(PingRequestSchema, payload as Uint8Array);
        return answer(PingResponseSchema, { message, handledAtUnixMicros: 1_767_225_600_123_456n });
      }
      return answer(HealthCheckResponseSchema, {
        status: HealthCheckResponse_ServingStatus.SERVING,
        version: "0.1.0",
        protocolVersion: 1,
        uptimeMs: 1234n,
        pid: 4242,
      });
    });
    await expect(ping("hello", { timeoutMs: 900 })).resolves.toMatchObject({
      $typeName: "anysync.v1.PingResponse",
      message: "hello",
      handledAtUnixMicros: 1_767_225_600_123_456n,
    });
    await expect(health()).resolves.toMatchObject({ status: HealthCheckResponse_ServingStatus.SERVING, uptimeMs: 1234n, pid: 4242 });
    expect(calls.map((call) => [call.cmd, call.headers["anysync-method"], call.headers["anysync-timeout-ms"]])).toEqual([
      ["plugin:anysync|call", "anysync.v1.HealthService/Ping", "900"],
      ["plugin:anysync|call", "anysync.v1.HealthService/Check", undefined],
    ]);
  });
});

/**
 * A fake `stream` command: records each stream's channel and answers credit and cancel, like the
 * plugin. `serve` runs once the stream is registered, with the channel to write to.
 */
function streamPlugin(serve?: (channel: FakeChannel, invocation: Invocation) => void): {
  calls: Invocation[];
  channel: () => FakeChannel;
} {
  let channel: FakeChannel | undefined;
  const calls = mockPlugin((invocation) => {
    if (invocation.cmd === "plugin:anysync|stream") {
      channel = new FakeChannel(invocation.headers["anysync-channel"]);
      const opened = channel;
      queueMicrotask(() => serve?.(opened, invocation));
      return null;
    }
    return null;
  });
  return {
    calls,
    channel: () => {
      if (channel === undefined) throw new Error("no stream opened");
      return channel;
    },
  };
}

const seqs = (n: number, from = 1): ReturnType<typeof messageFrame>[] =>
  Array.from({ length: n }, (_, i) => messageFrame(CountResponseSchema, { seq: BigInt(from + i), payload: new Uint8Array(i % 7) }));

describe("server streams", () => {
  it("open with the channel, the initial credit and a call id in the headers", async () => {
    const plugin = streamPlugin((channel) => {
      channel.send(endFrame());
    });
    const client = createAnysyncClient(TransportTestService, anysyncTransport({ streamWindow: 4 }));
    await expect(drain(client.count({ count: 3 }, { timeoutMs: 5_000 }))).resolves.toEqual([]);
    const [open] = plugin.calls;
    expect(open?.cmd).toBe("plugin:anysync|stream");
    expect(fromBinary(CountRequestSchema, open?.payload as Uint8Array).count).toBe(3);
    expect(open?.headers).toEqual({
      "anysync-method": COUNT,
      "anysync-call-id": expect.stringMatching(CALL_ID) as string,
      "anysync-channel": expect.stringMatching(/^__CHANNEL__:\d+$/) as string,
      "anysync-credit": "4",
      "anysync-credit-bytes": String(4 * 1024 * 1024),
      "anysync-timeout-ms": "5000",
    });
  });

  it("use a window of 1024 messages and 4 MiB by default", async () => {
    const plugin = streamPlugin((channel) => {
      channel.send(endFrame());
    });
    await drain(createAnysyncClient(TransportTestService).count({}));
    expect(plugin.calls[0]?.headers["anysync-credit"]).toBe("1024");
    expect(plugin.calls[0]?.headers["anysync-credit-bytes"]).toBe(String(4 * 1024 * 1024));
  });

  it("bound the bytes in flight by the byte window plus one message, granting bytes back as consumed", async () => {
    const windowBytes = 100;
    const total = 30;
    const size = (seq: number): number => 20 + (seq % 3) * 10; // 20..40 bytes of payload
    let grantedBytes = windowBytes;
    let sentBytes = 0;
    let sent = 0;
    let ended = false;
    let largest = 0;
    let channel: FakeChannel | undefined;
    const frameOf = (seq: number): Uint8Array =>
      messageFrame(CountResponseSchema, { seq: BigInt(seq), payload: new Uint8Array(size(seq)) });
    // The plugin's side, as Rust does it: take a message while any byte credit is left.
    const pump = (): void => {
      while (channel !== undefined && sentBytes < grantedBytes && sent < total) {
        const frame = frameOf(++sent);
        const body = frame.length - 5;
        largest = Math.max(largest, body);
        sentBytes += body;
        channel.send(frame);
      }
      if (channel !== undefined && sent === total && !ended) {
        ended = true;
        channel.send(endFrame());
      }
    };
    const calls = mockPlugin(({ cmd, headers, payload }) => {
      if (cmd === "plugin:anysync|stream") channel = new FakeChannel(headers["anysync-channel"]);
      if (cmd === "plugin:anysync|credit") grantedBytes += (payload as { bytes?: number }).bytes ?? 0;
      queueMicrotask(pump);
      return null;
    });
    let takenBytes = 0;
    let taken = 0;
    const client = createAnysyncClient(TransportTestService, anysyncTransport({ streamWindowBytes: windowBytes }));
    for await (const response of client.count({ count: total })) {
      taken += 1;
      takenBytes += toBinary(CountResponseSchema, response).length;
      expect(sentBytes - takenBytes).toBeLessThan(windowBytes + largest);
      await settle();
    }
    expect(taken).toBe(total);
    const credits = calls.filter((call) => call.cmd === "plugin:anysync|credit");
    expect(credits.length).toBeGreaterThan(0);
    expect(credits.every((call) => ((call.payload as { bytes?: number }).bytes ?? 0) > 0)).toBe(true);
  });

  it("fail with INTERNAL when the plugin sends beyond the byte credit", async () => {
    const plugin = streamPlugin((channel) => {
      channel.send(concat(...seqs(3)));
    });
    const client = createAnysyncClient(TransportTestService, anysyncTransport({ streamWindowBytes: 1 }));
    const error = await rejection(drain(client.count({})));
    expect(error).toMatchObject({ code: "INTERNAL", message: expect.stringContaining("byte credit") as string });
    expect(plugin.calls.at(-1)).toMatchObject({ cmd: "plugin:anysync|cancel" });
  });

  it("decode frames batched in one payload and split across payloads, in order, then end OK", async () => {
    streamPlugin((channel) => {
      const [a, b, c, d, e] = seqs(5);
      // Three frames in one payload.
      channel.send(concat(a!, b!, c!));
      // One frame in three payloads, the header itself split; then the next frame with the end.
      const split = concat(d!);
      channel.send(split.subarray(0, 2));
      channel.send(split.subarray(2, 7));
      channel.send(split.subarray(7));
      const end = endFrame();
      channel.send(concat(e!, end.subarray(0, 3)));
      channel.send(end.subarray(3));
      channel.close();
    });
    const received: bigint[] = [];
    for await (const response of createAnysyncClient(TransportTestService).count({ count: 5 })) {
      expect(response.$typeName).toBe("transporttest.v1.CountResponse");
      received.push(response.seq);
    }
    expect(received).toEqual([1n, 2n, 3n, 4n, 5n]);
  });

  it("deliver what came before an error end frame, then throw its AnysyncError", async () => {
    streamPlugin((channel) => {
      channel.send(concat(...seqs(2), endFrame({ code: "UNAVAILABLE", message: "the backend restarted; subscribe again" })));
    });
    const received: bigint[] = [];
    const error = await rejection(
      (async () => {
        for await (const response of createAnysyncClient(TransportTestService).count({})) received.push(response.seq);
      })(),
    );
    expect(received).toEqual([1n, 2n]);
    expect(error).toBeInstanceOf(AnysyncError);
    expect(error).toMatchObject({ code: "UNAVAILABLE", message: "the backend restarted; subscribe again", connectCode: Code.Unavailable });
  });

  it("grant credit as the app consumes, in half-window batches, never beyond the window", async () => {
    const window = 4;
    const total = 20;
    let granted = window;
    let sent = 0;
    let ended = false;
    let channel: FakeChannel | undefined;
    // The plugin's side: sends only while it holds credit, as Rust does.
    const pump = (): void => {
      while (channel !== undefined && sent < granted && sent < total) channel.send(seqs(1, ++sent)[0]!);
      if (channel !== undefined && sent === total && !ended) {
        ended = true;
        channel.send(endFrame());
      }
    };
    const calls = mockPlugin(({ cmd, headers, payload }) => {
      if (cmd === "plugin:anysync|stream") channel = new FakeChannel(headers["anysync-channel"]);
      if (cmd === "plugin:anysync|credit") granted += (payload as { n: number }).n;
      queueMicrotask(pump);
      return null;
    });
    const received: bigint[] = [];
    let taken = 0;
    const client = createAnysyncClient(TransportTestService, anysyncTransport({ streamWindow: window }));
    for await (const response of client.count({ count: total })) {
      taken += 1;
      received.push(response.seq);
      // Credit given back as the app takes messages, and never more out than the window: in
      // flight plus buffered in the page.
      expect(granted - taken).toBeLessThanOrEqual(window);
      expect(sent - taken).toBeLessThanOrEqual(window);
      if (taken >= window) expect(granted).toBeGreaterThan(window);
      await settle();
    }
    expect(received).toEqual(Array.from({ length: total }, (_, i) => BigInt(i + 1)));
    const credits = calls.filter((call) => call.cmd === "plugin:anysync|credit");
    expect(credits.map((call) => (call.payload as { n: number }).n).every((n) => n === window / 2)).toBe(true);
    expect(credits.length).toBeGreaterThanOrEqual((total - window) / (window / 2));
    const id = calls[0]?.headers["anysync-call-id"];
    expect(credits.every((call) => (call.payload as { id: string }).id === id)).toBe(true);
    // Ended by the plugin: nothing to cancel.
    expect(calls.some((call) => call.cmd === "plugin:anysync|cancel")).toBe(false);
  });

  it("fail with INTERNAL when the plugin sends beyond the credit, and cancel", async () => {
    const plugin = streamPlugin((channel) => {
      channel.send(concat(...seqs(3)));
    });
    const client = createAnysyncClient(TransportTestService, anysyncTransport({ streamWindow: 2 }));
    const error = await rejection(drain(client.count({})));
    expect(error).toMatchObject({ code: "INTERNAL", message: expect.stringContaining("credit for 2") as string });
    expect(plugin.calls.at(-1)).toMatchObject({ cmd: "plugin:anysync|cancel", payload: { id: plugin.calls[0]?.headers["anysync-call-id"] } });
  });

  it("send cancel with the stream's id when the loop is left with break, and no credit after it", async () => {
    const plugin = streamPlugin((channel) => {
      channel.send(concat(...seqs(4)));
    });
    const client = createAnysyncClient(TransportTestService, anysyncTransport({ streamWindow: 4 }));
    for await (const response of client.count({})) {
      if (response.seq === 1n) break;
    }
    await settle();
    const id = plugin.calls[0]?.headers["anysync-call-id"];
    expect(plugin.calls.slice(1)).toEqual([{ cmd: "plugin:anysync|cancel", payload: { id }, headers: {} }]);
    // The plugin's CANCELLED end frame after the cancel is ignored: the loop is over.
    plugin.channel().send(endFrame({ code: "CANCELLED", message: "cancelled" }));
  });

  it("throw CANCELLED on an abort mid-stream, and send cancel", async () => {
    const plugin = streamPlugin((channel) => {
      channel.send(concat(...seqs(1)));
    });
    const controller = new AbortController();
    const received: bigint[] = [];
    const error = await rejection(
      (async () => {
        for await (const response of createAnysyncClient(TransportTestService).count({}, { signal: controller.signal })) {
          received.push(response.seq);
          controller.abort();
        }
      })(),
    );
    expect(received).toEqual([1n]);
    expect(error).toMatchObject({ code: "CANCELLED" });
    const id = plugin.calls[0]?.headers["anysync-call-id"];
    expect(plugin.calls.filter((call) => call.cmd === "plugin:anysync|cancel")).toEqual([
      { cmd: "plugin:anysync|cancel", payload: { id }, headers: {} },
    ]);
  });

  it("throw DEADLINE_EXCEEDED when a stream outlives its deadline, and send cancel", async () => {
    const plugin = streamPlugin();
    const error = await rejection(drain(createAnysyncClient(TransportTestService).count({}, { timeoutMs: 10 })));
    expect(error).toMatchObject({ code: "DEADLINE_EXCEEDED" });
    expect(plugin.calls[0]?.headers["anysync-timeout-ms"]).toBe("10");
    expect(plugin.calls.at(-1)).toMatchObject({ cmd: "plugin:anysync|cancel" });
  });

  it("throw the refusal when the plugin rejects the stream, without cancelling it", async () => {
    const calls = mockPlugin(({ cmd }) =>
      cmd === "plugin:anysync|stream"
        ? rejectWith({ code: "PERMISSION_DENIED", message: "add transporttest.v1.TransportTestService/Count to anysync:allow-call" })
        : null,
    );
    const error = await rejection(drain(createAnysyncClient(TransportTestService).count({})));
    expect(error).toMatchObject({ code: "PERMISSION_DENIED" });
    expect(calls.map((call) => call.cmd)).toEqual(["plugin:anysync|stream"]);
  });

  it.each([
    { name: "an unknown frame kind", bytes: frame(7, new Uint8Array(1)), message: "unknown frame kind 7" },
    { name: "an unreadable end frame", bytes: frame(1, new TextEncoder().encode("{oops")), message: "unreadable error" },
    { name: "a message that is not a CountResponse", bytes: frame(0, new Uint8Array([0xff, 0xff])), message: "cannot decode a message" },
  ])("fail with INTERNAL on $name", async ({ bytes, message }) => {
    streamPlugin((channel) => {
      channel.send(bytes);
    });
    const error = await rejection(drain(createAnysyncClient(TransportTestService).count({})));
    expect(error).toMatchObject({ code: "INTERNAL", message: expect.stringContaining(message) as string });
  });
});

describe("outside a Tauri webview", () => {
  it("rejects calls and streams with an AnysyncError, not a TypeError", async () => {
    clearMocks();
    const client = createAnysyncClient(TransportTestService);
    await expect(client.echo({ text: "a" })).rejects.toBeInstanceOf(AnysyncError);
    await expect(drain(client.count({}))).rejects.toBeInstanceOf(AnysyncError);
  });
});
