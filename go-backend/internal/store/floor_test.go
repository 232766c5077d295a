package store

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// The in-process floor of the store benchmarks (bench/README.md): the
// operations the webview benchmark times through the whole stack, here
// straight on a Store, with the same documents and sizes. npm run bench runs
// it with ANYSYNC_STORE_FLOOR_OUT set and reads the samples; without it the
// test is skipped. BenchmarkXxx in bench_test.go are the go test -bench view
// of the same operations.

// floorDoc is document i of the benchmarks' collection; bench/store.ts
// builds the same.
func floorDoc(prefix string, i int) string {
	return fmt.Sprintf(`{"id":"%s%07d","cat":"c%d","n":%d,"title":"note %d","body":"the quick brown fox jumps over the lazy dog, again and again"}`,
		prefix, i, i%1000, i, i)
}

// floorSizes are the counts of one run (ANYSYNC_STORE_FLOOR_SIZES, JSON,
// the same object bench/run.ts hands the webview).
type floorSizes struct {
	Docs    int `json:"docs"`    // documents in the collection the reads run on
	Batch   int `json:"batch"`   // documents per batch; Docs/Batch batches fill it
	Single  int `json:"single"`  // single puts timed
	Gets    int `json:"gets"`    // gets by id timed
	Queries int `json:"queries"` // indexed equality and sorted range queries timed, each
	Updates int `json:"updates"` // updates timed
}

func TestStoreFloor(t *testing.T) {
	out := os.Getenv("ANYSYNC_STORE_FLOOR_OUT")
	if out == "" {
		t.Skip("run by npm run bench (ANYSYNC_STORE_FLOOR_OUT)")
	}
	sz := floorSizes{Docs: 100_000, Batch: 10_000, Single: 2000, Gets: 2000, Queries: 1000, Updates: 2000}
	if raw := os.Getenv("ANYSYNC_STORE_FLOOR_SIZES"); raw != "" {
		if err := json.Unmarshal([]byte(raw), &sz); err != nil {
			t.Fatalf("ANYSYNC_STORE_FLOOR_SIZES: %v", err)
		}
	}
	dir := t.TempDir()
	st, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	ctx := context.Background()
	if err := st.CreateSpace(ctx, "bench"); err != nil {
		t.Fatal(err)
	}
	samples := map[string][]int64{}
	timed := func(name string, f func() error) {
		t0 := time.Now()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		samples[name] = append(samples[name], time.Since(t0).Nanoseconds())
	}
	// Indexes first, as an app declares them, so that every write pays for them.
	for _, ix := range []Index{
		{Collection: "docs", Name: "by_cat", Fields: []IndexField{{Path: "cat"}}},
		{Collection: "docs", Name: "by_n", Fields: []IndexField{{Path: "n"}}},
	} {
		if _, err := st.EnsureIndex(ctx, "bench", ix); err != nil {
			t.Fatal(err)
		}
	}
	for i := range sz.Single {
		timed("put", func() error { _, err := st.Put(ctx, "bench", "single", floorDoc("s", i), nil); return err })
	}
	// The same puts with every commit fsynced (SyncEveryCommit): the price of
	// surviving a power loss, next to the default.
	full, err := Open(filepath.Join(dir, "full"), Options{SyncEveryCommit: true})
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close(context.Background())
	if err := full.CreateSpace(ctx, "bench"); err != nil {
		t.Fatal(err)
	}
	for i := range sz.Single {
		timed("putSyncEveryCommit", func() error { _, err := full.Put(ctx, "bench", "single", floorDoc("s", i), nil); return err })
	}
	for b := 0; b*sz.Batch < sz.Docs; b++ {
		writes := make([]Write, 0, sz.Batch)
		for i := b * sz.Batch; i < (b+1)*sz.Batch && i < sz.Docs; i++ {
			writes = append(writes, Write{Kind: WritePut, Collection: "docs", JSON: floorDoc("d", i)})
		}
		timed("batch", func() error { _, err := st.Batch(ctx, "bench", writes); return err })
	}
	for i := range sz.Gets {
		id := fmt.Sprintf("d%07d", (i*7919)%sz.Docs)
		timed("get", func() error { _, err := st.Get(ctx, "bench", "docs", id); return err })
	}
	perCat := sz.Docs / 1000
	for i := range sz.Queries {
		q := Query{Collection: "docs", Filter: `{"cat":"c` + strconv.Itoa((i*37)%1000) + `"}`, Limit: MaxLimit}
		timed("eq", func() error {
			p, err := st.Find(ctx, "bench", q)
			if err == nil && len(p.Docs) != perCat {
				err = fmt.Errorf("%d documents, want %d", len(p.Docs), perCat)
			}
			return err
		})
	}
	span := min(5000, sz.Docs/2)
	for i := range sz.Queries {
		lo := (i * 7919) % (sz.Docs - span)
		q := Query{Collection: "docs", Filter: fmt.Sprintf(`{"n":{"$gte":%d,"$lt":%d}}`, lo, lo+span), Sort: `{"n":-1}`, Limit: 20}
		timed("range", func() error {
			p, err := st.Find(ctx, "bench", q)
			if err == nil && len(p.Docs) != 20 {
				err = fmt.Errorf("%d documents, want 20", len(p.Docs))
			}
			return err
		})
	}
	for i := range sz.Updates {
		id := fmt.Sprintf("d%07d", (i*104729)%sz.Docs)
		update := `{"$set":{"title":"edited ` + strconv.Itoa(i) + `"}}`
		timed("update", func() error { _, err := st.Update(ctx, "bench", "docs", id, update, nil); return err })
	}
	var size int64
	for _, suffix := range []string{"", "-wal"} {
		if fi, err := os.Stat(filepath.Join(st.Dir(), "bench.sqlite"+suffix)); err == nil {
			size += fi.Size()
		}
	}
	raw, err := json.Marshal(map[string]any{"samplesNs": samples, "dbBytes": size, "sizes": sz})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}
