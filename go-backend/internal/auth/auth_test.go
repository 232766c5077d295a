package auth

import (
	"errors"
	"strings"
	"testing"
)

const token = "mF0Vq3nE4r7b1xX9kQ2pZcLw8TfYhG5sJdA6uRvN0eI"

func TestVerify(t *testing.T) {
	v, err := NewVerifier(token)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		md   []string
		want error
	}{
		{"right", []string{"Bearer " + token}, nil},
		{"scheme case-insensitive", []string{"bearer " + token}, nil},
		{"surrounding spaces", []string{"  Bearer   " + token + " "}, nil},
		{"no metadata", nil, ErrMissingToken},
		{"empty value", []string{""}, ErrMissingToken},
		{"bearer only", []string{"Bearer"}, ErrMissingToken},
		{"bearer space", []string{"Bearer  "}, ErrMissingToken},
		{"wrong token", []string{"Bearer " + strings.ToUpper(token)}, ErrInvalidToken},
		{"prefix of token", []string{"Bearer " + token[:42]}, ErrInvalidToken},
		{"token plus extra", []string{"Bearer " + token + "x"}, ErrInvalidToken},
		{"token without scheme", []string{token}, ErrInvalidToken},
		{"basic scheme", []string{"Basic " + token}, ErrInvalidToken},
		{"two values", []string{"Bearer " + token, "Bearer " + token}, ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Verify(tt.md)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if strings.Contains(err.Error(), token[:10]) || strings.Contains(strings.ToLower(err.Error()), strings.ToLower(token[:10])) {
				t.Fatalf("error %q leaks a token", err)
			}
		})
	}
}

func TestNewVerifier(t *testing.T) {
	if _, err := NewVerifier(""); err == nil {
		t.Fatal("NewVerifier(\"\") succeeded")
	}
	v, _ := NewVerifier(token)
	if strings.Contains(v.String(), token) {
		t.Fatal("String leaks the token")
	}
}

func TestEqual(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"", "", true},
		{token, token, true},
		{token, token[:42], false},
		{token, token + "x", false},
		{"a", "b", false},
		{token, "", false},
	} {
		if got := Equal(tt.a, tt.b); got != tt.want {
			t.Errorf("Equal(%q, %q) = %v", tt.a, tt.b, got)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	v, _ := NewVerifier(token)
	md := []string{"Bearer " + token}
	for b.Loop() {
		if err := v.Verify(md); err != nil {
			b.Fatal(err)
		}
	}
}
