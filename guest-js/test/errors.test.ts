/** Every rejection becomes an AnysyncError with the right code, message and details. */
import { readFileSync } from "node:fs";
import path from "node:path";

import { Code, ConnectError } from "@connectrpc/connect";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { afterEach, describe, expect, expectTypeOf, it } from "vitest";

import {
  AnysyncError,
  ERROR_CODES,
  GRPC_CODES,
  PLUGIN_ERROR_CODES,
  health,
  isAnysyncError,
  logs,
  onLog,
  onStatus,
  ping,
  restart,
  status,
  type AnysyncErrorCode,
  type ErrorInfo,
} from "../src/index.js";
import type * as Errors from "../src/errors.js";
import { mockCommands, rejectWith } from "./fixtures.js";

afterEach(() => {
  clearMocks();
});

/** Calls the API function and returns what it rejected with; fails the test when it resolves. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection, got a value");
}

const api = [
  { name: "ping", run: () => ping("x") },
  { name: "health", run: () => health() },
  { name: "status", run: () => status() },
  { name: "restart", run: () => restart() },
  { name: "logs", run: () => logs() },
] as const;

describe("the code list", () => {
  it("is the gRPC codes in numeric order, then the plugin's codes", () => {
    expect(GRPC_CODES).toHaveLength(17);
    expect(GRPC_CODES[0]).toBe("OK");
    expect(GRPC_CODES[16]).toBe("UNAUTHENTICATED");
    expect(ERROR_CODES).toEqual([...GRPC_CODES, ...PLUGIN_ERROR_CODES]);
    expect(new Set(ERROR_CODES).size).toBe(ERROR_CODES.length);
  });

  it("cannot be changed at run time", () => {
    expect(Object.isFrozen(ERROR_CODES)).toBe(true);
    expect(Object.isFrozen(GRPC_CODES)).toBe(true);
    expect(Object.isFrozen(PLUGIN_ERROR_CODES)).toBe(true);
  });

  it("is exactly the set of codes the Rust plugin can send (src/error.rs)", () => {
    const rust = readFileSync(path.join(import.meta.dirname, "../../src/error.rs"), "utf8");
    const asStr = rust.slice(rust.indexOf("pub fn as_str"), rust.indexOf("impl From<tonic::Code>"));
    const grpc = [...asStr.matchAll(/=> "([A-Z_]+)"/g)].map((match) => match[1]);
    const code = rust.slice(rust.indexOf("pub fn code(&self)"), rust.indexOf("fn details(&self)"));
    const plugin = [...code.matchAll(/=> "([A-Z_]+)"/g)].map((match) => match[1]);
    expect(grpc).toEqual([...GRPC_CODES]);
    expect(plugin).toEqual([...PLUGIN_ERROR_CODES]);
  });

  it("types every entry as an AnysyncErrorCode", () => {
    expectTypeOf<(typeof ERROR_CODES)[number]>().toEqualTypeOf<AnysyncErrorCode>();
  });
});

describe.each(api)("$name() rejects with an AnysyncError for every code", ({ run }) => {
  it.each(ERROR_CODES.map((code) => ({ code })))("$code", async ({ code }) => {
    const sent: ErrorInfo = { code, message: `something ${code} happened; do this`, details: { key: "x", n: 1 } };
    mockCommands(() => rejectWith(structuredClone(sent)));
    const error = await rejection(run());
    expect(error).toBeInstanceOf(AnysyncError);
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ name: "AnysyncError", code, message: sent.message, details: sent.details });
    expect(isAnysyncError(error, code)).toBe(true);
    expect((error as AnysyncError).toJSON()).toEqual(sent);
  });
});

describe("plain-string rejections from Tauri keep their text and get a code", () => {
  const cases: readonly { text: string; code: AnysyncErrorCode }[] = [
    {
      text: "anysync.restart not allowed. Permissions associated with this command: anysync:allow-restart",
      code: "PERMISSION_DENIED",
    },
    { text: "Command plugin:anysync|ping not allowed by ACL", code: "PERMISSION_DENIED" },
    {
      text: 'anysync.ping not allowed on window "main", webview "main", URL: local\n\nallowed on: []',
      code: "PERMISSION_DENIED",
    },
    { text: "anysync.nope not allowed. Command not found", code: "PERMISSION_DENIED" },
    { text: "plugin anysync not found", code: "UNIMPLEMENTED" },
    { text: "Command ping not found", code: "UNIMPLEMENTED" },
    {
      text: "invalid args `message` for command `ping`: invalid type: integer `1`, expected a string",
      code: "INVALID_ARGUMENT",
    },
    { text: "something else went wrong", code: "UNKNOWN" },
    { text: "", code: "UNKNOWN" },
  ];

  it.each(cases)("$code: $text", async ({ text, code }) => {
    mockCommands(() => rejectWith(text));
    const error = await rejection(ping("x"));
    expect(error).toBeInstanceOf(AnysyncError);
    expect(error).toMatchObject({ code, message: text });
    expect((error as AnysyncError).details).toBeUndefined();
  });
});

describe("AnysyncError.from", () => {
  it("returns an AnysyncError unchanged", () => {
    const original = new AnysyncError("m", "INTERNAL");
    expect(AnysyncError.from(original)).toBe(original);
  });

  it("keeps code, message and details of the plugin's error object, without a cause", () => {
    const error = AnysyncError.from({ code: "SIDECAR_NOT_FOUND", message: "no binary", details: { path: "/x" } });
    expect(error).toMatchObject({ code: "SIDECAR_NOT_FOUND", message: "no binary", details: { path: "/x" } });
    expect("cause" in error).toBe(false);
  });

  it("leaves details absent when the plugin sent none (or null)", () => {
    expect("details" in AnysyncError.from({ code: "IO", message: "m" })).toBe(false);
    expect("details" in AnysyncError.from({ code: "IO", message: "m", details: null })).toBe(false);
  });

  it("wraps details that are not an object", () => {
    expect(AnysyncError.from({ code: "IO", message: "m", details: [1, 2] }).details).toEqual({ value: [1, 2] });
    expect(AnysyncError.from({ code: "IO", message: "m", details: "text" }).details).toEqual({ value: "text" });
  });

  it("maps a code it does not know to UNKNOWN and keeps the original as cause", () => {
    const sent = { code: "FROM_THE_FUTURE", message: "new failure", details: { a: 1 } };
    const error = AnysyncError.from(sent);
    expect(error).toMatchObject({ code: "UNKNOWN", message: "new failure", details: { a: 1 } });
    expect(error.cause).toBe(sent);
  });

  it("keeps an Error's message and the Error as cause", () => {
    const cause = new TypeError("window.__TAURI_INTERNALS__ is undefined");
    const error = AnysyncError.from(cause);
    expect(error).toMatchObject({ code: "UNKNOWN", message: cause.message });
    expect(error.cause).toBe(cause);
  });

  it("maps AbortError to CANCELLED and TimeoutError to DEADLINE_EXCEEDED", () => {
    expect(AnysyncError.from(new DOMException("aborted", "AbortError")).code).toBe("CANCELLED");
    expect(AnysyncError.from(new DOMException("timed out", "TimeoutError")).code).toBe("DEADLINE_EXCEEDED");
  });

  it("keeps the code of an Error that carries a known one", () => {
    const cause = Object.assign(new Error("gone"), { code: "NOT_RUNNING", details: { state: "stopped" } });
    expect(AnysyncError.from(cause)).toMatchObject({ code: "NOT_RUNNING", message: "gone", details: { state: "stopped" } });
    const node = Object.assign(new Error("no such file"), { code: "ENOENT" });
    expect(AnysyncError.from(node)).toMatchObject({ code: "UNKNOWN", message: "no such file" });
  });

  it.each([
    { reason: undefined, message: "undefined" },
    { reason: null, message: "null" },
    { reason: 42, message: "42" },
    { reason: { no: "message" }, message: '{"no":"message"}' },
  ])("describes anything else ($message) as UNKNOWN, keeping it as cause", ({ reason, message }) => {
    const error = AnysyncError.from(reason);
    expect(error).toMatchObject({ code: "UNKNOWN", message });
    expect(error.cause).toBe(reason);
  });

  it("survives values JSON cannot describe", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(AnysyncError.from(cyclic)).toMatchObject({ code: "UNKNOWN", message: "[object Object]" });
    expect(AnysyncError.from(10n).message).toBe("10");
  });
});

describe("new AnysyncError", () => {
  it("defaults the code to UNKNOWN and has a stack", () => {
    const error = new AnysyncError("m");
    expect(error.code).toBe("UNKNOWN");
    expect(error.name).toBe("AnysyncError");
    expect(error.stack).toEqual(expect.any(String));
    expect(String(error)).toBe("AnysyncError: m");
  });

  it("serializes to the plugin's { code, message, details? }", () => {
    expect(JSON.parse(JSON.stringify(new AnysyncError("m", "CONFIG", { details: { key: "logLevel" } })))).toEqual({
      code: "CONFIG",
      message: "m",
      details: { key: "logLevel" },
    });
    expect(JSON.parse(JSON.stringify(new AnysyncError("m", "IO")))).toEqual({ code: "IO", message: "m" });
  });

  it("keeps a cause only when given one", () => {
    expect("cause" in new AnysyncError("m")).toBe(false);
    expect(new AnysyncError("m", "IO", { cause: undefined })).toHaveProperty("cause", undefined);
  });
});

describe("instanceof", () => {
  it("recognises errors of a second copy of the class, in both directions", async () => {
    const path = "../src/errors.ts?second-copy";
    const copy = (await import(/* @vite-ignore */ path)) as typeof Errors;
    expect(copy.AnysyncError).not.toBe(AnysyncError);
    const theirs = new copy.AnysyncError("from the other bundle", "UNAVAILABLE");
    const ours = new AnysyncError("from this bundle", "UNAVAILABLE");
    expect(theirs instanceof AnysyncError).toBe(true);
    expect(ours instanceof copy.AnysyncError).toBe(true);
    expect(isAnysyncError(theirs, "UNAVAILABLE")).toBe(true);
    expect(AnysyncError.from(theirs)).toBe(theirs);
  });

  it("recognises an object carrying the brand, and nothing else that looks similar", () => {
    const branded = Object.defineProperty(new Error("x"), Symbol.for("tauri-plugin-anysync-api/AnysyncError"), {
      value: true,
    });
    expect(branded instanceof AnysyncError).toBe(true);
    const lookalike = Object.assign(new Error("x"), { name: "AnysyncError", code: "UNAVAILABLE" });
    expect(lookalike instanceof AnysyncError).toBe(false);
    for (const value of [null, undefined, "AnysyncError", 1, {}, new Error("x")]) {
      expect(value instanceof AnysyncError).toBe(false);
    }
  });

  it("keeps the ordinary check for subclasses", () => {
    class RetryableError extends AnysyncError {}
    const sub = new RetryableError("m", "UNAVAILABLE");
    expect(sub instanceof RetryableError).toBe(true);
    expect(sub instanceof AnysyncError).toBe(true);
    expect(new AnysyncError("m") instanceof RetryableError).toBe(false);
  });
});

describe("isAnysyncError", () => {
  it("narrows to the given codes", () => {
    const error: unknown = new AnysyncError("m", "DEADLINE_EXCEEDED");
    expect(isAnysyncError(error)).toBe(true);
    expect(isAnysyncError(error, "UNAVAILABLE")).toBe(false);
    expect(isAnysyncError(error, "UNAVAILABLE", "DEADLINE_EXCEEDED")).toBe(true);
    if (isAnysyncError(error, "UNAVAILABLE", "DEADLINE_EXCEEDED")) {
      expectTypeOf(error.code).toEqualTypeOf<"UNAVAILABLE" | "DEADLINE_EXCEEDED">();
    }
    expect(isAnysyncError(new Error("m"))).toBe(false);
    expect(isAnysyncError({ code: "UNAVAILABLE", message: "m" })).toBe(false);
  });
});

describe("subscribing", () => {
  it("rejects with an AnysyncError when Tauri refuses the subscription command", async () => {
    const refusal = (cmd: string) =>
      `anysync.${cmd} not allowed. Permissions associated with this command: anysync:allow-${cmd.replace("_", "-")}`;
    mockIPC((cmd) => {
      const name = cmd.replace("plugin:anysync|", "");
      return name.startsWith("subscribe_") ? rejectWith(refusal(name)) : undefined;
    });
    for (const [subscribe, cmd] of [
      [onStatus, "subscribe_status"],
      [onLog, "subscribe_logs"],
    ] as const) {
      const error = await rejection(subscribe(() => undefined));
      expect(error).toBeInstanceOf(AnysyncError);
      expect(error).toMatchObject({ code: "PERMISSION_DENIED", message: refusal(cmd) });
    }
  });
});

describe("connect's Code", () => {
  it("is the gRPC number for every gRPC code but OK, which connect has no member for", () => {
    GRPC_CODES.forEach((code, number) => {
      expect(new AnysyncError("m", code).connectCode).toBe(number === 0 ? Code.Unknown : number);
    });
  });

  it.each(PLUGIN_ERROR_CODES.map((code) => ({ code })))("maps $code to the nearest gRPC code", ({ code }) => {
    const connect = new AnysyncError("m", code).connectCode;
    const retryable = ["HANDSHAKE_TIMEOUT", "SIDECAR_EXITED", "IO"].includes(code);
    expect(connect).toBe(retryable ? Code.Unavailable : Code.FailedPrecondition);
  });

  it("round-trips through ConnectError", () => {
    const error = new AnysyncError("backend restarting", "UNAVAILABLE", { details: { state: "restarting" } });
    const connect = error.toConnectError();
    expect(connect).toBeInstanceOf(ConnectError);
    expect(connect).toMatchObject({ code: Code.Unavailable, rawMessage: "backend restarting", cause: error });
    expect(AnysyncError.from(connect)).toMatchObject({ code: "UNAVAILABLE", message: "backend restarting" });
    expect(AnysyncError.from(new ConnectError("gone", Code.NotFound))).toMatchObject({ code: "NOT_FOUND", message: "gone" });
  });
});
