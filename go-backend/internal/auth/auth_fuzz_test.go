package auth

import (
	"errors"
	"strings"
	"testing"
)

// FuzzVerify presents arbitrary authorization values. Verify must never
// panic, must pass only exactly one value that carries the expected token
// after a case-insensitive "Bearer" scheme, must wrap one of its two
// sentinels when it refuses, and must never echo what was presented.
func FuzzVerify(f *testing.F) {
	v, err := NewVerifier(token)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []struct{ a, b string }{
		{"Bearer " + token, ""},
		{"bEaReR  " + token + "  ", ""},
		{"Bearer\t" + token, ""},
		{"Bearer " + token, "Bearer " + token},
		{"Basic " + token, ""},
		{token, ""},
		{"Bearer " + token[:42], ""},
		{"Bearer " + token + "\x00", ""},
		{"", ""},
		{"Bearer", "x"},
		{" ", ""},
	} {
		f.Add(seed.a, seed.b)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		// b == "" stands for a single value; the empty second value is
		// covered by a == "".
		values := []string{a}
		if b != "" {
			values = append(values, b)
		}
		err := v.Verify(values)
		if err == nil {
			scheme, rest, _ := strings.Cut(strings.TrimSpace(a), " ")
			if len(values) != 1 || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(rest) != token {
				t.Fatalf("Verify accepted %q", values)
			}
			return
		}
		if !errors.Is(err, ErrMissingToken) && !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("Verify(%q) = %v, wraps no sentinel", values, err)
		}
		for _, presented := range values {
			p := strings.TrimSpace(presented)
			if len(p) >= 8 && strings.Contains(err.Error(), p) {
				t.Fatalf("error %q echoes the presented value %q", err, presented)
			}
		}
		// The canonical form of the real token is always accepted.
		if err := v.Verify([]string{"Bearer " + token}); err != nil {
			t.Fatalf("the real token was refused: %v", err)
		}
	})
}
