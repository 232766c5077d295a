package store

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
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
	st := newStore(t, Options{})
	ctx := context.Background()
	sp, err := st.space(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	defer sp.done()
	// Released before the store closes (cleanups run last first), also when
	// the test fails while the checkpointer is held.
	var releaseOnce sync.Once
	releaseHeld := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(func() { releaseHeld(); testHookBeforeCheckpoint = nil })
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

	// The checkpointer copies the log into the file.
	deadline := time.Now().Add(10 * time.Second)
	for fileSize(t, sp.path) == before {
		if time.Now().After(deadline) {
			t.Fatalf("10 s after the checkpointer was released the database file is still %d bytes", before)
		}
		time.Sleep(10 * time.Millisecond) // pacing the polls
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
