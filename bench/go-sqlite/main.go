// Command go-sqlite chooses the store's SQLite driver by measurement
// (issue 14): the store's real operations, statement for statement, on
// modernc.org/sqlite through database/sql (what go-backend/internal/store
// uses) and on zombiezen.com/go/sqlite (a direct connection, statements
// cached per connection, a sqlitex.Pool of readers). Both run the same
// transpiled SQLite (zombiezen is built on modernc.org/sqlite's lib, and
// this module resolves both to go-backend's version), so the difference is
// the API layer alone.
//
// A real space is made and filled by the real store (storeservice, in
// process), its find statements are taken from the store's own Explain, and
// each variant then works on its own copy of that file. The real store runs
// the same operations too, as a check that the database/sql replica costs
// what the store costs.
//
// Usage (bench/README.md): cd bench/go-sqlite && go run . [-docs 100000] [-samples 300] [-rounds 5]
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite"
	"zombiezen.com/go/sqlite"
	"zombiezen.com/go/sqlite/sqlitex"

	pb "github.com/anysync/tauri-plugin-anysync/go-backend/api/proto/anysync/v1"
	"github.com/anysync/tauri-plugin-anysync/go-backend/storeservice"
)

// doc is document i, the same as the other store benchmarks'.
func doc(prefix string, i int) string {
	return fmt.Sprintf(`{"id":"%s%07d","cat":"c%d","n":%d,"title":"note %d","body":"the quick brown fox jumps over the lazy dog, again and again"}`,
		prefix, i, i%1000, i, i)
}

// The store's write statements (go-backend/internal/store/docs.go).
const (
	sqlCurrent = "SELECT rev, doc, created, updated FROM docs WHERE collection = ? AND id = ?"
	sqlInsert  = "INSERT INTO docs (collection, id, rev, doc, created, updated) VALUES (?, ?, 1, json(?), ?, ?) RETURNING doc"
	sqlUpdate  = "UPDATE docs SET rev = ?, doc = json(?), updated = ? WHERE collection = ? AND id = ? RETURNING doc"
	sqlScalar  = "SELECT json_type(?, ?)" // once per indexed path, for every written document
	sqlChange  = "INSERT INTO changes (collection, id, op, rev, doc, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?)"
)

var indexedPaths = []string{`$."cat"`, `$."n"`}

// write is one put or update of a variant's write transaction.
type write struct {
	coll   string // "single" for the puts (the reads' collection stays as filled), "docs" for updates
	id     string
	json   string // a put's document; "" for an update
	update string // an update's new title
}

// variant is one way to run the operations.
type variant interface {
	name() string
	writes(ctx context.Context, ws []write) error
	get(ctx context.Context, id string) error
	find(ctx context.Context, query string, args []any, want int) error
	close() error
}

// updated is what the store's applyUpdate computes for {"$set":{"title":...}}.
func updated(current, title string) (string, error) {
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(current))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return "", err
	}
	m["title"] = title
	b, err := json.Marshal(m)
	return string(b), err
}

// txRunner is one write transaction's statements, as a driver runs them.
type txRunner interface {
	// row runs query and reads its row into dest (*int64, *string); false when there is none.
	row(query string, args []any, dest ...any) (bool, error)
	exec(query string, args ...any) error
}

// applyWrites is the store's write path (docs.go's apply): per document the
// current row, the insert or update with RETURNING, the indexed paths'
// scalar checks, and the change log's row.
func applyWrites(tx txRunner, ws []write) error {
	for _, w := range ws {
		var rev, created, upd int64
		var cur string
		exists, err := tx.row(sqlCurrent, []any{w.coll, w.id}, &rev, &cur, &created, &upd)
		if err != nil {
			return err
		}
		t := time.Now().UnixMicro()
		var out string
		op := "insert"
		if w.json != "" && !exists {
			if _, err := tx.row(sqlInsert, []any{w.coll, w.id, w.json, t, t}, &out); err != nil {
				return err
			}
			rev, created = 1, t
		} else {
			text := w.json
			if text == "" {
				if text, err = updated(cur, w.update); err != nil {
					return err
				}
			}
			op, rev = "update", rev+1
			if _, err := tx.row(sqlUpdate, []any{rev, text, t, w.coll, w.id}, &out); err != nil {
				return err
			}
		}
		for _, p := range indexedPaths {
			var kind string
			if _, err := tx.row(sqlScalar, []any{out, p}, &kind); err != nil {
				return err
			}
		}
		if err := tx.exec(sqlChange, w.coll, w.id, op, rev, out, created, t); err != nil {
			return err
		}
	}
	return nil
}

// ---------------------------------------------------------------- database/sql (modernc)

type dbsql struct {
	w, r *sql.DB
	// cached: statements prepared once per database (database/sql then keeps
	// them prepared on each connection), instead of once per transaction for
	// writes and once per call for reads as the store does.
	cached bool
	mu     sync.Mutex
	stmts  map[*sql.DB]map[string]*sql.Stmt
}

// prepared returns db's cached statement for query.
func (v *dbsql) prepared(ctx context.Context, db *sql.DB, query string) (*sql.Stmt, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if s := v.stmts[db][query]; s != nil {
		return s, nil
	}
	s, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if v.stmts == nil {
		v.stmts = map[*sql.DB]map[string]*sql.Stmt{}
	}
	if v.stmts[db] == nil {
		v.stmts[db] = map[string]*sql.Stmt{}
	}
	v.stmts[db][query] = s
	return s, nil
}

// dsn is the store's (go-backend/internal/store/space.go).
func dsn(path string, writer bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	if writer {
		q.Add("_txlock", "immediate")
		q.Add("_pragma", "analysis_limit(1000)")
	} else {
		q.Add("_pragma", "query_only(1)")
	}
	q.Add("_pragma", "synchronous(FULL)")
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

func openDBSQL(path string, cached bool) (*dbsql, error) {
	w, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	r, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, err
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	v := &dbsql{w: w, r: r, cached: cached}
	if cached {
		// Before any transaction: the writer's one connection is the transaction's while it runs.
		for _, q := range []string{sqlCurrent, sqlInsert, sqlUpdate, sqlScalar, sqlChange} {
			if _, err := v.prepared(context.Background(), w, q); err != nil {
				return nil, err
			}
		}
	}
	return v, nil
}

func (v *dbsql) name() string {
	if v.cached {
		return "modernc database/sql, cached statements"
	}
	return "modernc database/sql"
}

func (v *dbsql) writes(ctx context.Context, ws []write) (err error) {
	tx, err := v.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	r := &dbsqlTx{ctx: ctx, tx: tx, v: v, stmts: map[string]*sql.Stmt{}}
	defer r.closeStmts()
	if err := applyWrites(r, ws); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// dbsqlTx runs a write transaction's statements as the store's wtx does:
// each prepared once per transaction (or taken from the cache).
type dbsqlTx struct {
	ctx   context.Context
	tx    *sql.Tx
	v     *dbsql
	stmts map[string]*sql.Stmt
}

func (r *dbsqlTx) stmt(q string) (*sql.Stmt, error) {
	if s := r.stmts[q]; s != nil {
		return s, nil
	}
	var s *sql.Stmt
	var err error
	if r.v.cached {
		if s, err = r.v.prepared(r.ctx, r.v.w, q); err == nil {
			s = r.tx.StmtContext(r.ctx, s) // the statement already prepared on the one connection
		}
	} else {
		s, err = r.tx.PrepareContext(r.ctx, q)
	}
	if err == nil {
		r.stmts[q] = s
	}
	return s, err
}

func (r *dbsqlTx) row(query string, args []any, dest ...any) (bool, error) {
	s, err := r.stmt(query)
	if err != nil {
		return false, err
	}
	err = s.QueryRowContext(r.ctx, args...).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func (r *dbsqlTx) exec(query string, args ...any) error {
	s, err := r.stmt(query)
	if err == nil {
		_, err = s.ExecContext(r.ctx, args...)
	}
	return err
}

func (r *dbsqlTx) closeStmts() {
	for _, s := range r.stmts {
		_ = s.Close()
	}
}

func (v *dbsql) get(ctx context.Context, id string) error {
	var rev, created, upd int64
	var d string
	if v.cached {
		s, err := v.prepared(ctx, v.r, sqlCurrent)
		if err != nil {
			return err
		}
		return s.QueryRowContext(ctx, "docs", id).Scan(&rev, &d, &created, &upd)
	}
	return v.r.QueryRowContext(ctx, sqlCurrent, "docs", id).Scan(&rev, &d, &created, &upd)
}

func (v *dbsql) find(ctx context.Context, query string, args []any, want int) error {
	var rows *sql.Rows
	var err error
	if v.cached {
		var s *sql.Stmt
		if s, err = v.prepared(ctx, v.r, query); err != nil {
			return err
		}
		rows, err = s.QueryContext(ctx, args...)
	} else {
		rows, err = v.r.QueryContext(ctx, query, args...)
	}
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	dest := make([]any, len(cols))
	var id, d string
	var rev, created, upd int64
	dest[0], dest[1], dest[2], dest[3], dest[4] = &id, &rev, &d, &created, &upd
	for i := 5; i < len(cols); i++ {
		dest[i] = new(any)
	}
	n := 0
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return count(n, want)
}

func (v *dbsql) close() error {
	for _, m := range v.stmts {
		for _, s := range m {
			_ = s.Close()
		}
	}
	return errors.Join(v.r.Close(), v.w.Close())
}

// ------------------------------------------------------------------------------ zombiezen

type zombie struct {
	mu sync.Mutex // one writer, as the store's one-connection pool
	w  *sqlite.Conn
	r  *sqlitex.Pool
}

func pragmas(conn *sqlite.Conn, list ...string) error {
	for _, p := range list {
		if err := sqlitex.ExecuteTransient(conn, "PRAGMA "+p, nil); err != nil {
			return err
		}
	}
	return nil
}

func openZombie(path string) (*zombie, error) {
	w, err := sqlite.OpenConn(path, sqlite.OpenReadWrite)
	if err != nil {
		return nil, err
	}
	if err := pragmas(w, "busy_timeout = 10000", "analysis_limit = 1000", "synchronous = FULL"); err != nil {
		return nil, err
	}
	r, err := sqlitex.NewPool(path, sqlitex.PoolOptions{
		Flags:    sqlite.OpenReadWrite,
		PoolSize: 4,
		PrepareConn: func(conn *sqlite.Conn) error {
			return pragmas(conn, "busy_timeout = 10000", "query_only = 1", "synchronous = FULL")
		},
	})
	if err != nil {
		return nil, err
	}
	return &zombie{w: w, r: r}, nil
}

func (v *zombie) name() string { return "zombiezen" }

func (v *zombie) writes(ctx context.Context, ws []write) (err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.w.SetInterrupt(ctx.Done())
	defer v.w.SetInterrupt(nil)
	end, err := sqlitex.ImmediateTransaction(v.w)
	if err != nil {
		return err
	}
	defer end(&err)
	return applyWrites(zombieTx{v.w}, ws)
}

// zombieTx runs a write transaction's statements with sqlitex.Execute, which
// keeps each statement prepared on the connection.
type zombieTx struct{ conn *sqlite.Conn }

func (r zombieTx) row(query string, args []any, dest ...any) (bool, error) {
	found := false
	err := sqlitex.Execute(r.conn, query, &sqlitex.ExecOptions{Args: args, ResultFunc: func(s *sqlite.Stmt) error {
		found = true
		for i, d := range dest {
			switch d := d.(type) {
			case *int64:
				*d = s.ColumnInt64(i)
			case *string:
				*d = s.ColumnText(i)
			default:
				return fmt.Errorf("column %d: cannot read into %T", i, d)
			}
		}
		return nil
	}})
	return found, err
}

func (r zombieTx) exec(query string, args ...any) error {
	return sqlitex.Execute(r.conn, query, &sqlitex.ExecOptions{Args: args})
}

func (v *zombie) read(ctx context.Context, query string, args []any, row func(*sqlite.Stmt)) (int, error) {
	conn, err := v.r.Take(ctx)
	if err != nil {
		return 0, err
	}
	defer v.r.Put(conn)
	n := 0
	err = sqlitex.Execute(conn, query, &sqlitex.ExecOptions{Args: args, ResultFunc: func(s *sqlite.Stmt) error {
		row(s)
		n++
		return nil
	}})
	return n, err
}

func (v *zombie) get(ctx context.Context, id string) error {
	var sink string
	var rev, created, upd int64
	n, err := v.read(ctx, sqlCurrent, []any{"docs", id}, func(s *sqlite.Stmt) {
		rev, sink, created, upd = s.ColumnInt64(0), s.ColumnText(1), s.ColumnInt64(2), s.ColumnInt64(3)
	})
	_, _, _ = rev, created, upd
	if err == nil && (n != 1 || sink == "") {
		err = fmt.Errorf("get %s: %d rows", id, n)
	}
	return err
}

func (v *zombie) find(ctx context.Context, query string, args []any, want int) error {
	// The same columns as database/sql's Scan: id, rev, doc, created, updated, then the sort keys.
	var id, d string
	var rev, created, upd int64
	n, err := v.read(ctx, query, args, func(s *sqlite.Stmt) {
		id, rev, d, created, upd = s.ColumnText(0), s.ColumnInt64(1), s.ColumnText(2), s.ColumnInt64(3), s.ColumnInt64(4)
		for i := 5; i < s.ColumnCount(); i++ {
			if s.ColumnType(i) == sqlite.TypeInteger {
				_ = s.ColumnInt64(i)
			} else {
				_ = s.ColumnText(i)
			}
		}
	})
	_, _, _, _, _ = id, rev, d, created, upd
	if err != nil {
		return err
	}
	return count(n, want)
}

func (v *zombie) close() error { return errors.Join(v.r.Close(), v.w.Close()) }

// ---------------------------------------------------------- the real store (reference)

type realStore struct{ s *storeservice.Service }

func (v *realStore) name() string { return "the store itself (zombiezen, fewer statements)" }

func (v *realStore) writes(ctx context.Context, ws []write) error {
	ops := make([]*pb.BatchOp, len(ws))
	for i, w := range ws {
		if w.json != "" {
			ops[i] = &pb.BatchOp{Put: &pb.PutOp{Collection: w.coll, Json: w.json}}
		} else {
			ops[i] = &pb.BatchOp{Update: &pb.UpdateOp{Collection: w.coll, Id: w.id, Update: `{"$set":{"title":"` + w.update + `"}}`}}
		}
	}
	_, err := v.s.Batch(ctx, &pb.BatchRequest{Space: "bench", Ops: ops})
	return err
}

func (v *realStore) get(ctx context.Context, id string) error {
	_, err := v.s.Get(ctx, &pb.GetRequest{Space: "bench", Collection: "docs", Id: id})
	return err
}

// find runs the query's filter and sort through the service; query and args
// are the replicas'.
func (v *realStore) find(ctx context.Context, _ string, args []any, want int) error {
	req := &pb.FindRequest{Space: "bench", Collection: "docs", Limit: 1000}
	if len(args) == 1 {
		req.Filter = fmt.Sprintf(`{"cat":%q}`, args[0])
	} else {
		req.Filter = fmt.Sprintf(`{"n":{"$gte":%d,"$lt":%d}}`, args[0], args[1])
		req.Sort, req.Limit = `{"n":-1}`, 20
	}
	resp, err := v.s.Find(ctx, req)
	if err != nil {
		return err
	}
	// The replicas read the store's extra row (LIMIT page+1, how it knows there is a next page).
	n := len(resp.Documents)
	if resp.NextCursor != "" {
		n++
	}
	return count(n, want)
}

func (v *realStore) close() error { return v.s.Close(context.Background()) }

func count(n, want int) error {
	if n != want {
		return fmt.Errorf("%d rows, want %d", n, want)
	}
	return nil
}

// --------------------------------------------------------------------------------- the run

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		return err
	}
	return out.Close()
}

// setup makes the space with the real store under dir/real and returns its
// find statements (limit included) as the store's Explain gives them.
func setup(ctx context.Context, dir string, docs, batch int) (eqSQL, rangeSQL string, err error) {
	svc := storeservice.New(filepath.Join(dir, "real"), storeservice.Options{})
	defer func() { err = errors.Join(err, svc.Close(ctx)) }()
	if _, err := svc.CreateSpace(ctx, &pb.CreateSpaceRequest{Name: "bench"}); err != nil {
		return "", "", err
	}
	for _, f := range []string{"cat", "n"} {
		ix := &pb.Index{Collection: "docs", Name: "by_" + f, Fields: []*pb.IndexField{{Path: f}}}
		if _, err := svc.EnsureIndex(ctx, &pb.EnsureIndexRequest{Space: "bench", Index: ix}); err != nil {
			return "", "", err
		}
	}
	for b := 0; b*batch < docs; b++ {
		ops := make([]*pb.BatchOp, 0, batch)
		for i := b * batch; i < (b+1)*batch && i < docs; i++ {
			ops = append(ops, &pb.BatchOp{Put: &pb.PutOp{Collection: "docs", Json: doc("d", i)}})
		}
		if _, err := svc.Batch(ctx, &pb.BatchRequest{Space: "bench", Ops: ops}); err != nil {
			return "", "", err
		}
	}
	eq, err := svc.Explain(ctx, &pb.ExplainRequest{Space: "bench", Collection: "docs", Filter: `{"cat":"c1"}`})
	if err != nil {
		return "", "", err
	}
	rg, err := svc.Explain(ctx, &pb.ExplainRequest{Space: "bench", Collection: "docs", Filter: `{"n":{"$gte":1,"$lt":2}}`, Sort: `{"n":-1}`})
	if err != nil {
		return "", "", err
	}
	if eq.Index != "by_cat" || rg.Index != "by_n" {
		return "", "", fmt.Errorf("the store's plans use %q and %q, not by_cat and by_n", eq.Index, rg.Index)
	}
	// Explain's statements end in the default page's LIMIT: give the pages the benchmarks ask for.
	cut := func(s string) string { return s[:strings.LastIndex(s, " LIMIT ")] }
	return cut(eq.Sql) + " LIMIT 1001", cut(rg.Sql) + " LIMIT 21", nil
}

type sample struct {
	variant, op string
	round       int
	ns          []float64
}

func pct(xs []float64, p float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return math.NaN()
	}
	return s[max(0, int(math.Ceil(p*float64(len(s))))-1)]
}

func main() {
	docs := flag.Int("docs", 100_000, "documents in the collection")
	batch := flag.Int("batch", 10_000, "documents per batch")
	samples := flag.Int("samples", 300, "timed operations per variant, op and round")
	rounds := flag.Int("rounds", 5, "interleaved rounds")
	flag.Parse()
	if err := runAll(*docs, *batch, *samples, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "go-sqlite:", err)
		os.Exit(1)
	}
}

func runAll(docs, batch, samples, rounds int) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "anysync-go-sqlite-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	t0 := time.Now()
	eqSQL, rangeSQL, err := setup(ctx, dir, docs, batch)
	if err != nil {
		return fmt.Errorf("setting up: %w", err)
	}
	fmt.Printf("setup: %d documents by the real store in %v\n", docs, time.Since(t0).Round(time.Millisecond))
	space := filepath.Join(dir, "real", "spaces", "bench.sqlite")
	for _, name := range []string{"dbsql", "cached", "zombie"} {
		if err := copyFile(space, filepath.Join(dir, name+".sqlite")); err != nil {
			return err
		}
	}
	a, err := openDBSQL(filepath.Join(dir, "dbsql.sqlite"), false)
	if err != nil {
		return err
	}
	c, err := openDBSQL(filepath.Join(dir, "cached.sqlite"), true)
	if err != nil {
		return err
	}
	z, err := openZombie(filepath.Join(dir, "zombie.sqlite"))
	if err != nil {
		return err
	}
	variants := []variant{&realStore{s: storeservice.New(filepath.Join(dir, "real"), storeservice.Options{})}, a, c, z}
	defer func() {
		for _, v := range variants {
			_ = v.close()
		}
	}()

	span := min(5000, docs/2)
	perCat := docs / 1000
	ops := []struct {
		name string
		run  func(v variant, i int) error
	}{
		{"put", func(v variant, i int) error {
			return v.writes(ctx, []write{{coll: "single", id: fmt.Sprintf("s%07d", i), json: doc("s", i)}})
		}},
		{"batch 1000", func(v variant, i int) error {
			ws := make([]write, 1000)
			for j := range ws {
				ws[j] = write{coll: "single", id: fmt.Sprintf("b%07d", i*1000+j), json: doc("b", i*1000+j)}
			}
			return v.writes(ctx, ws)
		}},
		{"get", func(v variant, i int) error { return v.get(ctx, fmt.Sprintf("d%07d", (i*7919)%docs)) }},
		{"indexed eq", func(v variant, i int) error {
			return v.find(ctx, eqSQL, []any{fmt.Sprintf("c%d", (i*37)%1000)}, perCat)
		}},
		{"sorted range", func(v variant, i int) error {
			lo := (i * 7919) % (docs - span)
			return v.find(ctx, rangeSQL, []any{lo, lo + span}, 21)
		}},
		{"update", func(v variant, i int) error {
			return v.writes(ctx, []write{{coll: "docs", id: fmt.Sprintf("d%07d", (i*104729)%docs), update: fmt.Sprintf("edited %d", i)}})
		}},
	}
	var all []sample
	for round := range rounds {
		for _, op := range ops {
			n := samples
			if op.name == "batch 1000" {
				n = max(1, samples/50)
			}
			for _, v := range variants {
				s := sample{variant: v.name(), op: op.name, round: round}
				for k := range n {
					t := time.Now()
					if err := op.run(v, round*n+k); err != nil {
						return fmt.Errorf("%s, %s: %w", v.name(), op.name, err)
					}
					s.ns = append(s.ns, float64(time.Since(t).Nanoseconds()))
				}
				all = append(all, s)
			}
		}
	}
	report(all, variants, ops2names(len(ops), func(i int) string { return ops[i].name }), docs)
	return nil
}

func ops2names(n int, f func(int) string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

func report(all []sample, variants []variant, ops []string, docs int) {
	fmt.Printf("\nThe store's operations over %d documents (two indexes), per driver; p50/p99 per operation; the ratio to plain database/sql is the median of per-round p50 ratios.\n\n", docs)
	fmt.Println("| operation | variant | samples | p50 | p99 | p50 / database/sql p50 |")
	fmt.Println("| --- | --- | --- | --- | --- | --- |")
	for _, op := range ops {
		for _, v := range variants {
			var xs []float64
			for _, s := range all {
				if s.variant == v.name() && s.op == op {
					xs = append(xs, s.ns...)
				}
			}
			extra := ""
			if v.name() != "modernc database/sql" {
				var ratios []float64
				for _, s := range all {
					if s.variant != v.name() || s.op != op {
						continue
					}
					for _, t := range all {
						if t.variant == "modernc database/sql" && t.op == op && t.round == s.round {
							ratios = append(ratios, pct(s.ns, 0.5)/pct(t.ns, 0.5))
						}
					}
				}
				extra = fmt.Sprintf("%.2fx", pct(ratios, 0.5))
			}
			fmt.Printf("| %s | %s | %d | %s | %s | %s |\n", op, v.name(), len(xs), dur(pct(xs, 0.5)), dur(pct(xs, 0.99)), extra)
		}
	}
}

func dur(ns float64) string {
	switch {
	case ns < 1e6:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	default:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	}
}
