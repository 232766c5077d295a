package launch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/strictjson"
)

// Ready is the value of the handshake's "anysync" key.
const Ready = "ready"

// ErrBadHandshake is wrapped by every error of ParseHandshake.
var ErrBadHandshake = errors.New("bad handshake line")

// Handshake is the one line the backend prints on stdout once it listens.
// The field order is the wire order.
type Handshake struct {
	// Anysync is always Ready; it lets the parent recognise the line.
	Anysync string `json:"anysync"`
	// ProtocolVersion is the launch-protocol version the backend speaks.
	ProtocolVersion int `json:"protocolVersion"`
	// Addr is the address the backend really listens on, host:port.
	Addr string `json:"addr"`
	// PID is the backend's process id.
	PID int `json:"pid"`
	// Version is the backend's semantic version.
	Version string `json:"version"`
}

// MarshalLine encodes h as one JSON line ending in "\n", keys in the wire
// order: anysync, protocolVersion, addr, pid, version.
func (h Handshake) MarshalLine() []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// Encoding a struct of strings and ints cannot fail.
	if err := enc.Encode(h); err != nil {
		panic(fmt.Sprintf("launch: encoding handshake: %v", err))
	}
	return buf.Bytes() // Encode appends the "\n"
}

// WriteHandshake writes h's line to w in a single Write call, so the parent
// never sees half a line followed by anything else.
func WriteHandshake(w io.Writer, h Handshake) error {
	if _, err := w.Write(h.MarshalLine()); err != nil {
		return fmt.Errorf("writing the handshake line to stdout: %w", err)
	}
	return nil
}

// ParseHandshake decodes and checks a handshake line (the parent's side;
// used by tests and tools). A trailing newline is allowed. The error wraps
// ErrBadHandshake.
func ParseHandshake(line []byte) (Handshake, error) {
	var h Handshake
	if err := strictjson.Unmarshal(line, &h); err != nil {
		return Handshake{}, fmt.Errorf("%w: %w", ErrBadHandshake, err)
	}
	switch {
	case h.Anysync != Ready:
		return Handshake{}, fmt.Errorf("%w: \"anysync\" is %q, expected %q", ErrBadHandshake, h.Anysync, Ready)
	case h.Addr == "":
		return Handshake{}, fmt.Errorf("%w: \"addr\" is missing", ErrBadHandshake)
	case h.PID <= 0:
		return Handshake{}, fmt.Errorf("%w: \"pid\" is %d, expected a positive process id", ErrBadHandshake, h.PID)
	case h.Version == "":
		return Handshake{}, fmt.Errorf("%w: \"version\" is missing", ErrBadHandshake)
	}
	return h, nil
}
