package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strings"

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
		err := tx.QueryRowContext(ctx, "SELECT fields, is_unique FROM indexes WHERE collection = ? AND name = ?", ix.Collection, ix.Name).Scan(&have, &unique)
		if err == nil {
			if have == string(fields) && unique == ix.Unique {
				return nil
			}
			return errs.New(errs.AlreadyExists, "index %q of collection %q exists with other fields or uniqueness: drop it first", ix.Name, ix.Collection)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		cols := make([]string, 0, len(paths)+2)
		cols = append(cols, "collection")
		for i, p := range paths {
			var id string
			err := tx.QueryRowContext(ctx, "SELECT id FROM docs WHERE collection = ? AND "+p.jtype()+" IN ('array', 'object') LIMIT 1", ix.Collection).Scan(&id)
			if err == nil {
				return errs.New(errs.FailedPrecondition, "index %q: document %q holds an array or object at %q; an indexed field must hold a scalar", ix.Name, id, p.text)
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
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
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			if code, ok := sqliteCode(err); ok && code == 19 {
				return errs.Wrap(errs.AlreadyExists, err, "unique index "+ix.Name+": documents of collection "+ix.Collection+" share values")
			}
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO indexes (collection, name, fields, is_unique) VALUES (?, ?, ?, ?)", ix.Collection, ix.Name, string(fields), ix.Unique); err != nil {
			return err
		}
		// Statistics for the planner, so that it weighs the new index
		// against the id index by the data (bounded work: analysis_limit).
		if _, err := tx.ExecContext(ctx, "ANALYZE docs"); err != nil {
			return err
		}
		created = true
		sp.mu.Lock()
		sp.addScalar(ix.Collection, ix.Name, ix.Fields)
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
	rows, err := sp.r.QueryContext(ctx, "SELECT collection, name, fields FROM indexes")
	if err != nil {
		return err
	}
	defer rows.Close()
	scalar := map[string]map[string]string{}
	for rows.Next() {
		var coll, name, fields string
		if err := rows.Scan(&coll, &name, &fields); err != nil {
			return err
		}
		var fs []IndexField
		if err := json.Unmarshal([]byte(fields), &fs); err != nil {
			return err
		}
		m := scalar[coll]
		if m == nil {
			m = map[string]string{}
			scalar[coll] = m
		}
		for _, f := range fs {
			if _, ok := m[f.Path]; !ok {
				m[f.Path] = name
			}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	sp.mu.Lock()
	sp.scalar = scalar
	sp.mu.Unlock()
	return nil
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
		res, err := tx.ExecContext(ctx, "DELETE FROM indexes WHERE collection = ? AND name = ?", coll, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errs.New(errs.NotFound, "index %q of collection %q not found", name, coll)
		}
		_, err = tx.ExecContext(ctx, `DROP INDEX "`+sqlIndexName(coll, name)+`"`)
		return err
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
	rows, err := sp.r.QueryContext(ctx, "SELECT collection, name, fields, is_unique FROM indexes WHERE ? = '' OR collection = ? ORDER BY collection, name", coll, coll)
	if err != nil {
		return nil, sp.mapErr(err, "")
	}
	defer rows.Close()
	var out []Index
	for rows.Next() {
		var ix Index
		var fields string
		if err := rows.Scan(&ix.Collection, &ix.Name, &fields, &ix.Unique); err != nil {
			return nil, sp.mapErr(err, "")
		}
		if err := json.Unmarshal([]byte(fields), &ix.Fields); err != nil {
			return nil, err
		}
		out = append(out, ix)
	}
	return slices.Clip(out), sp.mapErr(rows.Err(), "")
}
