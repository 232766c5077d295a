package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"

	"github.com/anysync/tauri-plugin-anysync/go-backend/backend/errs"
)

// applicationID marks a space's file (PRAGMA application_id): "anys".
const applicationID = 0x616e7973

// migrations are the schema's steps; migration i+1 brings user_version from
// i to i+1. Never edit a released one: append.
var migrations = []string{
	// 1: documents, the change log, index definitions.
	`CREATE TABLE docs (
		collection TEXT NOT NULL,
		id TEXT NOT NULL,
		rev INTEGER NOT NULL,
		doc TEXT NOT NULL,
		created INTEGER NOT NULL,
		updated INTEGER NOT NULL,
		UNIQUE (collection, id)
	);
	CREATE TABLE changes (
		seq INTEGER PRIMARY KEY AUTOINCREMENT,
		collection TEXT NOT NULL,
		id TEXT NOT NULL,
		op TEXT NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
		rev INTEGER NOT NULL,
		doc TEXT,
		created INTEGER NOT NULL,
		updated INTEGER NOT NULL
	);
	CREATE TABLE indexes (
		collection TEXT NOT NULL,
		name TEXT NOT NULL,
		fields TEXT NOT NULL,
		is_unique INTEGER NOT NULL,
		PRIMARY KEY (collection, name)
	) WITHOUT ROWID;`,
}

// space is one open space.
type space struct {
	name, path string
	opts       Options
	w          *sql.DB // one connection: the writer
	r          *sql.DB // read-only connections

	mu       sync.Mutex
	closed   bool
	deleted  bool
	inflight sync.WaitGroup
	closing  chan struct{} // closed when close begins
	changed  chan struct{} // closed and replaced after every commit
	// scalar holds, per collection, the paths some index covers (path ->
	// index name): documents must hold a scalar (or nothing) there, so the
	// filter compiler can use the index-friendly form. Written under the
	// writer's transaction, read by every call.
	scalar map[string]map[string]string
	writes atomic.Uint64 // committed write transactions
}

func dsn(path string, writer bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	if writer {
		// journal_mode=WAL is set by init, once the file is known to be a
		// space: a foreign file is refused unchanged.
		q.Add("_txlock", "immediate")
		q.Add("_pragma", "analysis_limit(1000)")
	} else {
		q.Add("_pragma", "query_only(1)")
	}
	q.Add("_pragma", "synchronous(FULL)")
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// openSpace opens (fresh: initializes) the space file at path.
func openSpace(ctx context.Context, name, path string, opts Options, fresh bool) (*space, error) {
	sp := &space{
		name: name, path: path, opts: opts,
		closing: make(chan struct{}), changed: make(chan struct{}),
		scalar: map[string]map[string]string{},
	}
	var err error
	if sp.w, err = sql.Open("sqlite", dsn(path, true)); err != nil {
		return nil, fmt.Errorf("space %q: opening %s: %w", name, path, err)
	}
	sp.w.SetMaxOpenConns(1)
	sp.w.SetMaxIdleConns(1)
	sp.w.SetConnMaxIdleTime(0)
	sp.w.SetConnMaxLifetime(0)
	if err := sp.init(ctx, fresh); err != nil {
		_ = sp.w.Close()
		return nil, err
	}
	if sp.r, err = sql.Open("sqlite", dsn(path, false)); err != nil {
		_ = sp.w.Close()
		return nil, fmt.Errorf("space %q: opening %s: %w", name, path, err)
	}
	sp.r.SetMaxOpenConns(opts.Readers)
	sp.r.SetMaxIdleConns(opts.Readers)
	return sp, nil
}

// init checks the file is a space (or makes it one when fresh), migrates
// its schema, and loads the index definitions.
func (sp *space) init(ctx context.Context, fresh bool) error {
	fileErr := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if k := errs.KindOf(err); k != errs.Unknown {
			return err
		}
		if code, ok := sqliteCode(err); ok && (code == 11 || code == 26) { // CORRUPT, NOTADB
			return errs.Wrap(errs.DataLoss, err, fmt.Sprintf("space %q: the file %s is corrupt or not a database; move it away or delete the space", sp.name, sp.path))
		}
		return sp.mapErr(err, fmt.Sprintf("space %q: opening %s", sp.name, sp.path))
	}
	conn, err := sp.w.Conn(ctx)
	if err != nil {
		return fileErr(err)
	}
	defer conn.Close()
	if sp.opts.maxPageCount > 0 {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", sp.opts.maxPageCount)); err != nil {
			return fileErr(err)
		}
	}
	var appID, version int
	if err := conn.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		return fileErr(err)
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fileErr(err)
	}
	if appID != applicationID {
		var tables int
		if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&tables); err != nil {
			return fileErr(err)
		}
		if appID != 0 || tables != 0 || !fresh {
			return errs.New(errs.FailedPrecondition, "space %q: the file %s is an SQLite database of another application (application_id %#x), not a space; move it away", sp.name, sp.path, appID)
		}
	}
	var mode string
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		return fileErr(err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fileErr(fmt.Errorf("journal_mode is %q, not WAL", mode))
	}
	if version > len(migrations) {
		return errs.New(errs.FailedPrecondition, "space %q: the file %s has schema version %d, written by a newer version of the backend (this one knows up to %d)", sp.name, sp.path, version, len(migrations))
	}
	for v := version; v < len(migrations); v++ {
		if err := migrate(ctx, conn, v); err != nil {
			return fileErr(fmt.Errorf("migrating to schema version %d: %w", v+1, err))
		}
	}
	rows, err := conn.QueryContext(ctx, "SELECT collection, name, fields FROM indexes")
	if err != nil {
		return fileErr(err)
	}
	defer rows.Close()
	for rows.Next() {
		var coll, name, fields string
		if err := rows.Scan(&coll, &name, &fields); err != nil {
			return fileErr(err)
		}
		var fs []IndexField
		if err := json.Unmarshal([]byte(fields), &fs); err != nil {
			return fileErr(fmt.Errorf("index %q of collection %q: %w", name, coll, err))
		}
		sp.addScalar(coll, name, fs)
	}
	return fileErr(rows.Err())
}

func migrate(ctx context.Context, conn *sql.Conn, from int) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit, a no-op
	if from == 0 {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d", applicationID)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "CREATE TABLE migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, migrations[from]); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO migrations (version, applied_at) VALUES (?, ?)", from+1, time.Now().UnixMicro()); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", from+1)); err != nil {
		return err
	}
	return tx.Commit()
}

func (sp *space) addScalar(coll, name string, fields []IndexField) {
	m := sp.scalar[coll]
	if m == nil {
		m = map[string]string{}
		sp.scalar[coll] = m
	}
	for _, f := range fields {
		if _, ok := m[f.Path]; !ok {
			m[f.Path] = name
		}
	}
}

// scalarPaths returns a copy of the collection's index-covered paths.
func (sp *space) scalarPaths(coll string) map[string]string {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	out := make(map[string]string, len(sp.scalar[coll]))
	for p, n := range sp.scalar[coll] {
		out[p] = n
	}
	return out
}

// begin registers an in-flight call, or fails when the space is closing.
func (sp *space) begin() error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.deleted {
		return errs.New(errs.NotFound, "space %q not found: it was deleted", sp.name)
	}
	if sp.closed {
		return errs.New(errs.Unavailable, "space %q is closing", sp.name)
	}
	sp.inflight.Add(1)
	return nil
}

// done ends a call registered by begin (or by Store.space).
func (sp *space) done() { sp.inflight.Done() }

// close refuses new calls, waits for the in-flight ones (or ctx), then
// closes the connections. deleted says why, for calls that come later.
func (sp *space) close(ctx context.Context, deleted bool) error {
	sp.mu.Lock()
	if sp.closed {
		sp.mu.Unlock()
		return nil
	}
	sp.closed, sp.deleted = true, deleted
	close(sp.closing)
	sp.mu.Unlock()
	idle := make(chan struct{})
	go func() { sp.inflight.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-ctx.Done():
		// database/sql's Close below still waits for statements that run;
		// a transaction is never cut off, only no longer awaited here.
	}
	if !deleted {
		// Refresh the planner's statistics where they are stale (cheap
		// when they are not); it never changes the data.
		optCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		_, _ = sp.w.ExecContext(optCtx, "PRAGMA optimize")
		cancel()
	}
	return errors.Join(sp.r.Close(), sp.w.Close())
}

// waitChanged returns a channel closed at the next commit.
func (sp *space) waitChanged() <-chan struct{} {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.changed
}

func (sp *space) notify() {
	sp.mu.Lock()
	close(sp.changed)
	sp.changed = make(chan struct{})
	sp.mu.Unlock()
}

// testHookInWrite, when set (by tests), runs inside every write
// transaction, right after it began.
var testHookInWrite func()

// write runs fn in one write transaction and commits it; on any error
// nothing is written. Watchers are woken after the commit.
func (sp *space) write(ctx context.Context, fn func(tx *wtx) error) error {
	sqlTx, err := sp.w.BeginTx(ctx, nil)
	if err != nil {
		return sp.mapErr(err, "")
	}
	tx := &wtx{Tx: sqlTx}
	defer tx.closeStmts()
	if testHookInWrite != nil {
		testHookInWrite()
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return sp.mapErr(err, "")
	}
	if err := tx.Commit(); err != nil {
		_ = tx.Rollback()
		return sp.mapErr(err, "committing")
	}
	sp.notify()
	if sp.writes.Add(1)%optimizeEvery == 0 {
		// Collections grow: refresh the planner's statistics where they
		// are stale (PRAGMA optimize re-analyzes a table whose size
		// changed a lot; otherwise it does nothing).
		_, _ = sp.w.ExecContext(context.WithoutCancel(ctx), "PRAGMA optimize")
	}
	return nil
}

// optimizeEvery is how many write transactions pass between two PRAGMA
// optimize runs.
const optimizeEvery = 1000

func sqliteCode(err error) (int, bool) {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() & 0xff, true
	}
	return 0, false
}

// mapErr gives SQLite's errors a kind; errors with a kind, and context
// errors, pass unchanged.
func (sp *space) mapErr(err error, msg string) error {
	if err == nil || errs.KindOf(err) != errs.Unknown || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	prefix := fmt.Sprintf("space %q", sp.name)
	if msg != "" {
		prefix += ": " + msg
	}
	code, ok := sqliteCode(err)
	if !ok {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	switch code {
	case 13: // SQLITE_FULL
		return errs.Wrap(errs.ResourceExhausted, err, prefix+": the disk (or the database's size limit) is full; nothing was written, free some space and retry")
	case 11, 26: // SQLITE_CORRUPT, SQLITE_NOTADB
		return errs.Wrap(errs.DataLoss, err, fmt.Sprintf("%s: the file %s is corrupt", prefix, sp.path))
	case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
		return errs.Wrap(errs.Unavailable, err, prefix+": the database is busy; retry")
	case 19: // SQLITE_CONSTRAINT
		text := err.Error()
		if i := strings.Index(text, "index '"); i >= 0 {
			name := text[i+len("index '"):]
			if j := strings.IndexByte(name, '\''); j >= 0 {
				name = name[:j]
			}
			if _, idx, ok := parseIndexName(name); ok {
				return errs.Wrap(errs.AlreadyExists, err, fmt.Sprintf("%s: unique index %q: another document has the same values", prefix, idx))
			}
		}
		if strings.Contains(text, "docs.collection, docs.id") {
			return errs.Wrap(errs.AlreadyExists, err, prefix+": a document with this id exists already")
		}
		return errs.Wrap(errs.AlreadyExists, err, prefix+": a constraint failed")
	}
	return fmt.Errorf("%s: %w", prefix, err)
}

// wtx is a write transaction that prepares each statement text once (a
// batch runs the same few statements thousands of times).
type wtx struct {
	*sql.Tx
	stmts map[string]*sql.Stmt
}

func (tx *wtx) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st := tx.stmts[query]; st != nil {
		return st, nil
	}
	st, err := tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if tx.stmts == nil {
		tx.stmts = map[string]*sql.Stmt{}
	}
	tx.stmts[query] = st
	return st, nil
}

// exec runs a prepared statement.
func (tx *wtx) exec(ctx context.Context, query string, args ...any) error {
	st, err := tx.stmt(ctx, query)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(ctx, args...)
	return err
}

// queryRow runs a prepared statement that returns one row into dest.
func (tx *wtx) queryRow(ctx context.Context, query string, args []any, dest ...any) error {
	st, err := tx.stmt(ctx, query)
	if err != nil {
		return err
	}
	return st.QueryRowContext(ctx, args...).Scan(dest...)
}

func (tx *wtx) closeStmts() {
	for _, st := range tx.stmts {
		_ = st.Close()
	}
}
