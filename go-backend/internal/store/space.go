package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"zombiezen.com/go/sqlite"
	"zombiezen.com/go/sqlite/sqlitex"

	"github.com/anysync/tauri-plugin-anysync/go-backend/backend/errs"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/logging"
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
	// writer holds the writer connection while no write runs: a write
	// takes it (waiting in line, or until its context ends) and puts it
	// back, so writes are serialized without a lock held across a wait.
	writer chan *sqlite.Conn
	w      *sqlite.Conn  // the writer connection, for close
	r      *sqlitex.Pool // read-only connections
	// ckpt is the checkpointer's connection; ckptWake wakes it after a
	// commit, and ckptDone is closed when it has stopped.
	ckpt     *sqlite.Conn
	ckptWake chan struct{}
	ckptDone chan struct{}

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
	// filters admits compiled filters' texts to the readers' statement
	// caches.
	filters filterTexts
}

// mmapPragma lets a connection read the file through a memory map (up to
// 256 MiB of it, where addresses are 64 bits) instead of a pread per page
// its cache misses: an indexed query of 100 documents reads about as many
// pages. An I/O error under the map would be a SIGBUS (the plugin restarts
// the sidecar), as SQLite's documentation warns; other processes do not
// write the file.
var mmapPragma = func() string {
	if strconv.IntSize < 64 {
		return "PRAGMA mmap_size = 0"
	}
	return "PRAGMA mmap_size = 268435456"
}()

// busyTimeout bounds a wait for another process's lock on the file (only
// tools such as the sqlite3 shell share it with the backend).
const busyTimeout = 10 * time.Second

func uri(path string) string { return "file:" + (&url.URL{Path: path}).EscapedPath() }

// openSpace opens (fresh: initializes) the space file at path.
func openSpace(ctx context.Context, name, path string, opts Options, fresh bool) (*space, error) {
	sp := &space{
		name: name, path: path, opts: opts,
		writer:   make(chan *sqlite.Conn, 1),
		ckptWake: make(chan struct{}, 1), ckptDone: make(chan struct{}),
		closing: make(chan struct{}), changed: make(chan struct{}),
		scalar: map[string]map[string]string{},
	}
	flags := sqlite.OpenReadWrite | sqlite.OpenURI
	if fresh {
		flags |= sqlite.OpenCreate
	}
	var err error
	if sp.w, err = sqlite.OpenConn(uri(path), flags); err != nil {
		return nil, sp.openErr(ctx, err)
	}
	sp.w.SetBusyTimeout(busyTimeout)
	if err := sp.init(ctx, fresh); err != nil {
		_ = sp.w.Close()
		return nil, err
	}
	sp.r, err = sqlitex.NewPool(uri(path), sqlitex.PoolOptions{
		Flags:    sqlite.OpenReadWrite | sqlite.OpenURI,
		PoolSize: opts.Readers,
		PrepareConn: func(conn *sqlite.Conn) error {
			conn.SetBusyTimeout(busyTimeout)
			if err := runOnce(conn, mmapPragma, nil, nil); err != nil {
				return err
			}
			return run(conn, "PRAGMA query_only = 1", nil, nil)
		},
	})
	if err != nil {
		_ = sp.w.Close()
		return nil, sp.openErr(ctx, err)
	}
	if sp.ckpt, err = sqlite.OpenConn(uri(path), sqlite.OpenReadWrite|sqlite.OpenURI); err != nil {
		_ = sp.r.Close()
		_ = sp.w.Close()
		return nil, sp.openErr(ctx, err)
	}
	sp.ckpt.SetBusyTimeout(busyTimeout)
	// Closing the space interrupts a checkpoint that runs (the next open
	// finishes it; a partial one is safe).
	sp.ckpt.SetInterrupt(sp.closing)
	go sp.checkpoints()
	sp.writer <- sp.w
	return sp, nil
}

// maxLogFrames bounds the write-ahead log (in pages: 64 MiB of 4 KiB) where
// passive checkpoints cannot catch up with writes that never pause.
const maxLogFrames = 16384

// checkpoint copies the log into the file in passes until one copies it
// all (writes that came during a pass leave more for the next), so that
// the next write starts the log from its beginning again. It reports
// whether the log was copied whole. An error (interrupted, disk full)
// leaves the frames in the log, where they are as safe; a later
// checkpoint copies them.
func (sp *space) checkpoint() (whole bool, err error) {
	if testHookCheckpointErr != nil {
		if err := testHookCheckpointErr(); err != nil {
			return false, err
		}
	}
	var logFrames, copied int64
	passive := func() error {
		return run(sp.ckpt, "PRAGMA wal_checkpoint(PASSIVE)", nil, func(s *sqlite.Stmt) error {
			logFrames, copied = s.ColumnInt64(1), s.ColumnInt64(2)
			return nil
		})
	}
	for range 4 {
		if err := passive(); err != nil {
			return false, err
		}
		if copied == logFrames {
			return true, nil
		}
	}
	if logFrames > maxLogFrames {
		// Writes have not paused for four passes and the log is large: wait
		// for the write that runs, hold the next ones back for one copy, and
		// let the next write start the log again.
		if err := run(sp.ckpt, "PRAGMA wal_checkpoint(RESTART)", nil, nil); err != nil {
			return false, err
		}
	}
	return false, nil
}

// checkpointPause is the least time between two checkpoints while writes
// continue: each copies the new part of the log and fsyncs the file.
const checkpointPause = 200 * time.Millisecond

// checkpoints copies committed frames of the write-ahead log into the
// database file, off the writers' path. SQLite's automatic checkpoint (off
// on the writer) runs inside the commit that crosses its threshold: that
// write would wait for a copy of the log and an fsync of the file, tens of
// milliseconds behind a large batch. A PASSIVE checkpoint never blocks the
// writer or the readers; it skips frames a reader still needs, which the
// next one copies.
//
// Under synchronous=NORMAL a checkpoint is also what fsyncs the log, so a
// checkpoint that left frames behind runs again after the pause, without
// waiting for another commit: every commit reaches the disk within about
// checkpointPause (see Options.SyncEveryCommit).
func (sp *space) checkpoints() {
	defer close(sp.ckptDone)
	again := false
	var failures checkpointFailures
	for {
		if !again {
			select {
			case <-sp.ckptWake:
			case <-sp.closing:
				return
			}
		}
		if testHookBeforeCheckpoint != nil {
			testHookBeforeCheckpoint()
		}
		whole, err := sp.checkpoint()
		if testHookCheckpointed != nil {
			testHookCheckpointed(whole)
		}
		failures.report(sp, err)
		again = !whole
		pause := time.NewTimer(checkpointPause)
		select {
		case <-pause.C:
		case <-sp.closing:
			pause.Stop()
			return
		}
	}
}

// checkpointReportEvery is the least time between two reports of a
// checkpointer that keeps failing: one line when it starts failing, one
// this often while it goes on, one when it succeeds again.
const checkpointReportEvery = time.Minute

// checkpointFailures reports a space's failing checkpoints to the store's
// logger, a bounded number of lines however long they fail. No call sees
// them: the writes they leave in the log are safe there, but the log grows
// until a checkpoint succeeds (a full disk, for instance).
type checkpointFailures struct {
	count    int       // consecutive failures
	reported time.Time // of the last report
}

func (f *checkpointFailures) report(sp *space, err error) {
	log := sp.opts.logger()
	switch {
	case err != nil && sp.isClosing():
		// Closing interrupts a checkpoint; the next open finishes it.
	case err != nil:
		f.count++
		if f.count == 1 || time.Since(f.reported) >= checkpointReportEvery {
			f.reported = time.Now()
			log.LogAttrs(context.Background(), slog.LevelWarn,
				"the space's checkpoints fail: its writes stay in the write-ahead log, which grows until one succeeds",
				slog.String("space", sp.name), slog.String("file", sp.path),
				slog.Int("failures", f.count), logging.Error(err))
		}
	case f.count > 0:
		log.LogAttrs(context.Background(), slog.LevelInfo, "the space's checkpoints succeed again",
			slog.String("space", sp.name), slog.Int("failures", f.count))
		*f = checkpointFailures{}
	}
}

func (sp *space) isClosing() bool {
	select {
	case <-sp.closing:
		return true
	default:
		return false
	}
}

// openErr gives an error of opening the file its kind and the file's name.
func (sp *space) openErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if k := errs.KindOf(err); k != errs.Unknown {
		return err
	}
	if code := sqliteCode(err); code == 11 || code == 26 { // CORRUPT, NOTADB
		return errs.Wrap(errs.DataLoss, err, fmt.Sprintf("space %q: the file %s is corrupt or not a database; move it away or delete the space", sp.name, sp.path))
	}
	return sp.mapErr(err, fmt.Sprintf("space %q: opening %s", sp.name, sp.path))
}

// init checks the file is a space (or makes it one when fresh), migrates
// its schema, and loads the index definitions.
func (sp *space) init(ctx context.Context, fresh bool) error {
	conn := sp.w
	conn.SetInterrupt(ctx.Done())
	defer conn.SetInterrupt(nil)
	// wal_autocheckpoint 0: the checkpointer (checkpoints) does it, and
	// under NORMAL it is also what fsyncs the log.
	synchronous := "PRAGMA synchronous = NORMAL"
	if sp.opts.SyncEveryCommit {
		synchronous = "PRAGMA synchronous = FULL"
	}
	// journal_size_limit: a log that grew behind a large batch is cut back
	// to 4 MiB when a write starts it again, rather than keeping its size.
	pragmas := []string{synchronous, mmapPragma, "PRAGMA analysis_limit = 1000", "PRAGMA wal_autocheckpoint = 0", "PRAGMA journal_size_limit = 4194304"}
	if sp.opts.maxPageCount > 0 {
		pragmas = append(pragmas, fmt.Sprintf("PRAGMA max_page_count = %d", sp.opts.maxPageCount))
	}
	for _, p := range pragmas {
		if err := runOnce(conn, p, nil, nil); err != nil {
			return sp.openErr(ctx, err)
		}
	}
	var appID, version, tables int64
	for _, q := range []struct {
		sql  string
		dest *int64
	}{
		{"PRAGMA application_id", &appID},
		{"PRAGMA user_version", &version},
		{"SELECT count(*) FROM sqlite_schema", &tables},
	} {
		if err := runOnce(conn, q.sql, nil, func(s *sqlite.Stmt) error { *q.dest = s.ColumnInt64(0); return nil }); err != nil {
			return sp.openErr(ctx, err)
		}
	}
	if appID != applicationID && (appID != 0 || tables != 0 || !fresh) {
		return errs.New(errs.FailedPrecondition, "space %q: the file %s is an SQLite database of another application (application_id %#x), not a space; move it away", sp.name, sp.path, appID)
	}
	var mode string
	if err := runOnce(conn, "PRAGMA journal_mode = WAL", nil, func(s *sqlite.Stmt) error { mode = s.ColumnText(0); return nil }); err != nil {
		return sp.openErr(ctx, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return sp.openErr(ctx, fmt.Errorf("journal_mode is %q, not WAL", mode))
	}
	if version > int64(len(migrations)) {
		return errs.New(errs.FailedPrecondition, "space %q: the file %s has schema version %d, written by a newer version of the backend (this one knows up to %d)", sp.name, sp.path, version, len(migrations))
	}
	for v := int(version); v < len(migrations); v++ {
		if err := migrate(conn, v); err != nil {
			return sp.openErr(ctx, fmt.Errorf("migrating to schema version %d: %w", v+1, err))
		}
	}
	scalar, err := loadScalars(conn)
	if err != nil {
		return sp.openErr(ctx, err)
	}
	sp.scalar = scalar
	return nil
}

func migrate(conn *sqlite.Conn, from int) (err error) {
	if err := run(conn, "BEGIN IMMEDIATE", nil, nil); err != nil {
		return err
	}
	defer func() {
		if err != nil && !conn.AutocommitEnabled() {
			_ = run(conn, "ROLLBACK", nil, nil)
		}
	}()
	if from == 0 {
		if err := runOnce(conn, fmt.Sprintf("PRAGMA application_id = %d", applicationID), nil, nil); err != nil {
			return err
		}
		if err := runOnce(conn, "CREATE TABLE migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)", nil, nil); err != nil {
			return err
		}
	}
	if err := sqlitex.ExecuteScript(conn, migrations[from], nil); err != nil {
		return err
	}
	if err := runOnce(conn, "INSERT INTO migrations (version, applied_at) VALUES (?, ?)", []any{from + 1, time.Now().UnixMicro()}, nil); err != nil {
		return err
	}
	if err := runOnce(conn, fmt.Sprintf("PRAGMA user_version = %d", from+1), nil, nil); err != nil {
		return err
	}
	return run(conn, "COMMIT", nil, nil)
}

// loadScalars reads the index-covered paths of every collection from the
// file's index definitions.
func loadScalars(conn *sqlite.Conn) (map[string]map[string]string, error) {
	scalar := map[string]map[string]string{}
	err := run(conn, "SELECT collection, name, fields FROM indexes", nil, func(s *sqlite.Stmt) error {
		coll, name := s.ColumnText(0), s.ColumnText(1)
		var fs []IndexField
		if err := json.Unmarshal([]byte(s.ColumnText(2)), &fs); err != nil {
			return fmt.Errorf("index %q of collection %q: %w", name, coll, err)
		}
		addScalar(scalar, coll, name, fs)
		return nil
	})
	return scalar, err
}

func addScalar(scalar map[string]map[string]string, coll, name string, fields []IndexField) {
	m := scalar[coll]
	if m == nil {
		m = map[string]string{}
		scalar[coll] = m
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
		// Taking the writer below still waits for a write that runs: a
		// transaction is never cut off, only no longer awaited here.
	}
	w := <-sp.writer
	if !deleted {
		// Refresh the planner's statistics where they are stale (cheap
		// when they are not); it never changes the data.
		optCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		w.SetInterrupt(optCtx.Done())
		_ = run(w, "PRAGMA optimize", nil, nil)
		w.SetInterrupt(nil)
		cancel()
	}
	<-sp.ckptDone
	return errors.Join(sp.ckpt.Close(), sp.r.Close(), w.Close())
}

// read runs fn on a read connection (a snapshot of the last commit while
// fn runs a statement, or for fn's whole read transaction).
func (sp *space) read(ctx context.Context, fn func(conn *sqlite.Conn) error) error {
	conn, err := sp.r.Take(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	defer sp.r.Put(conn)
	return interrupted(ctx, fn(conn))
}

// interrupted returns ctx's error for a statement its end interrupted.
func interrupted(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil && sqlite.ErrCode(err).ToPrimary() == sqlite.ResultInterrupt {
		return ctx.Err()
	}
	return err
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

// testHookBeforeCheckpoint and testHookCheckpointed, when set (by tests),
// run in the checkpointer before each checkpoint and after it, with whether
// it copied the whole log.
// testHookCheckpointErr, when set, runs at the start of every checkpoint; an
// error it returns is the checkpoint's.
var (
	testHookBeforeCheckpoint func()
	testHookCheckpointed     func(whole bool)
	testHookCheckpointErr    func() error
)

// testHookInWrite, when set (by tests), runs inside every write
// transaction, right after it began.
var testHookInWrite func()

// write runs fn in one write transaction and commits it; on any error
// nothing is written. Watchers are woken after the commit. A context that
// ends before the commit interrupts the transaction (rolled back); once
// the commit runs, it completes.
func (sp *space) write(ctx context.Context, fn func(tx *wtx) error) error {
	var conn *sqlite.Conn
	select {
	case conn = <-sp.writer:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { sp.writer <- conn }()
	conn.SetInterrupt(ctx.Done())
	defer conn.SetInterrupt(nil)
	if err := run(conn, "BEGIN IMMEDIATE", nil, nil); err != nil {
		return sp.mapErr(interrupted(ctx, err), "")
	}
	tx := &wtx{conn: conn}
	if testHookInWrite != nil {
		testHookInWrite()
	}
	rollback := func() {
		if !conn.AutocommitEnabled() {
			conn.SetInterrupt(nil)
			_ = run(conn, "ROLLBACK", nil, nil)
		}
	}
	if err := fn(tx); err != nil {
		rollback()
		return sp.mapErr(interrupted(ctx, err), "")
	}
	conn.SetInterrupt(nil)
	if err := run(conn, "COMMIT", nil, nil); err != nil {
		rollback()
		return sp.mapErr(err, "committing")
	}
	sp.notify()
	select {
	case sp.ckptWake <- struct{}{}:
	default: // it is awake already
	}
	if sp.writes.Add(1)%optimizeEvery == 0 {
		// Collections grow: refresh the planner's statistics where they
		// are stale (PRAGMA optimize re-analyzes a table whose size
		// changed a lot; otherwise it does nothing).
		_ = run(conn, "PRAGMA optimize", nil, nil)
	}
	return nil
}

// optimizeEvery is how many write transactions pass between two PRAGMA
// optimize runs.
const optimizeEvery = 1000

// sqliteCode is err's primary SQLite result code (1, SQLITE_ERROR, for an
// error that is not SQLite's).
func sqliteCode(err error) int { return int(sqlite.ErrCode(err).ToPrimary()) }

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
	switch sqliteCode(err) {
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

// wtx is a write transaction on the writer connection.
type wtx struct {
	conn *sqlite.Conn
	// colls caches, per collection, what its writes need (a batch writes
	// one collection thousands of times).
	colls map[string]*collWrites
}
