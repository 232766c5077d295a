/** onStatus / onLog: typed payloads of the plugin's events, until unlisten. */
import { emit } from "@tauri-apps/api/event";
import { clearMocks } from "@tauri-apps/api/mocks";
import { afterEach, describe, expect, it, vi } from "vitest";

import { LOG_EVENT, STATUS_EVENT, onLog, onStatus, type LogRecord, type Status } from "../src/index.js";
import { logRecord, mockCommands, runningStatus, startingStatus } from "./fixtures.js";

afterEach(() => {
  clearMocks();
});

describe("event names", () => {
  it("are the ones the Rust plugin emits (src/desktop.rs)", () => {
    expect(STATUS_EVENT).toBe("anysync://status");
    expect(LOG_EVENT).toBe("anysync://log");
  });
});

describe("onStatus", () => {
  it("hands every status payload to the handler, in order, until unlisten", async () => {
    mockCommands(() => undefined);
    const seen: Status[] = [];
    const unlisten = await onStatus((status) => seen.push(status));

    await emit(STATUS_EVENT, startingStatus);
    await emit(STATUS_EVENT, runningStatus);
    await emit(LOG_EVENT, logRecord); // another event: not for this handler
    expect(seen).toEqual([startingStatus, runningStatus]);

    unlisten();
    await emit(STATUS_EVENT, { ...runningStatus, state: "stopping" });
    expect(seen).toHaveLength(2);
  });

  it("keeps several subscriptions independent", async () => {
    mockCommands(() => undefined);
    const first = vi.fn<(status: Status) => void>();
    const second = vi.fn<(status: Status) => void>();
    const stopFirst = await onStatus(first);
    const stopSecond = await onStatus(second);

    await emit(STATUS_EVENT, startingStatus);
    stopFirst();
    await emit(STATUS_EVENT, runningStatus);
    stopSecond();
    await emit(STATUS_EVENT, runningStatus);

    expect(first.mock.calls).toEqual([[startingStatus]]);
    expect(second.mock.calls).toEqual([[startingStatus], [runningStatus]]);
  });
});

describe("onLog", () => {
  it("hands every log record to the handler, in order, until unlisten", async () => {
    mockCommands(() => undefined);
    const seen: LogRecord[] = [];
    const unlisten = await onLog((record) => seen.push(record));

    const next: LogRecord = { ...logRecord, seq: 8, level: "warn", message: "slow", fields: {} };
    await emit(LOG_EVENT, logRecord);
    await emit(STATUS_EVENT, runningStatus); // another event: not for this handler
    await emit(LOG_EVENT, next);
    expect(seen).toEqual([logRecord, next]);

    unlisten();
    await emit(LOG_EVENT, { ...logRecord, seq: 9 });
    expect(seen.map((record) => record.seq)).toEqual([7, 8]);
  });

  it("listens through the event plugin, not through a plugin command", async () => {
    const calls = mockCommands(() => undefined);
    const unlisten = await onLog(() => undefined);
    unlisten();
    expect(calls).toEqual([]);
  });
});
