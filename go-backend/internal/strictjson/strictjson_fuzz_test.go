package strictjson

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
)

// fuzzTarget has a field of every kind the launch protocol and the config
// file use.
type fuzzTarget struct {
	Text   *string  `json:"text"`
	Int    *int     `json:"int"`
	Int64  *int64   `json:"int64"`
	Flag   *bool    `json:"flag"`
	Plain  string   `json:"plain,omitempty"`
	List   []string `json:"list"`
	Hidden string   `json:"-"`
	NoTag  int
}

// FuzzUnmarshal feeds arbitrary bytes. Unmarshal must never panic; it
// either fails with ErrNotObject or a *KeyError naming a key of the input,
// or it succeeds on an object whose every key is one of the target's tags
// (byte for byte) with no null value, and encoding/json agrees on the
// values.
func FuzzUnmarshal(f *testing.F) {
	for _, seed := range []string{
		`{"text":"a","int":1,"int64":-9007199254740993,"flag":true,"plain":"p","list":["x"],"NoTag":3}`,
		`{"Text":"a"}`, `{"text":null}`, `{"-":1}`, `{"Hidden":"h"}`, `{"int":1.0}`, `{"int":1e2}`,
		`{"int":99999999999999999999}`, `{"text":"a","text":"b"}`, `{"list":[null]}`,
		`{"text":"\ud800"}`, `{} {}`, `{"a":1}garbage`, " \t{}\r\n", `[]`, `null`, ``, "\xef\xbb\xbf{}",
	} {
		f.Add([]byte(seed))
	}
	allowed := keysOf(reflect.TypeFor[fuzzTarget]())
	f.Fuzz(func(t *testing.T, data []byte) {
		var got fuzzTarget
		err := Unmarshal(data, &got)
		if err != nil {
			var ke *KeyError
			switch {
			case errors.Is(err, ErrNotObject):
			case errors.As(err, &ke):
				var raw map[string]json.RawMessage
				if json.Unmarshal(data, &raw) != nil {
					t.Fatalf("KeyError %v for input that is not an object", err)
				}
				if _, ok := raw[ke.Key]; !ok {
					t.Fatalf("KeyError names %q, which the input lacks", ke.Key)
				}
			default:
				t.Fatalf("error %v is neither ErrNotObject nor a *KeyError", err)
			}
			return
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(data, &raw); err != nil {
			t.Fatalf("Unmarshal accepted %q, which is not a JSON object: %v", data, err)
		}
		for k, v := range raw {
			if !slices.Contains(allowed, k) {
				t.Fatalf("Unmarshal accepted unknown key %q", k)
			}
			if string(v) == "null" {
				t.Fatalf("Unmarshal accepted null for %q", k)
			}
		}
		var std fuzzTarget
		if err := json.Unmarshal(data, &std); err != nil {
			t.Fatalf("encoding/json rejects what Unmarshal accepted: %v", err)
		}
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(std)
		if string(a) != string(b) {
			t.Fatalf("values differ from encoding/json: %s vs %s", a, b)
		}
	})
}
