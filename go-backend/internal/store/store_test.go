package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"zombiezen.com/go/sqlite"

	"github.com/anysync/tauri-plugin-anysync/go-backend/backend/errs"
)

func newStore(t testing.TB, opts Options) *Store {
	t.Helper()
	st, err := Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	if err := st.CreateSpace(context.Background(), "s"); err != nil {
		t.Fatal(err)
	}
	return st
}

func u64(n uint64) *uint64 { return &n }

func wantKind(t testing.TB, err error, kind errs.Kind, contains ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", kind)
	}
	if got := errs.KindOf(err); got != kind {
		t.Fatalf("error %q has kind %v, want %v", err, got, kind)
	}
	for _, c := range contains {
		if !strings.Contains(err.Error(), c) {
			t.Fatalf("error %q does not contain %q", err, c)
		}
	}
}

// openedSpace is space "s" of st, held open as a call holds it until the
// test ends.
func openedSpace(t testing.TB, st *Store) *space {
	t.Helper()
	sp, err := st.space(context.Background(), "s")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sp.done)
	return sp
}

func mustPut(t testing.TB, st *Store, coll, doc string) Doc {
	t.Helper()
	d, err := st.Put(context.Background(), "s", coll, doc, nil)
	if err != nil {
		t.Fatalf("put %s: %v", doc, err)
	}
	return d
}

func TestPutGetRevisions(t *testing.T) {
	ctx := context.Background()
	st := newStore(t, Options{})
	d := mustPut(t, st, "notes", `{"title":"a"}`)
	if d.ID == "" || d.Rev != 1 || !strings.Contains(d.JSON, `"id":"`+d.ID+`"`) || d.Created == 0 || d.Created != d.Updated {
		t.Fatalf("first put: %+v", d)
	}
	d2, err := st.Put(ctx, "s", "notes", `{"id":"`+d.ID+`","title":"b"}`, u64(1))
	if err != nil || d2.Rev != 2 || d2.Created != d.Created {
		t.Fatalf("replace: %+v %v", d2, err)
	}
	_, err = st.Put(ctx, "s", "notes", `{"id":"`+d.ID+`","title":"c"}`, u64(1))
	wantKind(t, err, errs.Aborted, "expected revision 1", "at 2")
	_, err = st.Put(ctx, "s", "notes", `{"id":"`+d.ID+`"}`, u64(0))
	wantKind(t, err, errs.AlreadyExists)
	_, err = st.Update(ctx, "s", "notes", d.ID, `{"$set":{"x":1}}`, u64(7))
	wantKind(t, err, errs.Aborted)
	_, err = st.Delete(ctx, "s", "notes", d.ID, u64(1))
	wantKind(t, err, errs.Aborted)
	got, err := st.Get(ctx, "s", "notes", d.ID)
	if err != nil || got.Rev != 2 || !strings.Contains(got.JSON, `"title":"b"`) {
		t.Fatalf("after refused writes: %+v %v", got, err)
	}
	u, err := st.Update(ctx, "s", "notes", d.ID, `{"$set":{"meta.n":1},"$inc":{"views":2},"$push":{"tags":"x"},"$addToSet":{"set":"y"}}`, u64(2))
	if err != nil || u.Rev != 3 {
		t.Fatalf("update: %+v %v", u, err)
	}
	u, err = st.Update(ctx, "s", "notes", d.ID, `{"$inc":{"views":1},"$addToSet":{"set":"y"},"$pull":{"tags":"x"},"$unset":{"title":1}}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal([]byte(u.JSON), &m)
	if m["views"] != 3.0 || len(m["set"].([]any)) != 1 || len(m["tags"].([]any)) != 0 || m["title"] != nil || m["meta"].(map[string]any)["n"] != 1.0 {
		t.Fatalf("after updates: %s", u.JSON)
	}
	del, err := st.Delete(ctx, "s", "notes", d.ID, u64(4))
	if err != nil || del.Rev != 4 {
		t.Fatalf("delete: %+v %v", del, err)
	}
	_, err = st.Get(ctx, "s", "notes", d.ID)
	wantKind(t, err, errs.NotFound)
	_, err = st.Delete(ctx, "s", "notes", d.ID, nil)
	wantKind(t, err, errs.NotFound)
	_, err = st.Update(ctx, "s", "notes", d.ID, `{"$set":{"x":1}}`, nil)
	wantKind(t, err, errs.NotFound)
	// An insert-only put of a new id works; a plain put of a given id too.
	if d, err := st.Put(ctx, "s", "notes", `{"id":"given"}`, u64(0)); err != nil || d.ID != "given" || d.Rev != 1 {
		t.Fatalf("insert-only: %+v %v", d, err)
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	st := newStore(t, Options{MaxDocBytes: 1000})
	mustPut(t, st, "c", `{"id":"x","a":1}`)
	cases := []struct {
		name string
		err  error
		kind errs.Kind
		want []string
	}{
		{"unknown space", func() error { _, err := st.Get(ctx, "nope", "c", "x"); return err }(), errs.NotFound, []string{`space "nope" not found`}},
		{"bad space name", func() error { _, err := st.Get(ctx, "../x", "c", "x"); return err }(), errs.InvalidArgument, []string{"space name"}},
		{"bad collection", func() error { _, err := st.Put(ctx, "s", "a b", `{}`, nil); return err }(), errs.InvalidArgument, []string{"collection name"}},
		{"not an object", func() error { _, err := st.Put(ctx, "s", "c", `[1]`, nil); return err }(), errs.InvalidArgument, []string{"not a JSON object"}},
		{"not JSON", func() error { _, err := st.Put(ctx, "s", "c", `{"a":}`, nil); return err }(), errs.InvalidArgument, []string{"not valid JSON"}},
		{"trailing", func() error { _, err := st.Put(ctx, "s", "c", `{"a":1} {}`, nil); return err }(), errs.InvalidArgument, []string{"text after"}},
		{"too big", func() error {
			_, err := st.Put(ctx, "s", "c", `{"a":"`+strings.Repeat("x", 1000)+`"}`, nil)
			return err
		}(), errs.InvalidArgument, []string{"limit is 1000"}},
		{"id not string", func() error { _, err := st.Put(ctx, "s", "c", `{"id":1}`, nil); return err }(), errs.InvalidArgument, []string{`"id" is not a string`}},
		{"id twice", func() error { _, err := st.Put(ctx, "s", "c", `{"id":"a","id":"b"}`, nil); return err }(), errs.InvalidArgument, []string{"twice"}},
		{"duplicate insert", func() error { _, err := st.Put(ctx, "s", "c", `{"id":"x"}`, u64(0)); return err }(), errs.AlreadyExists, nil},
		{"unknown operator", func() error {
			_, err := st.Count(ctx, "s", Query{Collection: "c", Filter: `{"tags":{"$foo":1}}`})
			return err
		}(), errs.InvalidArgument, []string{`"$foo"`, `"tags"`}},
		{"unknown top operator", func() error {
			_, err := st.Count(ctx, "s", Query{Collection: "c", Filter: `{"$where":"1"}`})
			return err
		}(), errs.InvalidArgument, []string{`"$where"`, "top level"}},
		{"nested unknown", func() error {
			_, err := st.Count(ctx, "s", Query{Collection: "c", Filter: `{"$or":[{"a":1},{"b.c":{"$regex":"x"}}]}`})
			return err
		}(), errs.InvalidArgument, []string{`"$regex"`, `"b.c"`}},
		{"malformed filter", func() error { _, err := st.Count(ctx, "s", Query{Collection: "c", Filter: `{"a":`}); return err }(), errs.InvalidArgument, []string{"filter"}},
		{"filter not object", func() error { _, err := st.Count(ctx, "s", Query{Collection: "c", Filter: `[]`}); return err }(), errs.InvalidArgument, []string{"not a JSON object"}},
		{"$in not array", func() error {
			_, err := st.Count(ctx, "s", Query{Collection: "c", Filter: `{"a":{"$in":1}}`})
			return err
		}(), errs.InvalidArgument, []string{"$in", `"a"`}},
		{"$gt null", func() error {
			_, err := st.Count(ctx, "s", Query{Collection: "c", Filter: `{"a":{"$gt":null}}`})
			return err
		}(), errs.InvalidArgument, []string{"$gt"}},
		{"object value", func() error {
			_, err := st.Count(ctx, "s", Query{Collection: "c", Filter: `{"a":{"b":1}}`})
			return err
		}(), errs.InvalidArgument, []string{"object"}},
		{"bad path", func() error { _, err := st.Count(ctx, "s", Query{Collection: "c", Filter: `{"a..b":1}`}); return err }(), errs.InvalidArgument, []string{"empty segment"}},
		{"bad sort", func() error { _, err := st.Find(ctx, "s", Query{Collection: "c", Sort: `{"a":2}`}); return err }(), errs.InvalidArgument, []string{"sort", "1 or -1"}},
		{"bad limit", func() error { _, err := st.Find(ctx, "s", Query{Collection: "c", Limit: 5000}); return err }(), errs.InvalidArgument, []string{"limit"}},
		{"bad cursor", func() error { _, err := st.Find(ctx, "s", Query{Collection: "c", Cursor: "zzz"}); return err }(), errs.InvalidArgument, []string{"cursor"}},
		{"unknown modifier", func() error { _, err := st.Update(ctx, "s", "c", "x", `{"$rename":{"a":"b"}}`, nil); return err }(), errs.InvalidArgument, []string{`"$rename"`}},
		{"inc not number", func() error { _, err := st.Update(ctx, "s", "c", "x", `{"$inc":{"a":"1"}}`, nil); return err }(), errs.InvalidArgument, []string{"$inc", `"a"`}},
		{"change id", func() error { _, err := st.Update(ctx, "s", "c", "x", `{"$set":{"id":"y"}}`, nil); return err }(), errs.InvalidArgument, []string{"id"}},
		{"push non-array", func() error { _, err := st.Update(ctx, "s", "c", "x", `{"$push":{"a":1}}`, nil); return err }(), errs.InvalidArgument, []string{"not an array"}},
		{"conflicting paths", func() error {
			_, err := st.Update(ctx, "s", "c", "x", `{"$set":{"m.a":1},"$unset":{"m":1}}`, nil)
			return err
		}(), errs.InvalidArgument, []string{"conflicts"}},
		{"update grows too big", func() error {
			_, err := st.Update(ctx, "s", "c", "x", `{"$set":{"big":"`+strings.Repeat("y", 990)+`"}}`, nil)
			return err
		}(), errs.InvalidArgument, []string{"limit is 1000"}},
		{"empty batch", func() error { _, err := st.Batch(ctx, "s", nil); return err }(), errs.InvalidArgument, []string{"empty"}},
		{"create twice", st.CreateSpace(ctx, "s"), errs.AlreadyExists, nil},
		{"delete unknown space", st.DeleteSpace(ctx, "nope"), errs.NotFound, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantKind(t, c.err, c.kind, c.want...) })
	}
	// Nothing of that was written.
	if n, err := st.Count(ctx, "s", Query{Collection: "c"}); err != nil || n != 1 {
		t.Fatalf("count = %d, %v; want 1", n, err)
	}
	if d, _ := st.Get(ctx, "s", "c", "x"); d.Rev != 1 {
		t.Fatalf("x changed: %+v", d)
	}
}

func TestBatchAtomic(t *testing.T) {
	ctx := context.Background()
	st := newStore(t, Options{})
	mustPut(t, st, "c", `{"id":"keep","v":1}`)
	_, err := st.Batch(ctx, "s", []Write{
		{Kind: WritePut, Collection: "c", JSON: `{"id":"n1"}`},
		{Kind: WriteUpdate, Collection: "c", ID: "keep", Update: `{"$set":{"v":2}}`},
		{Kind: WriteDelete, Collection: "c", ID: "keep"},
		{Kind: WritePut, Collection: "c", JSON: `{"id":"n2"}`},
		{Kind: WriteUpdate, Collection: "c", ID: "missing", Update: `{"$set":{"v":2}}`},
	})
	wantKind(t, err, errs.NotFound, "batch operation 4", "nothing was written")
	if n, _ := st.Count(ctx, "s", Query{Collection: "c"}); n != 1 {
		t.Fatalf("count = %d after a failed batch", n)
	}
	if d, _ := st.Get(ctx, "s", "c", "keep"); d.Rev != 1 || !strings.Contains(d.JSON, `"v":1`) {
		t.Fatalf("keep = %+v", d)
	}
	// The change log has nothing of it either.
	var events []Event
	watchCollect(t, st, WatchQuery{Collection: "c", AfterSeq: u64(0)}, 2, &events)
	if len(events) != 2 || events[1].Doc.ID != "keep" {
		t.Fatalf("events = %+v", events)
	}
	docs, err := st.Batch(ctx, "s", []Write{
		{Kind: WritePut, Collection: "c", JSON: `{"id":"n1"}`},
		{Kind: WriteUpdate, Collection: "c", ID: "n1", Update: `{"$set":{"v":2}}`},
		{Kind: WriteDelete, Collection: "c", ID: "keep", ExpectedRev: u64(1)},
	})
	if err != nil || len(docs) != 3 || docs[1].Rev != 2 {
		t.Fatalf("batch: %+v %v", docs, err)
	}
}

// watchCollect runs a watch until it has n events, then cancels it.
func watchCollect(t testing.TB, st *Store, q WatchQuery, n int, out *[]Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := st.Watch(ctx, "s", q, func(e Event) error {
		if len(*out) == n {
			return nil // cancelled: the rest of the batch is dropped
		}
		*out = append(*out, e)
		if len(*out) == n {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("watch ended with %v after %d events, want %d", err, len(*out), n)
	}
}

func TestFilterMatchesReference(t *testing.T) {
	ctx := context.Background()
	st := newStore(t, Options{})
	r := rand.New(rand.NewPCG(14, 1))
	var docs []map[string]any
	var writes []Write
	for i := range 120 {
		d := genDoc(r, i)
		docs = append(docs, d)
		b, _ := json.Marshal(d)
		writes = append(writes, Write{Kind: WritePut, Collection: "c", JSON: string(b)}, Write{Kind: WritePut, Collection: "ix", JSON: string(b)})
	}
	if _, err := st.Batch(ctx, "s", writes); err != nil {
		t.Fatal(err)
	}
	// The same documents in a collection whose scalar paths are indexed:
	// the compiler takes the index-friendly form there.
	for _, ix := range []Index{
		{Collection: "ix", Name: "by_s", Fields: []IndexField{{Path: "s"}}},
		{Collection: "ix", Name: "by_cd", Fields: []IndexField{{Path: "c.d"}, {Path: "s", Descending: true}}},
	} {
		if _, err := st.EnsureIndex(ctx, "s", ix); err != nil {
			t.Fatal(err)
		}
	}
	cases := 3000
	if testing.Short() || raceDetector {
		cases = 300
	}
	for i := range cases {
		f := genFilter(r, 0)
		text, _ := json.Marshal(f)
		want := refFind(docs, f)
		for _, coll := range []string{"c", "ix"} {
			page, err := st.Find(ctx, "s", Query{Collection: coll, Filter: string(text), Limit: MaxLimit})
			if err != nil {
				t.Fatalf("case %d %s: %v", i, text, err)
			}
			got := []string{}
			for _, d := range page.Docs {
				got = append(got, d.ID)
			}
			if want == nil {
				want = []string{}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("case %d, collection %s, filter %s:\n got  %v\n want %v", i, coll, text, got, want)
			}
			n, err := st.Count(ctx, "s", Query{Collection: coll, Filter: string(text)})
			if err != nil || n != uint64(len(want)) {
				t.Fatalf("case %d: count %d, %v; want %d", i, n, err, len(want))
			}
		}
	}
}

func TestIndexesChosen(t *testing.T) {
	ctx := context.Background()
	st := newStore(t, Options{})
	var writes []Write
	for i := range 2000 {
		writes = append(writes, Write{Kind: WritePut, Collection: "n", JSON: fmt.Sprintf(`{"id":"%05d","k":%d,"cat":"c%d","t":%d,"tags":["x%d"]}`, i, i, i%20, i%7, i%3)})
	}
	if _, err := st.Batch(ctx, "s", writes); err != nil {
		t.Fatal(err)
	}
	mustIndex := func(ix Index) {
		t.Helper()
		created, err := st.EnsureIndex(ctx, "s", ix)
		if err != nil || !created {
			t.Fatalf("ensure %s: %v %v", ix.Name, created, err)
		}
	}
	mustIndex(Index{Collection: "n", Name: "by_k", Fields: []IndexField{{Path: "k"}}, Unique: true})
	mustIndex(Index{Collection: "n", Name: "by_cat_t", Fields: []IndexField{{Path: "cat"}, {Path: "t", Descending: true}}})
	if created, err := st.EnsureIndex(ctx, "s", Index{Collection: "n", Name: "by_k", Fields: []IndexField{{Path: "k"}}, Unique: true}); err != nil || created {
		t.Fatalf("ensure again: %v %v", created, err)
	}
	_, err := st.EnsureIndex(ctx, "s", Index{Collection: "n", Name: "by_k", Fields: []IndexField{{Path: "t"}}})
	wantKind(t, err, errs.AlreadyExists, "by_k")
	_, err = st.EnsureIndex(ctx, "s", Index{Collection: "n", Name: "by_tags", Fields: []IndexField{{Path: "tags"}}})
	wantKind(t, err, errs.FailedPrecondition, "array")
	_, err = st.EnsureIndex(ctx, "s", Index{Collection: "n", Name: "u_t", Fields: []IndexField{{Path: "t"}}, Unique: true})
	wantKind(t, err, errs.AlreadyExists, "u_t")

	for _, c := range []struct {
		filter, sort, index string
	}{
		{`{"k":42}`, "", "by_k"},
		{`{"k":{"$gte":10,"$lt":20}}`, "", "by_k"},
		{`{"k":{"$in":[1,2,3]}}`, "", "by_k"},
		{`{"cat":"c3"}`, "", "by_cat_t"},
		{`{"cat":"c3","t":{"$gt":2}}`, "", "by_cat_t"},
		{`{"cat":"c3"}`, `{"t":-1}`, "by_cat_t"},
		{`{}`, `{"k":1}`, "by_k"},
		{`{"tags":"x1"}`, "", ""},
		{`{"t":3}`, "", ""},
	} {
		ex, err := st.Explain(ctx, "s", Query{Collection: "n", Filter: c.filter, Sort: c.sort, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if ex.Index != c.index {
			t.Errorf("filter %s sort %s: index %q, want %q; plan %q", c.filter, c.sort, ex.Index, c.index, ex.Plan)
		}
	}
	// On an indexed path a comparison needs no json_type (a parse of every
	// row's document), and a range closed on both sides is the index's
	// range alone: bounded by the class's end as well, a sorted range with
	// a limit scanned from there (18 ms instead of 0.2 over 100 000 docs).
	for _, c := range []struct {
		filter   string
		contains []string
		lacks    []string
	}{
		{`{"cat":"c3","t":{"$gt":2}}`, []string{"< ''"}, []string{"json_type"}},
		{`{"k":{"$gte":10,"$lt":20}}`, nil, []string{"json_type", "< ''", ">= ''"}},
		{`{"k":{"$in":[1,"a",2.5]}}`, nil, []string{"json_type"}},
		{`{"cat":{"$lte":"c5"}}`, []string{">= ''"}, []string{"json_type"}},
		{`{"cat":{"$gt":"c1","$lte":"c5"}}`, nil, []string{"json_type", "< ''", ">= ''"}},
		{`{"cat":{"$gt":1,"$lte":"c5"}}`, []string{"< ''", ">= ''"}, nil},
		{`{"tags":"x1"}`, []string{"json_type"}, nil},
	} {
		ex, err := st.Explain(ctx, "s", Query{Collection: "n", Filter: c.filter, Sort: `{"k":-1}`, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range c.contains {
			if !strings.Contains(ex.SQL, want) {
				t.Errorf("filter %s: SQL lacks %q: %s", c.filter, want, ex.SQL)
			}
		}
		for _, unwanted := range c.lacks {
			if strings.Contains(ex.SQL, unwanted) {
				t.Errorf("filter %s: SQL has %q: %s", c.filter, unwanted, ex.SQL)
			}
		}
	}
	// Indexes hold: a duplicate on the unique one, an array on an indexed path.
	_, err = st.Put(ctx, "s", "n", `{"id":"dup","k":42}`, nil)
	wantKind(t, err, errs.AlreadyExists, "by_k")
	_, err = st.Put(ctx, "s", "n", `{"id":"arr","k":[1]}`, nil)
	wantKind(t, err, errs.InvalidArgument, "by_k", "scalar")
	// Another collection is not bound by them.
	mustPut(t, st, "other", `{"k":42}`)
	mustPut(t, st, "other", `{"k":[42]}`)
	list, err := st.ListIndexes(ctx, "s", "")
	if err != nil || len(list) != 2 || list[0].Name != "by_cat_t" || !list[1].Unique || !list[0].Fields[1].Descending {
		t.Fatalf("list: %+v %v", list, err)
	}
	if err := st.DropIndex(ctx, "s", "n", "by_k"); err != nil {
		t.Fatal(err)
	}
	wantKind(t, st.DropIndex(ctx, "s", "n", "by_k"), errs.NotFound)
	if ex, _ := st.Explain(ctx, "s", Query{Collection: "n", Filter: `{"k":42}`}); ex.Index != "" {
		t.Fatalf("after drop: %q", ex.Index)
	}
	mustPut(t, st, "n", `{"id":"arr","k":[1]}`)
}

func TestFindSortAndCursor(t *testing.T) {
	ctx := context.Background()
	st := newStore(t, Options{})
	r := rand.New(rand.NewPCG(7, 7))
	var writes []Write
	type row struct {
		id string
		n  any
		s  string
	}
	var rows []row
	for i := range 300 {
		var n any
		switch r.IntN(5) {
		case 0:
			n = nil
		case 1:
			n = r.Float64()
		default:
			n = r.IntN(10)
		}
		s := string(rune('a' + r.IntN(3)))
		d := map[string]any{"id": fmt.Sprintf("id%03d", i), "s": s}
		if n != nil {
			d["n"] = n
		}
		b, _ := json.Marshal(d)
		writes = append(writes, Write{Kind: WritePut, Collection: "c", JSON: string(b)})
		rows = append(rows, row{d["id"].(string), n, s})
	}
	if _, err := st.Batch(ctx, "s", writes); err != nil {
		t.Fatal(err)
	}
	num := func(v any) (float64, bool) {
		switch x := v.(type) {
		case int:
			return float64(x), true
		case float64:
			return x, true
		}
		return 0, false
	}
	// n descending (nulls last), then s ascending, then id.
	slices.SortFunc(rows, func(a, b row) int {
		an, aok := num(a.n)
		bn, bok := num(b.n)
		switch {
		case aok && !bok:
			return -1
		case !aok && bok:
			return 1
		case aok && bok && an != bn:
			if an > bn {
				return -1
			}
			return 1
		}
		if c := strings.Compare(a.s, b.s); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	for _, limit := range []int{1, 37, 300, 1000} {
		var got []string
		cursor := ""
		for pages := 0; ; pages++ {
			page, err := st.Find(ctx, "s", Query{Collection: "c", Sort: `{"n":-1,"s":1}`, Limit: limit, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range page.Docs {
				got = append(got, d.ID)
			}
			if page.NextCursor == "" {
				break
			}
			if pages > 400 {
				t.Fatal("no end")
			}
			cursor = page.NextCursor
			// A write between pages: an earlier document changes, a new
			// one sorts before the cursor; neither repeats a document.
			if pages == 0 && limit == 37 {
				mustPut(t, st, "c", `{"id":"zzz","n":100}`)
			}
		}
		var want []string
		for _, r := range rows {
			want = append(want, r.id)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("limit %d:\n got  %v\n want %v", limit, got, want)
		}
		if limit == 37 {
			if _, err := st.Delete(ctx, "s", "c", "zzz", nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, err := st.Find(ctx, "s", Query{Collection: "c", Sort: `{"s":1}`, Limit: 5, Cursor: func() string {
		p, _ := st.Find(ctx, "s", Query{Collection: "c", Sort: `{"n":-1}`, Limit: 5})
		return p.NextCursor
	}()})
	wantKind(t, err, errs.InvalidArgument, "cursor")
}

func TestConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	st := newStore(t, Options{})
	mustPut(t, st, "c", `{"id":"counter","n":0}`)
	const workers, each = 8, 25
	var wg sync.WaitGroup
	var retries sync.Map
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; {
				// Read-modify-write with expected_rev: retry on Aborted.
				d, err := st.Get(ctx, "s", "c", "counter")
				if err != nil {
					t.Error(err)
					return
				}
				var m struct{ N int }
				_ = json.Unmarshal([]byte(d.JSON), &m)
				_, err = st.Put(ctx, "s", "c", fmt.Sprintf(`{"id":"counter","n":%d}`, m.N+1), &d.Rev)
				if errs.Is(err, errs.Aborted) {
					v, _ := retries.LoadOrStore(w, new(int))
					*v.(*int)++
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := st.Put(ctx, "s", "c", fmt.Sprintf(`{"id":"w%d-%d"}`, w, i), nil); err != nil {
					t.Error(err)
					return
				}
				i++
			}
		}()
	}
	wg.Wait()
	d, _ := st.Get(ctx, "s", "c", "counter")
	if !strings.Contains(d.JSON, fmt.Sprintf(`"n":%d`, workers*each)) || d.Rev != workers*each+1 {
		t.Fatalf("counter = %+v", d)
	}
	if n, _ := st.Count(ctx, "s", Query{Collection: "c"}); n != workers*each+1 {
		t.Fatalf("count = %d", n)
	}
}

func TestWatchOrderAndResume(t *testing.T) {
	ctx := context.Background()
	st := newStore(t, Options{})
	mustPut(t, st, "c", `{"id":"pre","tag":"x"}`)
	mustPut(t, st, "c", `{"id":"pre2","tag":"y"}`)
	// Live: initial set, ready, then changes as they commit.
	events := make(chan Event, 1000)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- st.Watch(wctx, "s", WatchQuery{Collection: "c", Filter: `{"tag":"x"}`}, func(e Event) error { events <- e; return nil })
	}()
	next := func() Event {
		t.Helper()
		select {
		case e := <-events:
			return e
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
		}
		return Event{}
	}
	if e := next(); e.Kind != EventInitial || e.Doc.ID != "pre" {
		t.Fatalf("initial: %+v", e)
	}
	ready := next()
	if ready.Kind != EventReady || ready.Seq != 2 {
		t.Fatalf("ready: %+v", ready)
	}
	const n = 60
	for i := range n {
		coll := "c"
		if i%4 == 3 {
			coll = "other"
		}
		switch i % 3 {
		case 0:
			mustPut(t, st, coll, fmt.Sprintf(`{"id":"d%d","tag":"x"}`, i%10))
		case 1:
			mustPut(t, st, coll, fmt.Sprintf(`{"id":"d%d","tag":"y"}`, i%10))
		case 2:
			_, _ = st.Delete(ctx, "s", coll, fmt.Sprintf("d%d", (i-1)%10), nil)
		}
	}
	mustPut(t, st, "c", `{"id":"end","tag":"x"}`)
	var live []Event
	for {
		e := next()
		live = append(live, e)
		if e.Doc.ID == "end" {
			break
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("watch ended with %v", err)
	}
	for i := 1; i < len(live); i++ {
		if live[i].Seq <= live[i-1].Seq {
			t.Fatalf("out of order: %+v then %+v", live[i-1], live[i])
		}
	}
	for _, e := range live {
		// Only matches, or a document that matched and now does not.
		if e.Kind == EventInsert && !e.Matches {
			t.Fatalf("non-matching insert sent: %+v", e)
		}
	}

	// Resume: all changes of c after ready, read in two parts.
	var all []Event
	watchCollect(t, st, WatchQuery{Collection: "c", AfterSeq: u64(ready.Seq)}, 1, &all) // just READY
	var every []Event
	// Count the log's changes of c after ready.
	sp, _ := st.space(ctx, "s")
	want := int(queryInt(t, sp, "SELECT count(*) FROM changes WHERE collection = 'c' AND seq > ?", ready.Seq))
	sp.done()
	t.Logf("%d changes of c after %d", want, ready.Seq)
	watchCollect(t, st, WatchQuery{Collection: "c", AfterSeq: u64(ready.Seq)}, 1+want, &every)
	if len(every) != 1+want || every[0].Kind != EventReady {
		t.Fatalf("resume: %d events, want %d", len(every), 1+want)
	}
	k := want / 2
	var first []Event
	watchCollect(t, st, WatchQuery{Collection: "c", AfterSeq: u64(ready.Seq)}, 1+k, &first)
	var rest []Event
	watchCollect(t, st, WatchQuery{Collection: "c", AfterSeq: u64(first[len(first)-1].Seq)}, 1+want-k, &rest)
	joined := append(first[1:], rest[1:]...)
	if len(joined) != want {
		t.Fatalf("joined %d, want %d", len(joined), want)
	}
	for i, e := range joined {
		if e.Seq != every[i+1].Seq || e.Kind != every[i+1].Kind || e.Doc.ID != every[i+1].Doc.ID {
			t.Fatalf("resumed event %d = %+v, want %+v", i, e, every[i+1])
		}
	}
	// Beyond the end.
	err := st.Watch(ctx, "s", WatchQuery{Collection: "c", AfterSeq: u64(1 << 40)}, func(Event) error { return nil })
	wantKind(t, err, errs.OutOfRange)
}

func TestWatchSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSpace(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		mustPut(t, st, "c", fmt.Sprintf(`{"id":"a%d"}`, i))
	}
	if err := st.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(ctx)
	for i := range 5 {
		mustPut(t, st, "c", fmt.Sprintf(`{"id":"b%d"}`, i))
	}
	var ev []Event
	watchCollect(t, st, WatchQuery{Collection: "c", AfterSeq: u64(7)}, 9, &ev)
	for i, e := range ev[1:] {
		if e.Seq != uint64(8+i) {
			t.Fatalf("event %d: seq %d", i, e.Seq)
		}
	}
	names, _ := st.ListSpaces(ctx)
	if !slices.Equal(names, []string{"s"}) {
		t.Fatalf("spaces %v", names)
	}
}

func TestCloseWaitsForInFlightWrites(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSpace(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	writes := make([]Write, 5000)
	for i := range writes {
		writes[i] = Write{Kind: WritePut, Collection: "c", JSON: fmt.Sprintf(`{"id":"%d","pad":"%s"}`, i, strings.Repeat("p", 100))}
	}
	sp, err := st.space(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	sp.done()
	// The batch's transaction is held open inside the write until released.
	started, release := make(chan struct{}), make(chan struct{})
	testHookInWrite = func() { close(started); <-release }
	defer func() { testHookInWrite = nil }()
	res := make(chan error, 1)
	go func() { _, err := st.Batch(ctx, "s", writes); res <- err }()
	<-started
	testHookInWrite = nil
	closed := make(chan error, 1)
	go func() { closed <- st.Close(ctx) }()
	<-sp.closing // Close has begun, and refuses new calls
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while the batch's transaction was open", err)
	case err := <-res:
		t.Fatalf("the batch ended (%v) while held", err)
	default:
	}
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-res:
		if err != nil {
			t.Fatalf("batch: %v", err)
		}
	default:
		t.Fatal("Close returned before the batch")
	}
	_, err = st.Get(ctx, "s", "c", "1")
	wantKind(t, err, errs.Unavailable)
	st, _ = Open(dir, Options{})
	defer st.Close(ctx)
	if n, err := st.Count(ctx, "s", Query{Collection: "c"}); err != nil || n != 5000 {
		t.Fatalf("count %d %v", n, err)
	}
}

func TestFullDisk(t *testing.T) {
	ctx := context.Background()
	st := newStore(t, Options{maxPageCount: 40})
	var err error
	stored := 0
	for i := range 1000 {
		_, err = st.Put(ctx, "s", "c", fmt.Sprintf(`{"id":"%d","pad":"%s"}`, i, strings.Repeat("x", 2000)), nil)
		if err != nil {
			break
		}
		stored++
	}
	wantKind(t, err, errs.ResourceExhausted, "full")
	if n, err := st.Count(ctx, "s", Query{Collection: "c"}); err != nil || int(n) != stored {
		t.Fatalf("count %d %v, want %d", n, err, stored)
	}
	sp, _ := st.space(ctx, "s")
	ok := queryText(t, sp, "PRAGMA integrity_check")
	sp.done()
	if ok != "ok" {
		t.Fatalf("integrity_check: %s", ok)
	}
	// Freeing space makes writes work again.
	if _, err := st.Delete(ctx, "s", "c", "0", nil); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptAndForeignFiles(t *testing.T) {
	ctx := context.Background()
	st := newStore(t, Options{})
	garbage := filepath.Join(st.Dir(), "bad.sqlite")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("this is not a database ", 400)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := st.Get(ctx, "bad", "c", "x")
	wantKind(t, err, errs.DataLoss, garbage)

	foreign := filepath.Join(st.Dir(), "foreign.sqlite")
	db, err := sqlite.OpenConn(foreign, sqlite.OpenReadWrite|sqlite.OpenCreate)
	if err != nil {
		t.Fatal(err)
	}
	if err := runOnce(db, "CREATE TABLE t (x)", nil, nil); err != nil {
		t.Fatal(err)
	}
	db.Close()
	before, _ := os.ReadFile(foreign)
	_, err = st.Find(ctx, "foreign", Query{Collection: "c"})
	wantKind(t, err, errs.FailedPrecondition, foreign)
	if after, _ := os.ReadFile(foreign); string(after) != string(before) {
		t.Fatal("the foreign file was changed")
	}
	if _, err := os.Stat(foreign + "-wal"); err == nil {
		t.Fatal("the foreign file got a WAL")
	}

	// The good space still works.
	mustPut(t, st, "c", `{"id":"ok"}`)
	if _, err := st.Get(ctx, "s", "c", "ok"); err != nil {
		t.Fatal(err)
	}
	// A corrupt page in a real space: the error names the file.
	if err := st.CreateSpace(ctx, "broken"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, "broken", "c", `{"id":"x"}`, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteSpace(ctx, "broken"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, "broken", "c", "x"); !errs.Is(err, errs.NotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

func TestNoDataDir(t *testing.T) {
	_, err := Open("", Options{})
	wantKind(t, err, errs.FailedPrecondition, "dataDir", "ANYSYNC_DATA_DIR", "--data-dir")
}

// queryText runs query on one of sp's read connections and returns the
// first column of its first row as text.
func queryText(t *testing.T, sp *space, query string, args ...any) string {
	t.Helper()
	var out string
	err := sp.read(context.Background(), func(conn *sqlite.Conn) error {
		_, err := one(conn, query, args, func(s *sqlite.Stmt) { out = s.ColumnText(0) })
		return err
	})
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return out
}

func queryInt(t *testing.T, sp *space, query string, args ...any) int64 {
	t.Helper()
	n, err := strconv.ParseInt(queryText(t, sp, query, args...), 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestFilterStatementsStayBounded: the readers keep compiled filters
// prepared, but at most maxFilterTexts texts per space, whatever shapes the
// callers send; the rest still run.
func TestFilterStatementsStayBounded(t *testing.T) {
	st := newStore(t, Options{})
	mustPut(t, st, "c", `{"id":"a","n":1}`)
	for i := range 3 * maxFilterTexts {
		// A new path is a new text: the values are bound, the paths are not.
		p, err := st.Find(context.Background(), "s", Query{Collection: "c", Filter: fmt.Sprintf(`{"f%d":{"$exists":false},"n":1}`, i)})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Docs) != 1 {
			t.Fatalf("filter %d: %d documents, want 1", i, len(p.Docs))
		}
	}
	sp := openedSpace(t, st)
	sp.filters.mu.Lock()
	admitted := len(sp.filters.texts)
	sp.filters.mu.Unlock()
	if admitted != maxFilterTexts {
		t.Fatalf("%d filter texts admitted to the statement caches after %d shapes, want %d", admitted, 3*maxFilterTexts, maxFilterTexts)
	}
}
