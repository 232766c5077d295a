// Package strictjson decodes a JSON object whose keys must match a struct's
// json tags exactly.
//
// encoding/json matches keys case-insensitively and ignores unknown keys;
// for the launch protocol and the config file both are mistakes waiting to
// happen ("ListenAddr" silently accepted, "listenAdr" silently ignored).
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/redact"
)

// ErrNotObject means the input is not a single JSON object.
var ErrNotObject = errors.New("not a JSON object")

// ErrUnknownKey means the object has a key that the target struct does not
// declare (keys are compared case-sensitively).
var ErrUnknownKey = errors.New("unknown key")

// ErrNull means a key is present with the value null.
var ErrNull = errors.New("value must not be null")

// ErrDuplicateKey means the object has the same key twice (after
// unescaping): which value counts would be a guess.
var ErrDuplicateKey = errors.New("duplicate key")

// KeyError reports a problem with one key of the object. It wraps
// ErrUnknownKey, ErrNull, or the decoding error for that key's value.
type KeyError struct {
	// Key is the offending key, as written in the input.
	Key string
	// Allowed lists the keys the target accepts, sorted.
	Allowed []string
	// Raw is the key's value as written in the input (nil for an unknown
	// key).
	Raw json.RawMessage
	// Err is the underlying error.
	Err error
}

func (e *KeyError) Error() string {
	// The key comes from the input: it is shown redacted (see package
	// redact), so that no error copies what could be the token.
	key := redact.Quote(e.Key)
	switch {
	case errors.Is(e.Err, ErrUnknownKey):
		return fmt.Sprintf("unknown key %s (allowed keys, case-sensitive: %s)", key, strings.Join(e.Allowed, ", "))
	case errors.Is(e.Err, ErrDuplicateKey):
		return fmt.Sprintf("duplicate key %s: each key may appear once", key)
	default:
		return fmt.Sprintf("key %s: %v", key, e.Err)
	}
}

func (e *KeyError) Unwrap() error { return e.Err }

// jsonSpace is the whitespace JSON allows between tokens (RFC 8259).
const jsonSpace = " \t\r\n"

// Unmarshal decodes data, which must be exactly one JSON object, into v, a
// non-nil pointer to a struct. Every key of the object must equal (byte for
// byte) the json tag name of one of v's fields, and no value may be null.
// On failure v may be partially filled and the error is one of: a wrapped
// ErrNotObject (syntax errors included), or a *KeyError. A key that
// appears twice (byte for byte once unescaped) is a *KeyError wrapping
// ErrDuplicateKey.
func Unmarshal(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("strictjson: Unmarshal target must be a non-nil pointer to a struct, got %T", v))
	}
	allowed := keysOf(rv.Elem().Type())

	// JSON's own whitespace only: bytes.TrimSpace would also accept a
	// form feed, a vertical tab or a no-break space around the object.
	trimmed := bytes.Trim(data, jsonSpace)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return fmt.Errorf("%w: input does not start with '{'", ErrNotObject)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &raw); err != nil {
		return fmt.Errorf("%w: %w", ErrNotObject, err)
	}
	if k, ok := duplicateKey(trimmed); ok {
		return &KeyError{Key: k, Allowed: allowed, Err: ErrDuplicateKey}
	}
	// Report keys in a stable order so error messages are reproducible.
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			return &KeyError{Key: k, Allowed: allowed, Err: ErrUnknownKey}
		}
		if bytes.Equal(bytes.TrimSpace(raw[k]), []byte("null")) {
			return &KeyError{Key: k, Allowed: allowed, Raw: raw[k], Err: ErrNull}
		}
	}
	for _, k := range keys {
		field := rv.Elem().FieldByIndex(fieldIndex(rv.Elem().Type(), k))
		if err := json.Unmarshal(raw[k], field.Addr().Interface()); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				err = fmt.Errorf("expected a JSON %s, got %s", jsonKind(field.Type()), te.Value)
			}
			return &KeyError{Key: k, Allowed: allowed, Raw: raw[k], Err: err}
		}
	}
	return nil
}

// duplicateKey returns the first key that data, a valid JSON object,
// holds twice. encoding/json keeps the last value silently.
func duplicateKey(data []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", false
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", false
		}
		k, ok := t.(string)
		if !ok {
			return "", false
		}
		if seen[k] {
			return k, true
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return "", false
		}
	}
	return "", false
}

// keysOf returns the sorted json names of t's exported fields.
func keysOf(t reflect.Type) []string {
	var keys []string
	for f := range t.Fields() {
		if name, ok := jsonName(f); ok {
			keys = append(keys, name)
		}
	}
	slices.Sort(keys)
	return keys
}

func fieldIndex(t reflect.Type, key string) []int {
	for f := range t.Fields() {
		if name, ok := jsonName(f); ok && name == key {
			return f.Index
		}
	}
	panic("strictjson: key vanished: " + key) // unreachable: key was checked against keysOf
}

func jsonName(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	tag := f.Tag.Get("json")
	if tag == "-" {
		return "", false
	}
	name, _, _ := strings.Cut(tag, ",")
	if name == "" {
		name = f.Name
	}
	return name, true
}

func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	default:
		return t.Kind().String()
	}
}
