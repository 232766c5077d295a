/**
 * The document store end to end, through the example app's real webview: the notes panel
 * (examples/tauri-app/src/notes.ts) creates, edits, tags, deletes and searches notes in space
 * "personal", collection "notes" of `anysync.v1.StoreService`, served by the example's own Go
 * backend; its list is a live `watch` that resumes after the backend restarts (the restart button,
 * and a SIGKILL of the sidecar) with no change lost or repeated. One app session for the file.
 *
 * The app's data directory persists between runs, so every note of a run carries a tag of its own
 * (`RUN`) and the checks look at those notes only.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { isRunning, openApp, pageReady, runningBackendPid, startDriver, waitFor, type Browser, type Driver } from "./harness.ts";

let driver: Driver | undefined;
let browser: Browser | undefined;
/** This run's tag: on every note the run writes. */
const RUN = `e2e-${Date.now().toString(36)}`;

function session(): Browser {
  assert.ok(browser, "no app session (see the before hook's error)");
  return browser;
}

/**
 * Runs `body` (an async function body; `hooks` = window.anysyncExample.notes, `other` = a second
 * client of the collection on a transport of its own, `invoke`, `args` in scope) in the page. A
 * thrown error comes back as `{ thrown: code, message }`.
 */
async function inPage<T>(body: string, ...args: unknown[]): Promise<T> {
  const script = `
    const args = Array.from(arguments);
    const ex = window.anysyncExample;
    const hooks = ex.notes;
    const invoke = window.__TAURI_INTERNALS__.invoke;
    window.__otherNotes ??= ex.openSpace("personal", { transport: ex.anysyncTransport() }).then((s) => s.collection("notes"));
    return (async () => { const other = await window.__otherNotes; ${body} })()
      .catch((e) => { window.__otherNotes = undefined; return { thrown: String(e && e.code || e), message: String(e && e.message) }; });
  `;
  return (await session().execute(script, ...args)) as T;
}

interface ListedNote {
  id: string;
  rev: number;
  title: string;
  tags: string[];
}

/** The live list's notes of this run, as the page shows them. */
async function listed(): Promise<ListedNote[]> {
  const all = (await session().execute(`
    return [...document.querySelectorAll("#notes-list li")].map((li) => ({
      id: li.dataset.id,
      rev: Number(li.dataset.rev),
      title: li.querySelector(".note-title").textContent,
      tags: li.dataset.tags ? li.dataset.tags.split(",") : [],
    }));
  `)) as unknown as ListedNote[];
  return all.filter((note) => note.tags.includes(RUN));
}

async function listedNote(what: string, match: (note: ListedNote) => boolean, timeoutMs = 15_000): Promise<ListedNote> {
  return waitFor(what, async () => (await listed()).find(match), { timeoutMs });
}

interface Applied {
  kind: string;
  seq: number;
  id: string;
  rev: number;
}

async function changes(): Promise<Applied[]> {
  return inPage<Applied[]>(`return hooks.changes.map((c) => ({ ...c }));`);
}

async function subscriptions(): Promise<number> {
  return inPage<number>(`return hooks.subscriptions();`);
}

/** How many subscriptions of the live list resumed with afterSeq. */
async function resumes(): Promise<number> {
  return inPage<number>(`return hooks.resumes();`);
}

async function sidecarPid(): Promise<number> {
  return runningBackendPid(session(), { timeoutMs: 30_000 });
}

async function liveState(): Promise<string> {
  return (await session().$("#notes-live").getAttribute("data-state")) ?? "";
}

/** Fills the note form and submits it. */
async function fillAndSave(title: string, body: string, tags: string): Promise<void> {
  await session().$("#note-title").setValue(title);
  await session().$("#note-body").setValue(body);
  await session().$("#note-tags").setValue(tags);
  await session().$("#note-save").click();
}

async function clickInNote(id: string, action: "edit" | "delete"): Promise<void> {
  await session().$(`#notes-list li[data-id="${id}"] button[data-action="${action}"]`).click();
}

async function search(text: string): Promise<{ state: string; count: number; code: string; message: string; ids: string[] }> {
  await session().execute(`document.getElementById("notes-results").dataset.state = "";`);
  await session().$("#notes-search").setValue(text);
  await session().$("#notes-search-button").click();
  return waitFor("the search to finish", async () => {
    const r = (await session().execute(`
      const results = document.getElementById("notes-results");
      const error = document.getElementById("notes-search-error");
      return {
        state: results.dataset.state,
        count: Number(results.dataset.count || 0),
        code: error.dataset.code,
        message: error.textContent,
        ids: [...results.querySelectorAll("li")].map((li) => li.dataset.id),
      };
    `)) as unknown as { state: string; count: number; code: string; message: string; ids: string[] };
    return r.state === "done" || r.state === "failed" ? r : undefined;
  });
}

/** Every change of this run's notes is applied exactly once, in increasing seq order. */
function assertExactlyOnce(all: Applied[], ids: Set<string>, expected: number): void {
  const mine = all.filter((c) => ids.has(c.id));
  const seqs = all.map((c) => c.seq);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), "changes arrive in seq order");
  assert.equal(new Set(seqs).size, seqs.length, `no change is applied twice: ${JSON.stringify(all.slice(-10))}`);
  assert.equal(mine.length, expected, `every change of the run's notes arrives once: ${JSON.stringify(mine)}`);
}

describe("the notes app on the document store", { timeout: 600_000 }, () => {
  /** The ids of every note this run wrote, and how many writes (changes) it made to them. */
  const ids = new Set<string>();
  let writes = 0;

  before(async () => {
    driver = await startDriver();
    browser = await openApp();
    await pageReady(session());
    await sidecarPid();
    await waitFor("the live notes list to be live", async () => (await liveState()) === "running", { timeoutMs: 30_000 });
  });

  after(async () => {
    await browser?.deleteSession().catch(() => undefined);
    await driver?.stop();
  });

  it("creates a note through the form; the live list shows it", async () => {
    await fillAndSave("groceries", "milk, eggs", `${RUN}, home`);
    const note = await listedNote("the new note in the list", (n) => n.title === "groceries");
    assert.equal(note.rev, 1);
    assert.deepEqual(note.tags, [RUN, "home"]);
    ids.add(note.id);
    writes += 1;
    assert.equal(await session().$("#notes-error").getAttribute("data-code"), "");
  });

  it("edits and tags it through the form", async () => {
    const [note] = await listed();
    assert.ok(note);
    await clickInNote(note.id, "edit");
    assert.equal(await session().$("#note-form").getAttribute("data-editing-id"), note.id);
    await fillAndSave("groceries and bread", "milk, eggs, bread", `${RUN}, home, errand`);
    const edited = await listedNote("the edited note", (n) => n.id === note.id && n.rev === 2);
    assert.equal(edited.title, "groceries and bread");
    assert.deepEqual(edited.tags, [RUN, "home", "errand"]);
    writes += 1;
  });

  it("searches by tag through the form", async () => {
    await fillAndSave("standup", "9:30", `${RUN}, work`);
    const work = await listedNote("the work note", (n) => n.title === "standup");
    ids.add(work.id);
    writes += 1;
    const byRun = await search(RUN);
    assert.equal(byRun.state, "done", byRun.message);
    assert.equal(byRun.count, 2);
    assert.deepEqual(byRun.ids, [work.id, ...[...ids].filter((id) => id !== work.id)], "newest edit first");
    const filtered = await search(JSON.stringify({ $and: [{ tags: RUN }, { tags: { $in: ["errand"] } }] }));
    assert.equal(filtered.count, 1);
    assert.notEqual(filtered.ids[0], work.id);
  });

  it("a bad filter shows INVALID_ARGUMENT naming the operator", async (t) => {
    const r = await search(JSON.stringify({ tags: { $regex: "wo.*" } }));
    assert.equal(r.state, "failed");
    assert.equal(r.code, "INVALID_ARGUMENT", r.message);
    assert.match(r.message, /\$regex/);
    t.diagnostic(r.message);
  });

  it("the live list follows writes made through another client", async () => {
    const put = await inPage<{ id: string; rev: number }>(
      `const d = await other.put({ title: "from elsewhere", body: "", tags: [args[0]], editedAt: Date.now() }); return { id: d.id, rev: d.rev };`,
      RUN,
    );
    ids.add(put.id);
    writes += 1;
    await listedNote("the other client's insert", (n) => n.id === put.id && n.title === "from elsewhere");
    await inPage(`await other.update(args[0], { $set: { title: "changed elsewhere" }, $addToSet: { tags: "remote" } }); return {};`, put.id);
    writes += 1;
    const updated = await listedNote("the other client's update", (n) => n.id === put.id && n.rev === 2);
    assert.equal(updated.title, "changed elsewhere");
    assert.deepEqual(updated.tags, [RUN, "remote"]);
    await inPage(`await other.delete(args[0]); return {};`, put.id);
    writes += 1;
    await waitFor("the other client's delete", async () => !(await listed()).some((n) => n.id === put.id));
  });

  it("saving over a note changed meanwhile fails ABORTED and writes nothing", async () => {
    const note = await listedNote("the work note", (n) => n.title === "standup");
    await clickInNote(note.id, "edit");
    await inPage(`await other.update(args[0], { $set: { body: "moved to 10:00" } }); return {};`, note.id);
    writes += 1;
    await listedNote("the concurrent update", (n) => n.id === note.id && n.rev === note.rev + 1);
    await fillAndSave("standup (mine)", "9:30", `${RUN}, work`);
    const code = await waitFor("the save to fail", async () => {
      const value = await session().$("#notes-error").getAttribute("data-code");
      return value === null || value === "" ? undefined : value;
    });
    assert.equal(code, "ABORTED", await session().$("#notes-error").getText());
    const stored = await inPage<{ title: string; body: string; rev: number }>(
      `const d = await other.get(args[0]); return { title: d.title, body: d.body, rev: d.rev };`,
      note.id,
    );
    assert.deepEqual(stored, { title: "standup", body: "moved to 10:00", rev: note.rev + 1 });
    await session().$("#note-cancel").click();
  });

  it("deletes a note through the list", async () => {
    const note = await listedNote("the work note", (n) => n.title === "standup");
    await clickInNote(note.id, "delete");
    writes += 1;
    await waitFor("the deleted note to leave the list", async () => !(await listed()).some((n) => n.id === note.id));
    const gone = await inPage<{ thrown?: string }>(`await other.get(args[0]); return {};`, note.id);
    assert.equal(gone.thrown, "NOT_FOUND");
  });

  it("the restart button: the list resubscribes and misses nothing", async () => {
    const before = await subscriptions();
    const resumedBefore = await resumes();
    const pid = await sidecarPid();
    await session().$("#restart-button").click();
    await waitFor("a new backend", async () => (await sidecarPid()) !== pid, { timeoutMs: 30_000 });
    const put = await inPage<{ id: string }>(
      `const d = await other.put({ title: "after restart", body: "", tags: [args[0]], editedAt: Date.now() }); return { id: d.id };`,
      RUN,
    );
    ids.add(put.id);
    writes += 1;
    await listedNote("the note written after the restart", (n) => n.id === put.id, 30_000);
    assert.ok((await subscriptions()) > before, "the watch subscribed again");
    assert.ok((await resumes()) > resumedBefore, "it resumed with afterSeq");
    assertExactlyOnce(await changes(), ids, writes);
  });

  it("a note saved just before SIGKILL of the sidecar is there after it comes back, and the watch resumes exactly once", async (t) => {
    const before = await subscriptions();
    const resumedBefore = await resumes();
    const pid = await sidecarPid();
    // Several acknowledged writes, the last one immediately before the kill.
    const saved = await inPage<{ ids: string[] }>(
      `
      const ids = [];
      for (let i = 0; i < 5; i++) {
        const d = await other.put({ title: "before kill " + i, body: "", tags: [args[0]], editedAt: Date.now() });
        ids.push(d.id);
      }
      return { ids };
    `,
      RUN,
    );
    process.kill(pid, "SIGKILL");
    for (const id of saved.ids) ids.add(id);
    writes += saved.ids.length;
    await waitFor("the killed sidecar to be gone", () => !isRunning(pid));
    const next = await waitFor("a new backend", async () => {
      const p = await sidecarPid();
      return p !== pid ? p : undefined;
    }, { timeoutMs: 30_000 });
    // A write right away, maybe before the page resubscribed: the resume must deliver it too.
    const after = await inPage<{ id: string }>(
      `const d = await other.put({ title: "after kill", body: "", tags: [args[0]], editedAt: Date.now() }); return { id: d.id };`,
      RUN,
    );
    ids.add(after.id);
    writes += 1;
    for (const id of [...saved.ids, after.id]) await listedNote(`note ${id} in the list`, (n) => n.id === id, 30_000);
    const stored = await inPage<{ titles: string[] }>(
      `const titles = []; for (const id of args[0]) titles.push((await other.get(id)).title); return { titles };`,
      saved.ids,
    );
    assert.deepEqual(stored.titles, [0, 1, 2, 3, 4].map((i) => `before kill ${i}`));
    assert.ok((await subscriptions()) > before, "the watch subscribed again");
    assert.ok((await resumes()) > resumedBefore, "it resumed with afterSeq");
    assert.equal(await liveState(), "running");
    assertExactlyOnce(await changes(), ids, writes);
    t.diagnostic(`sidecar ${pid} killed, ${next} serving; ${writes} changes of this run applied exactly once`);
  });
});
