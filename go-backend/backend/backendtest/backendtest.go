// Package backendtest runs a backend in the test's process, the way the
// plugin runs the real binary: backend.Run with a bootstrap line on a stdin
// pipe, the handshake read from a stdout pipe, a real loopback listener, and
// a client connection that sends the bearer token on every call. It is for
// the tests of services built on package backend:
//
//	b := backendtest.Start(t, nil, backend.GRPCService(&examplev1.CounterService_ServiceDesc, counter.New()))
//	c := examplev1.NewCounterServiceClient(b.Conn)
package backendtest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/anysync/tauri-plugin-anysync/go-backend/backend"
)

// Backend is a backend running in the test's process.
type Backend struct {
	// Addr is the address from the handshake line.
	Addr string
	// Token is the bearer token the backend expects.
	Token string
	// Conn is a client connection to Addr that sends the token with every
	// call. It is closed when the test ends.
	Conn *grpc.ClientConn

	t      testing.TB
	stdin  io.WriteCloser
	stderr *syncBuffer
	done   chan error
	once   sync.Once
	err    error
}

// Start runs the backend with services and the given command-line args
// (e.g. "--log-level", "debug"), waits for its handshake, and connects.
// The test fails if there is no handshake within 10 s. When the test ends,
// the backend is stopped (as by its parent going away) unless Stop was
// called, and a failure of Run fails the test.
func Start(t testing.TB, args []string, services ...backend.Service) *Backend {
	t.Helper()
	b := &Backend{t: t, Token: NewToken(), stderr: &syncBuffer{}, done: make(chan error, 1)}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	b.stdin = inW
	env := backend.Env{
		Args:      args,
		Stdin:     inR,
		Stdout:    outW,
		Stderr:    b.stderr,
		LookupEnv: func(string) (string, bool) { return "", false },
		PID:       1,
	}
	go func() {
		err := backend.Run(context.Background(), env, services...)
		_ = outW.Close()
		b.done <- err
	}()
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(outR).ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, outR)
	}()
	if _, err := fmt.Fprintf(inW, "{\"protocolVersion\":1,\"token\":%q}\n", b.Token); err != nil {
		t.Fatalf("backendtest: writing the bootstrap line: %v", err)
	}
	select {
	case line := <-lines:
		var hs struct {
			Addr string `json:"addr"`
		}
		if err := json.Unmarshal([]byte(line), &hs); err != nil || hs.Addr == "" {
			t.Fatalf("backendtest: handshake line %q: %v; stderr:\n%s", line, err, b.stderr)
		}
		b.Addr = hs.Addr
	case <-time.After(10 * time.Second):
		t.Fatalf("backendtest: no handshake within 10s; stderr:\n%s", b.stderr)
	}
	conn, err := grpc.NewClient(b.Addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(Bearer(b.Token)),
	)
	if err != nil {
		t.Fatalf("backendtest: %v", err)
	}
	b.Conn = conn
	t.Cleanup(func() {
		_ = conn.Close()
		if err := b.Stop(); err != nil {
			t.Errorf("backendtest: Run: %v; stderr:\n%s", err, b.stderr)
		}
	})
	return b
}

// Stop closes the backend's stdin (its parent is gone), waits up to 30 s for
// Run to return and returns Run's result. Later calls return the same.
func (b *Backend) Stop() error {
	b.once.Do(func() {
		_ = b.stdin.Close()
		select {
		case b.err = <-b.done:
		case <-time.After(30 * time.Second):
			b.err = fmt.Errorf("backendtest: Run did not return within 30s of stdin EOF")
		}
	})
	return b.err
}

// Logs returns the JSON log records written so far, one map per line. The
// backend writes its records asynchronously (see backend.Env.Stderr): a
// call's record may arrive a moment after the call returned; all of them
// are there once Stop has returned.
func (b *Backend) Logs() []map[string]any {
	b.t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(b.stderr.String(), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			b.t.Fatalf("backendtest: log line is not JSON: %q", line)
		}
		out = append(out, m)
	}
	return out
}

// NewToken returns a token like the plugin's: 32 random bytes, base64url.
func NewToken() string {
	p := make([]byte, 32)
	_, _ = rand.Read(p)
	return base64.RawURLEncoding.EncodeToString(p)
}

// Bearer is per-call credentials that send "authorization: Bearer <token>"
// over a connection without TLS (loopback).
type Bearer string

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (b Bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{backend.AuthorizationKey: "Bearer " + string(b)}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (Bearer) RequireTransportSecurity() bool { return false }

type syncBuffer struct {
	mu sync.Mutex
	sb strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sb.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sb.String()
}
