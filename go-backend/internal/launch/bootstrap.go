// Package launch implements the backend's side of the launch protocol with
// its parent process (the Rust plugin):
//
//  1. the parent writes one bootstrap line on the child's stdin,
//     {"protocolVersion":1,"token":"<base64url of 32 random bytes>"}\n,
//     and keeps stdin open for the child's life;
//  2. the child binds its listener and writes one handshake line on stdout,
//     {"anysync":"ready","protocolVersion":1,"addr":"127.0.0.1:43567","pid":1234,"version":"0.1.0"}\n;
//  3. end of file on stdin afterwards means the parent is gone.
//
// The codecs are strict: unknown keys, a missing newline, an oversized line,
// a short token or another protocol version are errors that name what was
// wrong and what was expected.
package launch

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/strictjson"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/version"
)

// MaxBootstrapBytes bounds the bootstrap line, newline included.
const MaxBootstrapBytes = 4096

// MinTokenLen is the shortest token accepted. The parent sends 32 random
// bytes as unpadded base64url: 43 characters.
const MinTokenLen = 32

// MaxTokenLen is the longest token accepted: a longer one is a mistake, and
// every call would carry it.
const MaxTokenLen = 512

// Sentinel errors of the bootstrap. Every error ParseBootstrap,
// ReadBootstrap and Receive return wraps one of them, except a failure to
// read stdin at all, which wraps the read error instead.
var (
	// ErrMissing: stdin ended before a complete line arrived.
	ErrMissing = errors.New("bootstrap line missing")
	// ErrTooLong: no newline within MaxBootstrapBytes.
	ErrTooLong = errors.New("bootstrap line too long")
	// ErrMalformed: the line is not the expected JSON object.
	ErrMalformed = errors.New("bootstrap line malformed")
	// ErrProtocolVersion: the parent speaks another protocol version.
	ErrProtocolVersion = errors.New("unsupported protocol version")
	// ErrBadToken: the token is too short or too long, or has characters
	// outside the base64url alphabet.
	ErrBadToken = errors.New("bad token")
	// ErrTimeout: nothing complete arrived before the deadline.
	ErrTimeout = errors.New("bootstrap timed out")
)

// expected is appended to bootstrap errors so the message says what to send.
const expected = `expected one line {"protocolVersion":1,"token":"<base64url of 32 random bytes>"} followed by "\n"`

// Bootstrap is the parent's first message. Its token is a secret: Bootstrap
// renders it redacted in logs and with fmt's %v and %+v.
type Bootstrap struct {
	// ProtocolVersion is the launch-protocol version the parent speaks.
	ProtocolVersion int `json:"protocolVersion"`
	// Token is the bearer token every RPC must carry.
	Token string `json:"token"`
}

// String redacts the token.
func (b Bootstrap) String() string {
	return fmt.Sprintf("{protocolVersion:%d token:[redacted %d chars]}", b.ProtocolVersion, len(b.Token))
}

// GoString redacts the token for %#v.
func (b Bootstrap) GoString() string { return "launch.Bootstrap" + b.String() }

// LogValue redacts the token in slog records.
func (b Bootstrap) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int("protocolVersion", b.ProtocolVersion),
		slog.String("token", "[redacted]"),
	)
}

// rawBootstrap tells absent keys from zero values.
type rawBootstrap struct {
	ProtocolVersion *int    `json:"protocolVersion"`
	Token           *string `json:"token"`
}

// ParseBootstrap decodes and validates one bootstrap line; a trailing "\n"
// or "\r\n" is allowed. The error wraps ErrMalformed, ErrProtocolVersion or
// ErrBadToken.
func ParseBootstrap(line []byte) (Bootstrap, error) {
	var raw rawBootstrap
	if err := strictjson.Unmarshal(line, &raw); err != nil {
		return Bootstrap{}, fmt.Errorf("%w: %w; %s", ErrMalformed, err, expected)
	}
	if raw.ProtocolVersion == nil {
		return Bootstrap{}, fmt.Errorf("%w: key \"protocolVersion\" is missing; %s", ErrMalformed, expected)
	}
	if raw.Token == nil {
		return Bootstrap{}, fmt.Errorf("%w: key \"token\" is missing; %s", ErrMalformed, expected)
	}
	b := Bootstrap{ProtocolVersion: *raw.ProtocolVersion, Token: *raw.Token}
	if b.ProtocolVersion != version.ProtocolVersion {
		return Bootstrap{}, fmt.Errorf("%w: the parent speaks launch protocol %d, this backend (version %s) speaks %d; install matching versions of the plugin and the backend",
			ErrProtocolVersion, b.ProtocolVersion, version.Version, version.ProtocolVersion)
	}
	if len(b.Token) < MinTokenLen {
		return Bootstrap{}, fmt.Errorf("%w: the token has %d characters, at least %d are required (expected base64url of 32 random bytes, 43 characters)",
			ErrBadToken, len(b.Token), MinTokenLen)
	}
	if len(b.Token) > MaxTokenLen {
		return Bootstrap{}, fmt.Errorf("%w: the token has %d characters, at most %d are allowed (expected base64url of 32 random bytes, 43 characters)",
			ErrBadToken, len(b.Token), MaxTokenLen)
	}
	if i := strings.IndexFunc(b.Token, func(r rune) bool { return !isBase64URL(r) }); i >= 0 {
		return Bootstrap{}, fmt.Errorf("%w: the token has a character outside the base64url alphabet (A-Z a-z 0-9 - _) at offset %d", ErrBadToken, i)
	}
	return b, nil
}

func isBase64URL(r rune) bool {
	return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_'
}

// ReadBootstrap reads one line from r, reading at most MaxBootstrapBytes
// from it, and parses it with ParseBootstrap. It blocks until a newline,
// end of file, an error, or MaxBootstrapBytes without a newline; it has no
// deadline of its own (see Receive). Errors wrap ErrMissing, ErrTooLong, an
// error of ParseBootstrap, or the read error.
//
// r must be the reader later used to watch for end of file: ReadBootstrap
// may buffer bytes past the newline.
func ReadBootstrap(r *bufio.Reader) (Bootstrap, error) {
	line, err := readLine(r)
	if err != nil {
		return Bootstrap{}, err
	}
	return ParseBootstrap(line)
}

// NewReader returns the buffered reader ReadBootstrap expects: its buffer is
// exactly MaxBootstrapBytes, which is what bounds the line.
func NewReader(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, MaxBootstrapBytes) }

func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	switch {
	case err == nil:
		return line, nil
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, fmt.Errorf("%w: no newline within %d bytes; %s", ErrTooLong, MaxBootstrapBytes, expected)
	case errors.Is(err, io.EOF) && len(line) == 0:
		return nil, fmt.Errorf("%w: stdin was closed before anything was written; %s", ErrMissing, expected)
	case errors.Is(err, io.EOF):
		return nil, fmt.Errorf("%w: stdin was closed after %d bytes without a newline; %s", ErrMissing, len(line), expected)
	default:
		return nil, fmt.Errorf("reading the bootstrap line from stdin: %w", err)
	}
}

// Receive reads the bootstrap line from r in a goroutine and waits for it
// until ctx is done (the caller sets the bootstrap timeout on ctx). On
// success it returns the bootstrap and a channel that is closed when r
// reaches end of file or fails afterwards: the parent is gone. Bytes after
// the bootstrap line are read and discarded (reserved for later protocol
// versions).
//
// When ctx ends first, the error wraps ErrTimeout and context.Cause(ctx).
// The reading goroutine then stays blocked in r.Read until r yields; stdin
// cannot be interrupted portably, so callers are expected to exit.
func Receive(ctx context.Context, r io.Reader) (Bootstrap, <-chan struct{}, error) {
	type result struct {
		b   Bootstrap
		err error
	}
	res := make(chan result, 1)
	gone := make(chan struct{})
	go func() {
		br := NewReader(r)
		b, err := ReadBootstrap(br)
		res <- result{b, err}
		if err != nil {
			return
		}
		// Discard through br, not r: br may already hold bytes past the line.
		_, _ = io.Copy(io.Discard, br)
		close(gone)
	}()
	select {
	case got := <-res:
		if got.err != nil {
			return Bootstrap{}, nil, got.err
		}
		return got.b, gone, nil
	case <-ctx.Done():
		// A result may have raced with the deadline; prefer it.
		select {
		case got := <-res:
			if got.err == nil {
				return got.b, gone, nil
			}
			return Bootstrap{}, nil, got.err
		default:
		}
		return Bootstrap{}, nil, fmt.Errorf("%w: %w; %s", ErrTimeout, context.Cause(ctx), expected)
	}
}
