//go:build unix

// Integration tests: build the real binary once, run it as a subprocess the
// way the Rust plugin does, and check the launch protocol, the services,
// the limits and the exits from the outside.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/anysync/tauri-plugin-anysync/go-backend/api/proto/anysync/v1"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/launch"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/testsupport"
)

// binary is the sidecar built by TestMain.
var binary string

// deadline bounds every wait in these tests; nothing sleeps to synchronise.
const deadline = 15 * time.Second

func TestMain(m *testing.M) {
	if role := os.Getenv("GO_WANT_HELPER_PROCESS"); role != "" {
		os.Exit(helperProcess(role))
	}
	dir, err := os.MkdirTemp("", "anysync-backend-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "anysync-backend")
	if raceEnabled {
		// The real binary is race-checked too. Built so, it sleeps 1 s at
		// exit by default, which would blur the exit-time checks. A race
		// report still fails the test: the child exits 66 and writes
		// non-JSON on stderr.
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	if err := testsupport.BuildSidecar(binary, raceEnabled); err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// newToken returns what the parent sends: 32 random bytes, base64url.
func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func bootstrapLine(token string) string {
	return fmt.Sprintf(`{"protocolVersion":1,"token":%q}`+"\n", token)
}

// capture is a writer that records everything and signals the first line.
type capture struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	firstLine chan string
	sent      bool
}

func newCapture() *capture { return &capture{firstLine: make(chan string, 1)} }

func (c *capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	if !c.sent {
		if line, _, ok := strings.Cut(c.buf.String(), "\n"); ok {
			c.firstLine <- line + "\n"
			c.sent = true
		}
	}
	return len(p), nil
}

// ReadFrom copies r into c until EOF or an error.
func (c *capture) ReadFrom(r io.Reader) (int64, error) {
	var n int64
	buf := make([]byte, 32<<10)
	for {
		m, err := r.Read(buf)
		if m > 0 {
			_, _ = c.Write(buf[:m])
			n += int64(m)
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func (c *capture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// sidecar is one running backend process.
type sidecar struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *capture
	stderr *capture
	token  string
	hs     launch.Handshake
	line   string // the raw handshake line
	exited chan struct{}
}

type options struct {
	args []string
	env  []string
	// stdin is written first; nil means a valid bootstrap line.
	stdin *string
	// closeStdin closes stdin right after writing it.
	closeStdin bool
	// stderr, if set, is the child's stderr instead of the capture (which
	// then gets nothing); it is closed in the parent once the child runs.
	stderr *os.File
}

// spawn starts the binary; it does not wait for the handshake.
func spawn(t *testing.T, o options) *sidecar {
	t.Helper()
	s := &sidecar{t: t, token: newToken(), stdout: newCapture(), stderr: newCapture(), exited: make(chan struct{})}
	s.cmd = exec.Command(binary, o.args...)
	s.cmd.Env = append(os.Environ(), o.env...)
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	if o.stderr != nil {
		s.cmd.Stderr = o.stderr
	}
	stdin, err := s.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.stdin = stdin
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if o.stderr != nil {
		_ = o.stderr.Close()
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		_ = s.stdin.Close()
		_ = s.cmd.Process.Kill() // os.ErrProcessDone when it already exited
		<-s.exited
		if t.Failed() {
			t.Logf("sidecar stderr:\n%s", s.stderr.String())
		}
	})
	in := bootstrapLine(s.token)
	if o.stdin != nil {
		in = *o.stdin
	}
	if in != "" {
		// A write error (EPIPE) is fine: the child may have exited already.
		_, _ = io.WriteString(stdin, in)
	}
	if o.closeStdin {
		_ = stdin.Close()
	}
	return s
}

// start spawns the binary and waits for its handshake line.
func start(t *testing.T, args ...string) *sidecar {
	t.Helper()
	s := spawn(t, options{args: args})
	s.awaitHandshake()
	return s
}

func (s *sidecar) awaitHandshake() {
	s.t.Helper()
	select {
	case line := <-s.stdout.firstLine:
		hs, err := launch.ParseHandshake([]byte(line))
		if err != nil {
			s.t.Fatalf("handshake line %q: %v", line, err)
		}
		s.hs, s.line = hs, line
	case <-s.exited:
		s.t.Fatalf("sidecar exited before the handshake: %v\nstderr: %s", s.cmd.ProcessState, s.stderr)
	case <-time.After(deadline):
		s.t.Fatalf("no handshake within %v; stderr: %s", deadline, s.stderr)
	}
}

// wait waits up to d for the process to exit and returns its exit code.
func (s *sidecar) wait(d time.Duration) int {
	s.t.Helper()
	select {
	case <-s.exited:
		return s.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		s.t.Fatalf("sidecar still running %v later; stderr: %s", d, s.stderr)
		return -1
	}
}

// records parses stderr; every line must be a JSON object.
func (s *sidecar) records() []map[string]any {
	s.t.Helper()
	return testsupport.JSONLines(s.t, s.stderr.String())
}

func (s *sidecar) lastRecord() map[string]any {
	s.t.Helper()
	recs := s.records()
	if len(recs) == 0 {
		s.t.Fatal("no log records on stderr")
	}
	return recs[len(recs)-1]
}

// expectFailure waits for the sidecar to exit with wantCode before the
// handshake: nothing on stdout, and the last log record's error containing
// every string in contains. It returns that record.
func (s *sidecar) expectFailure(wantCode int, contains []string) map[string]any {
	s.t.Helper()
	if code := s.wait(deadline); code != wantCode {
		s.t.Fatalf("exit code %d, want %d", code, wantCode)
	}
	last := s.lastRecord()
	msg := fmt.Sprint(last["error"])
	for _, want := range contains {
		if !strings.Contains(msg, want) {
			s.t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if s.stdout.String() != "" {
		s.t.Fatalf("stdout = %q", s.stdout.String())
	}
	return last
}

func (s *sidecar) conn() *grpc.ClientConn {
	s.t.Helper()
	c, err := grpc.NewClient(s.hs.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// ctx returns a call context with a deadline and, if auth is not "", the
// given authorization metadata.
func (s *sidecar) ctx(auth string) context.Context {
	ctx, cancel := context.WithTimeout(s.t.Context(), deadline)
	s.t.Cleanup(cancel)
	if auth != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", auth)
	}
	return ctx
}

func (s *sidecar) bearer() string { return "Bearer " + s.token }

func TestHandshakeAndCalls(t *testing.T) {
	t.Parallel()
	s := start(t, "--log-level", "debug")

	// Exact wire format: key order, and nothing but those keys.
	re := regexp.MustCompile(`^\{"anysync":"ready","protocolVersion":1,"addr":"127\.0\.0\.1:(\d+)","pid":(\d+),"version":"0\.1\.0"\}\n$`)
	if !re.MatchString(s.line) {
		t.Fatalf("handshake line %q does not match %v", s.line, re)
	}
	if s.hs.PID != s.cmd.Process.Pid {
		t.Fatalf("handshake pid %d, process pid %d", s.hs.PID, s.cmd.Process.Pid)
	}

	ctx := s.ctx(s.bearer())
	testsupport.AssertPingAndCheck(t, ctx, s.conn(), "ping ✓", s.cmd.Process.Pid)

	std := healthpb.NewHealthClient(s.conn())
	for _, svc := range []string{"", "anysync.v1.HealthService"} {
		hr, err := std.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("grpc.health.v1 Check(%q) = %v, %v", svc, hr, err)
		}
	}

	// Stop by closing stdin, then check that stdout held exactly the
	// handshake line, and stderr only JSON with the expected records.
	_ = s.stdin.Close()
	if code := s.wait(deadline); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if got := s.stdout.String(); got != s.line {
		t.Fatalf("stdout = %q, want exactly the handshake line", got)
	}
	var ready, stopped, rpcs int
	for _, r := range s.records() {
		switch r["msg"] {
		case "backend ready":
			ready++
			if r["addr"] != s.hs.Addr || int(r["pid"].(float64)) != s.hs.PID || r["version"] != "0.1.0" || r["level"] != "INFO" {
				t.Errorf("ready record = %v", r)
			}
		case "backend stopped":
			stopped++
			if !strings.Contains(fmt.Sprint(r["reason"]), "stdin closed") {
				t.Errorf("stopped record = %v", r)
			}
		case "rpc":
			rpcs++
			if r["level"] != "DEBUG" || r["method"] == nil || r["code"] != "OK" || r["durationMs"] == nil {
				t.Errorf("rpc record = %v", r)
			}
		}
	}
	if ready != 1 || stopped != 1 || rpcs != 4 {
		t.Errorf("got %d ready, %d stopped, %d rpc records; want 1, 1, 4", ready, stopped, rpcs)
	}
	if strings.Contains(s.stderr.String(), s.token) {
		t.Error("the token appears in the log")
	}
}

func TestUnauthenticated(t *testing.T) {
	t.Parallel()
	s := start(t)
	// Each call gets its own connection: the backend closes a connection
	// once a call on it failed authentication.
	calls := []func(ctx context.Context, conn *grpc.ClientConn) error{
		func(ctx context.Context, conn *grpc.ClientConn) error {
			_, err := pb.NewHealthServiceClient(conn).Ping(ctx, &pb.PingRequest{Message: "x"})
			return err
		},
		func(ctx context.Context, conn *grpc.ClientConn) error {
			_, err := pb.NewHealthServiceClient(conn).Check(ctx, &pb.HealthCheckRequest{})
			return err
		},
		func(ctx context.Context, conn *grpc.ClientConn) error {
			_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		},
		func(ctx context.Context, conn *grpc.ClientConn) error {
			_, err := healthpb.NewHealthClient(conn).List(ctx, &healthpb.HealthListRequest{})
			return err
		},
		func(ctx context.Context, conn *grpc.ClientConn) error {
			w, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{})
			if err != nil {
				return err
			}
			_, err = w.Recv()
			return err
		},
	}
	for _, tt := range []struct {
		name, auth, contains string
	}{
		{"no token", "", "missing bearer token"},
		{"wrong token", "Bearer " + newToken(), "invalid bearer token"},
		{"token without scheme", s.token, "invalid bearer token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for i, call := range calls {
				st := status.Convert(call(s.ctx(tt.auth), s.conn()))
				if st.Code() != codes.Unauthenticated || !strings.Contains(st.Message(), tt.contains) {
					t.Errorf("call %d: %v %q, want Unauthenticated containing %q", i+1, st.Code(), st.Message(), tt.contains)
				}
			}
		})
	}
	// The server still serves an authenticated caller afterwards.
	if _, err := pb.NewHealthServiceClient(s.conn()).Ping(s.ctx(s.bearer()), &pb.PingRequest{}); err != nil {
		t.Fatalf("authenticated Ping: %v", err)
	}
}

func TestOversizedRequest(t *testing.T) {
	t.Parallel()
	s := spawn(t, options{args: []string{"--max-message-bytes", "1024"}})
	s.awaitHandshake()
	c := pb.NewHealthServiceClient(s.conn())
	ctx := s.ctx(s.bearer())
	_, err := c.Ping(ctx, &pb.PingRequest{Message: strings.Repeat("x", 2048)})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("oversized Ping = %v, want ResourceExhausted", err)
	}
	if p, err := c.Ping(ctx, &pb.PingRequest{Message: "still here"}); err != nil || p.GetMessage() != "still here" {
		t.Fatalf("Ping after the oversized one = %v, %v", p, err)
	}
}

func TestMaxMessageBytesFromEnvironment(t *testing.T) {
	t.Parallel()
	s := spawn(t, options{env: []string{"ANYSYNC_MAX_MESSAGE_BYTES=2048"}})
	s.awaitHandshake()
	c := pb.NewHealthServiceClient(s.conn())
	ctx := s.ctx(s.bearer())
	if _, err := c.Ping(ctx, &pb.PingRequest{Message: strings.Repeat("x", 1500)}); err != nil {
		t.Fatalf("1500-byte Ping under a 2048 limit: %v", err)
	}
	if _, err := c.Ping(ctx, &pb.PingRequest{Message: strings.Repeat("x", 3000)}); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("3000-byte Ping = %v, want ResourceExhausted", err)
	}
}

func TestGarbageConnections(t *testing.T) {
	t.Parallel()
	s := start(t)

	// A peer that sends random bytes is dropped by the server.
	garbage, err := net.DialTimeout("tcp", s.hs.Addr, deadline)
	if err != nil {
		t.Fatal(err)
	}
	defer garbage.Close()
	noise := make([]byte, 64<<10)
	_, _ = rand.Read(noise)
	_, _ = garbage.Write(noise) // may fail once the server hangs up
	_ = garbage.SetReadDeadline(time.Now().Add(deadline))
	if _, err := io.Copy(io.Discard, garbage); err != nil && !isConnReset(err) {
		t.Fatalf("garbage connection was not closed by the server: %v", err)
	}

	// A peer that connects and stays silent does not block anyone...
	silent, err := net.DialTimeout("tcp", s.hs.Addr, deadline)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	opened := time.Now()

	c := pb.NewHealthServiceClient(s.conn())
	if p, err := c.Ping(s.ctx(s.bearer()), &pb.PingRequest{Message: "after garbage"}); err != nil || p.GetMessage() != "after garbage" {
		t.Fatalf("Ping after garbage = %v, %v", p, err)
	}

	// ...and is dropped once the HTTP/2 handshake deadline (5 s) passes.
	_ = silent.SetReadDeadline(opened.Add(deadline))
	buf := make([]byte, 1024)
	for {
		_, err := silent.Read(buf) // the server's SETTINGS frame comes first
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the silent connection is still open %v later", time.Since(opened))
		}
		break // EOF or reset: dropped
	}
	if d := time.Since(opened); d < 4*time.Second || d > 10*time.Second {
		t.Fatalf("the silent connection was dropped after %v, want the 5s handshake deadline", d)
	}
}

func isConnReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

func TestStdinCloseExitsQuickly(t *testing.T) {
	t.Parallel()
	s := start(t)
	// A call in flight keeps nothing open: the connection is idle.
	if _, err := pb.NewHealthServiceClient(s.conn()).Ping(s.ctx(s.bearer()), &pb.PingRequest{}); err != nil {
		t.Fatal(err)
	}
	closed := time.Now()
	_ = s.stdin.Close()
	if code := s.wait(2 * time.Second); code != 0 {
		t.Fatalf("exit code %d after stdin EOF", code)
	}
	t.Logf("exited %v after stdin EOF", time.Since(closed))
}

func TestSignalsExitZero(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			s := start(t)
			if err := s.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if code := s.wait(deadline); code != 0 {
				t.Fatalf("exit code %d after %v", code, sig)
			}
			last := s.lastRecord()
			if last["msg"] != "backend stopped" || !strings.Contains(fmt.Sprint(last["reason"]), "signal received") {
				t.Fatalf("last record = %v", last)
			}
			if got := s.stdout.String(); got != s.line {
				t.Fatalf("stdout = %q", got)
			}
		})
	}
}

func TestPortInUse(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	s := spawn(t, options{args: []string{"--listen-addr", taken.Addr().String()}})
	if code := s.wait(deadline); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	last := s.lastRecord()
	msg := fmt.Sprint(last["error"])
	for _, want := range []string{"address already in use", taken.Addr().String(), "remove listenAddr"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if s.stdout.String() != "" {
		t.Fatalf("stdout = %q", s.stdout.String())
	}
}

func TestBadBootstrap(t *testing.T) {
	t.Parallel()
	tok := newToken()
	str := func(s string) *string { return &s }
	for _, tt := range []struct {
		name       string
		args       []string
		stdin      *string
		closeStdin bool
		contains   []string
	}{
		{"not JSON", nil, str("hello there\n"), false, []string{"bootstrap line malformed", "not a JSON object", `expected one line {"protocolVersion":1`}},
		{"wrong protocol version", nil, str(fmt.Sprintf(`{"protocolVersion":2,"token":%q}`+"\n", tok)), false, []string{"unsupported protocol version", "speaks launch protocol 2", "speaks 1"}},
		{"unknown field", nil, str(fmt.Sprintf(`{"protocolVersion":1,"token":%q,"debug":true}`+"\n", tok)), false, []string{`unknown key "debug"`}},
		{"short token", nil, str(`{"protocolVersion":1,"token":"abc"}` + "\n"), false, []string{"bad token", "at least 32"}},
		{"too long", nil, str(strings.Repeat("x", 5000)), false, []string{"too long", "no newline within 4096 bytes"}},
		{"EOF", nil, str(""), true, []string{"bootstrap line missing", "closed before anything"}},
		{"EOF mid-line", nil, str(`{"protocolVersion":1`), true, []string{"bootstrap line missing", "without a newline"}},
		{"nothing in time", []string{"--bootstrap-timeout", "200ms"}, str(""), false, []string{"bootstrap timed out", "bootstrapTimeout (200ms"}},
		{"duplicate token", nil, str(fmt.Sprintf(`{"protocolVersion":1,"token":%q,"token":%q}`+"\n", tok, newToken())), false, []string{"bootstrap line malformed", `duplicate key "token"`}},
		{"token too long", nil, str(fmt.Sprintf(`{"protocolVersion":1,"token":%q}`+"\n", strings.Repeat(tok, 12))), false, []string{"bad token", "at most 512"}},
		{"token under a bad key", nil, str(fmt.Sprintf(`{"protocolVersion":1,%q:%q}`+"\n", tok, tok)), false, []string{`unknown key "[redacted]"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := spawn(t, options{args: tt.args, stdin: tt.stdin, closeStdin: tt.closeStdin})
			last := s.expectFailure(1, tt.contains)
			if last["level"] != "ERROR" {
				t.Errorf("last record = %v", last)
			}
			if strings.Contains(s.stderr.String(), tok[:16]) {
				t.Errorf("the log copies the token: %s", s.stderr)
			}
		})
	}
}

func TestBadConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	badFile := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(badFile, []byte(`{"logLevel":"info","listenAdr":"127.0.0.1:0"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		args     []string
		env      []string
		contains []string
	}{
		{"flag", []string{"--log-level", "chatty"}, nil, []string{"logLevel", "ANYSYNC_LOG_LEVEL", "debug, info, warn, error"}},
		{"env", nil, []string{"ANYSYNC_SHUTDOWN_GRACE=soon"}, []string{"shutdownGrace", "ANYSYNC_SHUTDOWN_GRACE", "Go duration"}},
		{"non-loopback", []string{"--listen-addr", "0.0.0.0:0"}, nil, []string{"listenAddr", "ANYSYNC_LISTEN_ADDR", "not a loopback", "allowNonLoopback"}},
		{"localhost", nil, []string{"ANYSYNC_LISTEN_ADDR=localhost:0"}, []string{"listenAddr", "use the IP literal 127.0.0.1"}},
		{"file unknown key", []string{"--config", badFile}, nil, []string{`unknown key "listenAdr"`, badFile}},
		{"missing file", []string{"--config", filepath.Join(dir, "none.json")}, nil, []string{"none.json", "no such file"}},
		{"unknown flag", []string{"--port", "1"}, nil, []string{"flag provided but not defined: -port"}},
		// Values that could be the token are never copied into errors.
		{"token-like env value", nil, []string{"ANYSYNC_LOG_LEVEL=" + lookalike}, []string{"logLevel", "[redacted]"}},
		{"token-like flag", []string{"--" + lookalike}, nil, []string{"flag provided but not defined: [redacted]"}},
		{"token-like argument", []string{"--log-level", "info", "Bearer " + lookalike}, nil, []string{`unexpected argument "Bearer [redacted]"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := spawn(t, options{args: tt.args, env: tt.env})
			s.expectFailure(2, tt.contains)
			if strings.Contains(s.stderr.String(), lookalike[:16]) {
				t.Errorf("the log copies the token-like value: %s", s.stderr)
			}
		})
	}
}

// lookalike has the shape of a token: 43 base64url characters.
const lookalike = "mF0Vq3nE4r7b1xX9kQ2pZcLw8TfYhG5sJdA6uRvN0eI"

func TestVersionFlag(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(binary, "--version").Output()
	if err != nil || string(out) != "0.1.0\n" {
		t.Fatalf("--version = %q, %v", out, err)
	}
}

// helperProcess runs the test binary as a misbehaving peer instead of the
// tests (GO_WANT_HELPER_PROCESS=<role>) and returns its exit code.
//
// Role "parent" plays the Rust plugin: it spawns the sidecar named by
// ANYSYNC_TEST_BINARY with its own stdout and stderr, writes a bootstrap
// line, keeps the sidecar's stdin open, and then blocks until its own stdin
// ends, so the test can kill it at any moment.
func helperProcess(role string) int {
	switch role {
	case "parent":
		cmd := exec.Command(os.Getenv("ANYSYNC_TEST_BINARY"))
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 3
		}
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 3
		}
		if _, err := io.WriteString(stdin, bootstrapLine(newToken())); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 3
		}
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = stdin.Close()
		_ = cmd.Wait()
		return 0
	default:
		fmt.Fprintf(os.Stderr, "helper: unknown role %q\n", role)
		return 3
	}
}

// BenchmarkSpawnToHandshake measures process start to handshake line, the
// latency the plugin pays at app start and on every restart.
func BenchmarkSpawnToHandshake(b *testing.B) {
	for b.Loop() {
		cmd := exec.Command(binary)
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		_, _ = io.WriteString(stdin, bootstrapLine(newToken()))
		if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_ = stdin.Close()
		_ = cmd.Wait()
		b.StartTimer()
	}
}
