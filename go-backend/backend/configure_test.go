package backend_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/anysync/tauri-plugin-anysync/go-backend/backend"
	"github.com/anysync/tauri-plugin-anysync/go-backend/backend/backendtest"
)

// configured records what the backend handed it, and when.
type configured struct {
	settings   []backend.Settings
	registered bool
	early      bool // Configure came after Register
	fail       error
}

func (c *configured) Name() string { return "test.v1.ConfiguredService" }
func (c *configured) Register(r grpc.ServiceRegistrar) {
	c.registered = true
	r.RegisterService(&grpc.ServiceDesc{ServiceName: c.Name(), HandlerType: (*any)(nil)}, struct{}{})
}
func (c *configured) Configure(s backend.Settings) error {
	c.early = c.early || c.registered
	c.settings = append(c.settings, s)
	if s.Logger != nil {
		s.Logger.Info("configured", "service", c.Name())
	}
	return c.fail
}

func TestServicesGetTheSettingsOnceBeforeRegister(t *testing.T) {
	dir := t.TempDir()
	c := &configured{}
	b := backendtest.Start(t, []string{"--data-dir", dir}, c)
	if len(c.settings) != 1 || c.settings[0].DataDir != dir {
		t.Fatalf("Configure got %+v, want one call with DataDir %q", c.settings, dir)
	}
	if c.early || !c.registered {
		t.Fatalf("Configure must come before Register (registered %v, Configure after it %v)", c.registered, c.early)
	}
	// What a service logs through Settings.Logger is in the backend's log.
	deadline := time.Now().Add(10 * time.Second)
	for !logged(b.Logs(), "configured") {
		if time.Now().After(deadline) {
			t.Fatalf("the record Configure logged through Settings.Logger is not in the backend's log: %v", b.Logs())
		}
		time.Sleep(10 * time.Millisecond) // pacing the polls
	}
}

func logged(records []map[string]any, msg string) bool {
	for _, r := range records {
		if r["msg"] == msg {
			return true
		}
	}
	return false
}

func TestAFailingConfigureEndsTheStartUp(t *testing.T) {
	c := &configured{fail: errors.New("no room for the data")}
	bootstrap := fmt.Sprintf("{\"protocolVersion\":1,\"token\":%q}\n", backendtest.NewToken())
	err := backend.Run(context.Background(), backend.Env{
		Stdin:     strings.NewReader(bootstrap),
		Stdout:    io.Discard,
		Stderr:    io.Discard,
		LookupEnv: func(string) (string, bool) { return "", false },
		PID:       1,
	}, c)
	if err == nil || !errors.Is(err, c.fail) || backend.ExitCode(err) != backend.ExitFailure {
		t.Fatalf("Run = %v (exit %d), want the Configure error and exit %d", err, backend.ExitCode(err), backend.ExitFailure)
	}
	if c.registered {
		t.Fatal("a service was registered although the start-up failed")
	}
}
