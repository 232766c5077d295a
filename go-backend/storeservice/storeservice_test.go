package storeservice_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	anysyncv1 "github.com/anysync/tauri-plugin-anysync/go-backend/api/proto/anysync/v1"
	"github.com/anysync/tauri-plugin-anysync/go-backend/backend"
	"github.com/anysync/tauri-plugin-anysync/go-backend/backend/backendtest"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/store"
	"github.com/anysync/tauri-plugin-anysync/go-backend/storeservice"
)

// start serves the store as the shipped backend does: FromSettings, with the
// directory given as the --data-dir flag (none when dataDir is empty).
func start(t *testing.T, dataDir string) anysyncv1.StoreServiceClient {
	t.Helper()
	var args []string
	if dataDir != "" {
		args = []string{"--data-dir", dataDir}
	}
	b := backendtest.Start(t, args, backend.GRPCService(&anysyncv1.StoreService_ServiceDesc, storeservice.FromSettings(store.Options{})))
	return anysyncv1.NewStoreServiceClient(b.Conn)
}

func wantCode(t *testing.T, err error, code codes.Code, contains string) {
	t.Helper()
	if s, _ := status.FromError(err); s.Code() != code || !strings.Contains(s.Message(), contains) {
		t.Fatalf("error %v, want %v containing %q", err, code, contains)
	}
}

func TestOverGRPC(t *testing.T) {
	ctx := context.Background()
	c := start(t, t.TempDir())
	if _, err := c.CreateSpace(ctx, &anysyncv1.CreateSpaceRequest{Name: "personal"}); err != nil {
		t.Fatal(err)
	}
	_, err := c.CreateSpace(ctx, &anysyncv1.CreateSpaceRequest{Name: "personal"})
	wantCode(t, err, codes.AlreadyExists, "personal")
	list, err := c.ListSpaces(ctx, &anysyncv1.ListSpacesRequest{})
	if err != nil || len(list.GetSpaces()) != 1 || list.GetSpaces()[0].GetName() != "personal" {
		t.Fatalf("list: %v %v", list, err)
	}

	// A live query first, so that it sees every change.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.Watch(wctx, &anysyncv1.WatchRequest{Space: "personal", Collection: "notes", Filter: `{"tags":{"$in":["work"]}}`})
	if err != nil {
		t.Fatal(err)
	}
	ready, err := stream.Recv()
	if err != nil || ready.GetKind() != anysyncv1.WatchResponse_KIND_READY {
		t.Fatalf("ready: %v %v", ready, err)
	}

	put, err := c.Put(ctx, &anysyncv1.PutRequest{Space: "personal", Collection: "notes", Json: `{"title":"a","tags":["work"],"n":1}`})
	if err != nil || put.GetDocument().GetRev() != 1 {
		t.Fatalf("put: %v %v", put, err)
	}
	id := put.GetDocument().GetId()
	_, err = c.Put(ctx, &anysyncv1.PutRequest{Space: "personal", Collection: "notes", Json: fmt.Sprintf(`{"id":%q}`, id), ExpectedRev: proto.Uint64(9)})
	wantCode(t, err, codes.Aborted, "expected revision 9")
	if _, err := c.Update(ctx, &anysyncv1.UpdateRequest{Space: "personal", Collection: "notes", Id: id, Update: `{"$pull":{"tags":"work"}}`}); err != nil {
		t.Fatal(err)
	}
	batch, err := c.Batch(ctx, &anysyncv1.BatchRequest{Space: "personal", Ops: []*anysyncv1.BatchOp{
		{Put: &anysyncv1.PutOp{Collection: "notes", Json: `{"id":"b","tags":["work"],"n":2}`}},
		{Update: &anysyncv1.UpdateOp{Collection: "notes", Id: "b", Update: `{"$inc":{"n":1}}`}},
		{Put: &anysyncv1.PutOp{Collection: "notes", Json: `{"id":"c","tags":["home"],"n":3}`}},
	}})
	if err != nil || len(batch.GetDocuments()) != 3 || batch.GetDocuments()[1].GetRev() != 2 {
		t.Fatalf("batch: %v %v", batch, err)
	}
	_, err = c.Batch(ctx, &anysyncv1.BatchRequest{Space: "personal", Ops: []*anysyncv1.BatchOp{{}}})
	wantCode(t, err, codes.InvalidArgument, "exactly one")
	if _, err := c.Delete(ctx, &anysyncv1.DeleteRequest{Space: "personal", Collection: "notes", Id: "b"}); err != nil {
		t.Fatal(err)
	}

	// insert a (match), update a (no longer), insert b (match), update b, delete b; c never matched.
	want := []struct {
		kind    anysyncv1.WatchResponse_Kind
		id      string
		matches bool
	}{
		{anysyncv1.WatchResponse_KIND_INSERT, id, true},
		{anysyncv1.WatchResponse_KIND_UPDATE, id, false},
		{anysyncv1.WatchResponse_KIND_INSERT, "b", true},
		{anysyncv1.WatchResponse_KIND_UPDATE, "b", true},
		{anysyncv1.WatchResponse_KIND_DELETE, "b", false},
	}
	var lastSeq uint64
	for i, w := range want {
		e, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if e.GetKind() != w.kind || e.GetDocument().GetId() != w.id || e.GetMatches() != w.matches || e.GetSeq() <= lastSeq {
			t.Fatalf("event %d: %v, want %+v", i, e, w)
		}
		lastSeq = e.GetSeq()
	}
	cancel()
	if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("after cancel: %v", err)
	}

	if _, err := c.EnsureIndex(ctx, &anysyncv1.EnsureIndexRequest{Space: "personal", Index: &anysyncv1.Index{
		Collection: "notes", Name: "by_n", Fields: []*anysyncv1.IndexField{{Path: "n", Descending: true}},
	}}); err != nil {
		t.Fatal(err)
	}
	ex, err := c.Explain(ctx, &anysyncv1.ExplainRequest{Space: "personal", Collection: "notes", Filter: `{"n":{"$gt":0}}`, Sort: `{"n":-1}`})
	// Which index the planner takes for three documents is its business
	// (store's tests check the choice on real sizes); the plan is there.
	if err != nil || len(ex.GetPlan()) == 0 || !strings.Contains(ex.GetSql(), "ORDER BY") {
		t.Fatalf("explain: %v %v", ex, err)
	}
	found, err := c.Find(ctx, &anysyncv1.FindRequest{Space: "personal", Collection: "notes", Filter: `{"n":{"$gte":1}}`, Sort: `{"n":-1}`, Limit: 1})
	if err != nil || len(found.GetDocuments()) != 1 || found.GetDocuments()[0].GetId() != "c" || found.GetNextCursor() == "" {
		t.Fatalf("find: %v %v", found, err)
	}
	found, err = c.Find(ctx, &anysyncv1.FindRequest{Space: "personal", Collection: "notes", Filter: `{"n":{"$gte":1}}`, Sort: `{"n":-1}`, Limit: 1, Cursor: found.GetNextCursor()})
	if err != nil || len(found.GetDocuments()) != 1 || found.GetDocuments()[0].GetId() != id || found.GetNextCursor() != "" {
		t.Fatalf("find page 2: %v %v", found, err)
	}
	count, err := c.Count(ctx, &anysyncv1.CountRequest{Space: "personal", Collection: "notes"})
	if err != nil || count.GetCount() != 2 {
		t.Fatalf("count: %v %v", count, err)
	}
	ixs, err := c.ListIndexes(ctx, &anysyncv1.ListIndexesRequest{Space: "personal"})
	if err != nil || len(ixs.GetIndexes()) != 1 {
		t.Fatalf("indexes: %v %v", ixs, err)
	}

	// Resume from the middle: exactly the changes after it.
	rs, err := c.Watch(ctx, &anysyncv1.WatchRequest{Space: "personal", Collection: "notes", AfterSeq: proto.Uint64(2)})
	if err != nil {
		t.Fatal(err)
	}
	if e, err := rs.Recv(); err != nil || e.GetKind() != anysyncv1.WatchResponse_KIND_READY || e.GetSeq() != 2 {
		t.Fatalf("resume ready: %v %v", e, err)
	}
	if e, err := rs.Recv(); err != nil || e.GetSeq() != 3 || e.GetDocument().GetId() != "b" {
		t.Fatalf("resume first: %v %v", e, err)
	}

	// Errors keep their codes.
	_, err = c.Get(ctx, &anysyncv1.GetRequest{Space: "nope", Collection: "notes", Id: "x"})
	wantCode(t, err, codes.NotFound, `space "nope" not found`)
	_, err = c.Find(ctx, &anysyncv1.FindRequest{Space: "personal", Collection: "notes", Filter: `{"a":{"$regex":"x"}}`})
	wantCode(t, err, codes.InvalidArgument, `"$regex"`)
	_, err = c.Put(ctx, &anysyncv1.PutRequest{Space: "personal", Collection: "notes", Json: `[]`})
	wantCode(t, err, codes.InvalidArgument, "not a JSON object")
	_, err = c.Put(ctx, &anysyncv1.PutRequest{Space: "personal", Collection: "notes", Json: `{"id":"c"}`, ExpectedRev: proto.Uint64(0)})
	wantCode(t, err, codes.AlreadyExists, "exists")

	// Deleting the space ends its watches with NOT_FOUND.
	ws, err := c.Watch(ctx, &anysyncv1.WatchRequest{Space: "personal", Collection: "notes"})
	if err != nil {
		t.Fatal(err)
	}
	for {
		e, err := ws.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if e.GetKind() == anysyncv1.WatchResponse_KIND_READY {
			break
		}
	}
	if _, err := c.DeleteSpace(ctx, &anysyncv1.DeleteSpaceRequest{Name: "personal"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ws.Recv(); status.Code(err) != codes.NotFound {
		t.Fatalf("watch after delete: %v", err)
	}
}

func TestNoDataDir(t *testing.T) {
	c := start(t, "")
	_, err := c.ListSpaces(context.Background(), &anysyncv1.ListSpacesRequest{})
	wantCode(t, err, codes.FailedPrecondition, "dataDir")
	s, err := c.Watch(context.Background(), &anysyncv1.WatchRequest{Space: "x", Collection: "y"})
	if err == nil {
		_, err = s.Recv()
	}
	wantCode(t, err, codes.FailedPrecondition, "ANYSYNC_DATA_DIR")
}

// The backend's stop cancels open watches and then closes the store:
// the watch ends UNAVAILABLE and a reopened store has every write.
func TestShutdownClosesStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := backendtest.Start(t, nil, backend.GRPCService(&anysyncv1.StoreService_ServiceDesc, storeservice.New(dir, store.Options{})))
	c := anysyncv1.NewStoreServiceClient(b.Conn)
	if _, err := c.CreateSpace(ctx, &anysyncv1.CreateSpaceRequest{Name: "s"}); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := c.Put(ctx, &anysyncv1.PutRequest{Space: "s", Collection: "c", Json: fmt.Sprintf(`{"id":"%d"}`, i)}); err != nil {
			t.Fatal(err)
		}
	}
	ws, err := c.Watch(ctx, &anysyncv1.WatchRequest{Space: "s", Collection: "c", AfterSeq: proto.Uint64(20)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ws.Recv(); err != nil {
		t.Fatal(err)
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	_, err = ws.Recv()
	if code := status.Code(err); code != codes.Unavailable && !errors.Is(err, io.EOF) {
		t.Fatalf("watch after stop: %v", err)
	}
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(ctx)
	ctx2, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if n, err := st.Count(ctx2, "s", store.Query{Collection: "c"}); err != nil || n != 20 {
		t.Fatalf("count after restart: %d %v", n, err)
	}
}

// TestFindPageAsJSON checks that a page as one JSON text says what the
// same page as messages says, ids that need escaping included.
func TestFindPageAsJSON(t *testing.T) {
	ctx := context.Background()
	c := start(t, t.TempDir())
	if _, err := c.CreateSpace(ctx, &anysyncv1.CreateSpaceRequest{Name: "s"}); err != nil {
		t.Fatal(err)
	}
	ids := []string{"plain", `quote"and\backslash`, "tab\tand\u0001control", "é😀", "</script>"}
	for i, id := range ids {
		body, err := json.Marshal(map[string]any{"id": id, "n": i, "nested": map[string]any{"list": []int{i, i + 1}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Put(ctx, &anysyncv1.PutRequest{Space: "s", Collection: "c", Json: string(body)}); err != nil {
			t.Fatal(err)
		}
	}
	// Two pages each way, so the cursor of a JSON page is checked too.
	var cursor, jsonCursor string
	for page := 0; page < 2; page++ {
		q := &anysyncv1.FindRequest{Space: "s", Collection: "c", Sort: `{"n":-1}`, Limit: 3, Cursor: cursor}
		want, err := c.Find(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		q.PageAsJson, q.Cursor = true, jsonCursor
		got, err := c.Find(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.GetDocuments()) != 0 || got.GetNextCursor() != want.GetNextCursor() {
			t.Fatalf("page %d: %d documents beside the JSON, cursor %q, want none and %q", page, len(got.GetDocuments()), got.GetNextCursor(), want.GetNextCursor())
		}
		var rows [][]json.RawMessage
		if err := json.Unmarshal([]byte(got.GetDocumentsJson()), &rows); err != nil {
			t.Fatalf("page %d: %v in %s", page, err, got.GetDocumentsJson())
		}
		if len(rows) != len(want.GetDocuments()) {
			t.Fatalf("page %d: %d rows, want %d", page, len(rows), len(want.GetDocuments()))
		}
		for i, d := range want.GetDocuments() {
			var id string
			var rev uint64
			var created, updated int64
			row := rows[i]
			if len(row) != 5 {
				t.Fatalf("page %d row %d: %d fields, want 5", page, i, len(row))
			}
			for j, v := range []any{&id, &rev, &created, &updated} {
				if err := json.Unmarshal(row[j], v); err != nil {
					t.Fatalf("page %d row %d field %d: %v", page, i, j, err)
				}
			}
			if id != d.GetId() || rev != d.GetRev() || created != d.GetCreatedAtUnixMicros() || updated != d.GetUpdatedAtUnixMicros() || string(row[4]) != d.GetJson() {
				t.Fatalf("page %d row %d: %s, want %v", page, i, got.GetDocumentsJson(), d)
			}
		}
		cursor, jsonCursor = want.GetNextCursor(), got.GetNextCursor()
	}
	if cursor != "" {
		t.Fatalf("a third page: %q", cursor)
	}
	// An empty page is an empty array.
	empty, err := c.Find(ctx, &anysyncv1.FindRequest{Space: "s", Collection: "none", PageAsJson: true})
	if err != nil || empty.GetDocumentsJson() != "[]" {
		t.Fatalf("empty page: %q %v", empty.GetDocumentsJson(), err)
	}
}
