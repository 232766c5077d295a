package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/anysync/tauri-plugin-anysync/go-backend/backend/errs"
)

// A path is a dotted field path, e.g. "meta.tags" or "items.0.name". A
// segment of digits only is an array index; the others are object keys.
// Segments are non-empty and hold no '"', '\\' or control characters, and
// none starts with '$'.
type path struct {
	text string
	json string // SQLite JSON path: $."meta"."tags", $."items"[0]."name"
	segs []string
}

const maxPathBytes = 512

func parsePath(s string) (path, error) {
	if s == "" {
		return path{}, errors.New("the path is empty")
	}
	if len(s) > maxPathBytes {
		return path{}, fmt.Errorf("the path is %d bytes; the limit is %d", len(s), maxPathBytes)
	}
	segs := strings.Split(s, ".")
	var b strings.Builder
	b.WriteString("$")
	for _, seg := range segs {
		switch {
		case seg == "":
			return path{}, fmt.Errorf("path %q has an empty segment", s)
		case seg[0] == '$':
			return path{}, fmt.Errorf("path %q has a segment starting with '$'", s)
		case strings.ContainsAny(seg, "\"\\") || strings.ContainsFunc(seg, func(r rune) bool { return r < 0x20 || r == 0x7f }):
			return path{}, fmt.Errorf("path %q has a '\"', '\\' or control character", s)
		}
		if isIndex(seg) {
			b.WriteString("[" + seg + "]")
		} else {
			b.WriteString(`."` + seg + `"`)
		}
	}
	return path{text: s, json: b.String(), segs: segs}, nil
}

func isIndex(seg string) bool {
	if len(seg) == 0 || len(seg) > 9 {
		return false
	}
	for _, c := range seg {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// sqlString renders s as an SQL string literal.
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// extract is the SQL expression of p's value; indexes use the same text,
// so the planner matches them.
func (p path) extract() string { return "json_extract(doc, " + sqlString(p.json) + ")" }
func (p path) jtype() string   { return "json_type(doc, " + sqlString(p.json) + ")" }
func (p path) each() string    { return "json_each(doc, " + sqlString(p.json) + ")" }

// decodeJSON decodes text (one JSON value, nothing after it) with numbers
// as json.Number.
func decodeJSON(text string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("text after the JSON value")
	}
	return v, nil
}

// where is a compiled filter: SQL over the column doc, and its arguments.
type where struct {
	sql  string
	args []any
}

// compiler turns a filter into SQL. scalar lists the paths an index covers
// (documents hold scalars there), compiled without the array branch so
// that the index can serve them.
type compiler struct {
	scalar map[string]string
	args   []any
}

func filterErr(where, format string, args ...any) error {
	return errs.New(errs.InvalidArgument, "filter: %s%s", fmt.Sprintf(format, args...), where)
}

func at(p string) string {
	if p == "" {
		return " (at the top level)"
	}
	return fmt.Sprintf(" (at path %q)", p)
}

// compileFilter compiles a filter text; "" and "{}" match everything.
func compileFilter(text string, scalar map[string]string) (where, error) {
	if strings.TrimSpace(text) == "" {
		return where{sql: "1"}, nil
	}
	if len(text) > MaxFilterBytes {
		return where{}, errs.New(errs.InvalidArgument, "filter: %d bytes; the limit is %d", len(text), MaxFilterBytes)
	}
	v, err := decodeJSON(text)
	if err != nil {
		return where{}, errs.New(errs.InvalidArgument, "filter: not valid JSON: %v", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return where{}, errs.New(errs.InvalidArgument, "filter: not a JSON object")
	}
	c := &compiler{scalar: scalar}
	s, err := c.object(m, 0)
	if err != nil {
		return where{}, err
	}
	return where{sql: s, args: c.args}, nil
}

const maxDepth = 32

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (c *compiler) object(m map[string]any, depth int) (string, error) {
	if depth > maxDepth {
		return "", filterErr("", "nested deeper than %d levels", maxDepth)
	}
	var terms []string
	for _, k := range sortedKeys(m) {
		v := m[k]
		var term string
		var err error
		switch {
		case k == "$and" || k == "$or":
			list, ok := v.([]any)
			if !ok || len(list) == 0 {
				return "", filterErr(at(""), "%s takes a non-empty array of filters", k)
			}
			parts := make([]string, len(list))
			for i, f := range list {
				fm, ok := f.(map[string]any)
				if !ok {
					return "", filterErr(at(""), "%s[%d] is not an object", k, i)
				}
				if parts[i], err = c.object(fm, depth+1); err != nil {
					return "", err
				}
			}
			op := " AND "
			if k == "$or" {
				op = " OR "
			}
			term = "(" + strings.Join(parts, op) + ")"
		case k == "$not":
			fm, ok := v.(map[string]any)
			if !ok {
				return "", filterErr(at(""), "$not takes a filter object")
			}
			inner, err := c.object(fm, depth+1)
			if err != nil {
				return "", err
			}
			term = "NOT coalesce(" + inner + ", 0)"
		case strings.HasPrefix(k, "$"):
			return "", filterErr(at(""), "unknown operator %q", k)
		default:
			p, perr := parsePath(k)
			if perr != nil {
				return "", filterErr("", "%v", perr)
			}
			if term, err = c.field(p, v, depth); err != nil {
				return "", err
			}
		}
		terms = append(terms, term)
	}
	if len(terms) == 0 {
		return "1", nil
	}
	return "(" + strings.Join(terms, " AND ") + ")", nil
}

// field compiles the condition v on path p: a scalar ($eq) or an object of
// operators.
func (c *compiler) field(p path, v any, depth int) (string, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return c.compare(p, "$eq", v, nil)
	}
	hasOp, hasKey := false, false
	for k := range m {
		if strings.HasPrefix(k, "$") {
			hasOp = true
		} else {
			hasKey = true
		}
	}
	if !hasOp || hasKey {
		return "", filterErr(at(p.text), "comparing with an object is not supported: give a scalar or an object of operators ($eq, $gt, ...)")
	}
	return c.ops(p, m, depth)
}

func (c *compiler) ops(p path, m map[string]any, depth int) (string, error) {
	if depth > maxDepth {
		return "", filterErr(at(p.text), "nested deeper than %d levels", maxDepth)
	}
	var terms []string
	for _, op := range sortedKeys(m) {
		v := m[op]
		var term string
		var err error
		switch op {
		case "$eq", "$ne", "$gt", "$gte", "$lt", "$lte":
			term, err = c.compare(p, op, v, m)
		case "$in", "$nin":
			list, ok := v.([]any)
			if !ok {
				return "", filterErr(at(p.text), "%s takes an array", op)
			}
			term, err = c.in(p, op, list)
		case "$exists":
			b, ok := v.(bool)
			if !ok {
				return "", filterErr(at(p.text), "$exists takes true or false")
			}
			if b {
				term = p.jtype() + " IS NOT NULL"
			} else {
				term = p.jtype() + " IS NULL"
			}
		case "$not":
			inner, ok := v.(map[string]any)
			if !ok || len(inner) == 0 {
				return "", filterErr(at(p.text), "$not takes an object of operators")
			}
			for k := range inner {
				if !strings.HasPrefix(k, "$") {
					return "", filterErr(at(p.text), "$not takes an object of operators, not the key %q", k)
				}
			}
			var s string
			if s, err = c.ops(p, inner, depth+1); err == nil {
				term = "NOT coalesce(" + s + ", 0)"
			}
		default:
			return "", filterErr(at(p.text), "unknown operator %q", op)
		}
		if err != nil {
			return "", err
		}
		terms = append(terms, term)
	}
	return "(" + strings.Join(terms, " AND ") + ")", nil
}

// A scalar's class: comparisons match values of the same class only.
type class int

const (
	classNull class = iota
	classNumber
	classText
)

// classTypes are json_type's names of a class's values. true and false
// are numbers (1 and 0): json_extract gives them as integers.
var classTypes = map[class]string{
	classNull:   "('null')",
	classNumber: "('integer', 'real', 'true', 'false')",
	classText:   "('text')",
}

// scalarArg returns v's SQL argument and class, or an error for an array
// or object.
func scalarArg(v any) (any, class, error) {
	switch x := v.(type) {
	case nil:
		return nil, classNull, nil
	case bool:
		if x {
			return int64(1), classNumber, nil
		}
		return int64(0), classNumber, nil
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i, classNumber, nil
		}
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil || math.IsInf(f, 0) {
			return nil, 0, fmt.Errorf("the number %s is out of range", x)
		}
		return f, classNumber, nil
	case string:
		return x, classText, nil
	}
	return nil, 0, errors.New("comparing with an array or object is not supported: give a scalar")
}

// classBound keeps a one-sided comparison on an index-covered path within
// its class, without json_type (which parses the whole document on every
// row). There json_extract gives NULL, an integer or real (numbers, and
// true and false as 1 and 0) or text (strings only: the path never holds
// an array or object), and SQLite orders NULL < numbers < text. So = never
// holds across classes, a number's upper side is bounded by the empty text
// (the least text) and a text's lower side by the empty text. closers are
// the operators that, given a value of the same class, close that side
// instead: then the index serves the range between the two values, not up
// to or from the class's end (a sorted range with a limit would otherwise
// scan that far). bound is "" when the comparison needs none.
func classBound(op string, cls class) (bound string, closers []string) {
	switch {
	case cls == classNumber && (op == "$gt" || op == "$gte"):
		return " < ''", []string{"$lt", "$lte"}
	case cls == classText && (op == "$lt" || op == "$lte"):
		return " >= ''", []string{"$gt", "$gte"}
	}
	return "", nil
}

// closedBy reports whether siblings holds one of closers with a value of
// class cls.
func closedBy(siblings map[string]any, closers []string, cls class) bool {
	for _, op := range closers {
		if v, ok := siblings[op]; ok {
			if _, vc, err := scalarArg(v); err == nil && vc == cls {
				return true
			}
		}
	}
	return false
}

var sqlOps = map[string]string{"$eq": "=", "$ne": "=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}

func (c *compiler) arg(v any) string {
	c.args = append(c.args, v)
	return "?"
}

// compare compiles one comparison. A path that holds an array matches when
// an element does (unless an index covers the path: then it holds scalars).
// siblings are the other operators of its object (nil for none), which may
// close its range on an index-covered path (see classBound).
func (c *compiler) compare(p path, op string, v any, siblings map[string]any) (string, error) {
	a, cls, err := scalarArg(v)
	if err != nil {
		return "", filterErr(at(p.text), "%s: %v", op, err)
	}
	_, scalar := c.scalar[p.text]
	var term string
	if cls == classNull {
		if op != "$eq" && op != "$ne" {
			return "", filterErr(at(p.text), "%s: null can only be compared with $eq and $ne", op)
		}
		// Missing or null; or an array holding null.
		term = p.extract() + " IS NULL"
		if !scalar {
			term = "(" + term + " OR (" + p.jtype() + " = 'array' AND EXISTS (SELECT 1 FROM " + p.each() + " AS e WHERE e.type = 'null')))"
		}
	} else if scalar {
		term = "(" + p.extract() + " " + sqlOps[op] + " " + c.arg(a)
		if bound, closers := classBound(op, cls); bound != "" && !closedBy(siblings, closers, cls) {
			term += " AND " + p.extract() + bound
		}
		term += ")"
	} else {
		cmp := sqlOps[op]
		term = "((" + p.extract() + " " + cmp + " " + c.arg(a) + " AND " + p.jtype() + " IN " + classTypes[cls] + ")" +
			" OR (" + p.jtype() + " = 'array' AND EXISTS (SELECT 1 FROM " + p.each() +
			" AS e WHERE e.type IN " + classTypes[cls] + " AND e.value " + cmp + " " + c.arg(a) + ")))"
	}
	if op == "$ne" {
		term = "NOT coalesce(" + term + ", 0)"
	}
	return term, nil
}

func (c *compiler) in(p path, op string, list []any) (string, error) {
	var term string
	if len(list) == 0 {
		term = "0"
	} else {
		_, scalar := c.scalar[p.text]
		// No null on an index-covered path: an IN list the index serves
		// (equality never holds across classes, see classBound).
		args := make([]any, len(list))
		plain := scalar
		for i, v := range list {
			a, cls, err := scalarArg(v)
			if err != nil {
				return "", filterErr(at(p.text), "%s[%d]: %v", op, i, err)
			}
			args[i] = a
			if cls == classNull {
				plain = false
			}
		}
		if plain {
			marks := make([]string, len(args))
			for i, a := range args {
				marks[i] = c.arg(a)
			}
			term = "(" + p.extract() + " IN (" + strings.Join(marks, ", ") + "))"
		} else {
			parts := make([]string, len(list))
			for i, v := range list {
				s, err := c.compare(p, "$eq", v, nil)
				if err != nil {
					return "", err
				}
				parts[i] = s
			}
			term = "(" + strings.Join(parts, " OR ") + ")"
		}
	}
	if op == "$nin" {
		term = "NOT coalesce(" + term + ", 0)"
	}
	return term, nil
}

// sortKey is one field of a sort order.
type sortKey struct {
	path path
	desc bool
}

// parseSort reads a sort object, keeping its key order: {"a":1,"b":-1}.
func parseSort(text string) ([]sortKey, error) {
	if strings.TrimSpace(text) == "" {
		return nil, nil
	}
	bad := func(format string, args ...any) error {
		return errs.New(errs.InvalidArgument, "sort: "+format, args...)
	}
	if len(text) > MaxFilterBytes {
		return nil, bad("%d bytes; the limit is %d", len(text), MaxFilterBytes)
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(text)))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, bad(`not a JSON object of paths to 1 or -1, e.g. {"updatedAt":-1}`)
	}
	var keys []sortKey
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, bad("not valid JSON: %v", err)
		}
		name, _ := t.(string)
		p, err := parsePath(name)
		if err != nil {
			return nil, bad("%v", err)
		}
		if seen[name] {
			return nil, bad("path %q appears twice", name)
		}
		seen[name] = true
		t, err = dec.Token()
		if err != nil {
			return nil, bad("not valid JSON: %v", err)
		}
		n, _ := t.(json.Number)
		switch n {
		case "1":
			keys = append(keys, sortKey{path: p})
		case "-1":
			keys = append(keys, sortKey{path: p, desc: true})
		default:
			return nil, bad("path %q: the direction must be 1 or -1, not %v", name, t)
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, bad("not valid JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, bad("text after the JSON object")
	}
	if len(keys) > MaxIndexFields {
		return nil, bad("%d fields; the limit is %d", len(keys), MaxIndexFields)
	}
	return keys, nil
}
