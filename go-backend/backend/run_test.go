package backend_test

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	pb "github.com/anysync/tauri-plugin-anysync/go-backend/api/proto/anysync/v1"
	"github.com/anysync/tauri-plugin-anysync/go-backend/backend"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/config"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/launch"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/testsupport"
)

const token = "mF0Vq3nE4r7b1xX9kQ2pZcLw8TfYhG5sJdA6uRvN0eI"

var bootstrapLine = fmt.Sprintf(`{"protocolVersion":1,"token":%q}`+"\n", token)

func find(recs []map[string]any, msg string) map[string]any {
	for _, r := range recs {
		if r["msg"] == msg {
			return r
		}
	}
	return nil
}

func baseEnv(args ...string) (backend.Env, *testsupport.SyncBuffer, *testsupport.SyncBuffer) {
	stdout, stderr := &testsupport.SyncBuffer{}, &testsupport.SyncBuffer{}
	return backend.Env{
		Args:      args,
		Stdin:     strings.NewReader(""),
		Stdout:    stdout,
		Stderr:    stderr,
		LookupEnv: func(string) (string, bool) { return "", false },
		ReadFile:  func(string) ([]byte, error) { return nil, errors.New("no files") },
		PID:       4242,
	}, stdout, stderr
}

func TestExitCode(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{flag.ErrHelp, 0},
		{fmt.Errorf("x: %w", config.ErrInvalid), 2},
		{&config.Error{}, 2},
		{backend.ErrAddrInUse, 1},
		{launch.ErrTimeout, 1},
		{errors.New("other"), 1},
	} {
		if got := backend.ExitCode(tt.err); got != tt.want {
			t.Errorf("backend.ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestRunVersionAndHelp(t *testing.T) {
	env, stdout, stderr := baseEnv("--version")
	if err := backend.Run(t.Context(), env); err != nil || stdout.String() != "0.1.0\n" || stderr.String() != "" {
		t.Fatalf("--version: err=%v stdout=%q stderr=%q", err, stdout, stderr)
	}
	env, stdout, stderr = baseEnv("--help")
	err := backend.Run(t.Context(), env)
	if backend.ExitCode(err) != 0 || stdout.String() != "" || !strings.Contains(stderr.String(), "--max-message-bytes") {
		t.Fatalf("--help: err=%v stdout=%q stderr=%q", err, stdout, stderr)
	}
}

func TestRunConfigError(t *testing.T) {
	env, stdout, stderr := baseEnv("--max-message-bytes", "12")
	err := backend.Run(t.Context(), env)
	if backend.ExitCode(err) != backend.ExitConfig {
		t.Fatalf("exit code %d for %v", backend.ExitCode(err), err)
	}
	recs := stderr.Records(t)
	last := recs[len(recs)-1]
	if last["level"] != "ERROR" || last["key"] != "maxMessageBytes" || last["env"] != "ANYSYNC_MAX_MESSAGE_BYTES" ||
		!strings.Contains(fmt.Sprint(last["error"]), "1024 to 268435456") {
		t.Fatalf("last record = %v", last)
	}
	if stdout.String() != "" {
		t.Fatalf("stdout = %q", stdout)
	}
}

// running is an in-process backend fed through pipes.
type running struct {
	stdin  *io.PipeWriter
	hs     launch.Handshake
	stdout *testsupport.SyncBuffer
	stderr *testsupport.SyncBuffer
	done   chan error
}

func start(t *testing.T, ctx context.Context, args []string, services ...backend.Service) *running {
	t.Helper()
	env, _, stderr := baseEnv(args...)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	env.Stdin, env.Stdout = inR, outW
	r := &running{stdin: inW, stderr: stderr, stdout: &testsupport.SyncBuffer{}, done: make(chan error, 1)}
	go func() {
		err := backend.Run(ctx, env, services...)
		_ = outW.Close()
		r.done <- err
	}()
	first := make(chan string, 1)
	go func() {
		br := bufio.NewReader(outR)
		line, _ := br.ReadString('\n')
		first <- line
		_, _ = r.stdout.Write([]byte(line))
		_, _ = io.Copy(r.stdout, br)
	}()
	if _, err := io.WriteString(inW, bootstrapLine); err != nil {
		t.Fatal(err)
	}
	select {
	case line := <-first:
		hs, err := launch.ParseHandshake([]byte(line))
		if err != nil {
			t.Fatalf("handshake %q: %v (stderr: %s)", line, err, stderr)
		}
		r.hs = hs
	case <-time.After(10 * time.Second):
		t.Fatalf("no handshake within 10s; stderr: %s", stderr)
	}
	t.Cleanup(func() { _ = inW.Close() })
	return r
}

func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("Run did not return within 10s; stderr: %s", r.stderr)
		return nil
	}
}

func TestRunLifecycle(t *testing.T) {
	r := start(t, t.Context(), []string{"--log-level", "debug"})
	if r.hs.PID != 4242 || r.hs.Version != "0.1.0" || r.hs.ProtocolVersion != 1 || !strings.HasPrefix(r.hs.Addr, "127.0.0.1:") {
		t.Fatalf("handshake = %+v", r.hs)
	}
	conn, err := grpc.NewClient(r.hs.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+token), 10*time.Second)
	defer cancel()
	if p, err := pb.NewHealthServiceClient(conn).Ping(ctx, &pb.PingRequest{Message: "hi"}); err != nil || p.GetMessage() != "hi" {
		t.Fatalf("Ping = %v, %v", p, err)
	}

	_ = r.stdin.Close() // the parent is gone
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil after stdin EOF", err)
	}
	recs := r.stderr.Records(t)
	if rec := find(recs, "backend ready"); rec == nil || rec["addr"] != r.hs.Addr || rec["version"] != "0.1.0" {
		t.Errorf("ready record = %v", rec)
	}
	if rec := find(recs, "backend stopped"); rec == nil || !strings.Contains(fmt.Sprint(rec["reason"]), "stdin closed") {
		t.Errorf("stopped record = %v", rec)
	}
	if rec := find(recs, "rpc"); rec == nil || rec["method"] != "/anysync.v1.HealthService/Ping" || rec["code"] != "OK" {
		t.Errorf("rpc record = %v", rec)
	}
	if got, want := r.stdout.String(), string(r.hs.MarshalLine()); got != want {
		t.Errorf("stdout = %q, want only the handshake %q", got, want)
	}
}

func TestRunStopsOnContext(t *testing.T) {
	ctx, cancel := context.WithCancelCause(t.Context())
	r := start(t, ctx, nil)
	cancel(errors.New("terminated signal received"))
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if rec := find(r.stderr.Records(t), "backend stopped"); rec == nil || rec["reason"] != "terminated signal received" {
		t.Errorf("stopped record = %v", rec)
	}
}

func TestRunCancelledBeforeBootstrap(t *testing.T) {
	env, _, stderr := baseEnv()
	inR, inW := io.Pipe()
	defer inW.Close()
	env.Stdin = inR
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(errors.New("interrupt signal received"))
	if err := backend.Run(ctx, env); err != nil {
		t.Fatalf("Run = %v", err)
	}
	// Depending on when the signal is seen: before or after the
	// configuration is read.
	recs := stderr.Records(t)
	if rec := find(recs, "backend stopped before bootstrap"); rec == nil && find(recs, "backend stopped before it started") == nil {
		t.Fatalf("stderr = %s", stderr)
	}
}

func TestRunFailures(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()

	tests := []struct {
		name     string
		args     []string
		stdin    io.Reader
		is       error
		contains string
	}{
		{"address in use", []string{"--listen-addr", taken.Addr().String()}, strings.NewReader(bootstrapLine), backend.ErrAddrInUse, "remove listenAddr"},
		{"bootstrap timeout", []string{"--bootstrap-timeout", "50ms"}, blockingReader{}, launch.ErrTimeout, "bootstrapTimeout (50ms"},
		{"bootstrap EOF", nil, strings.NewReader(""), launch.ErrMissing, "closed before anything"},
		{"bad protocol", nil, strings.NewReader(`{"protocolVersion":9,"token":"` + token + `"}` + "\n"), launch.ErrProtocolVersion, "protocol 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, stdout, stderr := baseEnv(tt.args...)
			env.Stdin = tt.stdin
			err := backend.Run(t.Context(), env)
			if !errors.Is(err, tt.is) || backend.ExitCode(err) != backend.ExitFailure {
				t.Fatalf("Run = %v (exit %d), want %v", err, backend.ExitCode(err), tt.is)
			}
			recs := stderr.Records(t)
			last := recs[len(recs)-1]
			if last["level"] != "ERROR" || !strings.Contains(fmt.Sprint(last["error"]), tt.contains) {
				t.Fatalf("last record = %v, want an error containing %q", last, tt.contains)
			}
			if stdout.String() != "" {
				t.Fatalf("stdout = %q", stdout)
			}
		})
	}
}

// blockingReader never returns (like an open stdin with no writer activity);
// Receive's goroutine stays parked in it after the timeout, as documented.
type blockingReader struct{}

func (blockingReader) Read([]byte) (int, error) { select {} }
