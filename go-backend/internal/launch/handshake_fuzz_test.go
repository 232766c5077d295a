package launch

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseHandshake feeds arbitrary bytes as a handshake line. ParseHandshake
// must never panic, must wrap ErrBadHandshake when it refuses, and whatever
// it accepts must meet the protocol's rules and survive MarshalLine and a
// second parse unchanged.
func FuzzParseHandshake(f *testing.F) {
	for _, seed := range []string{
		`{"anysync":"ready","protocolVersion":1,"addr":"127.0.0.1:43567","pid":1234,"version":"0.1.0"}` + "\n",
		`{"anysync":"ready","protocolVersion":1,"addr":"[::1]:1","pid":1,"version":"0.1.0"}` + "\r\n",
		`{"version":"0.1.0","pid":1,"addr":"a:1","protocolVersion":2,"anysync":"ready"}`,
		`{"anysync":"ready","protocolVersion":1,"addr":"127.0.0.1:1","pid":-1,"version":"x"}`,
		`{"anysync":"ready","protocolVersion":1,"addr":"127.0.0.1:1","pid":1e3,"version":"x"}`,
		`{"anysync":"ready","protocolVersion":1,"addr":"127.0.0.1:1","pid":1,"version":"x","anysync":"no"}`,
		`{"anysync":"ready","protocolVersion":1,"addr":"\u003c\u2028","pid":1,"version":"\ud800"}`,
		`{"anysync":null}`, `{"Anysync":"ready"}`, `[]`, ``, `{`, "\xff",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHandshake(data)
		if err != nil {
			if !errors.Is(err, ErrBadHandshake) {
				t.Fatalf("error %v does not wrap ErrBadHandshake", err)
			}
			return
		}
		if h.Anysync != Ready || h.Addr == "" || h.PID <= 0 || h.Version == "" {
			t.Fatalf("accepted an invalid handshake %+v from %q", h, data)
		}
		line := h.MarshalLine()
		if bytes.Count(line, []byte("\n")) != 1 || !bytes.HasSuffix(line, []byte("\n")) {
			t.Fatalf("MarshalLine(%+v) is not exactly one line: %q", h, line)
		}
		again, err := ParseHandshake(line)
		if err != nil || again != h {
			t.Fatalf("round trip of %+v: %+v, %v", h, again, err)
		}
	})
}

// FuzzHandshakeRoundTrip builds handshakes from arbitrary field values: the
// line MarshalLine writes is always exactly one line (whatever the strings
// hold, newlines included), and ParseHandshake reads back the same fields
// from every valid one.
func FuzzHandshakeRoundTrip(f *testing.F) {
	f.Add("127.0.0.1:43567", 1, 1234, "0.1.0")
	f.Add("[::1]:1", 1, 1, "1.2.3-rc.1+build")
	f.Add("127.0.0.1:1\n{\"anysync\":\"ready\"}", 1, 7, "line\nbreak")
	f.Add("<script>&", 0, -5, "\u2028\u2029")
	f.Add("", 1, 1, "")
	f.Fuzz(func(t *testing.T, addr string, protocol, pid int, version string) {
		h := Handshake{Anysync: Ready, ProtocolVersion: protocol, Addr: addr, PID: pid, Version: version}
		line := h.MarshalLine()
		if bytes.Count(line, []byte("\n")) != 1 || !bytes.HasSuffix(line, []byte("\n")) {
			t.Fatalf("MarshalLine(%+v) is not exactly one line: %q", h, line)
		}
		if !strings.HasPrefix(string(line), `{"anysync":"ready","protocolVersion":`) {
			t.Fatalf("keys out of wire order: %q", line)
		}
		got, err := ParseHandshake(line)
		valid := addr != "" && pid > 0 && version != ""
		if !valid {
			if err == nil {
				t.Fatalf("ParseHandshake accepted %+v", got)
			}
			return
		}
		if err != nil {
			t.Fatalf("ParseHandshake(MarshalLine(%+v)) = %v", h, err)
		}
		// encoding/json writes invalid UTF-8 as U+FFFD, one per bad byte.
		want := h
		want.Addr, want.Version = validUTF8(addr), validUTF8(version)
		if got != want {
			t.Fatalf("round trip: got %+v, want %+v", got, want)
		}
	})
}

// validUTF8 replaces every byte of an invalid UTF-8 sequence with U+FFFD,
// as encoding/json does.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
