package store

import (
	"context"
	"fmt"
	"testing"
)

// The in-process floor of issue 14's benchmarks (go test -bench . -run ^$).

func BenchmarkPut(b *testing.B) {
	st := newStore(b, Options{})
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		if _, err := st.Put(ctx, "s", "c", fmt.Sprintf(`{"id":"%d","title":"note %d","n":%d}`, i, i, i), nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBatch10k(b *testing.B) {
	st := newStore(b, Options{})
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		writes := make([]Write, 10_000)
		for j := range writes {
			writes[j] = Write{Kind: WritePut, Collection: "c", JSON: fmt.Sprintf(`{"id":"%d-%d","title":"note","n":%d}`, i, j, j)}
		}
		if _, err := st.Batch(ctx, "s", writes); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*10_000)/b.Elapsed().Seconds(), "docs/s")
}

func benchStore(b *testing.B, n int) *Store {
	st := newStore(b, Options{})
	ctx := context.Background()
	for i := 0; i < n; i += 10_000 {
		writes := make([]Write, 0, 10_000)
		for j := i; j < i+10_000 && j < n; j++ {
			writes = append(writes, Write{Kind: WritePut, Collection: "c", JSON: fmt.Sprintf(`{"id":"%07d","cat":"c%d","n":%d}`, j, j%1000, j)})
		}
		if _, err := st.Batch(ctx, "s", writes); err != nil {
			b.Fatal(err)
		}
	}
	for _, ix := range []Index{
		{Collection: "c", Name: "by_cat", Fields: []IndexField{{Path: "cat"}}},
		{Collection: "c", Name: "by_n", Fields: []IndexField{{Path: "n"}}},
	} {
		if _, err := st.EnsureIndex(ctx, "s", ix); err != nil {
			b.Fatal(err)
		}
	}
	return st
}

func BenchmarkGet100k(b *testing.B) {
	st := benchStore(b, 100_000)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		if _, err := st.Get(ctx, "s", "c", fmt.Sprintf("%07d", i%100_000)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIndexedEq100k(b *testing.B) {
	st := benchStore(b, 100_000)
	ctx := context.Background()
	if ex, _ := st.Explain(ctx, "s", Query{Collection: "c", Filter: `{"cat":"c1"}`}); ex.Index != "by_cat" {
		b.Fatalf("index %q: %v", ex.Index, ex.Plan)
	}
	b.ResetTimer()
	for i := range b.N {
		p, err := st.Find(ctx, "s", Query{Collection: "c", Filter: fmt.Sprintf(`{"cat":"c%d"}`, i%1000)})
		if err != nil || len(p.Docs) != 100 {
			b.Fatal(len(p.Docs), err)
		}
	}
}

func BenchmarkSortedRange100k(b *testing.B) {
	st := benchStore(b, 100_000)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		lo := i % 90_000
		p, err := st.Find(ctx, "s", Query{Collection: "c", Filter: fmt.Sprintf(`{"n":{"$gte":%d,"$lt":%d}}`, lo, lo+5000), Sort: `{"n":-1}`, Limit: 20})
		if err != nil || len(p.Docs) != 20 {
			b.Fatal(len(p.Docs), err)
		}
	}
}

func BenchmarkUpdate(b *testing.B) {
	st := benchStore(b, 10_000)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		if _, err := st.Update(ctx, "s", "c", fmt.Sprintf("%07d", i%10_000), `{"$inc":{"n":1}}`, nil); err != nil {
			b.Fatal(err)
		}
	}
}
