/**
 * onStatus / onLog: subscriptions through real Tauri `Channel`s (`subscribe_status`,
 * `subscribe_logs`, `unsubscribe`), driven the way Tauri delivers channel messages (see ipc.ts):
 * the current status first, stale statuses dropped by `seq`, records in order, until unsubscribed.
 */
import type { Channel } from "@tauri-apps/api/core";
import { emit } from "@tauri-apps/api/event";
import { clearMocks } from "@tauri-apps/api/mocks";
import { afterEach, describe, expect, it, vi } from "vitest";

import { LOG_EVENT, STATUS_EVENT, onLog, onStatus, type LogRecord, type Status } from "../src/index.js";
import { logRecord, rejectWith, runningStatus, startingStatus } from "./fixtures.js";
import { FakeChannel, mockPlugin, registeredCallbacks, settle, type Invocation } from "./ipc.js";

afterEach(() => {
  clearMocks();
});

/** The Rust end of the channel a subscription command was given in `argument`. */
function channelOf(invocation: Invocation, argument: string): FakeChannel {
  const channel = (invocation.payload as Record<string, Channel>)[argument];
  if (channel === undefined) throw new Error(`${invocation.cmd} without ${argument}`);
  return new FakeChannel(channel.toJSON());
}

/**
 * A fake plugin whose subscription commands answer ids 1, 2, ... and, like the Rust plugin, send
 * `current` (when given) on a status channel before answering.
 */
function plugin(current?: Status): { calls: Invocation[]; channels: FakeChannel[] } {
  const channels: FakeChannel[] = [];
  const calls = mockPlugin((invocation) => {
    if (invocation.cmd === "plugin:anysync|subscribe_status") {
      const channel = channelOf(invocation, "onStatus");
      channels.push(channel);
      if (current !== undefined) channel.sendJson(current);
      return channels.length;
    }
    if (invocation.cmd === "plugin:anysync|subscribe_logs") {
      channels.push(channelOf(invocation, "onLog"));
      return channels.length;
    }
    return null;
  });
  return { calls, channels };
}

const status = (seq: number, state: Status["state"] = "running"): Status => ({ ...runningStatus, seq, state });

describe("event names", () => {
  it("are the ones the Rust plugin broadcasts (src/desktop.rs)", () => {
    expect(STATUS_EVENT).toBe("anysync://status");
    expect(LOG_EVENT).toBe("anysync://log");
  });
});

describe("onStatus", () => {
  it("hands over the current status first, before it even resolves, then every change", async () => {
    const { calls, channels } = plugin(startingStatus);
    const seen: Status[] = [];
    const unlisten = await onStatus((s) => seen.push(s));
    expect(seen).toEqual([startingStatus]);
    expect(calls.map((c) => c.cmd)).toEqual(["plugin:anysync|subscribe_status"]);

    channels[0]?.sendJson(runningStatus);
    expect(seen).toEqual([startingStatus, runningStatus]);
    unlisten();
  });

  it("drops every status whose seq is not greater than the last one handed over", async () => {
    const { channels } = plugin(status(5));
    const seen: number[] = [];
    const unlisten = await onStatus((s) => seen.push(s.seq));
    for (const seq of [4, 5, 7, 6, 7, 8]) channels[0]?.sendJson(status(seq));
    expect(seen).toEqual([5, 7, 8]);
    unlisten();
  });

  it("stops at unsubscribe: nothing more reaches the handler, and the plugin is told once", async () => {
    const { calls, channels } = plugin(status(1, "starting"));
    const handler = vi.fn<(status: Status) => void>();
    const unlisten = await onStatus(handler);
    unlisten();
    unlisten();
    channels[0]?.sendJson(status(2));
    await settle();

    expect(handler.mock.calls).toEqual([[status(1, "starting")]]);
    expect(calls.filter((c) => c.cmd === "plugin:anysync|unsubscribe")).toEqual([
      { cmd: "plugin:anysync|unsubscribe", payload: { id: 1 }, headers: {} },
    ]);
  });

  it("keeps several subscriptions independent, each with its own channel and seq", async () => {
    const { channels } = plugin();
    const first = vi.fn<(status: Status) => void>();
    const second = vi.fn<(status: Status) => void>();
    const stopFirst = await onStatus(first);
    const stopSecond = await onStatus(second);
    expect(channels).toHaveLength(2);

    channels[0]?.sendJson(status(3));
    channels[1]?.sendJson(status(2));
    stopFirst();
    channels[0]?.sendJson(status(4));
    channels[1]?.sendJson(status(4));
    stopSecond();

    expect(first.mock.calls).toEqual([[status(3)]]);
    expect(second.mock.calls).toEqual([[status(2)], [status(4)]]);
  });

  it("no longer listens to the broadcast event", async () => {
    plugin();
    const handler = vi.fn();
    const unlisten = await onStatus(handler);
    await emit(STATUS_EVENT, runningStatus);
    expect(handler).not.toHaveBeenCalled();
    unlisten();
  });

  it("stops the handler even when the plugin refuses to unsubscribe", async () => {
    const channels: FakeChannel[] = [];
    mockPlugin((invocation) => {
      if (invocation.cmd === "plugin:anysync|unsubscribe") return rejectWith("anysync.unsubscribe not allowed");
      channels.push(channelOf(invocation, "onStatus"));
      return 9;
    });
    const handler = vi.fn();
    const unlisten = await onStatus(handler);
    unlisten();
    await settle();
    channels[0]?.sendJson(status(1));
    expect(handler).not.toHaveBeenCalled();
  });

  it("lets the channel go when the plugin drops it (the page reloads, the webview goes)", async () => {
    const { channels } = plugin(status(1));
    const before = registeredCallbacks();
    await onStatus(() => undefined);
    expect(registeredCallbacks()).toBe(before + 1);
    channels[0]?.close();
    expect(registeredCallbacks()).toBe(before);
  });
});

describe("onLog", () => {
  it("hands every record to the handler, in order, until unsubscribed", async () => {
    const { calls, channels } = plugin();
    const seen: LogRecord[] = [];
    const unlisten = await onLog((record) => seen.push(record));
    expect(calls.map((c) => c.cmd)).toEqual(["plugin:anysync|subscribe_logs"]);

    const next: LogRecord = { ...logRecord, seq: 8, level: "warn", message: "slow", fields: {} };
    channels[0]?.sendJson(logRecord);
    channels[0]?.sendJson(next);
    expect(seen).toEqual([logRecord, next]);

    unlisten();
    channels[0]?.sendJson({ ...logRecord, seq: 9 });
    await settle();
    expect(seen.map((record) => record.seq)).toEqual([7, 8]);
    expect(calls.at(-1)).toEqual({ cmd: "plugin:anysync|unsubscribe", payload: { id: 1 }, headers: {} });
  });

  it("no longer listens to the broadcast event", async () => {
    plugin();
    const handler = vi.fn();
    const unlisten = await onLog(handler);
    await emit(LOG_EVENT, logRecord);
    expect(handler).not.toHaveBeenCalled();
    unlisten();
  });
});
