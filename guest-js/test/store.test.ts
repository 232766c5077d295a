/**
 * The document-store layer (src/store.ts) against a fake plugin: what it encodes into the
 * StoreService requests, how it decodes the answers and the Watch stream, and that errors stay
 * AnysyncErrors with the gRPC code.
 */
import { fromBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { clearMocks } from "@tauri-apps/api/mocks";
import { afterEach, describe, expect, it } from "vitest";

import {
  BatchRequestSchema,
  BatchResponseSchema,
  CountRequestSchema,
  CountResponseSchema,
  CreateSpaceRequestSchema,
  CreateSpaceResponseSchema,
  DeleteResponseSchema,
  EnsureIndexRequestSchema,
  EnsureIndexResponseSchema,
  ExplainResponseSchema,
  FindRequestSchema,
  FindResponseSchema,
  GetResponseSchema,
  ListSpacesResponseSchema,
  PutRequestSchema,
  PutResponseSchema,
  UpdateRequestSchema,
  UpdateResponseSchema,
  WatchRequestSchema,
  WatchResponseSchema,
  WatchResponse_Kind,
} from "../src/gen/anysync/v1/store_pb.js";
import { AnysyncError, openSpace, listSpaces, type Change, type Collection } from "../src/index.js";
import { rejectWith } from "./fixtures.js";
import { FakeChannel, answer, endFrame, messageFrame, mockPlugin, type Invocation } from "./ipc.js";

afterEach(() => {
  clearMocks();
});

const METHOD = "anysync.v1.StoreService/";

interface Note {
  title: string;
  tags: string[];
}

const stored = {
  id: "n1",
  rev: 3n,
  json: '{"id":"n1","title":"milk","tags":["home"]}',
  createdAtUnixMicros: 1_767_225_600_000_123n,
  updatedAtUnixMicros: 1_767_225_601_500_999n,
};

/** A fake unary StoreService: `answers` maps a method name to its reply (or an error to reject with). */
function storePlugin(answers: Record<string, (invocation: Invocation) => unknown>): Invocation[] {
  return mockPlugin((invocation) => {
    const method = invocation.headers["anysync-method"]?.slice(METHOD.length) ?? "";
    const reply = answers[method];
    if (reply === undefined) throw new Error(`unexpected ${method}`);
    return reply(invocation);
  });
}

function request<S extends DescMessage>(schema: S, invocation: Invocation | undefined): MessageShape<S> {
  return fromBinary(schema, invocation?.payload as Uint8Array);
}

describe("openSpace", () => {
  it("creates the space, and an ALREADY_EXISTS means it is there", async () => {
    let created = false;
    const calls = storePlugin({
      CreateSpace: () => {
        if (created) return rejectWith({ code: "ALREADY_EXISTS", message: 'space "personal" exists' });
        created = true;
        return answer(CreateSpaceResponseSchema, { space: { name: "personal" } });
      },
    });
    await expect(openSpace("personal")).resolves.toMatchObject({ name: "personal" });
    await expect(openSpace("personal")).resolves.toMatchObject({ name: "personal" });
    expect(calls.map((call) => request(CreateSpaceRequestSchema, call).name)).toEqual(["personal", "personal"]);
  });

  it("passes any other error on as an AnysyncError with its code", async () => {
    storePlugin({ CreateSpace: () => rejectWith({ code: "PERMISSION_DENIED", message: "not allowed" }) });
    const error: unknown = await openSpace("personal").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AnysyncError);
    expect(error).toMatchObject({ code: "PERMISSION_DENIED" });
  });

  it("with create: false only opens, NOT_FOUND for a missing space", async () => {
    const calls = storePlugin({ ListSpaces: () => answer(ListSpacesResponseSchema, { spaces: [{ name: "work" }] }) });
    await expect(openSpace("work", { create: false })).resolves.toMatchObject({ name: "work" });
    await expect(openSpace("personal", { create: false })).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect(calls.every((call) => call.headers["anysync-method"] === `${METHOD}ListSpaces`)).toBe(true);
    await expect(listSpaces()).resolves.toEqual(["work"]);
  });
});

async function notes(answers: Record<string, (invocation: Invocation) => unknown>): Promise<{
  calls: Invocation[];
  notes: Collection<Record<string, unknown>>;
}> {
  const calls = storePlugin({ CreateSpace: () => answer(CreateSpaceResponseSchema, {}), ...answers });
  const space = await openSpace("personal");
  calls.length = 0;
  return { calls, notes: space.collection("notes") };
}

describe("collection", () => {
  it("put sends the JSON without the metadata keys and the expected revision, and decodes the document", async () => {
    const { calls, notes: c } = await notes({ Put: () => answer(PutResponseSchema, { document: stored }) });
    const doc = await c.put({ id: "n1", title: "milk", tags: ["home"], rev: 2, createdAt: 1, updatedAt: 2 }, { expectedRev: 2 });
    const sent = request(PutRequestSchema, calls[0]);
    expect(sent).toMatchObject({ space: "personal", collection: "notes", expectedRev: 2n });
    expect(JSON.parse(sent.json)).toEqual({ id: "n1", title: "milk", tags: ["home"] });
    expect(doc).toEqual({
      id: "n1",
      title: "milk",
      tags: ["home"],
      rev: 3,
      createdAt: 1_767_225_600_000,
      updatedAt: 1_767_225_601_500,
    });
  });

  it("put without expectedRev leaves it unset; 0 means insert only", async () => {
    const { calls, notes: c } = await notes({ Put: () => answer(PutResponseSchema, { document: stored }) });
    await c.put({ title: "x" });
    await c.put({ title: "x" }, { expectedRev: 0 });
    expect(request(PutRequestSchema, calls[0]).expectedRev).toBeUndefined();
    expect(request(PutRequestSchema, calls[1]).expectedRev).toBe(0n);
    await expect(c.put({ title: "x" }, { expectedRev: -1 })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });

  it("keeps ABORTED for a stale revision and INVALID_ARGUMENT naming the operator", async () => {
    const { notes: c } = await notes({
      Update: () => rejectWith({ code: "ABORTED", message: "expected rev 1, found 2" }),
      Find: () => rejectWith({ code: "INVALID_ARGUMENT", message: 'filter: unknown operator "$regex" at tags' }),
    });
    await expect(c.update("n1", { $set: { title: "y" } }, { expectedRev: 1 })).rejects.toMatchObject({ code: "ABORTED" });
    const error: unknown = await c.find({ tags: { $regex: "w" } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AnysyncError);
    expect(error).toMatchObject({ code: "INVALID_ARGUMENT", message: expect.stringContaining("$regex") as string });
  });

  it("update sends the modifiers as JSON; get and delete decode", async () => {
    const { calls, notes: c } = await notes({
      Update: () => answer(UpdateResponseSchema, { document: stored }),
      Get: () => answer(GetResponseSchema, { document: stored }),
      Delete: () => answer(DeleteResponseSchema, { document: { ...stored, json: "" } }),
    });
    await c.update("n1", { $addToSet: { tags: "work" } }, { expectedRev: 3 });
    const sent = request(UpdateRequestSchema, calls[0]);
    expect(sent).toMatchObject({ id: "n1", update: '{"$addToSet":{"tags":"work"}}', expectedRev: 3n });
    await expect(c.get("n1")).resolves.toMatchObject({ title: "milk", rev: 3 });
    await expect(c.delete("n1")).resolves.toEqual({ id: "n1", rev: 3, createdAt: 1_767_225_600_000, updatedAt: 1_767_225_601_500 });
  });

  it("find sends filter, sort (key order kept), limit and cursor, and maps an empty next cursor to undefined", async () => {
    let page = 0;
    // The page as Go writes it for page_as_json: [id, rev, created µs, updated µs, object] per document.
    const documentsJson = `[["n1",3,1767225600000123,1767225601500999,${stored.json}],["n\\"2",1,1767225600000000,1767225600000999,{"id":"n\\"2","title":"eggs","tags":[]}]]`;
    const { calls, notes: c } = await notes({
      Find: () => answer(FindResponseSchema, { documentsJson, nextCursor: page++ === 0 ? "c1" : "" }),
    });
    const first = await c.find({ tags: { $in: ["home"] } }, { sort: { editedAt: -1, title: 1 }, limit: 1 });
    expect(first.nextCursor).toBe("c1");
    expect(first.docs).toEqual([
      { id: "n1", title: "milk", tags: ["home"], rev: 3, createdAt: 1_767_225_600_000, updatedAt: 1_767_225_601_500 },
      { id: 'n"2', title: "eggs", tags: [], rev: 1, createdAt: 1_767_225_600_000, updatedAt: 1_767_225_600_000 },
    ]);
    const second = await c.find({ tags: { $in: ["home"] } }, { sort: { editedAt: -1, title: 1 }, limit: 1, cursor: "c1" });
    expect(second.nextCursor).toBeUndefined();
    expect(request(FindRequestSchema, calls[0])).toMatchObject({
      filter: '{"tags":{"$in":["home"]}}',
      sort: '{"editedAt":-1,"title":1}',
      limit: 1,
      cursor: "",
      pageAsJson: true,
    });
    expect(request(FindRequestSchema, calls[1]).cursor).toBe("c1");
    await c.find();
    expect(request(FindRequestSchema, calls[2])).toMatchObject({ filter: "", sort: "", limit: 0 });
  });

  it("count, ensureIndex and explain", async () => {
    const { calls, notes: c } = await notes({
      Count: () => answer(CountResponseSchema, { count: 7n }),
      EnsureIndex: (invocation) => {
        const sent = request(EnsureIndexRequestSchema, invocation);
        return answer(EnsureIndexResponseSchema, { index: sent.index, created: true });
      },
      Explain: () => answer(ExplainResponseSchema, { index: "ix_tags", plan: ["SEARCH ..."], sql: "SELECT" }),
    });
    await expect(c.count({ done: false })).resolves.toBe(7);
    expect(request(CountRequestSchema, calls[0]).filter).toBe('{"done":false}');
    await expect(c.ensureIndex(["tags"])).resolves.toEqual({ name: "ix_tags", created: true });
    await expect(c.ensureIndex({ "owner.id": 1, editedAt: -1 }, { unique: true })).resolves.toEqual({
      name: "ix_owner_id__editedAt_desc",
      created: true,
    });
    expect(request(EnsureIndexRequestSchema, calls[2]).index).toMatchObject({
      collection: "notes",
      unique: true,
      fields: [
        { path: "owner.id", descending: false },
        { path: "editedAt", descending: true },
      ],
    });
    await expect(c.explain({ tags: "work" })).resolves.toEqual({ index: "ix_tags", plan: ["SEARCH ..."], sql: "SELECT" });
  });
});

describe("space.batch", () => {
  it("encodes every kind of operation, in order, and decodes one result per operation", async () => {
    const calls = storePlugin({
      CreateSpace: () => answer(CreateSpaceResponseSchema, {}),
      Batch: () => answer(BatchResponseSchema, { documents: [stored, stored, { ...stored, json: "" }] }),
    });
    const space = await openSpace("personal");
    const results = await space.batch([
      { op: "put", collection: "notes", doc: { id: "n1", title: "milk", rev: 9 } },
      { op: "update", collection: "notes", id: "n1", modifiers: { $inc: { views: 1 } }, expectedRev: 3 },
      { op: "delete", collection: "notes", id: "n2" },
    ]);
    const sent = request(BatchRequestSchema, calls[1]);
    expect(sent.space).toBe("personal");
    expect(sent.ops.map((op) => [op.put?.json, op.update?.update, op.update?.expectedRev, op.delete?.id])).toEqual([
      ['{"id":"n1","title":"milk"}', undefined, undefined, undefined],
      [undefined, '{"$inc":{"views":1}}', 3n, undefined],
      [undefined, undefined, undefined, "n2"],
    ]);
    expect(results.map((r) => r.rev)).toEqual([3, 3, 3]);
    expect(results[0]).toMatchObject({ title: "milk" });
  });
});

describe("collection.watch", () => {
  function watchPlugin(serve: (channel: FakeChannel) => void): Invocation[] {
    return mockPlugin((invocation) => {
      if (invocation.headers["anysync-method"] === `${METHOD}CreateSpace`) return answer(CreateSpaceResponseSchema, {});
      if (invocation.cmd === "plugin:anysync|stream") {
        const channel = new FakeChannel(invocation.headers["anysync-channel"]);
        queueMicrotask(() => {
          serve(channel);
        });
      }
      return null;
    });
  }

  it("sends the filter and afterSeq and yields typed changes", async () => {
    const calls = watchPlugin((channel) => {
      const event = (kind: WatchResponse_Kind, seq: bigint, document?: typeof stored, matches = false): Uint8Array =>
        messageFrame(WatchResponseSchema, { kind, seq, matches, ...(document === undefined ? {} : { document }) });
      channel.send(event(WatchResponse_Kind.INITIAL, 0n, stored));
      channel.send(event(WatchResponse_Kind.READY, 10n));
      channel.send(event(WatchResponse_Kind.INSERT, 11n, { ...stored, id: "n2", rev: 1n, json: '{"id":"n2","title":"b","tags":[]}' }, true));
      channel.send(event(WatchResponse_Kind.UPDATE, 12n, { ...stored, rev: 4n }, false));
      channel.send(event(WatchResponse_Kind.DELETE, 13n, { ...stored, id: "n2", json: "" }));
      channel.send(endFrame());
    });
    const space = await openSpace("personal");
    const changes: Change<Note>[] = [];
    for await (const change of space.collection<Note>("notes").watch({ tags: "home" }, { afterSeq: 9 })) changes.push(change);
    const open = calls.find((call) => call.cmd === "plugin:anysync|stream");
    expect(open?.headers["anysync-method"]).toBe(`${METHOD}Watch`);
    expect(request(WatchRequestSchema, open)).toMatchObject({ space: "personal", collection: "notes", filter: '{"tags":"home"}', afterSeq: 9n });
    expect(changes.map(({ kind, seq, id, rev, matches }) => ({ kind, seq, id, rev, matches }))).toEqual([
      { kind: "initial", seq: 0, id: "n1", rev: 3, matches: true },
      { kind: "ready", seq: 10, id: "", rev: 0, matches: false },
      { kind: "insert", seq: 11, id: "n2", rev: 1, matches: true },
      { kind: "update", seq: 12, id: "n1", rev: 4, matches: false },
      { kind: "delete", seq: 13, id: "n2", rev: 3, matches: false },
    ]);
    expect(changes[0]?.doc).toMatchObject({ id: "n1", title: "milk", rev: 3 });
    expect(changes[2]?.doc).toMatchObject({ title: "b" });
    expect(changes[1]?.doc).toBeUndefined();
    expect(changes[4]?.doc).toBeUndefined();
  });

  it("leaves afterSeq unset when not resuming, and passes stream errors on with their code", async () => {
    const calls = watchPlugin((channel) => {
      channel.send(endFrame({ code: "OUT_OF_RANGE", message: "after_seq 99 is beyond the last change 5" }));
    });
    const space = await openSpace("personal");
    const seen: string[] = [];
    const loop = async (): Promise<void> => {
      for await (const change of space.collection("notes").watch()) seen.push(change.kind);
    };
    await expect(loop()).rejects.toMatchObject({ code: "OUT_OF_RANGE" });
    expect(seen).toEqual([]);
    const open = calls.find((call) => call.cmd === "plugin:anysync|stream");
    const sent = request(WatchRequestSchema, open);
    expect(sent.filter).toBe("");
    expect(sent.afterSeq).toBeUndefined();
  });

  it("ends quietly when the caller's signal aborts", async () => {
    const controller = new AbortController();
    const calls = watchPlugin((channel) => {
      channel.send(messageFrame(WatchResponseSchema, { kind: WatchResponse_Kind.READY, seq: 1n }));
    });
    const space = await openSpace("personal");
    const kinds: string[] = [];
    for await (const change of space.collection("notes").watch(undefined, { signal: controller.signal })) {
      kinds.push(change.kind);
      controller.abort();
    }
    expect(kinds).toEqual(["ready"]);
    expect(calls.some((call) => call.cmd === "plugin:anysync|cancel")).toBe(true);
  });
});
