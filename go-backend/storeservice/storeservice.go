// Package storeservice serves anysync.v1.StoreService
// (api/proto/anysync/v1/store.proto) over package store: it converts
// messages and nothing else. Errors keep the store's errs kinds; package
// backend turns them into gRPC codes.
//
// It is public so that an app's own backend (a module of its own, which
// cannot import go-backend/internal) can serve the store beside its
// services; the store itself stays in internal/store. Register it on the
// backend with
//
//	backend.GRPCService(&anysyncv1.StoreService_ServiceDesc, storeservice.FromSettings(storeservice.Options{}))
//
// which opens the spaces under the backend's dataDir setting
// (ANYSYNC_DATA_DIR, which the Tauri plugin sets to app_data_dir()/anysync),
// or with New for a directory of the caller's choosing.
//
// The backend calls Close after the server stopped: it closes every space.
package storeservice

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"google.golang.org/grpc"

	anysyncv1 "github.com/anysync/tauri-plugin-anysync/go-backend/api/proto/anysync/v1"
	"github.com/anysync/tauri-plugin-anysync/go-backend/backend"
	"github.com/anysync/tauri-plugin-anysync/go-backend/backend/errs"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/store"
)

// Options tunes the store: MaxDocBytes bounds a document's JSON text (0
// means the default, 1 MiB), Readers is the number of read connections per
// space (0 means 4), SyncEveryCommit fsyncs every write before answering it
// (survives a power loss, at one fsync per write; by default commits are
// fsynced within about 200 ms, and survive a kill -9 either way). The zero
// value is the default store.
type Options = store.Options

// Service implements anysyncv1.StoreServiceServer. It is safe for
// concurrent use.
type Service struct {
	anysyncv1.UnimplementedStoreServiceServer

	st  *store.Store
	err error // why st is nil

	// fromSettings: the store opens in Configure, under the backend's dataDir.
	fromSettings bool
	opts         Options
}

var _ anysyncv1.StoreServiceServer = (*Service)(nil)

// New returns the service of the spaces under dataDir. With no dataDir, or
// when the directory cannot be created, every call fails with the reason
// (FAILED_PRECONDITION naming the dataDir option).
func New(dataDir string, opts Options) *Service {
	st, err := open(dataDir, opts)
	return &Service{st: st, err: err}
}

// FromSettings returns the service of the spaces under the backend's dataDir
// setting: the backend hands it over through Configure before serving.
func FromSettings(opts Options) *Service {
	return &Service{fromSettings: true, opts: opts, err: errs.New(errs.FailedPrecondition, "the document store was not configured")}
}

var _ backend.Configurer = (*Service)(nil)

// Configure implements backend.Configurer: a service made by FromSettings
// opens its spaces under settings.DataDir (failing every call with the reason
// when it cannot); one made by New keeps its directory.
func (s *Service) Configure(settings backend.Settings) error {
	if s.fromSettings {
		s.fromSettings = false
		opts := s.opts
		if opts.Logger == nil {
			opts.Logger = settings.Logger
		}
		s.st, s.err = open(settings.DataDir, opts)
	}
	return nil
}

func open(dataDir string, opts Options) (*store.Store, error) {
	st, err := store.Open(dataDir, opts)
	if err != nil && errs.KindOf(err) == errs.Unknown {
		err = errs.Wrap(errs.FailedPrecondition, err, "the document store's data directory (dataDir, ANYSYNC_DATA_DIR, --data-dir) is unusable")
	}
	return st, err
}

// Close closes every space, after its in-flight calls.
func (s *Service) Close(ctx context.Context) error {
	if s.st == nil {
		return nil
	}
	return s.st.Close(ctx)
}

func (s *Service) store() (*store.Store, error) {
	if s.st == nil {
		return nil, s.err
	}
	return s.st, nil
}

func doc(d store.Doc) *anysyncv1.Document {
	return &anysyncv1.Document{Id: d.ID, Rev: d.Rev, Json: d.JSON, CreatedAtUnixMicros: d.Created, UpdatedAtUnixMicros: d.Updated}
}

// CreateSpace implements anysyncv1.StoreServiceServer.
func (s *Service) CreateSpace(ctx context.Context, req *anysyncv1.CreateSpaceRequest) (*anysyncv1.CreateSpaceResponse, error) {
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	if err := st.CreateSpace(ctx, req.GetName()); err != nil {
		return nil, err
	}
	return &anysyncv1.CreateSpaceResponse{Space: &anysyncv1.Space{Name: req.GetName()}}, nil
}

// ListSpaces implements anysyncv1.StoreServiceServer.
func (s *Service) ListSpaces(ctx context.Context, _ *anysyncv1.ListSpacesRequest) (*anysyncv1.ListSpacesResponse, error) {
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	names, err := st.ListSpaces(ctx)
	if err != nil {
		return nil, err
	}
	out := &anysyncv1.ListSpacesResponse{}
	for _, n := range names {
		out.Spaces = append(out.Spaces, &anysyncv1.Space{Name: n})
	}
	return out, nil
}

// DeleteSpace implements anysyncv1.StoreServiceServer.
func (s *Service) DeleteSpace(ctx context.Context, req *anysyncv1.DeleteSpaceRequest) (*anysyncv1.DeleteSpaceResponse, error) {
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	if err := st.DeleteSpace(ctx, req.GetName()); err != nil {
		return nil, err
	}
	return &anysyncv1.DeleteSpaceResponse{}, nil
}

// Put implements anysyncv1.StoreServiceServer.
func (s *Service) Put(ctx context.Context, req *anysyncv1.PutRequest) (*anysyncv1.PutResponse, error) {
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	d, err := st.Put(ctx, req.GetSpace(), req.GetCollection(), req.GetJson(), req.ExpectedRev)
	if err != nil {
		return nil, err
	}
	return &anysyncv1.PutResponse{Document: doc(d)}, nil
}

// Get implements anysyncv1.StoreServiceServer.
func (s *Service) Get(ctx context.Context, req *anysyncv1.GetRequest) (*anysyncv1.GetResponse, error) {
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	d, err := st.Get(ctx, req.GetSpace(), req.GetCollection(), req.GetId())
	if err != nil {
		return nil, err
	}
	return &anysyncv1.GetResponse{Document: doc(d)}, nil
}

// Delete implements anysyncv1.StoreServiceServer.
func (s *Service) Delete(ctx context.Context, req *anysyncv1.DeleteRequest) (*anysyncv1.DeleteResponse, error) {
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	d, err := st.Delete(ctx, req.GetSpace(), req.GetCollection(), req.GetId(), req.ExpectedRev)
	if err != nil {
		return nil, err
	}
	return &anysyncv1.DeleteResponse{Document: doc(d)}, nil
}

// Update implements anysyncv1.StoreServiceServer.
func (s *Service) Update(ctx context.Context, req *anysyncv1.UpdateRequest) (*anysyncv1.UpdateResponse, error) {
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	d, err := st.Update(ctx, req.GetSpace(), req.GetCollection(), req.GetId(), req.GetUpdate(), req.ExpectedRev)
	if err != nil {
		return nil, err
	}
	return &anysyncv1.UpdateResponse{Document: doc(d)}, nil
}

// Batch implements anysyncv1.StoreServiceServer.
func (s *Service) Batch(ctx context.Context, req *anysyncv1.BatchRequest) (*anysyncv1.BatchResponse, error) {
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	writes := make([]store.Write, len(req.GetOps()))
	for i, op := range req.GetOps() {
		n := 0
		if p := op.GetPut(); p != nil {
			n++
			writes[i] = store.Write{Kind: store.WritePut, Collection: p.GetCollection(), JSON: p.GetJson(), ExpectedRev: p.ExpectedRev}
		}
		if u := op.GetUpdate(); u != nil {
			n++
			writes[i] = store.Write{Kind: store.WriteUpdate, Collection: u.GetCollection(), ID: u.GetId(), Update: u.GetUpdate(), ExpectedRev: u.ExpectedRev}
		}
		if d := op.GetDelete(); d != nil {
			n++
			writes[i] = store.Write{Kind: store.WriteDelete, Collection: d.GetCollection(), ID: d.GetId(), ExpectedRev: d.ExpectedRev}
		}
		if n != 1 {
			return nil, errs.New(errs.InvalidArgument, "ops[%d]: set exactly one of put, update and delete, not %d", i, n)
		}
	}
	docs, err := st.Batch(ctx, req.GetSpace(), writes)
	if err != nil {
		return nil, err
	}
	out := &anysyncv1.BatchResponse{Documents: make([]*anysyncv1.Document, len(docs))}
	for i, d := range docs {
		out.Documents[i] = doc(d)
	}
	return out, nil
}

// Find implements anysyncv1.StoreServiceServer.
func (s *Service) Find(ctx context.Context, req *anysyncv1.FindRequest) (*anysyncv1.FindResponse, error) {
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	page, err := st.Find(ctx, req.GetSpace(), store.Query{
		Collection: req.GetCollection(), Filter: req.GetFilter(), Sort: req.GetSort(),
		Limit: int(min(req.GetLimit(), store.MaxLimit+1)), Cursor: req.GetCursor(),
	})
	if err != nil {
		return nil, err
	}
	if req.GetPageAsJson() {
		text, err := jsonPage(page.Docs)
		if err != nil {
			return nil, err
		}
		return &anysyncv1.FindResponse{NextCursor: page.NextCursor, DocumentsJson: text}, nil
	}
	out := &anysyncv1.FindResponse{NextCursor: page.NextCursor, Documents: make([]*anysyncv1.Document, len(page.Docs))}
	for i, d := range page.Docs {
		out.Documents[i] = doc(d)
	}
	return out, nil
}

// jsonPage writes docs as FindResponse.documents_json describes: an array
// of [id, rev, created, updated, document]. Each document's text is the
// store's own minified JSON object, copied as it is.
func jsonPage(docs []store.Doc) (string, error) {
	size := 2
	for _, d := range docs {
		size += len(d.ID) + len(d.JSON) + 64
	}
	out := make([]byte, 0, size)
	out = append(out, '[')
	for i, d := range docs {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, '[')
		// encoding/json escapes the id as JSON needs it.
		id, err := json.Marshal(d.ID)
		if err != nil {
			return "", fmt.Errorf("write the page's id %d: %w", i, err)
		}
		out = append(out, id...)
		out = append(out, ',')
		out = strconv.AppendUint(out, d.Rev, 10)
		out = append(out, ',')
		out = strconv.AppendInt(out, d.Created, 10)
		out = append(out, ',')
		out = strconv.AppendInt(out, d.Updated, 10)
		out = append(out, ',')
		out = append(out, d.JSON...)
		out = append(out, ']')
	}
	return string(append(out, ']')), nil
}

// Count implements anysyncv1.StoreServiceServer.
func (s *Service) Count(ctx context.Context, req *anysyncv1.CountRequest) (*anysyncv1.CountResponse, error) {
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	n, err := st.Count(ctx, req.GetSpace(), store.Query{Collection: req.GetCollection(), Filter: req.GetFilter()})
	if err != nil {
		return nil, err
	}
	return &anysyncv1.CountResponse{Count: n}, nil
}

func index(ix store.Index) *anysyncv1.Index {
	out := &anysyncv1.Index{Collection: ix.Collection, Name: ix.Name, Unique: ix.Unique}
	for _, f := range ix.Fields {
		out.Fields = append(out.Fields, &anysyncv1.IndexField{Path: f.Path, Descending: f.Descending})
	}
	return out
}

// EnsureIndex implements anysyncv1.StoreServiceServer.
func (s *Service) EnsureIndex(ctx context.Context, req *anysyncv1.EnsureIndexRequest) (*anysyncv1.EnsureIndexResponse, error) {
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	in := req.GetIndex()
	if in == nil {
		return nil, errs.New(errs.InvalidArgument, "index is missing")
	}
	ix := store.Index{Collection: in.GetCollection(), Name: in.GetName(), Unique: in.GetUnique()}
	for _, f := range in.GetFields() {
		ix.Fields = append(ix.Fields, store.IndexField{Path: f.GetPath(), Descending: f.GetDescending()})
	}
	created, err := st.EnsureIndex(ctx, req.GetSpace(), ix)
	if err != nil {
		return nil, err
	}
	return &anysyncv1.EnsureIndexResponse{Index: index(ix), Created: created}, nil
}

// DropIndex implements anysyncv1.StoreServiceServer.
func (s *Service) DropIndex(ctx context.Context, req *anysyncv1.DropIndexRequest) (*anysyncv1.DropIndexResponse, error) {
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	if err := st.DropIndex(ctx, req.GetSpace(), req.GetCollection(), req.GetName()); err != nil {
		return nil, err
	}
	return &anysyncv1.DropIndexResponse{}, nil
}

// ListIndexes implements anysyncv1.StoreServiceServer.
func (s *Service) ListIndexes(ctx context.Context, req *anysyncv1.ListIndexesRequest) (*anysyncv1.ListIndexesResponse, error) {
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	list, err := st.ListIndexes(ctx, req.GetSpace(), req.GetCollection())
	if err != nil {
		return nil, err
	}
	out := &anysyncv1.ListIndexesResponse{}
	for _, ix := range list {
		out.Indexes = append(out.Indexes, index(ix))
	}
	return out, nil
}

// Explain implements anysyncv1.StoreServiceServer.
func (s *Service) Explain(ctx context.Context, req *anysyncv1.ExplainRequest) (*anysyncv1.ExplainResponse, error) {
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	ex, err := st.Explain(ctx, req.GetSpace(), store.Query{Collection: req.GetCollection(), Filter: req.GetFilter(), Sort: req.GetSort()})
	if err != nil {
		return nil, err
	}
	return &anysyncv1.ExplainResponse{Index: ex.Index, Plan: ex.Plan, Sql: ex.SQL}, nil
}

var kinds = map[store.EventKind]anysyncv1.WatchResponse_Kind{
	store.EventInitial: anysyncv1.WatchResponse_KIND_INITIAL,
	store.EventReady:   anysyncv1.WatchResponse_KIND_READY,
	store.EventInsert:  anysyncv1.WatchResponse_KIND_INSERT,
	store.EventUpdate:  anysyncv1.WatchResponse_KIND_UPDATE,
	store.EventDelete:  anysyncv1.WatchResponse_KIND_DELETE,
}

// Watch implements anysyncv1.StoreServiceServer.
func (s *Service) Watch(req *anysyncv1.WatchRequest, stream grpc.ServerStreamingServer[anysyncv1.WatchResponse]) error {
	st, err := s.store()
	if err != nil {
		return err
	}
	ctx := stream.Context()
	return st.Watch(ctx, req.GetSpace(), store.WatchQuery{Collection: req.GetCollection(), Filter: req.GetFilter(), AfterSeq: req.AfterSeq},
		func(e store.Event) error {
			m := &anysyncv1.WatchResponse{Kind: kinds[e.Kind], Seq: e.Seq, Matches: e.Matches}
			if e.Kind != store.EventReady {
				m.Document = doc(e.Doc)
			}
			if err := stream.Send(m); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return err
			}
			return nil
		})
}
