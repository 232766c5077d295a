/**
 * Every command that is not a gRPC call: the exact IPC command name and arguments, and the answer
 * passed through. `ping` and `health` are gRPC calls through the transport (see also
 * transport.test.ts): their requests and answers are protobuf bytes.
 */
import { fromBinary } from "@bufbuild/protobuf";
import { clearMocks } from "@tauri-apps/api/mocks";
import { afterEach, describe, expect, it } from "vitest";

import { PingRequestSchema, PingResponseSchema, logs, ping, restart, status } from "../src/index.js";
import { logRecord, mockCommands, runningStatus, startingStatus } from "./fixtures.js";
import { answer, mockPlugin } from "./ipc.js";

afterEach(() => {
  clearMocks();
});

/** Each API function, how to call it, and what the plugin receives and answers. */
const commands = [
  { name: "status", run: () => status(), cmd: "plugin:anysync|status", args: {}, answer: startingStatus },
  { name: "restart", run: () => restart(), cmd: "plugin:anysync|restart", args: {}, answer: runningStatus },
  {
    name: "logs",
    run: () => logs(),
    cmd: "plugin:anysync|logs",
    args: {},
    answer: [logRecord, { ...logRecord, seq: 8, time: null, level: "error", pid: null }],
  },
] as const;

describe.each(commands)("$name()", ({ run, cmd, args, answer }) => {
  it(`invokes ${cmd} with exactly its arguments, once`, async () => {
    const calls = mockCommands(() => answer);
    await run();
    expect(calls).toEqual([{ cmd, args }]);
  });

  it("resolves with the plugin's answer unchanged", async () => {
    mockCommands(() => structuredClone(answer));
    await expect(run()).resolves.toStrictEqual(answer);
  });
});

describe("ping()", () => {
  it("sends the message as given, including empty and non-ASCII text, as a PingRequest", async () => {
    const calls = mockPlugin(({ payload }) => {
      const { message } = fromBinary(PingRequestSchema, payload as Uint8Array);
      return answer(PingResponseSchema, { message, handledAtUnixMicros: 1n });
    });
    for (const message of ["", "héllo wörld ✓", "a".repeat(10_000)]) {
      await expect(ping(message)).resolves.toMatchObject({ message, handledAtUnixMicros: 1n });
    }
    expect(calls.map((call) => fromBinary(PingRequestSchema, call.payload as Uint8Array).message)).toEqual([
      "",
      "héllo wörld ✓",
      "a".repeat(10_000),
    ]);
    expect(new Set(calls.map((call) => call.headers["anysync-method"]))).toEqual(new Set(["anysync.v1.HealthService/Ping"]));
  });
});
