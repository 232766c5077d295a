package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/anysync/tauri-plugin-anysync/go-backend/backend/errs"
)

// Doc is a stored document.
type Doc struct {
	// ID is the document's id, also its JSON's "id".
	ID string
	// Rev is 1 after the insert and grows by one on every write.
	Rev uint64
	// JSON is the document's text (SQLite's minified form); "" for a
	// deleted document.
	JSON string
	// Created and Updated are microseconds since the Unix epoch.
	Created, Updated int64
}

// WriteKind is the kind of a Write.
type WriteKind int

// The kinds of write.
const (
	WritePut WriteKind = iota + 1
	WriteUpdate
	WriteDelete
)

// Write is one write of a batch (or a single call).
type Write struct {
	Kind       WriteKind
	Collection string
	// ID names the document of an update or a delete.
	ID string
	// JSON is a put's document.
	JSON string
	// Update is an update's modifiers.
	Update string
	// ExpectedRev, when set, is the revision the document must have (for
	// a put, 0 means "must not exist").
	ExpectedRev *uint64
}

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// newID returns 20 random base32 characters (100 bits).
func newID() string {
	var b [13]byte
	_, _ = rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])[:20]
}

func checkID(id string) error {
	switch {
	case id == "":
		return errs.New(errs.InvalidArgument, "the id is empty")
	case len(id) > MaxIDBytes:
		return errs.New(errs.InvalidArgument, "the id is %d bytes; the limit is %d", len(id), MaxIDBytes)
	case !utf8.ValidString(id):
		return errs.New(errs.InvalidArgument, "the id is not valid UTF-8")
	}
	return nil
}

// prepareDoc checks a document's text and returns it with its id (the one
// given, or a new one inserted as the first key).
func (sp *space) prepareDoc(text string) (string, string, error) {
	if len(text) > sp.opts.MaxDocBytes {
		return "", "", errs.New(errs.InvalidArgument, "the document is %d bytes; the limit is %d", len(text), sp.opts.MaxDocBytes)
	}
	trimmed := strings.TrimLeft(text, " \t\r\n")
	if !strings.HasPrefix(trimmed, "{") {
		return "", "", errs.New(errs.InvalidArgument, "the document is not a JSON object")
	}
	dec := json.NewDecoder(strings.NewReader(trimmed))
	dec.UseNumber()
	_, _ = dec.Token() // {
	var id string
	hasID := false
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", "", errs.New(errs.InvalidArgument, "the document is not valid JSON: %v", err)
		}
		key, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return "", "", errs.New(errs.InvalidArgument, "the document is not valid JSON: %v", err)
		}
		if key == "id" {
			if hasID {
				return "", "", errs.New(errs.InvalidArgument, `the document has the key "id" twice`)
			}
			hasID = true
			if err := json.Unmarshal(raw, &id); err != nil {
				return "", "", errs.New(errs.InvalidArgument, `the document's "id" is not a string`)
			}
			if err := checkID(id); err != nil {
				return "", "", err
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return "", "", errs.New(errs.InvalidArgument, "the document is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err == nil {
		return "", "", errs.New(errs.InvalidArgument, "the document has text after its JSON object")
	}
	if hasID {
		return id, trimmed, nil
	}
	id = newID()
	rest := strings.TrimLeft(trimmed[1:], " \t\r\n")
	if strings.HasPrefix(rest, "}") {
		return id, `{"id":"` + id + `"}`, nil
	}
	return id, `{"id":"` + id + `",` + rest, nil
}

func now() int64 { return time.Now().UnixMicro() }

type current struct {
	exists           bool
	rev              uint64
	doc              string
	created, updated int64
}

func getCurrent(ctx context.Context, tx *wtx, coll, id string) (current, error) {
	var c current
	err := tx.queryRow(ctx, "SELECT rev, doc, created, updated FROM docs WHERE collection = ? AND id = ?", []any{coll, id},
		&c.rev, &c.doc, &c.created, &c.updated)
	if errors.Is(err, sql.ErrNoRows) {
		return current{}, nil
	}
	c.exists = err == nil
	return c, err
}

func checkRev(want *uint64, c current, coll, id string) error {
	if want == nil {
		return nil
	}
	switch {
	case *want == 0 && c.exists:
		return errs.New(errs.AlreadyExists, "document %q of collection %q exists already (revision %d)", id, coll, c.rev)
	case *want != 0 && !c.exists:
		return errs.New(errs.Aborted, "document %q of collection %q: expected revision %d, but it does not exist; nothing was written", id, coll, *want)
	case *want != 0 && c.rev != *want:
		return errs.New(errs.Aborted, "document %q of collection %q: expected revision %d, but it is at %d; nothing was written", id, coll, *want, c.rev)
	}
	return nil
}

// apply runs one write inside tx and returns the document it leaves.
func (sp *space) apply(ctx context.Context, tx *wtx, w Write) (Doc, error) {
	if err := checkName("collection", w.Collection); err != nil {
		return Doc{}, err
	}
	var id, text string
	switch w.Kind {
	case WritePut:
		var err error
		if id, text, err = sp.prepareDoc(w.JSON); err != nil {
			return Doc{}, err
		}
	case WriteUpdate, WriteDelete:
		if err := checkID(w.ID); err != nil {
			return Doc{}, err
		}
		id = w.ID
	default:
		return Doc{}, errs.New(errs.InvalidArgument, "unknown write kind %d", w.Kind)
	}
	if w.Kind != WritePut && w.ExpectedRev != nil && *w.ExpectedRev == 0 {
		return Doc{}, errs.New(errs.InvalidArgument, "expected_rev 0 (\"must not exist\") only applies to a put")
	}
	cur, err := getCurrent(ctx, tx, w.Collection, id)
	if err != nil {
		return Doc{}, err
	}
	if w.Kind == WritePut && w.ExpectedRev != nil && *w.ExpectedRev == 0 && cur.exists {
		return Doc{}, errs.New(errs.AlreadyExists, "document %q of collection %q exists already", id, w.Collection)
	}
	if !cur.exists && w.Kind != WritePut && w.ExpectedRev == nil {
		return Doc{}, errs.New(errs.NotFound, "document %q of collection %q not found", id, w.Collection)
	}
	if err := checkRev(w.ExpectedRev, cur, w.Collection, id); err != nil {
		return Doc{}, err
	}
	t := now()
	if w.Kind == WriteDelete {
		if err := tx.exec(ctx, "DELETE FROM docs WHERE collection = ? AND id = ?", w.Collection, id); err != nil {
			return Doc{}, err
		}
		if err := tx.exec(ctx, "INSERT INTO changes (collection, id, op, rev, doc, created, updated) VALUES (?, ?, 'delete', ?, NULL, ?, ?)",
			w.Collection, id, cur.rev, cur.created, t); err != nil {
			return Doc{}, err
		}
		return Doc{ID: id, Rev: cur.rev, Created: cur.created, Updated: t}, nil
	}
	if w.Kind == WriteUpdate {
		if text, err = applyUpdate(cur.doc, w.Update); err != nil {
			return Doc{}, err
		}
		if len(text) > sp.opts.MaxDocBytes {
			return Doc{}, errs.New(errs.InvalidArgument, "the updated document would be %d bytes; the limit is %d", len(text), sp.opts.MaxDocBytes)
		}
	}
	d := Doc{ID: id, Rev: cur.rev + 1, Created: cur.created, Updated: t}
	op := "update"
	if !cur.exists {
		d.Rev, d.Created, op = 1, t, "insert"
		err = tx.queryRow(ctx, "INSERT INTO docs (collection, id, rev, doc, created, updated) VALUES (?, ?, 1, json(?), ?, ?) RETURNING doc",
			[]any{w.Collection, id, text, t, t}, &d.JSON)
	} else {
		err = tx.queryRow(ctx, "UPDATE docs SET rev = ?, doc = json(?), updated = ? WHERE collection = ? AND id = ? RETURNING doc",
			[]any{d.Rev, text, t, w.Collection, id}, &d.JSON)
	}
	if err != nil {
		if code, ok := sqliteCode(err); ok && code == 1 && strings.Contains(err.Error(), "malformed JSON") {
			return Doc{}, errs.New(errs.InvalidArgument, "the document is not valid JSON")
		}
		return Doc{}, err
	}
	if err := sp.checkScalars(ctx, tx, w.Collection, d.JSON); err != nil {
		return Doc{}, err
	}
	if err := tx.exec(ctx, "INSERT INTO changes (collection, id, op, rev, doc, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?)",
		w.Collection, id, op, d.Rev, d.JSON, d.Created, d.Updated); err != nil {
		return Doc{}, err
	}
	return d, nil
}

// checkScalars refuses a document holding an array or object at a path an
// index covers.
func (sp *space) checkScalars(ctx context.Context, tx *wtx, coll, doc string) error {
	for p, index := range sp.scalarPaths(coll) {
		pp, err := parsePath(p)
		if err != nil {
			continue
		}
		var t sql.NullString
		if err := tx.queryRow(ctx, "SELECT json_type(?, ?)", []any{doc, pp.json}, &t); err != nil {
			return err
		}
		if t.String == "array" || t.String == "object" {
			return errs.New(errs.InvalidArgument, "the document holds an %s at %q, which index %q covers: an indexed field holds a scalar (string, number, boolean or null)", t.String, p, index)
		}
	}
	return nil
}

// Put inserts or replaces a document.
func (st *Store) Put(ctx context.Context, space, coll, doc string, expectedRev *uint64) (Doc, error) {
	docs, err := st.Batch(ctx, space, []Write{{Kind: WritePut, Collection: coll, JSON: doc, ExpectedRev: expectedRev}})
	if err != nil {
		return Doc{}, unwrapBatch(err)
	}
	return docs[0], nil
}

// Update applies modifiers to an existing document.
func (st *Store) Update(ctx context.Context, space, coll, id, update string, expectedRev *uint64) (Doc, error) {
	docs, err := st.Batch(ctx, space, []Write{{Kind: WriteUpdate, Collection: coll, ID: id, Update: update, ExpectedRev: expectedRev}})
	if err != nil {
		return Doc{}, unwrapBatch(err)
	}
	return docs[0], nil
}

// Delete deletes a document.
func (st *Store) Delete(ctx context.Context, space, coll, id string, expectedRev *uint64) (Doc, error) {
	docs, err := st.Batch(ctx, space, []Write{{Kind: WriteDelete, Collection: coll, ID: id, ExpectedRev: expectedRev}})
	if err != nil {
		return Doc{}, unwrapBatch(err)
	}
	return docs[0], nil
}

// batchError is a failed batch operation.
type batchError struct {
	index int
	err   error
}

func (e *batchError) Error() string {
	return fmt.Sprintf("batch operation %d: %v (nothing was written)", e.index, e.err)
}
func (e *batchError) Unwrap() error { return e.err }

func unwrapBatch(err error) error {
	var be *batchError
	if errors.As(err, &be) {
		return be.err
	}
	return err
}

// Batch applies writes in one transaction: all of them, or none.
func (st *Store) Batch(ctx context.Context, space string, writes []Write) ([]Doc, error) {
	if len(writes) == 0 {
		return nil, errs.New(errs.InvalidArgument, "the batch is empty")
	}
	if len(writes) > MaxBatchOps {
		return nil, errs.New(errs.InvalidArgument, "the batch has %d operations; the limit is %d", len(writes), MaxBatchOps)
	}
	sp, err := st.space(ctx, space)
	if err != nil {
		return nil, err
	}
	defer sp.done()
	out := make([]Doc, len(writes))
	err = sp.write(ctx, func(tx *wtx) error {
		for i, w := range writes {
			d, err := sp.apply(ctx, tx, w)
			if err != nil {
				return &batchError{index: i, err: sp.mapErr(err, "")}
			}
			out[i] = d
		}
		return nil
	})
	if err != nil {
		var be *batchError
		if errors.As(err, &be) {
			if k := errs.KindOf(be.err); k != errs.Unknown {
				return nil, errs.Wrap(k, be, "")
			}
		}
		return nil, err
	}
	return out, nil
}

// Get returns a document. NotFound if there is none.
func (st *Store) Get(ctx context.Context, space, coll, id string) (Doc, error) {
	if err := checkName("collection", coll); err != nil {
		return Doc{}, err
	}
	if err := checkID(id); err != nil {
		return Doc{}, err
	}
	sp, err := st.space(ctx, space)
	if err != nil {
		return Doc{}, err
	}
	defer sp.done()
	d := Doc{ID: id}
	err = sp.r.QueryRowContext(ctx, "SELECT rev, doc, created, updated FROM docs WHERE collection = ? AND id = ?", coll, id).
		Scan(&d.Rev, &d.JSON, &d.Created, &d.Updated)
	if errors.Is(err, sql.ErrNoRows) {
		return Doc{}, errs.New(errs.NotFound, "document %q of collection %q not found", id, coll)
	}
	return d, sp.mapErr(err, "")
}
