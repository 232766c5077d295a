package store

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// membersByDecoder lists obj's top-level keys and compacted raw values the
// slow, sure way.
func membersByDecoder(t *testing.T, obj string) (keys, values []string) {
	dec := json.NewDecoder(strings.NewReader(obj))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		values = append(values, compact(t, string(raw)))
	}
	return keys, values
}

func compact(t *testing.T, raw string) string {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(raw)); err != nil {
		t.Fatalf("compact %q: %v", raw, err)
	}
	return b.String()
}

// FuzzEachMember: on every valid JSON object, the member scan finds the
// keys (unescaped) and values encoding/json finds, in order.
func FuzzEachMember(f *testing.F) {
	for _, seed := range []string{
		`{}`, ` { } `, `{"id":"a"}`, `{"a":1,"id":"x","b":[1,{"c":"}"}]}`,
		`{"\u0069d":"escaped key"}`, `{"a\"b":"q\"uote","id":"\\"}`,
		"{\n\t\"n\" : -1.5e3 ,\r\n \"t\":true,\"f\":false,\"z\":null}",
		`{"deep":{"a":[[[{"b":"]]"}]]],"s":"{"}}`, `{"id":"a","id":"b"}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, obj string) {
		trimmed := strings.TrimLeft(obj, " \t\r\n")
		// Documents arrive as protobuf strings: UTF-8 (encoding/json would
		// replace invalid bytes in the keys it returns).
		if !strings.HasPrefix(trimmed, "{") || !utf8.ValidString(trimmed) || !json.Valid([]byte(trimmed)) {
			return
		}
		wantKeys, wantValues := membersByDecoder(t, trimmed)
		var keys, values []string
		_ = eachMember(trimmed, func(key, raw string) error {
			keys = append(keys, key)
			values = append(values, compact(t, raw))
			return nil
		})
		if strings.Join(keys, "\x00") != strings.Join(wantKeys, "\x00") || strings.Join(values, "\x00") != strings.Join(wantValues, "\x00") {
			t.Fatalf("%q: scan found %q = %q, want %q = %q", trimmed, keys, values, wantKeys, wantValues)
		}
	})
}
