package store

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
)

// The reference evaluator: the filter semantics of filter.go, written over
// decoded JSON in Go, independently of SQL.

func navigate(doc any, segs []string) (any, bool) {
	v := doc
	for _, seg := range segs {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[seg]; !ok {
				return nil, false
			}
		case []any:
			if !isIndex(seg) {
				return nil, false
			}
			i, _ := strconv.Atoi(seg)
			if i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

func refClass(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool, json.Number:
		return "number"
	case string:
		return "text"
	case []any:
		return "array"
	}
	return "object"
}

func refNum(v any) float64 {
	switch x := v.(type) {
	case bool:
		if x {
			return 1
		}
		return 0
	case json.Number:
		f, _ := strconv.ParseFloat(string(x), 64)
		return f
	}
	panic(fmt.Sprintf("not a number: %v", v))
}

// refCmp compares scalars of one class: -1, 0, 1.
func refCmp(a, b any) int {
	if refClass(a) == "text" {
		return strings.Compare(a.(string), b.(string))
	}
	x, y := refNum(a), refNum(b)
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

func refOp(op string, c int) bool {
	switch op {
	case "$eq":
		return c == 0
	case "$gt":
		return c > 0
	case "$gte":
		return c >= 0
	case "$lt":
		return c < 0
	case "$lte":
		return c <= 0
	}
	panic(op)
}

func refScalarMatch(x any, op string, a any) bool {
	cls := refClass(a)
	if refClass(x) == cls {
		return refOp(op, refCmp(x, a))
	}
	return false
}

func refCompare(doc any, p path, op string, a any) bool {
	x, ok := navigate(doc, p.segs)
	neg := false
	if op == "$ne" {
		op, neg = "$eq", true
	}
	var m bool
	if a == nil {
		m = !ok || x == nil
		if arr, isArr := x.([]any); ok && isArr {
			for _, e := range arr {
				if e == nil {
					m = true
				}
			}
		}
	} else if ok {
		if arr, isArr := x.([]any); isArr {
			for _, e := range arr {
				if refScalarMatch(e, op, a) {
					m = true
				}
			}
		} else {
			m = refScalarMatch(x, op, a)
		}
	}
	return m != neg
}

func refFilter(doc any, f map[string]any) bool {
	for k, v := range f {
		switch k {
		case "$and":
			for _, g := range v.([]any) {
				if !refFilter(doc, g.(map[string]any)) {
					return false
				}
			}
		case "$or":
			some := false
			for _, g := range v.([]any) {
				if refFilter(doc, g.(map[string]any)) {
					some = true
				}
			}
			if !some {
				return false
			}
		case "$not":
			if refFilter(doc, v.(map[string]any)) {
				return false
			}
		default:
			p, err := parsePath(k)
			if err != nil {
				panic(err)
			}
			ops, isOps := v.(map[string]any)
			if !isOps {
				ops = map[string]any{"$eq": v}
			}
			if !refOps(doc, p, ops) {
				return false
			}
		}
	}
	return true
}

func refOps(doc any, p path, ops map[string]any) bool {
	for op, a := range ops {
		var m bool
		switch op {
		case "$in", "$nin":
			for _, e := range a.([]any) {
				if refCompare(doc, p, "$eq", e) {
					m = true
				}
			}
			if op == "$nin" {
				m = !m
			}
		case "$exists":
			_, ok := navigate(doc, p.segs)
			m = ok == a.(bool)
		case "$not":
			m = !refOps(doc, p, a.(map[string]any))
		default:
			m = refCompare(doc, p, op, a)
		}
		if !m {
			return false
		}
	}
	return true
}

// Generators.

var genScalars = []any{
	nil, true, false, json.Number("0"), json.Number("1"), json.Number("2"), json.Number("-1"),
	json.Number("1.5"), json.Number("2.0"), "", "a", "b", "ab", "B",
}

func genScalar(r *rand.Rand) any { return genScalars[r.IntN(len(genScalars))] }

func genValue(r *rand.Rand, depth int) any {
	switch n := r.IntN(10); {
	case n < 6 || depth > 1:
		return genScalar(r)
	case n < 9:
		arr := []any{}
		for range r.IntN(4) {
			arr = append(arr, genValue(r, depth+1))
		}
		return arr
	default:
		return map[string]any{"d": genScalar(r)}
	}
}

// genDoc makes a document; "s" and "c.d" are never arrays or objects (so
// they can be indexed).
func genDoc(r *rand.Rand, i int) map[string]any {
	d := map[string]any{"id": fmt.Sprintf("d%03d", i)}
	for _, k := range []string{"a", "b", "tags"} {
		if r.IntN(6) > 0 {
			d[k] = genValue(r, 0)
		}
	}
	if r.IntN(5) > 0 {
		d["s"] = genScalar(r)
	}
	switch r.IntN(4) {
	case 0:
	case 1:
		d["c"] = genScalar(r)
	default:
		d["c"] = map[string]any{"d": genScalar(r), "e": genValue(r, 1)}
	}
	return d
}

var genPaths = []string{"a", "b", "tags", "s", "c", "c.d", "c.e", "a.0", "a.d", "nope"}

func genFilter(r *rand.Rand, depth int) map[string]any {
	f := map[string]any{}
	for range 1 + r.IntN(2) {
		switch n := r.IntN(12); {
		case depth < 3 && n == 0:
			f["$and"] = []any{genFilter(r, depth+1), genFilter(r, depth+1)}
		case depth < 3 && n == 1:
			f["$or"] = []any{genFilter(r, depth+1), genFilter(r, depth+1)}
		case depth < 3 && n == 2:
			f["$not"] = genFilter(r, depth+1)
		default:
			p := genPaths[r.IntN(len(genPaths))]
			if r.IntN(3) == 0 {
				v := genScalar(r)
				f[p] = v
			} else {
				f[p] = genOps(r, depth)
			}
		}
	}
	return f
}

func genOps(r *rand.Rand, depth int) map[string]any {
	ops := map[string]any{}
	for range 1 + r.IntN(2) {
		switch n := r.IntN(10); {
		case n < 2:
			op := []string{"$eq", "$ne"}[r.IntN(2)]
			ops[op] = genScalar(r)
		case n < 6:
			op := []string{"$gt", "$gte", "$lt", "$lte"}[r.IntN(4)]
			v := genScalar(r)
			for v == nil {
				v = genScalar(r)
			}
			ops[op] = v
		case n < 8:
			op := []string{"$in", "$nin"}[r.IntN(2)]
			list := []any{}
			for range r.IntN(4) {
				list = append(list, genScalar(r))
			}
			ops[op] = list
		case n < 9:
			ops["$exists"] = r.IntN(2) == 0
		default:
			if depth < 3 {
				ops["$not"] = genOps(r, depth+1)
			}
		}
	}
	if len(ops) == 0 {
		ops["$exists"] = true
	}
	return ops
}

func refFind(docs []map[string]any, f map[string]any) []string {
	var ids []string
	for _, d := range docs {
		// Through JSON, as stored.
		b, _ := json.Marshal(d)
		v, _ := decodeJSON(string(b))
		if refFilter(v, f) {
			ids = append(ids, d["id"].(string))
		}
	}
	sort.Strings(ids)
	return ids
}
