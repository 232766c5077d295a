package backend_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	pb "github.com/anysync/tauri-plugin-anysync/go-backend/api/proto/anysync/v1"
	"github.com/anysync/tauri-plugin-anysync/go-backend/backend"
	"github.com/anysync/tauri-plugin-anysync/go-backend/backend/backendtest"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/config"
)

// closeLog records the order of Close calls and what each saw.
type closeLog struct {
	mu     sync.Mutex
	closed []string
}

func (l *closeLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = append(l.closed, s)
}

func (l *closeLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.closed...)
}

// fakeService registers a copy of HealthService under another name, and
// records its Close.
type fakeService struct {
	name     string
	log      *closeLog
	closeErr error
	// serving reports, at Close time, whether a call could still reach the
	// server: it must not.
	addr string
	pb.UnimplementedHealthServiceServer
}

func (f *fakeService) Name() string { return f.name }

func (f *fakeService) Register(r grpc.ServiceRegistrar) {
	desc := pb.HealthService_ServiceDesc
	desc.ServiceName = f.name
	r.RegisterService(&desc, f)
}

func (f *fakeService) Close(ctx context.Context) error {
	_, hasDeadline := ctx.Deadline()
	f.log.add(fmt.Sprintf("%s deadline=%v", f.name, hasDeadline))
	return f.closeErr
}

func TestServicesAreServedAndClosedInReverseOrder(t *testing.T) {
	log := &closeLog{}
	a := &fakeService{name: "test.v1.A", log: log}
	b := &fakeService{name: "test.v1.B", log: log}
	be := backendtest.Start(t, nil, a, b)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	std := healthpb.NewHealthClient(be.Conn)
	for _, svc := range []string{"test.v1.A", "test.v1.B", "anysync.v1.HealthService", ""} {
		r, err := std.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Check(%q) = %v, %v", svc, r, err)
		}
	}
	// A's Ping is Unimplemented: the call reached the service.
	err := be.Conn.Invoke(ctx, "/test.v1.A/Ping", &pb.PingRequest{}, new(pb.PingResponse))
	if status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), "Ping not implemented") {
		t.Fatalf("A/Ping = %v", err)
	}
	if err := be.Stop(); err != nil {
		t.Fatal(err)
	}
	if got := log.get(); strings.Join(got, ",") != "test.v1.B deadline=true,test.v1.A deadline=true" {
		t.Fatalf("Close order = %v", got)
	}
	var ready map[string]any
	for _, r := range be.Logs() {
		if r["msg"] == "backend ready" {
			ready = r
		}
	}
	if fmt.Sprint(ready["services"]) != "[grpc.health.v1.Health anysync.v1.HealthService test.v1.A test.v1.B]" {
		t.Fatalf("ready record services = %v", ready["services"])
	}
}

// closeAfterStop checks, when closed, that the server no longer answers.
type closeAfterStop struct {
	fakeService
	conn    *grpc.ClientConn
	callErr chan error
}

func (c *closeAfterStop) Close(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err := pb.NewHealthServiceClient(c.conn).Ping(cctx, &pb.PingRequest{})
	c.callErr <- err
	return nil
}

func TestCloseRunsAfterTheServerStopped(t *testing.T) {
	svc := &closeAfterStop{fakeService: fakeService{name: "test.v1.C", log: &closeLog{}}, callErr: make(chan error, 1)}
	be := backendtest.Start(t, nil, svc)
	svc.conn = be.Conn
	if err := be.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := <-svc.callErr; status.Code(err) != codes.Unavailable && status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("a call made from Close = %v, want no answer (Unavailable)", err)
	}
}

func TestCloseFailureIsExitOne(t *testing.T) {
	log := &closeLog{}
	bad := &fakeService{name: "test.v1.Bad", log: log, closeErr: errors.New("flush failed")}
	good := &fakeService{name: "test.v1.Good", log: log}
	env, _, stderr := baseEnv()
	inR, inW := io.Pipe()
	env.Stdin = inR
	outR, outW := io.Pipe()
	env.Stdout = outW
	go func() { _, _ = io.Copy(io.Discard, outR) }()
	done := make(chan error, 1)
	go func() { done <- backend.Run(t.Context(), env, good, bad) }()
	if _, err := io.WriteString(inW, bootstrapLine); err != nil {
		t.Fatal(err)
	}
	_ = inW.Close()
	err := <-done
	if backend.ExitCode(err) != backend.ExitFailure || !strings.Contains(err.Error(), "closing service test.v1.Bad: flush failed") {
		t.Fatalf("Run = %v", err)
	}
	// Both were closed, the failing one first (registered last).
	if got := log.get(); len(got) != 2 || !strings.HasPrefix(got[0], "test.v1.Bad") {
		t.Fatalf("closed = %v", got)
	}
	recs := stderr.Records(t)
	if rec := find(recs, "closing a service failed"); rec == nil || rec["service"] != "test.v1.Bad" {
		t.Fatalf("records = %v", recs)
	}
	if last := recs[len(recs)-1]; last["msg"] != "backend failed" {
		t.Fatalf("last record = %v", last)
	}
}

// TestServicesClosedWhenNeverServed: Run owns the services even when it
// fails before serving.
func TestServicesClosedWhenNeverServed(t *testing.T) {
	for name, args := range map[string][]string{
		"bad config": {"--log-level", "loud"},
		"version":    {"--version"},
		"no stdin":   nil,
	} {
		t.Run(name, func(t *testing.T) {
			log := &closeLog{}
			env, _, _ := baseEnv(args...)
			_ = backend.Run(t.Context(), env, &fakeService{name: "test.v1.X", log: log})
			if got := log.get(); len(got) != 1 || got[0] != "test.v1.X deadline=false" {
				t.Fatalf("closed = %v", got)
			}
		})
	}
	t.Run("registration fails", func(t *testing.T) {
		log := &closeLog{}
		env, _, stderr := baseEnv()
		env.Stdin = strings.NewReader(bootstrapLine)
		a := &fakeService{name: "test.v1.Same", log: log}
		err := backend.Run(t.Context(), env, a, &fakeService{name: "test.v1.Same", log: log})
		if backend.ExitCode(err) != backend.ExitFailure || !strings.Contains(err.Error(), "test.v1.Same is registered twice") {
			t.Fatalf("Run = %v", err)
		}
		if got := log.get(); len(got) != 2 {
			t.Fatalf("closed = %v", got)
		}
		recs := stderr.Records(t)
		if last := recs[len(recs)-1]; last["msg"] != "backend failed" {
			t.Fatalf("last record = %v", last)
		}
	})
}

func TestGRPCService(t *testing.T) {
	s := backend.GRPCService(&pb.HealthService_ServiceDesc, &fakeService{name: "x", log: &closeLog{}})
	if s.Name() != "anysync.v1.HealthService" {
		t.Fatalf("Name = %q", s.Name())
	}
	if _, ok := s.(backend.Closer); !ok {
		t.Fatal("the impl has Close, the Service does not")
	}
	s = backend.GRPCService(&pb.HealthService_ServiceDesc, pb.UnimplementedHealthServiceServer{})
	if _, ok := s.(backend.Closer); ok {
		t.Fatal("the impl has no Close, the Service does")
	}
}

func TestReadConfigFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	if err := os.WriteFile(good, []byte(`{"logLevel":"debug"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, make([]byte, config.MaxFileBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	mkfifo(t, fifo)
	if data, err := backend.ReadConfigFile(good); err != nil || string(data) != `{"logLevel":"debug"}` {
		t.Fatalf("regular file = %q, %v", data, err)
	}
	for name, tt := range map[string]struct{ path, contains string }{
		"too big":   {big, "the limit is 1048576"},
		"fifo":      {fifo, "not a regular file"},
		"dev zero":  {"/dev/zero", "not a regular file"},
		"directory": {dir, "not a regular file"},
		"missing":   {filepath.Join(dir, "none"), "no such file"},
	} {
		t.Run(name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { _, err := backend.ReadConfigFile(tt.path); done <- err }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tt.contains) {
					t.Fatalf("ReadConfigFile = %v, want %q", err, tt.contains)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("ReadConfigFile blocked")
			}
		})
	}
	// Through Run with the default reader: exit 2 naming the file.
	env, _, stderr := baseEnv("--config", fifo)
	env.ReadFile = nil
	done := make(chan error, 1)
	go func() { done <- backend.Run(t.Context(), env) }()
	select {
	case err := <-done:
		if backend.ExitCode(err) != backend.ExitConfig || !strings.Contains(err.Error(), "fifo is not a regular file") {
			t.Fatalf("Run with a FIFO config = %v; stderr %s", err, stderr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run blocked reading a FIFO config file")
	}
}
