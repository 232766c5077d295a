package launch

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// validToken is what the parent sends: 32 random bytes, base64url, no padding.
func validToken(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func line(version any, token string) string {
	return fmt.Sprintf(`{"protocolVersion":%v,"token":%q}`+"\n", version, token)
}

func TestParseBootstrapAccepts(t *testing.T) {
	tok := validToken(t)
	if len(tok) != 43 {
		t.Fatalf("test token has %d chars, want 43", len(tok))
	}
	for _, in := range []string{
		line(1, tok),
		fmt.Sprintf(`{"token":%q,"protocolVersion":1}`, tok), // key order is free
		fmt.Sprintf(" {\"protocolVersion\": 1, \"token\": %q}\r\n", tok),
		line(1, strings.Repeat("A", MinTokenLen)),
		line(1, strings.Repeat("A", MaxTokenLen)),
	} {
		b, err := ParseBootstrap([]byte(in))
		if err != nil {
			t.Fatalf("ParseBootstrap(%q): %v", in, err)
		}
		if b.ProtocolVersion != 1 || (b.Token != tok && strings.Trim(b.Token, "A") != "") {
			t.Fatalf("ParseBootstrap(%q) = %#v", in, b)
		}
	}
}

func TestParseBootstrapRejects(t *testing.T) {
	tok := validToken(t)
	tests := []struct {
		name, in string
		is       error
		contains []string
	}{
		{"not json", "hello\n", ErrMalformed, []string{"not a JSON object", `expected one line {"protocolVersion":1`}},
		{"truncated", `{"protocolVersion":1,"tok`, ErrMalformed, []string{"not a JSON object"}},
		{"array", `[1]`, ErrMalformed, []string{"not a JSON object"}},
		{"unknown field", fmt.Sprintf(`{"protocolVersion":1,"token":%q,"port":1}`, tok), ErrMalformed, []string{`unknown key "port"`}},
		{"wrong case", fmt.Sprintf(`{"ProtocolVersion":1,"token":%q}`, tok), ErrMalformed, []string{`unknown key "ProtocolVersion"`}},
		{"missing version", fmt.Sprintf(`{"token":%q}`, tok), ErrMalformed, []string{`"protocolVersion" is missing`}},
		{"missing token", `{"protocolVersion":1}`, ErrMalformed, []string{`"token" is missing`}},
		{"version string", line(`"1"`, tok), ErrMalformed, []string{`"protocolVersion"`, "expected a JSON integer"}},
		{"version null", line("null", tok), ErrMalformed, []string{"must not be null"}},
		{"version 2", line(2, tok), ErrProtocolVersion, []string{"speaks launch protocol 2", "speaks 1"}},
		{"version 0", line(0, tok), ErrProtocolVersion, []string{"protocol 0"}},
		{"short token", line(1, tok[:31]), ErrBadToken, []string{"31 characters", "at least 32"}},
		{"empty token", line(1, ""), ErrBadToken, []string{"0 characters"}},
		{"padded token", line(1, tok+"="), ErrBadToken, []string{"base64url", "offset 43"}},
		{"space in token", line(1, tok[:20]+" "+tok[21:]), ErrBadToken, []string{"offset 20"}},
		{"long token", line(1, strings.Repeat("A", MaxTokenLen+1)), ErrBadToken, []string{"513 characters", "at most 512"}},
		{"duplicate token", fmt.Sprintf(`{"protocolVersion":1,"token":%q,"token":%q}`, tok, validToken(t)), ErrMalformed, []string{`duplicate key "token"`}},
		{"duplicate version", fmt.Sprintf(`{"protocolVersion":1,"token":%q,"protocolVersion":2}`, tok), ErrMalformed, []string{`duplicate key "protocolVersion"`}},
		// A token-looking value in a bad field is never echoed.
		{"token as version", line(fmt.Sprintf("%q", tok), tok), ErrMalformed, []string{`"protocolVersion"`, "expected a JSON integer"}},
		{"token under an unknown key", fmt.Sprintf(`{"protocolVersion":1,"tokn":%q}`, tok), ErrMalformed, []string{`unknown key "tokn"`}},
		{"token as a key", fmt.Sprintf(`{"protocolVersion":1,"token":%q,%q:1}`, tok, tok), ErrMalformed, []string{`unknown key "[redacted]"`}},
		{"token in a bad token", line(1, tok+"!"), ErrBadToken, []string{"offset 43"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseBootstrap([]byte(tt.in))
			if !errors.Is(err, tt.is) {
				t.Fatalf("error = %v, want %v", err, tt.is)
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if len(tok) > 0 && strings.Contains(err.Error(), tok[:20]) {
				t.Errorf("error %q leaks the token", err)
			}
		})
	}
}

func TestReadBootstrap(t *testing.T) {
	tok := validToken(t)
	good := line(1, tok)
	// A line of exactly MaxBootstrapBytes, newline included, is accepted.
	pad := MaxBootstrapBytes - len(good)
	exact := fmt.Sprintf(`{"protocolVersion":1,%s"token":%q}`+"\n", strings.Repeat(" ", pad), tok)
	if len(exact) != MaxBootstrapBytes {
		t.Fatalf("exact line is %d bytes", len(exact))
	}

	tests := []struct {
		name string
		r    io.Reader
		is   error
	}{
		{"ok", strings.NewReader(good + "more data"), nil},
		{"ok one byte at a time", iotest.OneByteReader(strings.NewReader(good)), nil},
		{"exactly max", strings.NewReader(exact), nil},
		{"one over max", strings.NewReader(" " + exact), ErrTooLong},
		{"long garbage", strings.NewReader(strings.Repeat("x", 10000)), ErrTooLong},
		{"empty", strings.NewReader(""), ErrMissing},
		{"no newline", strings.NewReader(strings.TrimSuffix(good, "\n")), ErrMissing},
		{"bad json", strings.NewReader("{}\n"), ErrMalformed},
		{"read error", iotest.ErrReader(io.ErrClosedPipe), io.ErrClosedPipe},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := ReadBootstrap(NewReader(tt.r))
			if tt.is == nil {
				if err != nil || b.Token != tok {
					t.Fatalf("ReadBootstrap = %v, %v", b, err)
				}
				return
			}
			if !errors.Is(err, tt.is) {
				t.Fatalf("error = %v, want %v", err, tt.is)
			}
		})
	}
	t.Run("messages", func(t *testing.T) {
		_, err := ReadBootstrap(NewReader(strings.NewReader("")))
		if !strings.Contains(err.Error(), "closed before anything was written") {
			t.Errorf("EOF message: %v", err)
		}
		_, err = ReadBootstrap(NewReader(strings.NewReader(strings.Repeat("x", 5000))))
		if !strings.Contains(err.Error(), "no newline within 4096 bytes") {
			t.Errorf("too-long message: %v", err)
		}
	})
}

func TestReceive(t *testing.T) {
	tok := validToken(t)

	t.Run("parent gone after bootstrap", func(t *testing.T) {
		r, w := io.Pipe()
		go func() {
			// Extra bytes after the line are discarded, not misread.
			_, _ = io.WriteString(w, line(1, tok)+"reserved\n")
		}()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		b, gone, err := Receive(ctx, r)
		if err != nil || b.Token != tok {
			t.Fatalf("Receive = %v, %v", b, err)
		}
		select {
		case <-gone:
			t.Fatal("gone closed while stdin is open")
		default:
		}
		_ = w.Close()
		select {
		case <-gone:
		case <-time.After(10 * time.Second):
			t.Fatal("gone not closed 10s after stdin EOF")
		}
	})

	t.Run("timeout", func(t *testing.T) {
		r, w := io.Pipe()
		defer w.Close()
		cause := errors.New("no complete line within bootstrapTimeout")
		ctx, cancel := context.WithTimeoutCause(t.Context(), 50*time.Millisecond, cause)
		defer cancel()
		start := time.Now()
		_, _, err := Receive(ctx, r)
		if !errors.Is(err, ErrTimeout) || !errors.Is(err, cause) {
			t.Fatalf("error = %v, want ErrTimeout and the cause", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("Receive returned after %v", d)
		}
	})

	t.Run("partial line then timeout", func(t *testing.T) {
		r, w := io.Pipe()
		defer w.Close()
		go func() { _, _ = io.WriteString(w, `{"protocolVersion":1`) }()
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if _, _, err := Receive(ctx, r); !errors.Is(err, ErrTimeout) {
			t.Fatalf("error = %v, want ErrTimeout", err)
		}
	})

	t.Run("bad line fails before the deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		if _, _, err := Receive(ctx, strings.NewReader(line(7, tok))); !errors.Is(err, ErrProtocolVersion) {
			t.Fatalf("error = %v, want ErrProtocolVersion", err)
		}
		if _, _, err := Receive(ctx, strings.NewReader("")); !errors.Is(err, ErrMissing) {
			t.Fatalf("error = %v, want ErrMissing", err)
		}
	})
}

func TestBootstrapRedactsToken(t *testing.T) {
	tok := validToken(t)
	b := Bootstrap{ProtocolVersion: 1, Token: tok}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "bootstrap", b)
	for _, s := range []string{fmt.Sprint(b), fmt.Sprintf("%v %+v %#v %s", b, b, b, b), buf.String()} {
		if strings.Contains(s, tok) {
			t.Errorf("token leaked in %q", s)
		}
		if !strings.Contains(s, "redacted") {
			t.Errorf("%q does not say redacted", s)
		}
	}
}

// FuzzParseBootstrap checks that no input panics, that every rejection
// wraps one of the documented sentinels, and that every acceptance meets
// the protocol's rules.
func FuzzParseBootstrap(f *testing.F) {
	tok := validToken(f)
	for _, seed := range []string{
		line(1, tok),
		line(1, tok) + "\n",
		line(2, tok),
		line(1, "short"),
		line(1, tok+"!"),
		`{"protocolVersion":1}`,
		`{"token":"` + tok + `"}`,
		`{"protocolVersion":1,"token":"` + tok + `","x":0}`,
		`{"protocolVersion":1.0,"token":"` + tok + `"}`,
		`{"protocolVersion":"1","token":"` + tok + `"}`,
		`{"protocolVersion":null,"token":null}`,
		`{"protocolVersion":1,"protocolVersion":2,"token":"` + tok + `"}`,
		`[]`, `null`, ``, "\xff\xfe", `{`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBootstrap(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrProtocolVersion) && !errors.Is(err, ErrBadToken) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if b.ProtocolVersion != 1 || len(b.Token) < MinTokenLen || strings.IndexFunc(b.Token, func(r rune) bool { return !isBase64URL(r) }) >= 0 {
			t.Fatalf("accepted an invalid bootstrap %q", data)
		}
		// The bounded reader gives the same verdict for the same line.
		if len(data) < MaxBootstrapBytes && !bytes.Contains(data, []byte("\n")) {
			b2, err := ReadBootstrap(NewReader(bytes.NewReader(append(data, '\n'))))
			if err != nil || b2 != b {
				t.Fatalf("ReadBootstrap disagrees: %v, %v", b2, err)
			}
		}
	})
}
