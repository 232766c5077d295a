package strictjson

import (
	"errors"
	"strings"
	"testing"
)

type target struct {
	Name  *string `json:"name"`
	Count *int    `json:"count"`
	On    bool    `json:"on,omitempty"`
	Skip  string  `json:"-"`
	plain int
}

func TestUnmarshalAccepts(t *testing.T) {
	var v target
	if err := Unmarshal([]byte(" {\"name\":\"a\",\"count\":3,\"on\":true}\r\n"), &v); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if *v.Name != "a" || *v.Count != 3 || !v.On {
		t.Fatalf("got %+v", v)
	}
	var empty target
	if err := Unmarshal([]byte("{}"), &empty); err != nil || empty.Name != nil {
		t.Fatalf("empty object: %v %+v", err, empty)
	}
	_ = empty.plain
}

func TestUnmarshalRejects(t *testing.T) {
	tests := []struct {
		name, in string
		is       error
		contains string
	}{
		{"unknown key", `{"name":"a","nmae":"b"}`, ErrUnknownKey, `unknown key "nmae" (allowed keys, case-sensitive: count, name, on)`},
		{"wrong case", `{"Name":"a"}`, ErrUnknownKey, `"Name"`},
		{"ignored field", `{"Skip":"x"}`, ErrUnknownKey, `"Skip"`},
		{"null", `{"name":null}`, ErrNull, `"name": value must not be null`},
		{"type", `{"count":"3"}`, nil, `key "count": expected a JSON integer, got string`},
		{"fraction", `{"count":1.5}`, nil, `expected a JSON integer`},
		{"array", `[1]`, ErrNotObject, "does not start"},
		{"top null", `null`, ErrNotObject, "does not start"},
		{"empty", ``, ErrNotObject, "does not start"},
		{"syntax", `{"name":`, ErrNotObject, "unexpected end"},
		{"trailing", `{"name":"a"} {}`, ErrNotObject, "invalid character"},
		{"duplicate", `{"name":"a","count":1,"name":"b"}`, ErrDuplicateKey, `duplicate key "name"`},
		{"duplicate escaped", `{"name":"a","n\u0061me":"b"}`, ErrDuplicateKey, `duplicate key "name"`},
		{"duplicate unknown", `{"x":1,"x":2}`, ErrDuplicateKey, `duplicate key "x"`},
		{"token-like key", `{"mF0Vq3nE4r7b1xX9kQ2pZcLw8TfYhG5sJdA6uRvN0eI":1}`, ErrUnknownKey, `unknown key "[redacted]"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v target
			err := Unmarshal([]byte(tt.in), &v)
			if err == nil {
				t.Fatalf("Unmarshal(%q) = nil, want error", tt.in)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v does not wrap %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error %q does not contain %q", err, tt.contains)
			}
		})
	}
}

func TestUnmarshalPanicsOnBadTarget(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a non-pointer target")
		}
	}()
	_ = Unmarshal([]byte("{}"), target{})
}
