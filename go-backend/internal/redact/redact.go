// Package redact keeps what could be the bearer token out of error
// messages. The token is at least 32 characters of the base64url alphabet
// (see package launch), so any text given by a user (an argument, an
// environment value, a config-file key or value, a file name) is shown in
// an error only after every run of 32 or more such characters has been
// replaced: whatever else it holds, it then holds no token.
package redact

import (
	"strconv"
	"strings"
)

// MinRun is the shortest run of base64url characters that is redacted: the
// shortest token the backend accepts.
const MinRun = 32

// MaxShown bounds what Text keeps of a value, so that an error cannot copy
// an arbitrarily large input.
const MaxShown = 200

// Mark replaces each redacted run.
const Mark = "[redacted]"

// Text returns s with every run of MinRun or more base64url characters
// (A-Z a-z 0-9 - _) replaced by Mark, cut to MaxShown bytes.
func Text(s string) string {
	var b strings.Builder
	run := 0 // length of the current run of base64url bytes, not yet written
	flush := func(end int) {
		if run >= MinRun {
			b.WriteString(Mark)
		} else {
			b.WriteString(s[end-run : end])
		}
		run = 0
	}
	for i := 0; i < len(s); i++ {
		if isBase64URL(s[i]) {
			run++
			continue
		}
		flush(i)
		b.WriteByte(s[i])
	}
	flush(len(s))
	out := b.String()
	if len(out) > MaxShown {
		out = strings.ToValidUTF8(out[:MaxShown], "") + "…"
	}
	return out
}

// Quote is Text in double quotes, as %q would show it.
func Quote(s string) string { return strconv.Quote(Text(s)) }

func isBase64URL(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// Error returns err with its message passed through Text; errors.Is and
// errors.As still see err. Nil stays nil.
func Error(err error) error {
	if err == nil {
		return nil
	}
	return redacted{err}
}

type redacted struct{ err error }

func (r redacted) Error() string { return Text(r.err.Error()) }
func (r redacted) Unwrap() error { return r.err }
