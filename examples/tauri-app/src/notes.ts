/**
 * The notes panel: a small notes app on the plugin's document store (`anysync.v1.StoreService`,
 * space "personal", collection "notes"), through the TypeScript layer `openSpace`.
 *
 * - Create, edit (with `expectedRev`: a note changed elsewhere meanwhile fails ABORTED), delete,
 *   tag (comma-separated tags) and search (a tag, or a JSON filter) notes.
 * - The list is a live query: one `watch` of the collection, resubscribed after the backend went
 *   away (restart or kill) with `afterSeq` = the last sequence number seen, so every change made
 *   meanwhile arrives exactly once. Every change the list applied is kept in `changes` (for the e2e
 *   suite: no duplicate, no gap).
 *
 * Every element has an id; results carry `data-*` attributes beside their text.
 */
import { AnysyncError, openSpace, type Change, type Collection, type StoredDoc } from "tauri-plugin-anysync-api";

import { act, byId, clearError, showError } from "./page.js";

/** A note as the page stores it. `editedAt` is the page's own field to sort by (ms since the epoch). */
export interface Note {
  title: string;
  body: string;
  tags: string[];
  editedAt: number;
}

export const SPACE = "personal";
export const COLLECTION = "notes";
/** How long the live list waits before it subscribes again after the backend went away. */
const RESUBSCRIBE_MS = 250;
/** Codes that mean "the backend is away for now": resubscribe quietly. */
const AWAY = ["UNAVAILABLE", "NOT_RUNNING", "SIDECAR_FAILED", "CANCELLED"];

/** What the page exposes for the e2e suite and the devtools console. */
export interface NotesHooks {
  /** The collection, once opened (writes through it reach the list through the watch). */
  notes: () => Promise<Collection<Note>>;
  /** Every change the live list applied, in order: kind, seq, id, rev. */
  changes: { kind: string; seq: number; id: string; rev: number }[];
  /** How many times the watch subscribed (1 + resubscriptions). */
  subscriptions: () => number;
  /** How many of those subscriptions resumed with `afterSeq` (no initial set). */
  resumes: () => number;
  /** The last sequence number seen (what a resubscription resumes after). */
  lastSeq: () => number | undefined;
}

function parseTags(text: string): string[] {
  return [...new Set(text.split(",").map((t) => t.trim()).filter((t) => t !== ""))];
}

/** Sets up the panel (index.html's `#notes` section) and returns its hooks. */
export function setupNotes(): NotesHooks {
  const ui = {
    live: byId("notes-live", HTMLElement),
    form: byId("note-form", HTMLFormElement),
    title: byId("note-title", HTMLInputElement),
    body: byId("note-body", HTMLTextAreaElement),
    tags: byId("note-tags", HTMLInputElement),
    save: byId("note-save", HTMLButtonElement),
    cancel: byId("note-cancel", HTMLButtonElement),
    error: byId("notes-error", HTMLElement),
    count: byId("notes-count", HTMLElement),
    list: byId("notes-list", HTMLUListElement),
    searchForm: byId("notes-search-form", HTMLFormElement),
    search: byId("notes-search", HTMLInputElement),
    searchButton: byId("notes-search-button", HTMLButtonElement),
    results: byId("notes-results", HTMLUListElement),
    searchError: byId("notes-search-error", HTMLElement),
  };

  let opened: Promise<Collection<Note>> | undefined;
  /** The collection; the space is created on first use (and again if the open failed). */
  const notes = (): Promise<Collection<Note>> => {
    opened ??= openSpace(SPACE).then((space) => space.collection<Note>(COLLECTION));
    opened.catch(() => {
      opened = undefined;
    });
    return opened;
  };

  const docs = new Map<string, StoredDoc<Note>>();
  const changes: NotesHooks["changes"] = [];
  let lastSeq: number | undefined;
  let subscriptions = 0;
  let resumes = 0;

  function noteItem(note: StoredDoc<Note>, withActions: boolean): HTMLLIElement {
    const item = document.createElement("li");
    item.className = "note";
    item.dataset.id = note.id;
    item.dataset.rev = String(note.rev);
    item.dataset.tags = note.tags.join(",");
    const title = document.createElement("strong");
    title.className = "note-title";
    title.textContent = note.title;
    const body = document.createElement("span");
    body.className = "note-body";
    body.textContent = note.body;
    const tags = document.createElement("span");
    tags.className = "note-tags";
    for (const tag of note.tags) {
      const chip = document.createElement("span");
      chip.className = "tag";
      chip.dataset.tag = tag;
      chip.textContent = tag;
      tags.append(chip);
    }
    item.append(title, body, tags);
    if (withActions) {
      const edit = document.createElement("button");
      edit.type = "button";
      edit.className = "secondary";
      edit.dataset.action = "edit";
      edit.textContent = "Edit";
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "secondary";
      remove.dataset.action = "delete";
      remove.textContent = "Delete";
      item.append(edit, remove);
    }
    return item;
  }

  function renderList(): void {
    const sorted = [...docs.values()].sort((a, b) => b.editedAt - a.editedAt || a.id.localeCompare(b.id));
    ui.list.replaceChildren(...sorted.map((note) => noteItem(note, true)));
    ui.count.dataset.count = String(docs.size);
    ui.count.textContent = `${docs.size} note${docs.size === 1 ? "" : "s"}`;
  }

  function setLive(state: "running" | "restarting", text: string): void {
    ui.live.dataset.state = state;
    ui.live.dataset.seq = lastSeq === undefined ? "" : String(lastSeq);
    ui.live.dataset.subscriptions = String(subscriptions);
    ui.live.dataset.resumes = String(resumes);
    ui.live.textContent = text;
  }

  function apply(change: Change<Note>): void {
    if (change.kind === "initial") {
      if (change.doc !== undefined) docs.set(change.id, change.doc);
      return;
    }
    lastSeq = change.seq;
    if (change.kind === "ready") {
      renderList();
      setLive("running", "live");
      return;
    }
    changes.push({ kind: change.kind, seq: change.seq, id: change.id, rev: change.rev });
    if (change.doc !== undefined && change.matches) docs.set(change.id, change.doc);
    else docs.delete(change.id);
    renderList();
    setLive("running", "live");
  }

  /** The live list: watch, and on the backend going away, resume after the last seq seen. */
  async function watchNotes(): Promise<never> {
    for (;;) {
      try {
        const collection = await notes();
        subscriptions += 1;
        if (lastSeq === undefined) docs.clear();
        else resumes += 1;
        for await (const change of collection.watch({}, lastSeq === undefined ? {} : { afterSeq: lastSeq })) apply(change);
      } catch (error) {
        if (!(error instanceof AnysyncError) || !AWAY.includes(error.code)) showError(ui.error, error);
        if (error instanceof AnysyncError && error.code === "OUT_OF_RANGE") lastSeq = undefined; // the space was replaced: start over
      }
      setLive("restarting", "reconnecting");
      await new Promise((resolve) => setTimeout(resolve, RESUBSCRIBE_MS));
    }
  }

  // -------------------------------------------------------------- editing

  function editing(): StoredDoc<Note> | undefined {
    const id = ui.form.dataset.editingId ?? "";
    if (id === "") return undefined;
    return docs.get(id) ?? ({ id, rev: Number(ui.form.dataset.editingRev) } as StoredDoc<Note>);
  }

  function startEdit(note: StoredDoc<Note> | undefined): void {
    ui.form.dataset.editingId = note?.id ?? "";
    ui.form.dataset.editingRev = note === undefined ? "" : String(note.rev);
    ui.title.value = note?.title ?? "";
    ui.body.value = note?.body ?? "";
    ui.tags.value = note?.tags.join(", ") ?? "";
    ui.save.textContent = note === undefined ? "Add note" : "Save note";
    ui.cancel.hidden = note === undefined;
  }

  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    void act(ui.save, ui.error, async () => {
      const collection = await notes();
      const note = { title: ui.title.value.trim(), body: ui.body.value, tags: parseTags(ui.tags.value), editedAt: Date.now() };
      const old = editing();
      // Editing writes only over the revision the form was filled from: ABORTED if it changed.
      const saved =
        old === undefined
          ? await collection.put(note, { expectedRev: 0 })
          : await collection.put({ ...note, id: old.id }, { expectedRev: Number(ui.form.dataset.editingRev) });
      ui.form.dataset.savedId = saved.id;
      ui.form.dataset.savedRev = String(saved.rev);
      startEdit(undefined);
    });
  });

  ui.cancel.addEventListener("click", () => {
    clearError(ui.error);
    startEdit(undefined);
  });

  ui.list.addEventListener("click", (event) => {
    const button = (event.target as HTMLElement).closest("button");
    const item = button?.closest("li");
    const id = item?.dataset.id;
    if (!button || id === undefined) return;
    if (button.dataset.action === "edit") {
      clearError(ui.error);
      startEdit(docs.get(id));
    } else if (button.dataset.action === "delete") {
      void act(button, ui.error, async () => {
        await (await notes()).delete(id, { expectedRev: Number(item?.dataset.rev) });
        if (ui.form.dataset.editingId === id) startEdit(undefined);
      });
    }
  });

  // -------------------------------------------------------------- search

  ui.searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    void act(ui.searchButton, ui.searchError, async () => {
      const text = ui.search.value.trim();
      // A tag, or (starting with "{") a filter in the store's JSON syntax.
      const filter: Record<string, unknown> = text.startsWith("{")
        ? (JSON.parse(text) as Record<string, unknown>)
        : text === ""
          ? {}
          : { tags: { $in: [text] } };
      ui.results.dataset.state = "searching";
      const { docs: found } = await (await notes()).find(filter, { sort: { editedAt: -1 }, limit: 50 });
      ui.results.replaceChildren(...found.map((note) => noteItem(note, false)));
      ui.results.dataset.count = String(found.length);
      ui.results.dataset.state = "done";
    }).finally(() => {
      if (ui.results.dataset.state === "searching") ui.results.dataset.state = "failed";
    });
  });

  startEdit(undefined);
  setLive("restarting", "connecting");
  void watchNotes();

  return { notes, changes, subscriptions: () => subscriptions, resumes: () => resumes, lastSeq: () => lastSeq };
}
