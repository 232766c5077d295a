// Package store is the backend's document store (proto
// anysync.v1.StoreService; the gRPC side is package storeservice): spaces
// of collections of JSON documents on SQLite, with MongoDB-style filters,
// indexes on JSON paths chosen by SQLite's planner, atomic batches,
// optimistic concurrency and a change log that live queries read.
//
// # Files
//
// A space is one SQLite database file, <dir>/spaces/<name>.sqlite (plus its
// -wal and -shm files while open): the unit the sync phase replicates. Its
// schema has a version (PRAGMA user_version) and a migrations table with one
// row per applied migration; a file written by a newer version, or an
// SQLite file that is not a space (another application_id), is refused with
// an error naming the file, and a corrupt one too, while the other spaces
// keep working.
//
// # Driver: zombiezen.com/go/sqlite
//
// Both pure-Go choices run the same SQLite (zombiezen.com/go/sqlite is
// built on modernc.org/sqlite's transpiled C), so CGO stays off and
// cross-compilation and gomobile keep working with either. We use
// zombiezen, chosen by a benchmark (bench/go-sqlite; go-backend/README.md
// has the numbers): on database/sql, a batch's per-document work spent as
// much in the per-statement layer (argument conversion, Scan, a goroutine
// per statement of a cancellable call, statements prepared per
// transaction) as in SQLite. Here a statement of fixed text is prepared
// once per connection, a call's context interrupts its statements through
// Conn.SetInterrupt, the writer is one connection handed from write to
// write, and the readers are a sqlitex.Pool.
//
// # Durability
//
// journal_mode=WAL. By default synchronous=NORMAL: a commit is written to
// the WAL (the OS holds it) before the call is answered, and fsynced by the
// checkpointer within about 200 ms (checkpointPause). An acknowledged write
// survives a kill -9 of the sidecar or the app; a power loss or OS crash
// never corrupts the file, but can lose the writes of the last moments
// before it, those not yet fsynced. Options.SyncEveryCommit makes it
// synchronous=FULL: every commit is fsynced before it is answered, so it
// survives a power loss too (as far as the disk honours fsync), for one
// fsync per write transaction.
//
// # Concurrency
//
// Each space has one writer connection (BEGIN IMMEDIATE; writes queue for
// it in arrival order, each a transaction) and a small pool of read-only
// connections; in WAL mode readers see the last commit and never block the
// writer. Connections read the file through a memory map (mmap_size, up to
// 256 MiB of it on 64-bit systems) rather than a pread per page their cache
// misses, and keep the statements of compiled filters prepared (a bounded
// number of texts per space; the values are bound parameters). Every write
// appends its changes to the space's change log (table changes, seq INTEGER
// PRIMARY KEY AUTOINCREMENT) in the same transaction, so the log's order is
// the commit order; Watch reads it. A checkpointer
// goroutine per space, on a connection of its own, copies the write-ahead
// log into the database file after commits (SQLite's automatic checkpoint
// is off on the writer, so no write waits for one).
//
// # Errors
//
// Errors carry an errs.Kind: InvalidArgument for a bad name, document,
// filter, sort or modifier (naming the operator and path), NotFound for an
// unknown space or document, AlreadyExists for a duplicate id or a unique
// index violation, Aborted for an expected revision that does not match,
// ResourceExhausted for a full disk, DataLoss or FailedPrecondition for a
// corrupt or foreign file, Unavailable while closing.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/anysync/tauri-plugin-anysync/go-backend/backend/errs"
)

// Defaults and bounds.
const (
	// DefaultMaxDocBytes is the default bound of one document's JSON text.
	DefaultMaxDocBytes = 1 << 20
	// MaxIDBytes bounds a document id.
	MaxIDBytes = 256
	// MaxBatchOps bounds the operations of one batch.
	MaxBatchOps = 10_000
	// DefaultLimit is Find's page size when the query gives none.
	DefaultLimit = 100
	// MaxLimit bounds Find's page size.
	MaxLimit = 1000
	// MaxIndexFields bounds the fields of one index and of one sort order.
	MaxIndexFields = 8
	// MaxFilterBytes bounds a filter, sort or update text.
	MaxFilterBytes = 64 << 10
)

// Options configure a Store.
type Options struct {
	// MaxDocBytes bounds a document's JSON text; 0 means DefaultMaxDocBytes.
	MaxDocBytes int
	// Readers is the number of read connections per space; 0 means 4.
	Readers int
	// SyncEveryCommit fsyncs every write transaction before it is answered
	// (SQLite's synchronous=FULL), so that an acknowledged write survives a
	// power loss or OS crash too, at one fsync per write. Without it
	// (synchronous=NORMAL) the checkpointer fsyncs commits within about
	// 200 ms; a kill -9 of the process never loses an acknowledged write in
	// either mode. See "Durability" in the package doc.
	SyncEveryCommit bool
	// Logger receives what no call can report: a space whose checkpoints
	// keep failing (a few lines however long it lasts). Nil means
	// slog.Default().
	Logger *slog.Logger
	// maxPageCount, when set, caps every space's size in pages (PRAGMA
	// max_page_count on the writer): tests use it to make the disk "full".
	maxPageCount int
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.Default()
	}
	return o.Logger
}

// Store is a directory of spaces. It is safe for concurrent use. Create it
// with Open; Close it once.
type Store struct {
	dir  string // <dataDir>/spaces
	opts Options

	mu     sync.Mutex
	closed bool
	spaces map[string]*space // open spaces, by name
}

var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,63}$`)

func checkName(what, name string) error {
	if !nameRE.MatchString(name) {
		if name == "" {
			return errs.New(errs.InvalidArgument, "%s name is empty: give 1 to 64 characters of [A-Za-z0-9_-], starting with a letter or _", what)
		}
		return errs.New(errs.InvalidArgument, "%s name %q is invalid: use 1 to 64 characters of [A-Za-z0-9_-], starting with a letter or _", what, name)
	}
	return nil
}

// Open returns the Store of dataDir, creating dataDir/spaces when missing.
// Spaces are opened when first used.
func Open(dataDir string, opts Options) (*Store, error) {
	if dataDir == "" {
		return nil, errs.New(errs.FailedPrecondition, "the document store has no data directory: set dataDir (ANYSYNC_DATA_DIR, --data-dir)")
	}
	if opts.MaxDocBytes <= 0 {
		opts.MaxDocBytes = DefaultMaxDocBytes
	}
	if opts.Readers <= 0 {
		opts.Readers = 4
	}
	dir := filepath.Join(dataDir, "spaces")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the store's directory: %w", err)
	}
	return &Store{dir: dir, opts: opts, spaces: map[string]*space{}}, nil
}

// Dir is the directory the spaces' files are in.
func (st *Store) Dir() string { return st.dir }

func (st *Store) file(name string) string { return filepath.Join(st.dir, name+".sqlite") }

// CreateSpace creates the space name, empty. AlreadyExists if it exists.
func (st *Store) CreateSpace(ctx context.Context, name string) error {
	if err := checkName("space", name); err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return errClosed
	}
	path := st.file(name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return errs.New(errs.AlreadyExists, "space %q exists already", name)
	}
	if err != nil {
		return fmt.Errorf("creating space %q: %w", name, err)
	}
	_ = f.Close()
	sp, err := openSpace(ctx, name, path, st.opts, true)
	if err != nil {
		removeFiles(path)
		return err
	}
	st.spaces[name] = sp
	return nil
}

// ListSpaces returns the names of the spaces, sorted.
func (st *Store) ListSpaces(context.Context) ([]string, error) {
	entries, err := os.ReadDir(st.dir)
	if err != nil {
		return nil, fmt.Errorf("listing spaces: %w", err)
	}
	var names []string
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".sqlite")
		if ok && e.Type().IsRegular() && nameRE.MatchString(name) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// DeleteSpace closes the space name (waiting for its in-flight calls) and
// removes its files. NotFound if it does not exist.
func (st *Store) DeleteSpace(ctx context.Context, name string) error {
	if err := checkName("space", name); err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return errClosed
	}
	path := st.file(name)
	if sp := st.spaces[name]; sp != nil {
		delete(st.spaces, name)
		if err := sp.close(ctx, true); err != nil {
			return err
		}
	} else if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return errs.New(errs.NotFound, "space %q not found", name)
	}
	if err := removeFiles(path); err != nil {
		return fmt.Errorf("deleting space %q: %w", name, err)
	}
	return nil
}

func removeFiles(path string) error {
	var first error
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) && first == nil {
			first = err
		}
	}
	return first
}

var errClosed = errs.New(errs.Unavailable, "the document store is closed")

// space returns the open space name, opening it when needed, with one
// in-flight call registered on it: the caller must call done().
func (st *Store) space(ctx context.Context, name string) (*space, error) {
	if err := checkName("space", name); err != nil {
		return nil, err
	}
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return nil, errClosed
	}
	sp := st.spaces[name]
	if sp == nil {
		path := st.file(name)
		if fi, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			st.mu.Unlock()
			return nil, errs.New(errs.NotFound, "space %q not found: create it first", name)
		} else if err != nil {
			st.mu.Unlock()
			return nil, fmt.Errorf("space %q: %w", name, err)
		} else if !fi.Mode().IsRegular() {
			st.mu.Unlock()
			return nil, errs.New(errs.FailedPrecondition, "space %q: %s is not a regular file", name, path)
		}
		var err error
		sp, err = openSpace(ctx, name, path, st.opts, false)
		if err != nil {
			st.mu.Unlock()
			return nil, err
		}
		st.spaces[name] = sp
	}
	st.mu.Unlock()
	if err := sp.begin(); err != nil {
		return nil, err
	}
	return sp, nil
}

// Close closes every open space, each after its in-flight calls have
// finished (a write in progress commits or rolls back; none is cut off).
// Later calls fail Unavailable. Safe to call more than once.
func (st *Store) Close(ctx context.Context) error {
	st.mu.Lock()
	st.closed = true
	spaces := st.spaces
	st.spaces = map[string]*space{}
	st.mu.Unlock()
	var all []error
	for _, sp := range spaces {
		if err := sp.close(ctx, false); err != nil {
			all = append(all, err)
		}
	}
	return errors.Join(all...)
}
