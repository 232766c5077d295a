package store

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"zombiezen.com/go/sqlite"

	"github.com/anysync/tauri-plugin-anysync/go-backend/backend/errs"
)

// IndexField is one field of an index.
type IndexField struct {
	Path       string `json:"path"`
	Descending bool   `json:"desc,omitempty"`
}

// Index is an index on the fields of a collection's documents. It is an
// SQLite index on the collection and the fields' json_extract
// expressions; a non-unique one ends with the id, so that it serves the
// sort's tie-break too. A path an index covers must hold a scalar (or
// nothing) in every document of the collection: writes that put an array
// or object there are refused, which lets filters on it use the index.
type Index struct {
	Collection string
	Name       string
	Fields     []IndexField
	Unique     bool
}

// sqlIndexName is the SQLite name of a collection's index.
func sqlIndexName(coll, name string) string { return "ix:" + coll + ":" + name }

// parseIndexName reverses sqlIndexName.
func parseIndexName(s string) (coll, name string, ok bool) {
	rest, ok := strings.CutPrefix(s, "ix:")
	if !ok {
		return "", "", false
	}
	coll, name, ok = strings.Cut(rest, ":")
	return coll, name, ok
}

func checkIndex(ix Index) ([]path, error) {
	if err := checkName("collection", ix.Collection); err != nil {
		return nil, err
	}
	if err := checkName("index", ix.Name); err != nil {
		return nil, err
	}
	if len(ix.Fields) == 0 || len(ix.Fields) > MaxIndexFields {
		return nil, errs.New(errs.InvalidArgument, "index %q: give 1 to %d fields, not %d", ix.Name, MaxIndexFields, len(ix.Fields))
	}
	paths := make([]path, len(ix.Fields))
	seen := map[string]bool{}
	for i, f := range ix.Fields {
		p, err := parsePath(f.Path)
		if err != nil {
			return nil, errs.New(errs.InvalidArgument, "index %q: field %d: %v", ix.Name, i, err)
		}
		if seen[f.Path] {
			return nil, errs.New(errs.InvalidArgument, "index %q: the path %q appears twice", ix.Name, f.Path)
		}
		seen[f.Path] = true
		paths[i] = p
	}
	return paths, nil
}

// EnsureIndex creates ix, or does nothing when an identical index of that
// name exists; created says which.
func (st *Store) EnsureIndex(ctx context.Context, space string, ix Index) (created bool, err error) {
	paths, err := checkIndex(ix)
	if err != nil {
		return false, err
	}
	sp, err := st.space(ctx, space)
	if err != nil {
		return false, err
	}
	defer sp.done()
	fields, _ := json.Marshal(ix.Fields)
	err = sp.write(ctx, func(tx *wtx) error {
		var have string
		var unique bool
		found, err := one(tx.conn, "SELECT fields, is_unique FROM indexes WHERE collection = ?1 AND name = ?2", []any{ix.Collection, ix.Name}, func(s *sqlite.Stmt) {
			have, unique = s.ColumnText(0), s.ColumnBool(1)
		})
		if err != nil {
			return err
		}
		if found {
			if have == string(fields) && unique == ix.Unique {
				return nil
			}
			return errs.New(errs.AlreadyExists, "index %q of collection %q exists with other fields or uniqueness: drop it first", ix.Name, ix.Collection)
		}
		cols := make([]string, 0, len(paths)+2)
		cols = append(cols, "collection")
		for i, p := range paths {
			var id string
			err := runOnce(tx.conn, "SELECT id FROM docs WHERE collection = ? AND "+p.jtype()+" IN ('array', 'object') LIMIT 1", []any{ix.Collection}, func(s *sqlite.Stmt) error {
				id = s.ColumnText(0)
				return nil
			})
			if err != nil {
				return err
			}
			if id != "" {
				return errs.New(errs.FailedPrecondition, "index %q: document %q holds an array or object at %q; an indexed field must hold a scalar", ix.Name, id, p.text)
			}
			col := p.extract()
			if ix.Fields[i].Descending {
				col += " DESC"
			}
			cols = append(cols, col)
		}
		kind := "INDEX"
		if ix.Unique {
			kind = "UNIQUE INDEX"
		} else {
			cols = append(cols, "id")
		}
		stmt := "CREATE " + kind + ` "` + sqlIndexName(ix.Collection, ix.Name) + `" ON docs (` + strings.Join(cols, ", ") + ")"
		if err := runOnce(tx.conn, stmt, nil, nil); err != nil {
			if sqliteCode(err) == 19 {
				return errs.Wrap(errs.AlreadyExists, err, "unique index "+ix.Name+": documents of collection "+ix.Collection+" share values")
			}
			return err
		}
		if err := run(tx.conn, "INSERT INTO indexes (collection, name, fields, is_unique) VALUES (?1, ?2, ?3, ?4)", []any{ix.Collection, ix.Name, string(fields), ix.Unique}, nil); err != nil {
			return err
		}
		// Statistics for the planner, so that it weighs the new index
		// against the id index by the data (bounded work: analysis_limit).
		if err := run(tx.conn, "ANALYZE docs", nil, nil); err != nil {
			return err
		}
		created = true
		sp.mu.Lock()
		addScalar(sp.scalar, ix.Collection, ix.Name, ix.Fields)
		sp.mu.Unlock()
		return nil
	})
	if err != nil && created {
		// The transaction failed after the cache was updated: reload it.
		created = false
		_ = sp.reloadScalars(ctx)
	}
	return created, err
}

// reloadScalars rebuilds the cache of index-covered paths from the file.
func (sp *space) reloadScalars(ctx context.Context) error {
	return sp.read(ctx, func(conn *sqlite.Conn) error {
		scalar, err := loadScalars(conn)
		if err != nil {
			return err
		}
		sp.mu.Lock()
		sp.scalar = scalar
		sp.mu.Unlock()
		return nil
	})
}

// DropIndex drops an index. NotFound if there is none of that name.
func (st *Store) DropIndex(ctx context.Context, space, coll, name string) error {
	if err := checkName("collection", coll); err != nil {
		return err
	}
	if err := checkName("index", name); err != nil {
		return err
	}
	sp, err := st.space(ctx, space)
	if err != nil {
		return err
	}
	defer sp.done()
	err = sp.write(ctx, func(tx *wtx) error {
		if err := run(tx.conn, "DELETE FROM indexes WHERE collection = ?1 AND name = ?2", []any{coll, name}, nil); err != nil {
			return err
		}
		if tx.conn.Changes() == 0 {
			return errs.New(errs.NotFound, "index %q of collection %q not found", name, coll)
		}
		return runOnce(tx.conn, `DROP INDEX "`+sqlIndexName(coll, name)+`"`, nil, nil)
	})
	if err != nil {
		return err
	}
	return sp.reloadScalars(ctx)
}

// ListIndexes lists the indexes of coll ("": of every collection), sorted
// by collection and name.
func (st *Store) ListIndexes(ctx context.Context, space, coll string) ([]Index, error) {
	if coll != "" {
		if err := checkName("collection", coll); err != nil {
			return nil, err
		}
	}
	sp, err := st.space(ctx, space)
	if err != nil {
		return nil, err
	}
	defer sp.done()
	var out []Index
	err = sp.read(ctx, func(conn *sqlite.Conn) error {
		return run(conn, "SELECT collection, name, fields, is_unique FROM indexes WHERE ?1 = '' OR collection = ?1 ORDER BY collection, name", []any{coll}, func(s *sqlite.Stmt) error {
			ix := Index{Collection: s.ColumnText(0), Name: s.ColumnText(1), Unique: s.ColumnBool(3)}
			if err := json.Unmarshal([]byte(s.ColumnText(2)), &ix.Fields); err != nil {
				return err
			}
			out = append(out, ix)
			return nil
		})
	})
	return slices.Clip(out), sp.mapErr(err, "")
}
