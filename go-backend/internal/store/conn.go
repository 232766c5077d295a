package store

import (
	"fmt"
	"sync"

	"zombiezen.com/go/sqlite"
)

// Statements run on zombiezen.com/go/sqlite connections. A statement of
// fixed text is prepared once per connection (Conn.Prepare caches it by its
// text). One whose text depends on the caller's input is prepared for that
// run alone and finalized (DDL, schema set-up), except the reads of
// compiled filters that filterTexts admits to the cache.

// bind binds args to stmt's parameters 1 to len(args). The store's
// arguments are nil, strings, integers, floats and booleans.
func bind(stmt *sqlite.Stmt, args []any) {
	for i, a := range args {
		switch v := a.(type) {
		case nil:
			stmt.BindNull(i + 1)
		case string:
			stmt.BindText(i+1, v)
		case int64:
			stmt.BindInt64(i+1, v)
		case int:
			stmt.BindInt64(i+1, int64(v))
		case uint64:
			stmt.BindInt64(i+1, int64(v))
		case float64:
			stmt.BindFloat(i+1, v)
		case bool:
			stmt.BindBool(i+1, v)
		default:
			// Only the store's own code builds arguments: a new type is a bug.
			panic(fmt.Sprintf("store: cannot bind an argument of type %T", a))
		}
	}
}

// steps binds args to stmt, calls row (when not nil) for every row, and
// resets the statement, also when row or a step fails.
func steps(stmt *sqlite.Stmt, args []any, row func(*sqlite.Stmt) error) (err error) {
	defer func() {
		if rerr := stmt.Reset(); err == nil {
			err = rerr
		}
	}()
	bind(stmt, args)
	for {
		more, err := stmt.Step()
		if err != nil || !more {
			return err
		}
		if row != nil {
			if err := row(stmt); err != nil {
				return err
			}
		}
	}
}

// run runs a statement of fixed text, prepared once per connection.
func run(conn *sqlite.Conn, query string, args []any, row func(*sqlite.Stmt) error) error {
	stmt, err := conn.Prepare(query)
	if err != nil {
		return err
	}
	return steps(stmt, args, row)
}

// maxFilterTexts bounds the compiled-filter texts a space lets its
// connections keep prepared.
const maxFilterTexts = 64

// filterTexts decides which texts of compiled filters the connections keep
// prepared (in Conn.Prepare's cache, which closing a connection finalizes):
// preparing one costs about as much as running it on an index, and a
// filter's values are bound parameters, so an app's few query shapes are a
// few texts. The first maxFilterTexts texts a space sees are admitted;
// later ones are prepared per run, so the caches stay bounded whatever the
// callers send.
type filterTexts struct {
	mu    sync.Mutex
	texts map[string]struct{}
}

// run runs query on conn: prepared once per connection when admitted, for
// this run alone otherwise.
func (f *filterTexts) run(conn *sqlite.Conn, query string, args []any, row func(*sqlite.Stmt) error) error {
	if f.admit(query) {
		return run(conn, query, args, row)
	}
	return runOnce(conn, query, args, row)
}

func (f *filterTexts) admit(query string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.texts[query]; ok {
		return true
	}
	if len(f.texts) >= maxFilterTexts {
		return false
	}
	if f.texts == nil {
		f.texts = map[string]struct{}{}
	}
	f.texts[query] = struct{}{}
	return true
}

// prepareOne prepares query, which must be one statement, for the caller to
// finalize.
func prepareOne(conn *sqlite.Conn, query string) (*sqlite.Stmt, error) {
	stmt, trailing, err := conn.PrepareTransient(query)
	if err != nil {
		return nil, err
	}
	if trailing != 0 {
		_ = stmt.Finalize()
		return nil, fmt.Errorf("store: one statement expected in %q", query)
	}
	return stmt, nil
}

// runOnce runs a statement whose text varies, prepared for this run alone.
func runOnce(conn *sqlite.Conn, query string, args []any, row func(*sqlite.Stmt) error) error {
	stmt, err := prepareOne(conn, query)
	if err != nil {
		return err
	}
	defer stmt.Finalize() //nolint:errcheck // the step's error is the one to report
	return steps(stmt, args, row)
}

// one runs a fixed-text statement that returns at most one row; found
// says whether it did.
func one(conn *sqlite.Conn, query string, args []any, row func(*sqlite.Stmt)) (found bool, err error) {
	err = run(conn, query, args, func(s *sqlite.Stmt) error {
		if !found {
			found = true
			row(s)
		}
		return nil
	})
	return found, err
}

// docColumns are a document's columns in the order scanDoc reads them.
const docColumns = "id, rev, doc, created, updated"

// scanDoc reads a document from a row whose columns from first on are
// docColumns' (or the same values in that order).
func scanDoc(s *sqlite.Stmt, first int) Doc {
	return Doc{
		ID: s.ColumnText(first), Rev: uint64(s.ColumnInt64(first + 1)), JSON: s.ColumnText(first + 2),
		Created: s.ColumnInt64(first + 3), Updated: s.ColumnInt64(first + 4),
	}
}

// value returns column i as the Go value database/sql would: int64,
// float64, string, []byte or nil.
func value(stmt *sqlite.Stmt, i int) any {
	switch stmt.ColumnType(i) {
	case sqlite.TypeInteger:
		return stmt.ColumnInt64(i)
	case sqlite.TypeFloat:
		return stmt.ColumnFloat(i)
	case sqlite.TypeText:
		return stmt.ColumnText(i)
	case sqlite.TypeBlob:
		b := make([]byte, stmt.ColumnLen(i))
		stmt.ColumnBytes(i, b)
		return b
	}
	return nil
}
