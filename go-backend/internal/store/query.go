package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"zombiezen.com/go/sqlite"

	"github.com/anysync/tauri-plugin-anysync/go-backend/backend/errs"
)

// Query is a Find or Count on one collection.
type Query struct {
	Collection string
	// Filter is the filter's JSON text; "" matches everything.
	Filter string
	// Sort is the sort's JSON text ({"path": 1 | -1, ...}); "" sorts by id.
	Sort string
	// Limit bounds the page (0: DefaultLimit; at most MaxLimit).
	Limit int
	// Cursor is the previous page's NextCursor; "" for the first page.
	Cursor string
}

// Page is one page of a Find.
type Page struct {
	Docs []Doc
	// NextCursor continues after the page; "" when it is the last.
	NextCursor string
}

// plan is a compiled query.
type plan struct {
	from  string // FROM ... WHERE ..., without ORDER BY
	where string // the filter's condition alone, over the column doc
	args  []any
	sort  []sortKey
	limit int
}

func (sp *space) compile(q Query, withSort bool) (plan, error) {
	if err := checkName("collection", q.Collection); err != nil {
		return plan{}, err
	}
	w, err := compileFilter(q.Filter, sp.scalarPaths(q.Collection))
	if err != nil {
		return plan{}, err
	}
	p := plan{
		// The collection is a literal (its name is checked) so that the
		// planner can use the collection's partial indexes.
		from:  "FROM docs WHERE collection = " + sqlString(q.Collection) + " AND " + w.sql,
		args:  w.args,
		where: w.sql,
	}
	if withSort {
		if p.sort, err = parseSort(q.Sort); err != nil {
			return plan{}, err
		}
		switch {
		case q.Limit < 0 || q.Limit > MaxLimit:
			return plan{}, errs.New(errs.InvalidArgument, "limit %d is out of range: give 0 (for %d) to %d", q.Limit, DefaultLimit, MaxLimit)
		case q.Limit == 0:
			p.limit = DefaultLimit
		default:
			p.limit = q.Limit
		}
	}
	return p, nil
}

func (p plan) orderBy() string {
	parts := make([]string, 0, len(p.sort)+1)
	for _, k := range p.sort {
		dir := " ASC"
		if k.desc {
			dir = " DESC"
		}
		parts = append(parts, k.path.extract()+dir)
	}
	return " ORDER BY " + strings.Join(append(parts, "id ASC"), ", ")
}

// cursor is what a page's NextCursor encodes: the last document's sort
// values and id, and a hash of the query it belongs to.
type cursor struct {
	Query uint64 `json:"q"`
	Keys  []any  `json:"k"` // per sort key: null, {"i":n}, {"f":x} or {"s":s}
	ID    string `json:"id"`
}

func queryHash(q Query) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%s\x00%s", q.Collection, q.Filter, q.Sort)
	return h.Sum64()
}

func encodeValue(v any) any {
	switch x := v.(type) {
	case int64:
		return map[string]string{"i": strconv.FormatInt(x, 10)}
	case float64:
		return map[string]string{"f": strconv.FormatFloat(x, 'g', -1, 64)}
	case string:
		return map[string]string{"s": x}
	case []byte:
		return map[string]string{"s": string(x)}
	}
	return nil
}

func decodeValue(v any) (any, bool) {
	if v == nil {
		return nil, true
	}
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return nil, false
	}
	for k, x := range m {
		s, ok := x.(string)
		if !ok {
			return nil, false
		}
		switch k {
		case "i":
			i, err := strconv.ParseInt(s, 10, 64)
			return i, err == nil
		case "f":
			f, err := strconv.ParseFloat(s, 64)
			return f, err == nil
		case "s":
			return s, true
		}
	}
	return nil, false
}

// after is the keyset condition "sorts after the cursor's document".
func (p plan) after(c cursor) (string, []any) {
	var ors []string
	var args []any
	var eqs []string
	var eqArgs []any
	for i, k := range p.sort {
		e := k.path.extract()
		v := c.Keys[i]
		var cond string
		var condArgs []any
		switch {
		case !k.desc && v == nil:
			cond = e + " IS NOT NULL"
		case !k.desc:
			cond, condArgs = e+" > ?", []any{v}
		case v == nil:
			cond = "" // nothing sorts after null, descending
		default:
			cond, condArgs = "("+e+" < ? OR "+e+" IS NULL)", []any{v}
		}
		if cond != "" {
			ors = append(ors, "("+strings.Join(append(append([]string{}, eqs...), cond), " AND ")+")")
			args = append(append(args, eqArgs...), condArgs...)
		}
		eqs = append(eqs, e+" IS ?")
		eqArgs = append(eqArgs, v)
	}
	ors = append(ors, "("+strings.Join(append(append([]string{}, eqs...), "id > ?"), " AND ")+")")
	args = append(append(args, eqArgs...), c.ID)
	return "(" + strings.Join(ors, " OR ") + ")", args
}

func (p plan) selectSQL(cols string) string {
	var keys strings.Builder
	for _, k := range p.sort {
		keys.WriteString(", " + k.path.extract())
	}
	return "SELECT " + cols + keys.String() + " " + p.from
}

// Find returns a page of the documents matching q, in its sort order.
func (st *Store) Find(ctx context.Context, space string, q Query) (Page, error) {
	sp, err := st.space(ctx, space)
	if err != nil {
		return Page{}, err
	}
	defer sp.done()
	p, err := sp.compile(q, true)
	if err != nil {
		return Page{}, err
	}
	query := p.selectSQL(docColumns)
	args := p.args
	if q.Cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(q.Cursor)
		var c cursor
		if err == nil {
			err = json.Unmarshal(raw, &c)
		}
		if err != nil || c.Query != queryHash(q) || len(c.Keys) != len(p.sort) {
			return Page{}, errs.New(errs.InvalidArgument, "cursor: not a cursor of this query (same collection, filter and sort)")
		}
		for i, k := range c.Keys {
			v, ok := decodeValue(k)
			if !ok {
				return Page{}, errs.New(errs.InvalidArgument, "cursor: malformed")
			}
			c.Keys[i] = v
		}
		cond, cargs := p.after(c)
		query += " AND " + cond
		args = append(append([]any{}, args...), cargs...)
	}
	query += p.orderBy() + " LIMIT " + strconv.Itoa(p.limit+1)
	var page Page
	err = sp.read(ctx, func(conn *sqlite.Conn) error {
		var lastKeys []any
		return sp.filters.run(conn, query, args, func(s *sqlite.Stmt) error {
			if len(page.Docs) == p.limit {
				// The extra row: there is a next page, after the last one.
				c := cursor{Query: queryHash(q), ID: page.Docs[len(page.Docs)-1].ID, Keys: []any{}}
				for _, k := range lastKeys {
					c.Keys = append(c.Keys, encodeValue(k))
				}
				raw, _ := json.Marshal(c)
				page.NextCursor = base64.RawURLEncoding.EncodeToString(raw)
				return nil
			}
			page.Docs = append(page.Docs, scanDoc(s, 0))
			lastKeys = lastKeys[:0]
			for i := range p.sort {
				lastKeys = append(lastKeys, value(s, 5+i))
			}
			return nil
		})
	})
	if err != nil {
		return Page{}, sp.mapErr(err, "find")
	}
	return page, nil
}

// Count counts the documents matching q's filter.
func (st *Store) Count(ctx context.Context, space string, q Query) (uint64, error) {
	sp, err := st.space(ctx, space)
	if err != nil {
		return 0, err
	}
	defer sp.done()
	p, err := sp.compile(q, false)
	if err != nil {
		return 0, err
	}
	var n uint64
	err = sp.read(ctx, func(conn *sqlite.Conn) error {
		return sp.filters.run(conn, "SELECT count(*) "+p.from, p.args, func(s *sqlite.Stmt) error {
			n = uint64(s.ColumnInt64(0))
			return nil
		})
	})
	return n, sp.mapErr(err, "count")
}

// Explanation is how a query runs.
type Explanation struct {
	// Index is the name of the index used to find the documents; "" for a
	// scan of the collection.
	Index string
	// Plan is SQLite's EXPLAIN QUERY PLAN, one line per step.
	Plan []string
	// SQL is the query's text.
	SQL string
}

// Explain says how Find would run q.
func (st *Store) Explain(ctx context.Context, space string, q Query) (Explanation, error) {
	sp, err := st.space(ctx, space)
	if err != nil {
		return Explanation{}, err
	}
	defer sp.done()
	p, err := sp.compile(q, true)
	if err != nil {
		return Explanation{}, err
	}
	query := p.selectSQL(docColumns) + p.orderBy() + " LIMIT " + strconv.Itoa(p.limit+1)
	ex := Explanation{SQL: query}
	err = sp.read(ctx, func(conn *sqlite.Conn) error {
		return runOnce(conn, "EXPLAIN QUERY PLAN "+query, p.args, func(s *sqlite.Stmt) error {
			detail := s.ColumnText(3)
			ex.Plan = append(ex.Plan, detail)
			if ex.Index == "" && (strings.HasPrefix(detail, "SEARCH docs ") || strings.HasPrefix(detail, "SCAN docs ")) {
				ex.Index = indexOfPlanStep(detail)
			}
			return nil
		})
	})
	return ex, sp.mapErr(err, "explain")
}

// indexOfPlanStep is the name of the store's index a plan step uses ("" for
// none, or SQLite's own).
func indexOfPlanStep(detail string) string {
	for _, marker := range []string{"USING INDEX ", "USING COVERING INDEX "} {
		if i := strings.Index(detail, marker); i >= 0 {
			name := detail[i+len(marker):]
			if j := strings.IndexByte(name, ' '); j >= 0 {
				name = name[:j]
			}
			if _, idx, ok := parseIndexName(name); ok {
				return idx
			}
		}
	}
	return ""
}
