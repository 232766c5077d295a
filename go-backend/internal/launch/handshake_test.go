package launch

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestHandshakeWireFormat(t *testing.T) {
	h := Handshake{Anysync: Ready, ProtocolVersion: 1, Addr: "127.0.0.1:43567", PID: 1234, Version: "0.1.0"}
	want := `{"anysync":"ready","protocolVersion":1,"addr":"127.0.0.1:43567","pid":1234,"version":"0.1.0"}` + "\n"
	if got := string(h.MarshalLine()); got != want {
		t.Fatalf("MarshalLine =\n%s want\n%s", got, want)
	}
	// IPv6 addresses keep their brackets and nothing is HTML-escaped.
	h.Addr = "[::1]:1"
	if got := string(h.MarshalLine()); !bytes.Contains([]byte(got), []byte(`"addr":"[::1]:1"`)) {
		t.Fatalf("MarshalLine = %s", got)
	}
}

// countingWriter records how many Write calls it got.
type countingWriter struct {
	bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) { w.writes++; return w.Buffer.Write(p) }

func TestWriteHandshake(t *testing.T) {
	h := Handshake{Anysync: Ready, ProtocolVersion: 1, Addr: "127.0.0.1:1", PID: 9, Version: "0.1.0"}
	var w countingWriter
	if err := WriteHandshake(&w, h); err != nil {
		t.Fatal(err)
	}
	if w.writes != 1 || !bytes.Equal(w.Bytes(), h.MarshalLine()) {
		t.Fatalf("%d writes of %q", w.writes, w.String())
	}
	got, err := ParseHandshake(w.Bytes())
	if err != nil || got != h {
		t.Fatalf("ParseHandshake(round trip) = %+v, %v", got, err)
	}
	_, pw := io.Pipe()
	_ = pw.Close()
	if err := WriteHandshake(pw, h); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("WriteHandshake to a closed pipe = %v", err)
	}
}

func TestParseHandshakeRejects(t *testing.T) {
	for _, in := range []string{
		`{"anysync":"starting","protocolVersion":1,"addr":"a:1","pid":1,"version":"0.1.0"}`,
		`{"anysync":"ready","protocolVersion":1,"pid":1,"version":"0.1.0"}`,
		`{"anysync":"ready","protocolVersion":1,"addr":"a:1","pid":0,"version":"0.1.0"}`,
		`{"anysync":"ready","protocolVersion":1,"addr":"a:1","pid":1}`,
		`{"anysync":"ready","protocolVersion":1,"addr":"a:1","pid":1,"version":"0.1.0","extra":1}`,
		`listening on 127.0.0.1:1`,
	} {
		if _, err := ParseHandshake([]byte(in)); !errors.Is(err, ErrBadHandshake) {
			t.Errorf("ParseHandshake(%s) = %v, want ErrBadHandshake", in, err)
		}
	}
}
