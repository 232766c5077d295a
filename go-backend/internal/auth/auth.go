// Package auth checks the bearer token that every RPC must carry.
//
// The token comes from the parent on stdin at launch. A Verifier keeps only
// its SHA-256 digest, compares digests in constant time (so neither the
// content nor the length of the expected token leaks through timing), and
// never logs or prints a token.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors of Verify.
var (
	// ErrMissingToken: no authorization value, or one without a token.
	ErrMissingToken = errors.New("missing bearer token")
	// ErrInvalidToken: a token was sent but it is not the expected one, or
	// the authorization value is not of the form "Bearer <token>".
	ErrInvalidToken = errors.New("invalid bearer token")
)

// Verifier checks presented tokens against the expected one. It is
// immutable and safe for concurrent use.
type Verifier struct {
	want [sha256.Size]byte
}

// NewVerifier returns a Verifier for token, which must not be empty.
func NewVerifier(token string) (*Verifier, error) {
	if token == "" {
		return nil, errors.New("auth: empty token")
	}
	return &Verifier{want: sha256.Sum256([]byte(token))}, nil
}

// String never reveals anything about the token.
func (v *Verifier) String() string { return "auth.Verifier{[redacted]}" }

// Verify checks the values of the "authorization" metadata key. Exactly one
// value of the form "Bearer <token>" (scheme case-insensitive, RFC 7235)
// with the expected token passes. No value, or an empty token, wraps
// ErrMissingToken; anything else wraps ErrInvalidToken. Error messages
// never contain the presented or expected token.
func (v *Verifier) Verify(authorization []string) error {
	switch len(authorization) {
	case 0:
		return ErrMissingToken
	case 1:
	default:
		return fmt.Errorf("%w: %d authorization values, expected one", ErrInvalidToken, len(authorization))
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(authorization[0]), " ")
	if !ok {
		if strings.EqualFold(scheme, "Bearer") || scheme == "" {
			return ErrMissingToken
		}
		return fmt.Errorf("%w: expected the form \"Bearer <token>\"", ErrInvalidToken)
	}
	if !strings.EqualFold(scheme, "Bearer") {
		return fmt.Errorf("%w: the scheme is not Bearer", ErrInvalidToken)
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return ErrMissingToken
	}
	if !v.matches(token) {
		return ErrInvalidToken
	}
	return nil
}

func (v *Verifier) matches(token string) bool {
	got := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(got[:], v.want[:]) == 1
}

// Equal reports whether a and b are equal. It compares their SHA-256
// digests with subtle.ConstantTimeCompare, so its running time depends on
// the lengths of a and b (hashing) but not on their contents or on where
// they differ.
func Equal(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}
