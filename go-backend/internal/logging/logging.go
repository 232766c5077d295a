// Package logging sets up the backend's structured logs: JSON records, one
// per line, on stderr only (stdout carries the handshake line and nothing
// else). The parent parses each line and forwards it to its own logger.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/grpclog"
)

// New returns a logger writing JSON records at level and above to w
// (os.Stderr in the binary). The handler writes each record with one Write
// call, so concurrent records never interleave.
func New(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// Error returns an attribute for err under the conventional key "error".
func Error(err error) slog.Attr {
	if err == nil {
		return slog.String("error", "")
	}
	return slog.String("error", err.Error())
}

// RouteGRPC sends grpc-go's internal logs to logger, with the attribute
// component="grpc", so that no library writes to stdout or writes
// non-JSON lines to stderr. grpc's INFO records become debug records
// (they are chatty: one per connection event), WARNING warn, ERROR error.
//
// grpc writes some of these records before any authentication, copying
// what a peer sent (a malformed metadata value, a method name), and a peer
// can make it write them as fast as it sends. So every quoted string in a
// message (grpc quotes peer-supplied values with %q) is replaced by "…",
// a message is cut to MaxGRPCMessageBytes, and at most GRPCRecordsPerSecond
// records are written per second; a warning then counts those dropped.
//
// It must be called before any other grpc function (grpclog.SetLoggerV2 is
// not safe for concurrent use) and at most once per process.
func RouteGRPC(logger *slog.Logger) {
	grpclog.SetLoggerV2(&grpcLogger{l: logger.With(slog.String("component", "grpc"))})
}

// Bounds of grpc-go's records.
const (
	// MaxGRPCMessageBytes bounds one grpc record's message.
	MaxGRPCMessageBytes = 256
	// GRPCRecordsPerSecond bounds how many grpc records are written per
	// second.
	GRPCRecordsPerSecond = 20
)

// quoted matches a Go-quoted string, as %q writes it.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// grpcLogger adapts slog to grpclog.LoggerV2.
type grpcLogger struct {
	l *slog.Logger
	// now is the clock; nil means time.Now.
	now func() time.Time

	mu      sync.Mutex
	window  time.Time // start of the current one-second window
	written int       // records written in the window
	dropped int       // records dropped since the last summary
}

var _ grpclog.LoggerV2 = (*grpcLogger)(nil)

func (g *grpcLogger) log(level slog.Level, msg string) {
	ctx := context.Background()
	if !g.l.Enabled(ctx, level) {
		return
	}
	now := time.Now
	if g.now != nil {
		now = g.now
	}
	g.mu.Lock()
	t := now()
	if t.Sub(g.window) >= time.Second {
		g.window, g.written = t, 0
	}
	if g.written >= GRPCRecordsPerSecond {
		g.dropped++
		g.mu.Unlock()
		return
	}
	g.written++
	dropped := g.dropped
	g.dropped = 0
	g.mu.Unlock()
	if dropped > 0 {
		g.l.LogAttrs(ctx, slog.LevelWarn, "grpc log records dropped", slog.Int("dropped", dropped),
			slog.Int("perSecond", GRPCRecordsPerSecond))
	}
	g.l.Log(ctx, level, sanitize(msg))
}

// sanitize removes what grpc copies from a peer: quoted strings, and
// anything beyond MaxGRPCMessageBytes.
func sanitize(msg string) string {
	msg = quoted.ReplaceAllLiteralString(msg, `"…"`)
	if len(msg) > MaxGRPCMessageBytes {
		msg = strings.ToValidUTF8(msg[:MaxGRPCMessageBytes], "") + "…"
	}
	return msg
}

func (g *grpcLogger) Info(args ...any)    { g.log(slog.LevelDebug, fmt.Sprint(args...)) }
func (g *grpcLogger) Infoln(args ...any)  { g.log(slog.LevelDebug, sprintln(args...)) }
func (g *grpcLogger) Warning(args ...any) { g.log(slog.LevelWarn, fmt.Sprint(args...)) }
func (g *grpcLogger) Warningln(args ...any) {
	g.log(slog.LevelWarn, sprintln(args...))
}
func (g *grpcLogger) Error(args ...any)   { g.log(slog.LevelError, fmt.Sprint(args...)) }
func (g *grpcLogger) Errorln(args ...any) { g.log(slog.LevelError, sprintln(args...)) }
func (g *grpcLogger) Infof(format string, args ...any) {
	g.log(slog.LevelDebug, fmt.Sprintf(format, args...))
}
func (g *grpcLogger) Warningf(format string, args ...any) {
	g.log(slog.LevelWarn, fmt.Sprintf(format, args...))
}
func (g *grpcLogger) Errorf(format string, args ...any) {
	g.log(slog.LevelError, fmt.Sprintf(format, args...))
}

// Fatal* log at error level and exit with status 1, as grpclog requires.
func (g *grpcLogger) Fatal(args ...any) { g.log(slog.LevelError, fmt.Sprint(args...)); os.Exit(1) }
func (g *grpcLogger) Fatalln(args ...any) {
	g.log(slog.LevelError, sprintln(args...))
	os.Exit(1)
}
func (g *grpcLogger) Fatalf(format string, args ...any) {
	g.log(slog.LevelError, fmt.Sprintf(format, args...))
	os.Exit(1)
}

// V reports whether verbosity level l is enabled: only level 0, and only
// when debug records are, since grpc's verbose records are diagnostics.
func (g *grpcLogger) V(l int) bool {
	return l <= 0 && g.l.Enabled(context.Background(), slog.LevelDebug)
}

// sprintln is fmt.Sprintln without the trailing newline.
func sprintln(args ...any) string {
	s := fmt.Sprintln(args...)
	return s[:len(s)-1]
}
