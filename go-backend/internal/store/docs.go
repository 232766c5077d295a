package store

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"zombiezen.com/go/sqlite"

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
	// Strict JSON here: SQLite's json() also takes JSON5, which no other
	// reader of the document (TypeScript, the sync peers) would.
	if !json.Valid([]byte(trimmed)) {
		return "", "", invalidJSON(trimmed)
	}
	var id string
	hasID := false
	err := eachMember(trimmed, func(key, raw string) error {
		if key != "id" {
			return nil
		}
		if hasID {
			return errs.New(errs.InvalidArgument, `the document has the key "id" twice`)
		}
		hasID = true
		if err := json.Unmarshal([]byte(raw), &id); err != nil || raw[0] != '"' {
			return errs.New(errs.InvalidArgument, `the document's "id" is not a string`)
		}
		return checkID(id)
	})
	if err != nil {
		return "", "", err
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

// invalidJSON says what is wrong with text, which json.Valid refused.
func invalidJSON(text string) error {
	dec := json.NewDecoder(strings.NewReader(text))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		return errs.New(errs.InvalidArgument, "the document is not valid JSON: %v", err)
	}
	return errs.New(errs.InvalidArgument, "the document has text after its JSON object")
}

// eachMember calls fn with the key (unescaped) and the raw value text of
// every member of obj, a valid JSON object, in order.
func eachMember(obj string, fn func(key, raw string) error) error {
	i := skipSpace(obj, 1)
	for i < len(obj) && obj[i] == '"' {
		end := stringEnd(obj, i)
		key := obj[i+1 : end-1]
		if strings.IndexByte(key, '\\') >= 0 {
			_ = json.Unmarshal([]byte(obj[i:end]), &key) // valid: it unescapes
		}
		i = skipSpace(obj, skipSpace(obj, end)+1) // past ':'
		start := i
		i = valueEnd(obj, i)
		if err := fn(key, obj[start:i]); err != nil {
			return err
		}
		i = skipSpace(obj, i)
		if i < len(obj) && obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
	}
	return nil
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the string starting at s[i] ('"').
func stringEnd(s string, i int) int {
	for i++; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(s)
}

// valueEnd returns the index after the valid JSON value starting at s[i].
func valueEnd(s string, i int) int {
	switch s[i] {
	case '"':
		return stringEnd(s, i)
	case '{', '[':
		depth := 0
		for ; i < len(s); i++ {
			switch s[i] {
			case '"':
				i = stringEnd(s, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return len(s)
	}
	for i < len(s) && !strings.ContainsRune(",}] \t\r\n", rune(s[i])) {
		i++
	}
	return i
}

func now() int64 { return time.Now().UnixMicro() }

type current struct {
	exists           bool
	rev              uint64
	doc              string
	created, updated int64
}

func getCurrent(tx *wtx, coll, id string) (current, error) {
	var c current
	found, err := one(tx.conn, "SELECT rev, doc, created, updated FROM docs WHERE collection = ?1 AND id = ?2", []any{coll, id}, func(s *sqlite.Stmt) {
		c = current{exists: true, rev: uint64(s.ColumnInt64(0)), doc: s.ColumnText(1), created: s.ColumnInt64(2), updated: s.ColumnInt64(3)}
	})
	if !found {
		return current{}, err
	}
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

// scalarPath is a path an index covers: a written document must hold a
// scalar (or nothing) there.
type scalarPath struct {
	text, json, index string
}

// collWrites is what the writes of one collection need, built once per
// transaction: the covered paths and the statements that check them.
type collWrites struct {
	paths []scalarPath
	// upsert writes a put without an expected revision in one statement;
	// insert and update follow a read of the current revision.
	upsert, insert, update string
}

// docWritten is the RETURNING list of a document's write: its revision,
// creation time, stored text, and the JSON type at each covered path
// (parameters from first on).
func docWritten(first, paths int) string {
	var b strings.Builder
	b.WriteString(" RETURNING rev, created, doc")
	for i := range paths {
		fmt.Fprintf(&b, ", json_type(doc, ?%d)", first+i)
	}
	return b.String()
}

func (tx *wtx) collection(sp *space, coll string) *collWrites {
	if cw := tx.colls[coll]; cw != nil {
		return cw
	}
	cw := &collWrites{}
	for p, index := range sp.scalarPaths(coll) {
		if pp, err := parsePath(p); err == nil {
			cw.paths = append(cw.paths, scalarPath{text: p, json: pp.json, index: index})
		}
	}
	sort.Slice(cw.paths, func(i, j int) bool { return cw.paths[i].text < cw.paths[j].text })
	n := len(cw.paths)
	const insert = "INSERT INTO docs (collection, id, rev, doc, created, updated) VALUES (?1, ?2, 1, json(?3), ?4, ?4)"
	cw.upsert = insert + " ON CONFLICT (collection, id) DO UPDATE SET rev = rev + 1, doc = excluded.doc, updated = excluded.updated" + docWritten(5, n)
	cw.insert = insert + docWritten(5, n)
	cw.update = "UPDATE docs SET rev = ?3, doc = json(?4), updated = ?5 WHERE collection = ?1 AND id = ?2" + docWritten(6, n)
	if tx.colls == nil {
		tx.colls = map[string]*collWrites{}
	}
	tx.colls[coll] = cw
	return cw
}

// written runs a document's write (query with args, then the covered
// paths) and returns its revision, creation time and stored text; a
// document holding an array or object at a covered path is refused.
func (cw *collWrites) written(tx *wtx, query string, args []any) (rev uint64, created int64, doc string, err error) {
	for _, p := range cw.paths {
		args = append(args, p.json)
	}
	var bad *scalarPath
	var badType string
	found, err := one(tx.conn, query, args, func(s *sqlite.Stmt) {
		rev, created, doc = uint64(s.ColumnInt64(0)), s.ColumnInt64(1), s.ColumnText(2)
		for i := range cw.paths {
			if t := s.ColumnText(3 + i); t == "array" || t == "object" {
				bad, badType = &cw.paths[i], t
				return
			}
		}
	})
	switch {
	case err != nil:
		if sqliteCode(err) == 1 && strings.Contains(err.Error(), "malformed JSON") {
			return 0, 0, "", errs.New(errs.InvalidArgument, "the document is not valid JSON")
		}
		return 0, 0, "", err
	case !found:
		return 0, 0, "", errors.New("the write returned no row")
	case bad != nil:
		return 0, 0, "", errs.New(errs.InvalidArgument, "the document holds an %s at %q, which index %q covers: an indexed field holds a scalar (string, number, boolean or null)", badType, bad.text, bad.index)
	}
	return rev, created, doc, nil
}

const insertChange = "INSERT INTO changes (collection, id, op, rev, doc, created, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"

// apply runs one write inside tx and returns the document it leaves.
func (sp *space) apply(tx *wtx, w Write) (Doc, error) {
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
	cw := tx.collection(sp, w.Collection)
	t := now()
	d := Doc{ID: id, Updated: t}
	var err error
	if w.Kind == WritePut && w.ExpectedRev == nil {
		// Insert or replace, whatever is there: one statement.
		if d.Rev, d.Created, d.JSON, err = cw.written(tx, cw.upsert, []any{w.Collection, id, text, t}); err != nil {
			return Doc{}, err
		}
		return d, sp.logChange(tx, w.Collection, d, d.Rev == 1)
	}
	cur, err := getCurrent(tx, w.Collection, id)
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
	if w.Kind == WriteDelete {
		if err := run(tx.conn, "DELETE FROM docs WHERE collection = ?1 AND id = ?2", []any{w.Collection, id}, nil); err != nil {
			return Doc{}, err
		}
		d = Doc{ID: id, Rev: cur.rev, Created: cur.created, Updated: t}
		return d, run(tx.conn, insertChange, []any{w.Collection, id, "delete", d.Rev, nil, d.Created, d.Updated}, nil)
	}
	if w.Kind == WriteUpdate {
		if text, err = applyUpdate(cur.doc, w.Update); err != nil {
			return Doc{}, err
		}
		if len(text) > sp.opts.MaxDocBytes {
			return Doc{}, errs.New(errs.InvalidArgument, "the updated document would be %d bytes; the limit is %d", len(text), sp.opts.MaxDocBytes)
		}
	}
	if cur.exists {
		d.Rev, d.Created, d.JSON, err = cw.written(tx, cw.update, []any{w.Collection, id, cur.rev + 1, text, t})
	} else {
		d.Rev, d.Created, d.JSON, err = cw.written(tx, cw.insert, []any{w.Collection, id, text, t})
	}
	if err != nil {
		return Doc{}, err
	}
	return d, sp.logChange(tx, w.Collection, d, !cur.exists)
}

// logChange appends a written document to the change log.
func (sp *space) logChange(tx *wtx, coll string, d Doc, inserted bool) error {
	op := "update"
	if inserted {
		op = "insert"
	}
	return run(tx.conn, insertChange, []any{coll, d.ID, op, d.Rev, d.JSON, d.Created, d.Updated}, nil)
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
			if err := ctx.Err(); err != nil {
				return err
			}
			d, err := sp.apply(tx, w)
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
	var found bool
	err = sp.read(ctx, func(conn *sqlite.Conn) error {
		var err error
		found, err = one(conn, "SELECT rev, doc, created, updated FROM docs WHERE collection = ?1 AND id = ?2", []any{coll, id}, func(s *sqlite.Stmt) {
			d.Rev, d.JSON, d.Created, d.Updated = uint64(s.ColumnInt64(0)), s.ColumnText(1), s.ColumnInt64(2), s.ColumnInt64(3)
		})
		return err
	})
	if err == nil && !found {
		return Doc{}, errs.New(errs.NotFound, "document %q of collection %q not found", id, coll)
	}
	return d, sp.mapErr(err, "")
}
