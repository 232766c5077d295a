//go:build unix

package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/anysync/tauri-plugin-anysync/go-backend/api/proto/anysync/v1"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/logging"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/testsupport"
)

// stalled is a sidecar whose stderr is a pipe that nobody reads until the
// test calls drain: what a parent that stopped reading its logs does.
type stalled struct {
	*sidecar
	errR *os.File
}

func spawnStalled(t *testing.T, args ...string) *stalled {
	t.Helper()
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// Registered first, so that it runs after spawn's cleanup has stopped the child.
	t.Cleanup(func() { _ = errR.Close() })
	s := spawn(t, options{args: args, stderr: errW})
	s.awaitHandshake()
	return &stalled{sidecar: s, errR: errR}
}

// drain starts reading stderr into s.stderr.
func (s *stalled) drain() { go func() { _, _ = s.stderr.ReadFrom(s.errR) }() }

// pings makes n authenticated Ping calls, each under its own deadline, and
// fails the test at the first that does not succeed.
func (s *stalled) pings(conn *grpc.ClientConn, n int) {
	s.t.Helper()
	c := pb.NewHealthServiceClient(conn)
	for i := range n {
		if _, err := c.Ping(s.ctx(s.bearer()), &pb.PingRequest{Message: "x"}); err != nil {
			s.t.Fatalf("Ping %d with stderr not read: %v", i+1, err)
		}
	}
}

const stalledCalls = 3000 // well past the ~444 calls that fill a 64 KiB pipe at debug level

// TestStderrNotReadDoesNotBlockServing: a parent that stops reading stderr
// costs log records, counted, never the calls; once it reads again, a
// warning says how many records were lost.
func TestStderrNotReadDoesNotBlockServing(t *testing.T) {
	t.Parallel()
	s := spawnStalled(t, "--log-level", "debug")
	conn, err := grpc.NewClient(s.hs.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s.pings(conn, stalledCalls)
	s.drain()
	s.pings(conn, 1) // a record after the drop
	deadlineAt := time.Now().Add(deadline)
	for !strings.Contains(s.stderr.String(), logging.DroppedMsg) {
		if time.Now().After(deadlineAt) {
			t.Fatalf("no %q record once stderr was read again", logging.DroppedMsg)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = s.stdin.Close()
	if code := s.wait(deadline); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	var dropped float64
	for _, r := range testsupport.JSONLines(t, s.stderr.String()) {
		if r["msg"] == logging.DroppedMsg {
			dropped += r["dropped"].(float64)
		}
	}
	if dropped < 1 {
		t.Fatalf("dropped = %v", dropped)
	}
	t.Logf("%v records dropped", dropped)
}

// TestStderrNotReadDoesNotBlockTheStop: with stderr full, the end of stdin
// and SIGTERM still stop the backend, within its grace.
func TestStderrNotReadDoesNotBlockTheStop(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"stdin EOF", "SIGTERM"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			const grace = 2 * time.Second
			s := spawnStalled(t, "--log-level", "debug", "--shutdown-grace", grace.String())
			conn, err := grpc.NewClient(s.hs.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			s.pings(conn, stalledCalls)
			start := time.Now()
			if how == "SIGTERM" {
				_ = s.cmd.Process.Signal(syscall.SIGTERM)
			} else {
				_ = s.stdin.Close()
			}
			if code := s.wait(grace); code != 0 {
				t.Fatalf("exit code %d", code)
			}
			t.Logf("stopped %v after %s with stderr full", time.Since(start), how)
		})
	}
}

// TestSignalWhileWaitingForTheBootstrap: SIGTERM while the backend waits
// for its bootstrap line ends it at once, exit code 0, with a record.
func TestSignalWhileWaitingForTheBootstrap(t *testing.T) {
	t.Parallel()
	empty := ""
	s := spawn(t, options{args: []string{"--log-level", "debug", "--bootstrap-timeout", "1m"}, stdin: &empty})
	deadlineAt := time.Now().Add(deadline)
	for !strings.Contains(s.stderr.String(), "waiting for the bootstrap line") {
		if time.Now().After(deadlineAt) {
			t.Fatalf("no record of the wait; stderr: %s", s.stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := s.wait(time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	last := s.lastRecord()
	if last["msg"] != "backend stopped before bootstrap" || !strings.Contains(fmt.Sprint(last["reason"]), "terminated") {
		t.Fatalf("last record = %v", last)
	}
	t.Logf("stopped %v after SIGTERM", time.Since(start))
}

// TestUnknownEnvironmentVariable: an ANYSYNC_* variable that is not a
// setting is a warning naming it (not its value); the backend serves.
func TestUnknownEnvironmentVariable(t *testing.T) {
	t.Parallel()
	s := spawn(t, options{env: []string{"ANYSYNC_LOG_LEVLE=" + lookalike}})
	s.awaitHandshake()
	if _, err := pb.NewHealthServiceClient(s.conn()).Ping(s.ctx(s.bearer()), &pb.PingRequest{}); err != nil {
		t.Fatal(err)
	}
	_ = s.stdin.Close()
	if code := s.wait(deadline); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	var warned bool
	for _, r := range s.records() {
		if r["msg"] == "unknown environment variable ignored" && r["variable"] == "ANYSYNC_LOG_LEVLE" && r["level"] == "WARN" {
			warned = true
		}
	}
	if !warned || strings.Contains(s.stderr.String(), lookalike[:16]) {
		t.Fatalf("want one warning naming ANYSYNC_LOG_LEVLE and not its value; stderr: %s", s.stderr)
	}
}

// TestMalformedUnauthenticatedRequestsAreClosed: against the real binary, a
// request without the token that grpc-go would answer itself (405 for GET,
// 415 for text/plain, 400 for a malformed grpc-timeout) gets no answer: the
// connection is closed.
func TestMalformedUnauthenticatedRequestsAreClosed(t *testing.T) {
	t.Parallel()
	s := start(t)
	for name, fields := range map[string][][2]string{
		"GET":                    {{":method", "GET"}, {":scheme", "http"}, {":path", "/anysync.v1.HealthService/Ping"}, {":authority", "x"}, {"content-type", "application/grpc"}},
		"text/plain":             {{":method", "POST"}, {":scheme", "http"}, {":path", "/anysync.v1.HealthService/Ping"}, {":authority", "x"}, {"content-type", "text/plain"}},
		"malformed grpc-timeout": {{":method", "POST"}, {":scheme", "http"}, {":path", "/anysync.v1.HealthService/Ping"}, {":authority", "x"}, {"content-type", "application/grpc"}, {"grpc-timeout", "soon"}},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", s.hs.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var block bytes.Buffer
			enc := hpack.NewEncoder(&block)
			for _, f := range fields {
				_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
			}
			fr := http2.NewFramer(c, c)
			fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
			_, _ = c.Write([]byte(http2.ClientPreface))
			_ = fr.WriteSettings()
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true})
			_ = c.SetReadDeadline(time.Now().Add(deadline))
			for {
				f, err := fr.ReadFrame()
				if err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						t.Fatal("the connection is still open")
					}
					return // closed, unanswered
				}
				if h, ok := f.(*http2.MetaHeadersFrame); ok && h.StreamID == 1 {
					t.Fatalf("the backend answered %v", h.Fields)
				}
			}
		})
	}
	if _, err := pb.NewHealthServiceClient(s.conn()).Ping(s.ctx(s.bearer()), &pb.PingRequest{}); err != nil {
		t.Fatal(err)
	}
}
