/** Every command: the exact IPC command name and arguments, and the answer passed through. */
import { clearMocks } from "@tauri-apps/api/mocks";
import { afterEach, describe, expect, it } from "vitest";

import { health, logs, ping, restart, status } from "../src/index.js";
import {
  healthResponse,
  logRecord,
  mockCommands,
  pingResponse,
  runningStatus,
  startingStatus,
} from "./fixtures.js";

afterEach(() => {
  clearMocks();
});

/** Each API function, how to call it, and what the plugin receives and answers. */
const commands = [
  {
    name: "ping",
    run: () => ping("hello"),
    cmd: "plugin:anysync|ping",
    args: { message: "hello" },
    answer: pingResponse,
  },
  { name: "health", run: () => health(), cmd: "plugin:anysync|health", args: {}, answer: healthResponse },
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
  it("sends the message as given, including empty and non-ASCII text", async () => {
    const calls = mockCommands((_cmd, args) => ({ message: (args as { message: string }).message, handledAtUnixMicros: 1 }));
    for (const message of ["", "héllo wörld ✓", "a".repeat(10_000)]) {
      await expect(ping(message)).resolves.toEqual({ message, handledAtUnixMicros: 1 });
    }
    expect(calls.map((call) => call.args)).toEqual([
      { message: "" },
      { message: "héllo wörld ✓" },
      { message: "a".repeat(10_000) },
    ]);
  });
});
