// Package testsupport holds test helpers shared by the backend's packages:
// a concurrency-safe log buffer, JSON log parsing, the Ping/Check
// assertions run against the in-process server and the real binary alike,
// and the build of that binary.
// Only _test.go files import it, so it is not part of the sidecar, and the
// published crate leaves it out.
package testsupport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	pb "github.com/anysync/tauri-plugin-anysync/go-backend/api/proto/anysync/v1"
)

// SyncBuffer is a bytes.Buffer safe for concurrent writers, such as a
// logger used by several goroutines.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Records parses what was written so far as JSON log lines; see JSONLines.
func (b *SyncBuffer) Records(t testing.TB) []map[string]any {
	t.Helper()
	return JSONLines(t, b.String())
}

// JSONLines parses s as one JSON object per line and fails the test at
// once on a line that is not one.
func JSONLines(t testing.TB, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading log lines: %v", err)
	}
	return out
}

// AssertPingAndCheck calls HealthService.Ping with message and
// HealthService.Check on conn with ctx (which must carry the credentials),
// and fails the test unless Ping echoes message with a handling time taken
// during the call, and Check reports a serving backend of version 0.1.0,
// launch protocol 1 and process id wantPID.
func AssertPingAndCheck(t testing.TB, ctx context.Context, conn grpc.ClientConnInterface, message string, wantPID int) {
	t.Helper()
	c := pb.NewHealthServiceClient(conn)
	before := time.Now().UnixMicro()
	p, err := c.Ping(ctx, &pb.PingRequest{Message: message})
	if err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if p.GetMessage() != message || p.GetHandledAtUnixMicros() < before || p.GetHandledAtUnixMicros() > time.Now().UnixMicro() {
		t.Fatalf("Ping = %v", p)
	}
	r, err := c.Check(ctx, &pb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if r.GetStatus() != pb.HealthCheckResponse_SERVING_STATUS_SERVING || r.GetVersion() != "0.1.0" ||
		r.GetProtocolVersion() != 1 || int(r.GetPid()) != wantPID || r.GetUptimeMs() < 0 {
		t.Fatalf("Check = %v", r)
	}
}

// SidecarPackage is the import path of the shipped sidecar's main package.
const SidecarPackage = "github.com/anysync/tauri-plugin-anysync/go-backend/cmd/server"

// BuildSidecar builds the shipped sidecar into out with the go command,
// with the race detector if race is set (else with cgo off, as shipped),
// for tests that run the real binary
// the way the plugin does. It works from any directory inside the module
// (as a test's working directory is); the error carries the go command's
// output.
func BuildSidecar(out string, race bool) error {
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, SidecarPackage)...)
	if !race {
		// As the plugin ships it; the race detector needs cgo.
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
	}
	if output, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building the sidecar: %w\n%s", err, output)
	}
	return nil
}
