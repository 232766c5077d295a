package store

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/anysync/tauri-plugin-anysync/go-backend/backend/errs"
)

func updateErr(format string, args ...any) error {
	return errs.New(errs.InvalidArgument, "update: "+format, args...)
}

// applyUpdate applies the modifiers of update to the document text doc and
// returns the new text.
func applyUpdate(doc, update string) (string, error) {
	if strings.TrimSpace(update) == "" {
		return "", updateErr(`empty: give an object of modifiers, e.g. {"$set":{"title":"x"}}`)
	}
	if len(update) > MaxFilterBytes+maxUpdateValueBytes {
		return "", updateErr("%d bytes is too long", len(update))
	}
	u, err := decodeJSON(update)
	if err != nil {
		return "", updateErr("not valid JSON: %v", err)
	}
	mods, ok := u.(map[string]any)
	if !ok || len(mods) == 0 {
		return "", updateErr(`not a non-empty object of modifiers, e.g. {"$set":{"title":"x"}}`)
	}
	d, err := decodeJSON(doc)
	if err != nil {
		return "", fmt.Errorf("stored document: %w", err)
	}
	root, ok := d.(map[string]any)
	if !ok {
		return "", fmt.Errorf("stored document is not an object")
	}
	seen := map[string]string{}
	for _, op := range sortedKeys(mods) {
		fields, ok := mods[op].(map[string]any)
		if !ok {
			return "", updateErr("%s takes an object of paths to values", op)
		}
		switch op {
		case "$set", "$unset", "$inc", "$push", "$pull", "$addToSet":
		default:
			return "", updateErr("unknown modifier %q", op)
		}
		for _, key := range sortedKeys(fields) {
			p, err := parsePath(key)
			if err != nil {
				return "", updateErr("%s: %v", op, err)
			}
			if p.segs[0] == "id" {
				return "", updateErr("%s: the path %q would change the id, which cannot change", op, key)
			}
			for other, otherOp := range seen {
				if other == key || strings.HasPrefix(other, key+".") || strings.HasPrefix(key, other+".") {
					return "", updateErr("%s %q conflicts with %s %q: one path per change", op, key, otherOp, other)
				}
			}
			seen[key] = op
			if err := modify(root, p, op, fields[key]); err != nil {
				return "", updateErr("%s at path %q: %v", op, key, err)
			}
		}
	}
	out, err := json.Marshal(root)
	if err != nil {
		return "", updateErr("%v", err)
	}
	return string(out), nil
}

const maxUpdateValueBytes = DefaultMaxDocBytes

// modify applies one modifier at p.
func modify(root map[string]any, p path, op string, v any) error {
	// Walk to the parent, creating objects for $set, $inc, $push, $addToSet.
	create := op != "$unset" && op != "$pull"
	var parent any = root
	for _, seg := range p.segs[:len(p.segs)-1] {
		next, err := child(parent, seg)
		if err != nil {
			return err
		}
		if next == nil {
			if !create {
				return nil // nothing to unset or pull from
			}
			m := map[string]any{}
			if err := setChild(parent, seg, m); err != nil {
				return err
			}
			next = m
		}
		parent = next
	}
	last := p.segs[len(p.segs)-1]
	cur, err := child(parent, last)
	if err != nil {
		return err
	}
	switch op {
	case "$set":
		return setChild(parent, last, v)
	case "$unset":
		switch x := parent.(type) {
		case map[string]any:
			delete(x, last)
		case []any:
			if i, _ := strconv.Atoi(last); i < len(x) {
				x[i] = nil // like MongoDB: an array keeps its length
			}
		}
		return nil
	case "$inc":
		n, ok := v.(json.Number)
		if !ok {
			return fmt.Errorf("the amount must be a number")
		}
		if cur == nil {
			return setChild(parent, last, n)
		}
		c, ok := cur.(json.Number)
		if !ok {
			return fmt.Errorf("the field holds %s, not a number", kindName(cur))
		}
		sum, err := addNumbers(c, n)
		if err != nil {
			return err
		}
		return setChild(parent, last, sum)
	case "$push", "$addToSet":
		if cur == nil {
			return setChild(parent, last, []any{v})
		}
		arr, ok := cur.([]any)
		if !ok {
			return fmt.Errorf("the field holds %s, not an array", kindName(cur))
		}
		if op == "$addToSet" {
			for _, e := range arr {
				if jsonEqual(e, v) {
					return nil
				}
			}
		}
		return setChild(parent, last, append(arr, v))
	case "$pull":
		if cur == nil {
			return nil
		}
		arr, ok := cur.([]any)
		if !ok {
			return fmt.Errorf("the field holds %s, not an array", kindName(cur))
		}
		kept := arr[:0]
		for _, e := range arr {
			if !jsonEqual(e, v) {
				kept = append(kept, e)
			}
		}
		return setChild(parent, last, kept)
	}
	return fmt.Errorf("unknown modifier")
}

func kindName(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	}
	return "null"
}

// child returns the value at seg of v (nil when missing), or an error when
// v cannot have children.
func child(v any, seg string) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		return x[seg], nil
	case []any:
		if !isIndex(seg) {
			return nil, fmt.Errorf("the segment %q is not an index of an array", seg)
		}
		i, _ := strconv.Atoi(seg)
		if i < len(x) {
			return x[i], nil
		}
		return nil, nil
	}
	return nil, fmt.Errorf("the segment %q goes into %s", seg, kindName(v))
}

func setChild(parent any, seg string, v any) error {
	switch x := parent.(type) {
	case map[string]any:
		x[seg] = v
		return nil
	case []any:
		i, _ := strconv.Atoi(seg)
		if !isIndex(seg) || i >= len(x) {
			return fmt.Errorf("index %s is beyond the array's %d elements", seg, len(x))
		}
		x[i] = v
		return nil
	}
	return fmt.Errorf("the segment %q goes into %s", seg, kindName(parent))
}

func addNumbers(a, b json.Number) (json.Number, error) {
	ai, aerr := strconv.ParseInt(string(a), 10, 64)
	bi, berr := strconv.ParseInt(string(b), 10, 64)
	if aerr == nil && berr == nil {
		if (bi > 0 && ai > math.MaxInt64-bi) || (bi < 0 && ai < math.MinInt64-bi) {
			return "", fmt.Errorf("%s + %s overflows a 64-bit integer", a, b)
		}
		return json.Number(strconv.FormatInt(ai+bi, 10)), nil
	}
	af, err1 := strconv.ParseFloat(string(a), 64)
	bf, err2 := strconv.ParseFloat(string(b), 64)
	if err1 != nil || err2 != nil || math.IsInf(af+bf, 0) {
		return "", fmt.Errorf("%s + %s is out of range", a, b)
	}
	return json.Number(strconv.FormatFloat(af+bf, 'g', -1, 64)), nil
}

// jsonEqual compares two decoded JSON values; numbers by value.
func jsonEqual(a, b any) bool {
	switch x := a.(type) {
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		if x == y {
			return true
		}
		xf, e1 := strconv.ParseFloat(string(x), 64)
		yf, e2 := strconv.ParseFloat(string(y), 64)
		return e1 == nil && e2 == nil && xf == yf
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !jsonEqual(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !jsonEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return a == b
}
