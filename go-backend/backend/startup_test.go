package backend_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/anysync/tauri-plugin-anysync/go-backend/backend"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/config"
)

// blockingFile is a ReadFile that never returns, like a read from a hung
// file system.
func blockingFile(string) ([]byte, error) { select {} }

// blockingWriter never returns from Write, like a stdout nobody reads.
type blockingWriter struct{}

func (blockingWriter) Write([]byte) (int, error) { select {} }

// runBounded runs backend.Run and fails the test unless it returns within d.
func runBounded(t *testing.T, ctx context.Context, env backend.Env, d time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- backend.Run(ctx, env) }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("Run still blocked %v later; stderr: %s", d, env.Stderr)
		return nil
	}
}

// TestSignalWhileReadingTheConfig: a signal while the config file read
// blocks ends Run at once, with exit code 0 and a record saying so.
func TestSignalWhileReadingTheConfig(t *testing.T) {
	env, _, stderr := baseEnv("--config", "/hung/c.json")
	env.ReadFile = blockingFile
	ctx, cancel := context.WithCancelCause(t.Context())
	time.AfterFunc(50*time.Millisecond, func() { cancel(errors.New("terminated signal received")) })
	err := runBounded(t, ctx, env, 2*time.Second)
	if backend.ExitCode(err) != backend.ExitOK {
		t.Fatalf("Run = %v, want a normal stop", err)
	}
	last := lastRecord(t, stderr.String())
	if last["msg"] != "backend stopped before it started" || last["reason"] != "terminated signal received" {
		t.Fatalf("last record = %v", last)
	}
}

// TestConfigReadHasADeadline: a config file read that never ends is a
// configuration error once the deadline passes.
func TestConfigReadHasADeadline(t *testing.T) {
	defer backend.SetStartupTimeouts(100*time.Millisecond, time.Second)()
	env, _, stderr := baseEnv("--config", "/hung/c.json")
	env.ReadFile = blockingFile
	err := runBounded(t, t.Context(), env, 2*time.Second)
	if !errors.Is(err, config.ErrInvalid) || backend.ExitCode(err) != backend.ExitConfig {
		t.Fatalf("Run = %v, want a configuration error", err)
	}
	if last := lastRecord(t, stderr.String()); !strings.Contains(fmt.Sprint(last["error"]), "did not finish within 100ms") {
		t.Fatalf("last record = %v", last)
	}
}

// TestHandshakeWriteHasADeadline: a stdout that takes nothing fails the
// start after the deadline, and a signal meanwhile stops it at once.
func TestHandshakeWriteHasADeadline(t *testing.T) {
	defer backend.SetStartupTimeouts(time.Second, 100*time.Millisecond)()
	t.Run("deadline", func(t *testing.T) {
		env, _, stderr := baseEnv()
		inR, inW := io.Pipe()
		defer inW.Close()
		env.Stdin, env.Stdout = inR, blockingWriter{}
		go func() { _, _ = io.WriteString(inW, bootstrapLine) }()
		err := runBounded(t, t.Context(), env, 3*time.Second)
		if err == nil || backend.ExitCode(err) != backend.ExitFailure || !strings.Contains(err.Error(), "handshake line") {
			t.Fatalf("Run = %v, want a failure naming the handshake", err)
		}
		if last := lastRecord(t, stderr.String()); last["msg"] != "backend failed" {
			t.Fatalf("last record = %v", last)
		}
	})
	t.Run("signal", func(t *testing.T) {
		defer backend.SetStartupTimeouts(time.Second, time.Hour)()
		env, _, stderr := baseEnv()
		inR, inW := io.Pipe()
		defer inW.Close()
		env.Stdin, env.Stdout = inR, blockingWriter{}
		go func() { _, _ = io.WriteString(inW, bootstrapLine) }()
		ctx, cancel := context.WithCancelCause(t.Context())
		time.AfterFunc(100*time.Millisecond, func() { cancel(errors.New("terminated signal received")) })
		if err := runBounded(t, ctx, env, 3*time.Second); err != nil {
			t.Fatalf("Run = %v, want a normal stop", err)
		}
		if last := lastRecord(t, stderr.String()); last["msg"] != "backend stopped" || last["reason"] != "terminated signal received" {
			t.Fatalf("last record = %v", last)
		}
	})
}

// TestUnknownEnvironmentVariableWarns: an ANYSYNC_* variable that is not a
// setting is a warning naming it, never its value, and the backend starts.
func TestUnknownEnvironmentVariableWarns(t *testing.T) {
	env, _, stderr := baseEnv("--bootstrap-timeout", "5s")
	env.Environ = func() []string { return []string{"HOME=/root", "ANYSYNC_LOG_LEVLE=" + token, "ANYSYNC_LOG_LEVEL=info"} }
	env.Stdin = strings.NewReader(bootstrapLine)
	inR, inW := io.Pipe()
	defer inW.Close()
	go func() { _, _ = io.WriteString(inW, bootstrapLine) }()
	env.Stdin = inR
	ctx, cancel := context.WithCancelCause(t.Context())
	time.AfterFunc(200*time.Millisecond, func() { cancel(errors.New("terminated signal received")) })
	if err := runBounded(t, ctx, env, 5*time.Second); err != nil {
		t.Fatalf("Run = %v, want a start despite the unknown variable", err)
	}
	var warned int
	for _, r := range stderr.Records(t) {
		if r["msg"] == "unknown environment variable ignored" {
			warned++
			if r["level"] != "WARN" || r["variable"] != "ANYSYNC_LOG_LEVLE" {
				t.Errorf("warning = %v", r)
			}
		}
	}
	if warned != 1 {
		t.Fatalf("%d warnings, want 1; stderr: %s", warned, stderr)
	}
	if strings.Contains(stderr.String(), token) {
		t.Fatal("the log copies the variable's value")
	}
	if find(stderr.Records(t), "backend ready") == nil {
		t.Fatalf("the backend did not start; stderr: %s", stderr)
	}
}

// TestConfigErrorsNeverEchoTheToken: a token-like value in a bad flag,
// variable or file field is not in the error record.
func TestConfigErrorsNeverEchoTheToken(t *testing.T) {
	for _, args := range [][]string{
		{"--log-level", token},
		{"--" + token},
		{token},
		{"--config", "/etc/" + token + ".json"},
		{"--config", "/c.json"},
	} {
		env, _, stderr := baseEnv(args...)
		env.ReadFile = func(name string) ([]byte, error) {
			if name == "/c.json" {
				return []byte(`{"shutdownGrace":"` + token + `"}`), nil
			}
			return nil, fmt.Errorf("open %s: no such file", name)
		}
		err := backend.Run(t.Context(), env)
		if backend.ExitCode(err) != backend.ExitConfig {
			t.Fatalf("%q: Run = %v, want a configuration error", args, err)
		}
		if strings.Contains(err.Error(), token[:16]) || strings.Contains(stderr.String(), token[:16]) {
			t.Fatalf("%q: the error copies the token-like value: %v\n%s", args, err, stderr)
		}
	}
}

func lastRecord(t *testing.T, s string) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(s), "\n")
	var recs []map[string]any
	for _, l := range lines {
		if l == "" {
			continue
		}
		recs = append(recs, mustJSON(t, l))
	}
	if len(recs) == 0 {
		t.Fatal("no log records")
	}
	return recs[len(recs)-1]
}

func mustJSON(t *testing.T, line string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("not JSON: %q", line)
	}
	return m
}
