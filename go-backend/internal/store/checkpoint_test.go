package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"zombiezen.com/go/sqlite"
)

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestCheckpointsRunOffTheWriter: writes never copy the log into the
// database file themselves (SQLite's automatic checkpoint would, inside the
// commit that crosses 1000 frames); the checkpointer does, and the next
// write then starts the log from its beginning.
func TestCheckpointsRunOffTheWriter(t *testing.T) {
	held := make(chan struct{}, 1)
	release := make(chan struct{})
	testHookBeforeCheckpoint = func() {
		select {
		case held <- struct{}{}:
		default:
		}
		<-release
	}
	copiedWhole := make(chan struct{}, 1)
	testHookCheckpointed = func(whole bool) {
		if whole {
			select {
			case copiedWhole <- struct{}{}:
			default:
			}
		}
	}
	// Cleared after the store closed (cleanups run last first), when no
	// checkpointer reads them any more.
	t.Cleanup(func() { testHookBeforeCheckpoint = nil; testHookCheckpointed = nil })
	st := newStore(t, Options{})
	sp := openedSpace(t, st)
	// Released before the store closes, also when the test fails while the
	// checkpointer is held.
	var releaseOnce sync.Once
	releaseHeld := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseHeld)
	before := fileSize(t, sp.path)
	mustPut(t, st, "c", `{"id":"first"}`)
	<-held // the checkpointer is held from here on
	for i := range 600 {
		mustPut(t, st, "c", fmt.Sprintf(`{"id":"d%d","body":"%0200d"}`, i, i))
	}
	if after := fileSize(t, sp.path); after != before {
		t.Fatalf("the database file grew from %d to %d bytes while the checkpointer was held: a write checkpointed", before, after)
	}
	releaseHeld()

	// The checkpointer copies the log into the file. The file grows while
	// it copies, so its size does not say when the copy is whole: the
	// checkpointer's report does.
	select {
	case <-copiedWhole:
	case <-time.After(10 * time.Second):
		t.Fatalf("10 s after the checkpointer was released it has not copied the whole log")
	}
	if after := fileSize(t, sp.path); after == before {
		t.Fatalf("the checkpoint left the database file at %d bytes", before)
	}
	// It copied the whole log, so a write starts it again from its
	// beginning: 300 more documents (half as many frames as the log holds)
	// fit in the file the log has.
	wal := fileSize(t, sp.path+"-wal")
	for i := range 300 {
		mustPut(t, st, "c", fmt.Sprintf(`{"id":"e%d","body":"%0200d"}`, i, i))
	}
	if after := fileSize(t, sp.path+"-wal"); after > wal {
		t.Fatalf("the log grew from %d to %d bytes after a full checkpoint: it did not start again", wal, after)
	}
	t.Logf("database file %d -> %d bytes; log file %d bytes, unchanged after 300 more writes", before, fileSize(t, sp.path), wal)
}

// TestCommitsSyncAtCheckpointsUnlessAsked: the writer runs at
// synchronous=NORMAL (fsync at checkpoints) by default and at FULL (fsync
// per commit) with SyncEveryCommit.
func TestCommitsSyncAtCheckpointsUnlessAsked(t *testing.T) {
	for _, c := range []struct {
		opts Options
		want int64 // PRAGMA synchronous: 1 NORMAL, 2 FULL
	}{{Options{}, 1}, {Options{SyncEveryCommit: true}, 2}} {
		sp := openedSpace(t, newStore(t, c.opts))
		w := <-sp.writer
		var got int64
		err := runOnce(w, "PRAGMA synchronous", nil, func(s *sqlite.Stmt) error { got = s.ColumnInt64(0); return nil })
		sp.writer <- w
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("SyncEveryCommit %v: the writer's synchronous is %d, want %d", c.opts.SyncEveryCommit, got, c.want)
		}
	}
}

// TestCheckpointerRetriesUntilTheLogIsCopied: a checkpoint that a reader's
// snapshot kept from copying the whole log runs again without another
// commit, because under synchronous=NORMAL it is what fsyncs those commits.
func TestCheckpointerRetriesUntilTheLogIsCopied(t *testing.T) {
	results := make(chan bool, 1000)
	testHookCheckpointed = func(whole bool) { results <- whole }
	t.Cleanup(func() { testHookCheckpointed = nil })
	st := newStore(t, Options{})
	ctx := context.Background()
	sp := openedSpace(t, st)
	next := func(what string) bool {
		t.Helper()
		select {
		case whole := <-results:
			return whole
		case <-time.After(10 * time.Second):
			t.Fatalf("no checkpoint within 10 s %s", what)
			return false
		}
	}
	mustPut(t, st, "c", `{"id":"first"}`)
	for !next("after the first write") {
	}

	// A reader holds a snapshot of the log as it is now.
	holding, release, readDone := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		readDone <- sp.read(ctx, func(conn *sqlite.Conn) error {
			if err := runOnce(conn, "BEGIN", nil, nil); err != nil {
				return err
			}
			if err := runOnce(conn, "SELECT count(*) FROM docs", nil, func(*sqlite.Stmt) error { return nil }); err != nil {
				return err
			}
			close(holding)
			<-release
			return runOnce(conn, "COMMIT", nil, nil)
		})
	}()
	<-holding
	for i := range 20 {
		mustPut(t, st, "c", fmt.Sprintf(`{"id":"d%d"}`, i))
	}
	// The checkpoints after those writes cannot copy the frames past the
	// reader's snapshot.
	for next("while a reader holds a snapshot") {
	}
	close(release)
	if err := <-readDone; err != nil {
		t.Fatal(err)
	}
	// No more writes: the checkpointer must come back on its own.
	for !next("after the reader let go, with no write since") {
	}
}

// recorded is a slog.Handler that keeps the records it is given.
type recorded struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *recorded) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorded) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorded) WithGroup(string) slog.Handler            { return r }
func (r *recorded) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec.Clone())
	return nil
}

// at gives the messages of the records at level, each with its "failures"
// attribute.
func (r *recorded) at(level slog.Level) (messages []string, failures []int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.records {
		if rec.Level != level {
			continue
		}
		messages = append(messages, rec.Message)
		rec.Attrs(func(a slog.Attr) bool {
			if a.Key == "failures" {
				failures = append(failures, a.Value.Int64())
			}
			return true
		})
	}
	return messages, failures
}

// TestFailingCheckpointsAreReportedBoundedly: a checkpointer that keeps
// failing (retrying every checkpointPause) logs one warning naming the
// space, not one per attempt, and one line when it succeeds again, which
// then copies the log into the file.
func TestFailingCheckpointsAreReportedBoundedly(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	var attempts atomic.Int32
	testHookCheckpointErr = func() error {
		if failing.Load() {
			attempts.Add(1)
			return errors.New("disk I/O error")
		}
		return nil
	}
	t.Cleanup(func() { testHookCheckpointErr = nil }) // after the store closed
	logs := &recorded{}
	st := newStore(t, Options{Logger: slog.New(logs)})
	sp := openedSpace(t, st)
	mustPut(t, st, "c", `{"id":"first"}`)
	before := fileSize(t, sp.path)

	poll := func(what string, done func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !done() {
			if time.Now().After(deadline) {
				t.Fatalf("10 s passed and still not %s", what)
			}
			time.Sleep(10 * time.Millisecond) // pacing the polls
		}
	}
	poll("four failed checkpoints", func() bool { return attempts.Load() >= 4 })
	warnings, _ := logs.at(slog.LevelWarn)
	if len(warnings) != 1 {
		t.Fatalf("%d failed checkpoints logged %d warnings, want 1: %q", attempts.Load(), len(warnings), warnings)
	}
	if after := fileSize(t, sp.path); after != before {
		t.Fatalf("a failed checkpoint changed the database file (%d -> %d bytes)", before, after)
	}

	failing.Store(false)
	poll("a report that checkpoints succeed again", func() bool {
		infos, _ := logs.at(slog.LevelInfo)
		return len(infos) > 0
	})
	_, failures := logs.at(slog.LevelInfo)
	if failures[0] < 4 {
		t.Fatalf("the recovery reports %d failures, want at least 4", failures[0])
	}
	poll("the log copied into the file", func() bool { return fileSize(t, sp.path) > before })
}
