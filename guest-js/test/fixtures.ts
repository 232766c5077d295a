/**
 * Values shaped exactly as the Rust plugin serializes them (src/models.rs, src/error.rs), and small
 * helpers around `mockIPC`. (gRPC calls carry protobuf bytes instead: see ipc.ts.)
 */
import type { InvokeArgs } from "@tauri-apps/api/core";
import { mockIPC } from "@tauri-apps/api/mocks";

import type { LogRecord, Status } from "../src/index.js";

export const runningStatus: Status = {
  seq: 4,
  state: "running",
  pid: 4242,
  addr: "127.0.0.1:43567",
  version: "0.1.0",
  restarts: 1,
  lastError: {
    code: "SIDECAR_EXITED",
    message: "sidecar exited before it was ready (exit status: 2)",
    details: { stderrTail: ["panic: boom"] },
  },
  sinceMs: 1_767_225_600_000,
  runningSinceMs: 1_767_225_600_000,
};

export const startingStatus: Status = {
  seq: 1,
  state: "starting",
  pid: null,
  addr: null,
  version: null,
  restarts: 0,
  lastError: null,
  sinceMs: 1_767_225_599_000,
  runningSinceMs: null,
};

export const logRecord: LogRecord = {
  seq: 7,
  time: "2026-01-01T00:00:00.123Z",
  level: "info",
  message: "serving",
  fields: { addr: "127.0.0.1:43567", nested: { ok: true } },
  pid: 4242,
};

/** One command invocation as the mocked IPC saw it. */
export interface Call {
  readonly cmd: string;
  readonly args: InvokeArgs | undefined;
}

/**
 * Mocks the IPC (events included) with `handler` for the plugin's commands, and records every
 * call that is not an event-plugin call.
 */
export function mockCommands(handler: (cmd: string, args: InvokeArgs | undefined) => unknown): Call[] {
  const calls: Call[] = [];
  mockIPC(
    (cmd, args) => {
      calls.push({ cmd, args });
      return handler(cmd, args);
    },
    { shouldMockEvents: true },
  );
  return calls;
}

/**
 * A rejected promise with exactly `value`: the Rust plugin rejects with a plain
 * `{ code, message, details? }` object and Tauri with a bare string, never with an Error, and
 * that is what these tests must reproduce.
 */
export function rejectWith(value: unknown): Promise<never> {
  // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- see above
  return Promise.reject(value);
}
