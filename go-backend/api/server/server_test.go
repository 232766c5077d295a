package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	pb "github.com/anysync/tauri-plugin-anysync/go-backend/api/proto/anysync/v1"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/auth"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/health"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/testsupport"
)

const testToken = "mF0Vq3nE4r7b1xX9kQ2pZcLw8TfYhG5sJdA6uRvN0eI"

type fixture struct {
	srv    *Server
	health *health.Service
	conn   *grpc.ClientConn
	logs   *testsupport.SyncBuffer
	served chan error
}

// panicDesc is a test-only service whose handler panics, to drive the
// recovery interceptor through the real chain.
var panicDesc = grpc.ServiceDesc{
	ServiceName: "test.Panic",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Boom",
		Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			in := new(pb.PingRequest)
			if err := dec(in); err != nil {
				return nil, err
			}
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: "/test.Panic/Boom"}
			return ic(ctx, in, info, func(context.Context, any) (any, error) { panic("boom: " + in.GetMessage()) })
		},
	}},
}

func newFixture(t *testing.T, maxMessageBytes int) *fixture {
	t.Helper()
	v, err := auth.NewVerifier(testToken)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testsupport.SyncBuffer{}
	hs := health.New(health.Options{Version: "0.1.0", ProtocolVersion: 1, PID: 77})
	srv, err := New(Options{
		Verifier:        v,
		Health:          hs,
		Logger:          slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		MaxMessageBytes: maxMessageBytes,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.grpc.RegisterService(&panicDesc, struct{}{})
	lis := bufconn.Listen(1 << 20)
	f := &fixture{srv: srv, health: hs, logs: logs, served: make(chan error, 1)}
	go func() { f.served <- srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	)
	if err != nil {
		t.Fatal(err)
	}
	f.conn = conn
	t.Cleanup(func() {
		_ = conn.Close()
		srv.Shutdown(time.Second)
		if err := <-f.served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return f
}

func withToken(ctx context.Context, value string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, AuthorizationKey, value)
}

func ctxWithDeadline(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPingAndCheck(t *testing.T) {
	f := newFixture(t, 0)
	ctx := withToken(ctxWithDeadline(t), "Bearer "+testToken)
	testsupport.AssertPingAndCheck(t, ctx, f.conn, "hello ✓", 77)

	c := pb.NewHealthServiceClient(f.conn)
	f.health.Shutdown()
	r, err := c.Check(ctx, &pb.HealthCheckRequest{})
	if err != nil || r.GetStatus() != pb.HealthCheckResponse_SERVING_STATUS_NOT_SERVING {
		t.Fatalf("Check after health shutdown = %v, %v", r, err)
	}
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t, 0)
	c := pb.NewHealthServiceClient(f.conn)
	std := healthpb.NewHealthClient(f.conn)

	calls := map[string]func(context.Context) error{
		"anysync Ping": func(ctx context.Context) error {
			_, err := c.Ping(ctx, &pb.PingRequest{Message: "x"})
			return err
		},
		"anysync Check": func(ctx context.Context) error {
			_, err := c.Check(ctx, &pb.HealthCheckRequest{})
			return err
		},
		"grpc.health.v1 Check": func(ctx context.Context) error {
			r, err := std.Check(ctx, &healthpb.HealthCheckRequest{Service: pb.HealthService_ServiceDesc.ServiceName})
			if err == nil && r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				return fmt.Errorf("status %v", r.GetStatus())
			}
			return err
		},
		"grpc.health.v1 Watch (stream)": func(ctx context.Context) error {
			w, err := std.Watch(ctx, &healthpb.HealthCheckRequest{})
			if err != nil {
				return err
			}
			r, err := w.Recv()
			if err == nil && r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				return fmt.Errorf("status %v", r.GetStatus())
			}
			return err
		},
	}
	creds := []struct {
		name     string
		md       []string
		code     codes.Code
		contains string
	}{
		{"no token", nil, codes.Unauthenticated, "missing bearer token"},
		{"empty bearer", []string{"Bearer "}, codes.Unauthenticated, "missing bearer token"},
		{"wrong token", []string{"Bearer " + strings.Repeat("A", 43)}, codes.Unauthenticated, "invalid bearer token"},
		{"no scheme", []string{testToken}, codes.Unauthenticated, "invalid bearer token"},
		{"right token", []string{"Bearer " + testToken}, codes.OK, ""},
	}
	for name, call := range calls {
		for _, cr := range creds {
			t.Run(name+"/"+cr.name, func(t *testing.T) {
				ctx := ctxWithDeadline(t)
				for _, v := range cr.md {
					ctx = withToken(ctx, v)
				}
				err := call(ctx)
				st := status.Convert(err)
				if st.Code() != cr.code || !strings.Contains(st.Message(), cr.contains) {
					t.Fatalf("got %v %q, want %v containing %q", st.Code(), st.Message(), cr.code, cr.contains)
				}
				if strings.Contains(st.Message(), testToken) {
					t.Fatal("status message leaks the token")
				}
			})
		}
	}
	for _, rec := range f.logs.Records(t) {
		if strings.Contains(fmt.Sprint(rec), testToken) {
			t.Fatalf("log record leaks the token: %v", rec)
		}
	}
}

func TestOversizedRequest(t *testing.T) {
	f := newFixture(t, 1024)
	ctx := withToken(ctxWithDeadline(t), "Bearer "+testToken)
	c := pb.NewHealthServiceClient(f.conn)
	_, err := c.Ping(ctx, &pb.PingRequest{Message: strings.Repeat("x", 2000)})
	if st := status.Convert(err); st.Code() != codes.ResourceExhausted {
		t.Fatalf("oversized Ping = %v, want ResourceExhausted", err)
	}
	if p, err := c.Ping(ctx, &pb.PingRequest{Message: strings.Repeat("y", 900)}); err != nil || len(p.GetMessage()) != 900 {
		t.Fatalf("Ping after oversized = %v, %v", p, err)
	}
}

func TestRecoveryAndRPCLog(t *testing.T) {
	f := newFixture(t, 0)
	ctx := withToken(ctxWithDeadline(t), "Bearer "+testToken)
	err := f.conn.Invoke(ctx, "/test.Panic/Boom", &pb.PingRequest{Message: "m1"}, new(pb.PingResponse))
	st := status.Convert(err)
	if st.Code() != codes.Internal || !strings.Contains(st.Message(), "/test.Panic/Boom") || strings.Contains(st.Message(), "m1") {
		t.Fatalf("panicking call = %v %q, want Internal naming the method only", st.Code(), st.Message())
	}
	// The server keeps serving after a panic.
	if _, err := pb.NewHealthServiceClient(f.conn).Ping(ctx, &pb.PingRequest{}); err != nil {
		t.Fatalf("Ping after panic: %v", err)
	}

	var panicRec, boomRec, pingRec map[string]any
	for _, r := range f.logs.Records(t) {
		switch {
		case r["msg"] == "panic while handling a call":
			panicRec = r
		case r["msg"] == "rpc" && r["method"] == "/test.Panic/Boom":
			boomRec = r
		case r["msg"] == "rpc" && r["method"] == "/anysync.v1.HealthService/Ping":
			pingRec = r
		}
	}
	if panicRec == nil || panicRec["level"] != "ERROR" || panicRec["panic"] != "boom: m1" || !strings.Contains(fmt.Sprint(panicRec["stack"]), "recoverUnary") {
		t.Errorf("panic record = %v", panicRec)
	}
	if boomRec == nil || boomRec["code"] != "Internal" || boomRec["level"] != "DEBUG" {
		t.Errorf("rpc record of the panicking call = %v", boomRec)
	}
	if pingRec == nil || pingRec["code"] != "OK" || pingRec["level"] != "DEBUG" {
		t.Errorf("rpc record of Ping = %v", pingRec)
	}
	if d, ok := pingRec["durationMs"].(float64); !ok || d < 0 {
		t.Errorf("durationMs = %v", pingRec["durationMs"])
	}
}

func TestRecoverStream(t *testing.T) {
	logs := &testsupport.SyncBuffer{}
	in := &interceptors{log: slog.New(slog.NewJSONHandler(logs, nil))}
	err := in.recoverStream(nil, fakeStream{ctx: t.Context()}, &grpc.StreamServerInfo{FullMethod: "/s/M"},
		func(any, grpc.ServerStream) error { panic(errors.New("stream boom")) })
	if status.Code(err) != codes.Internal {
		t.Fatalf("recoverStream = %v", err)
	}
	if recs := logs.Records(t); len(recs) != 1 || recs[0]["panic"] != "stream boom" {
		t.Fatalf("records = %v", recs)
	}
}

type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s fakeStream) Context() context.Context { return s.ctx }

func TestShutdown(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		f := newFixture(t, 0)
		if forced := f.srv.Shutdown(5 * time.Second); forced {
			t.Fatal("idle server needed a forced stop")
		}
		if f.health.Serving() {
			t.Fatal("health still serving")
		}
		if forced := f.srv.Shutdown(0); forced {
			t.Fatal("second Shutdown changed the result")
		}
	})
	t.Run("stream outlives the grace", func(t *testing.T) {
		f := newFixture(t, 0)
		ctx := withToken(ctxWithDeadline(t), "Bearer "+testToken)
		w, err := healthpb.NewHealthClient(f.conn).Watch(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if r, err := w.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("first Watch update = %v, %v", r, err)
		}
		done := make(chan bool, 1)
		go func() { done <- f.srv.Shutdown(100 * time.Millisecond) }()
		// The watcher hears NOT_SERVING before the connection goes away.
		if r, err := w.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Fatalf("Watch update during shutdown = %v, %v", r, err)
		}
		select {
		case forced := <-done:
			if !forced {
				t.Fatal("Shutdown with an open stream was not forced")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Shutdown did not return 10s after a 100ms grace")
		}
	})
}

func TestToStatus(t *testing.T) {
	already := status.Error(codes.NotFound, "x")
	tests := []struct {
		err  error
		code codes.Code
	}{
		{nil, codes.OK},
		{already, codes.NotFound},
		{fmt.Errorf("wrapped: %w", auth.ErrMissingToken), codes.Unauthenticated},
		{auth.ErrInvalidToken, codes.Unauthenticated},
		{fmt.Errorf("op: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{fmt.Errorf("op: %w", context.Canceled), codes.Canceled},
		{errors.New("other"), codes.Internal},
	}
	for _, tt := range tests {
		if got := status.Code(toStatus(tt.err)); got != tt.code {
			t.Errorf("toStatus(%v) = %v, want %v", tt.err, got, tt.code)
		}
	}
	if toStatus(already) != already {
		t.Error("a status error was rewrapped")
	}
}

func TestNewValidates(t *testing.T) {
	v, _ := auth.NewVerifier(testToken)
	hs := health.New(health.Options{})
	for name, o := range map[string]Options{
		"no verifier":   {Health: hs},
		"no health":     {Verifier: v},
		"negative size": {Verifier: v, Health: hs, MaxMessageBytes: -1},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	if _, err := New(Options{Verifier: v, Health: hs}); err != nil {
		t.Errorf("New with defaults: %v", err)
	}
}

// TestSilentConnectionIsDropped checks the handshake timeout: a peer that
// connects and never speaks HTTP/2 is disconnected by the server.
func TestSilentConnectionIsDropped(t *testing.T) {
	v, _ := auth.NewVerifier(testToken)
	srv, err := New(Options{Verifier: v, Health: health.New(health.Options{}), ConnectionTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() {
		srv.Shutdown(time.Second)
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	conn, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1024)
	for {
		_, err := conn.Read(buf) // the server's SETTINGS frame may arrive first
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("silent connection still open after %v", time.Since(start))
		}
		break // EOF or reset: dropped
	}
}
