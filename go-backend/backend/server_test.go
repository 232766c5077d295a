package backend

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
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/anysync/tauri-plugin-anysync/go-backend/api/proto/anysync/v1"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/testsupport"
)

func TestPingAndCheck(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	conn := f.conn(t)
	ctx := authed(t)
	testsupport.AssertPingAndCheck(t, ctx, conn, "hello ✓", 77)

	std := healthpb.NewHealthClient(conn)
	for _, svc := range []string{"", "anysync.v1.HealthService", "grpc.health.v1.Health", "test.v1.Test"} {
		r, err := std.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("grpc.health.v1 Check(%q) = %v, %v", svc, r, err)
		}
	}
	if _, err := std.Check(ctx, &healthpb.HealthCheckRequest{Service: "no.such.Service"}); status.Code(err) != codes.NotFound {
		t.Fatalf("Check of an unknown service = %v, want NotFound", err)
	}

	f.health.Shutdown()
	r, err := pb.NewHealthServiceClient(conn).Check(ctx, &pb.HealthCheckRequest{})
	if err != nil || r.GetStatus() != pb.HealthCheckResponse_SERVING_STATUS_NOT_SERVING {
		t.Fatalf("Check after health shutdown = %v, %v", r, err)
	}
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	calls := map[string]func(context.Context, *grpc.ClientConn) error{
		"anysync Ping": func(ctx context.Context, conn *grpc.ClientConn) error {
			_, err := pb.NewHealthServiceClient(conn).Ping(ctx, &pb.PingRequest{Message: "x"})
			return err
		},
		"anysync Check": func(ctx context.Context, conn *grpc.ClientConn) error {
			_, err := pb.NewHealthServiceClient(conn).Check(ctx, &pb.HealthCheckRequest{})
			return err
		},
		"grpc.health.v1 Check": func(ctx context.Context, conn *grpc.ClientConn) error {
			r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: pb.HealthService_ServiceDesc.ServiceName})
			if err == nil && r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				return fmt.Errorf("status %v", r.GetStatus())
			}
			return err
		},
		"grpc.health.v1 Watch (stream)": func(ctx context.Context, conn *grpc.ClientConn) error {
			w, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{})
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
		{"two values", []string{"Bearer " + testToken, "Bearer " + testToken}, codes.Unauthenticated, "invalid bearer token"},
		{"right token", []string{"Bearer " + testToken}, codes.OK, ""},
	}
	for name, call := range calls {
		for _, cr := range creds {
			t.Run(name+"/"+cr.name, func(t *testing.T) {
				ctx := ctxWithDeadline(t)
				for _, v := range cr.md {
					ctx = withToken(ctx, v)
				}
				// A connection per case: a failed authentication condemns
				// its connection.
				err := call(ctx, f.conn(t))
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

// TestAuthInterceptors checks the interceptors on their own: the tap
// normally refuses first, so without this test removing them would leave
// every test green.
func TestAuthInterceptors(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	in := f.srv.in
	next := func(context.Context, any) (any, error) { return "called", nil }
	for _, ctx := range []context.Context{context.Background(), incoming("Bearer " + strings.Repeat("Z", 43))} {
		if _, err := in.authUnary(ctx, nil, &grpc.UnaryServerInfo{}, next); status.Code(err) != codes.Unauthenticated {
			t.Errorf("authUnary without the token = %v", err)
		}
		err := in.authStream(nil, fakeStream{ctx: ctx}, &grpc.StreamServerInfo{}, func(any, grpc.ServerStream) error { return nil })
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("authStream without the token = %v", err)
		}
	}
	if r, err := in.authUnary(incoming("Bearer "+testToken), nil, &grpc.UnaryServerInfo{}, next); err != nil || r != "called" {
		t.Errorf("authUnary with the token = %v, %v", r, err)
	}
}

func TestOversizedRequest(t *testing.T) {
	f := newFixture(t, fixtureOptions{maxMessageBytes: 1024})
	ctx := authed(t)
	c := pb.NewHealthServiceClient(f.conn(t))
	_, err := c.Ping(ctx, &pb.PingRequest{Message: strings.Repeat("x", 2000)})
	if st := status.Convert(err); st.Code() != codes.ResourceExhausted {
		t.Fatalf("oversized Ping = %v, want ResourceExhausted", err)
	}
	if p, err := c.Ping(ctx, &pb.PingRequest{Message: strings.Repeat("y", 900)}); err != nil || len(p.GetMessage()) != 900 {
		t.Fatalf("Ping after oversized = %v, %v", p, err)
	}
}

// TestRequestAtTheLimitRoundTrips: a request of exactly maxMessageBytes is
// answered, although its answer (the echo plus a timestamp) is larger. With
// the send limit equal to the receive limit the handler would run and its
// answer fail with RESOURCE_EXHAUSTED.
func TestRequestAtTheLimitRoundTrips(t *testing.T) {
	const limit = 1024
	f := newFixture(t, fixtureOptions{maxMessageBytes: limit})
	ctx := authed(t)
	c := pb.NewHealthServiceClient(f.conn(t))
	req := &pb.PingRequest{Message: strings.Repeat("z", limit-3)} // tag, 2-byte length, body
	if n := proto.Size(req); n != limit {
		t.Fatalf("request is %d bytes, want %d", n, limit)
	}
	p, err := c.Ping(ctx, req)
	if err != nil || p.GetMessage() != req.GetMessage() {
		t.Fatalf("Ping at the limit = %v", err)
	}
	if proto.Size(p) <= limit {
		t.Fatalf("the answer is %d bytes: the test does not exercise a larger answer", proto.Size(p))
	}
}

func TestRecoveryAndRPCLog(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	conn := f.conn(t)
	ctx := authed(t)
	err := conn.Invoke(ctx, "/test.v1.Test/Boom", &pb.PingRequest{Message: "m1"}, new(pb.PingResponse))
	st := status.Convert(err)
	if st.Code() != codes.Internal || !strings.Contains(st.Message(), "/test.v1.Test/Boom") || strings.Contains(st.Message(), "m1") {
		t.Fatalf("panicking call = %v %q, want Internal naming the method only", st.Code(), st.Message())
	}
	// The server keeps serving after a panic.
	if _, err := pb.NewHealthServiceClient(conn).Ping(ctx, &pb.PingRequest{}); err != nil {
		t.Fatalf("Ping after panic: %v", err)
	}

	panicRec := f.record(t, "panic while handling a call", nil)
	boomRec := f.record(t, "rpc", func(r map[string]any) bool { return r["method"] == "/test.v1.Test/Boom" })
	pingRec := f.record(t, "rpc", func(r map[string]any) bool { return r["method"] == "/anysync.v1.HealthService/Ping" })
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

// TestErrorKinds: a handler's error becomes its status code in one place.
func TestErrorKinds(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	conn := f.conn(t)
	for _, tt := range []struct {
		msg  string
		code codes.Code
		text string
	}{
		{"kind", codes.NotFound, `space "s1" not found`},
		{"wrapped kind", codes.Aborted, "outer\nconflict: rev 3"},
		{"status", codes.AlreadyExists, "exists already"},
		{"canceled", codes.Canceled, "context canceled"},
		{"deadline", codes.DeadlineExceeded, "context deadline exceeded"},
		{"plain", codes.Internal, "internal error: the backend failed while handling /test.v1.Test/Fail; its log has the details"},
	} {
		t.Run(tt.msg, func(t *testing.T) {
			err := conn.Invoke(authed(t), "/test.v1.Test/Fail", &pb.PingRequest{Message: tt.msg}, new(pb.PingResponse))
			if st := status.Convert(err); st.Code() != tt.code || st.Message() != tt.text {
				t.Fatalf("Fail(%q) = %v %q, want %v %q", tt.msg, st.Code(), st.Message(), tt.code, tt.text)
			}
		})
	}
	// The plain error's text went to the log, not to the caller.
	rec := f.record(t, "call failed", nil)
	if rec == nil || rec["level"] != "ERROR" || rec["method"] != "/test.v1.Test/Fail" || rec["error"] != "secret detail: plain" {
		t.Fatalf("call failed record = %v", rec)
	}
	if n := len(f.logs.Records(t)); strings.Count(f.logs.String(), `"call failed"`) != 1 {
		t.Fatalf("want exactly one call failed record among %d", n)
	}
}

func TestShutdown(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		f := newFixture(t, fixtureOptions{})
		// A used, now idle connection does not hold the stop.
		if _, err := pb.NewHealthServiceClient(f.conn(t)).Ping(authed(t), &pb.PingRequest{}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if forced := f.srv.shutdown(5 * time.Second); forced {
			t.Fatal("idle server needed a forced stop")
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("idle stop took %v", d)
		}
		if f.health.Serving() {
			t.Fatal("health still serving")
		}
		if forced := f.srv.shutdown(0); forced {
			t.Fatal("second shutdown changed the result")
		}
	})
	t.Run("unary call outlives the grace", func(t *testing.T) {
		f := newFixture(t, fixtureOptions{})
		conn := f.conn(t)
		errc := make(chan error, 1)
		go func() { errc <- conn.Invoke(authed(t), "/test.v1.Test/Block", &pb.PingRequest{}, new(pb.PingResponse)) }()
		<-f.test.blocked
		start := time.Now()
		if forced := f.srv.shutdown(200 * time.Millisecond); !forced {
			t.Fatal("a stop with a call still running was not forced")
		}
		if d := time.Since(start); d < 200*time.Millisecond || d > 5*time.Second {
			t.Fatalf("stop took %v, want the grace (200ms)", d)
		}
		if err := <-errc; status.Code(err) != codes.Unavailable && status.Code(err) != codes.Canceled {
			t.Fatalf("the cut call = %v", err)
		}
	})
	t.Run("unary call within the grace finishes", func(t *testing.T) {
		f := newFixture(t, fixtureOptions{})
		conn := f.conn(t)
		ctx, cancel := context.WithTimeout(withToken(t.Context(), "Bearer "+testToken), 300*time.Millisecond)
		defer cancel()
		errc := make(chan error, 1)
		go func() { errc <- conn.Invoke(ctx, "/test.v1.Test/Block", &pb.PingRequest{}, new(pb.PingResponse)) }()
		<-f.test.blocked
		if forced := f.srv.shutdown(5 * time.Second); forced {
			t.Fatal("forced")
		}
		// The call ran to its own deadline: the stop did not cancel it.
		if err := <-errc; status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("call = %v, want its own DeadlineExceeded", err)
		}
	})
	for _, tt := range []struct {
		name    string
		payload int
		read    bool
	}{
		{"endless stream, reading client", 10, true},
		{"endless stream, client that never reads", 64 << 10, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{})
			conn := f.conn(t)
			desc := &grpc.StreamDesc{ServerStreams: true}
			cs, err := conn.NewStream(authed(t), desc, "/test.v1.Test/Endless")
			if err != nil {
				t.Fatal(err)
			}
			if err := cs.SendMsg(&pb.PingRequest{Message: strings.Repeat("p", tt.payload)}); err != nil {
				t.Fatal(err)
			}
			if err := cs.CloseSend(); err != nil {
				t.Fatal(err)
			}
			if err := cs.RecvMsg(new(pb.PingResponse)); err != nil {
				t.Fatal(err)
			}
			readErr := make(chan error, 1)
			if tt.read {
				go func() {
					for {
						if err := cs.RecvMsg(new(pb.PingResponse)); err != nil {
							readErr <- err
							return
						}
					}
				}()
			}
			time.Sleep(50 * time.Millisecond) // let the handler fill the windows
			start := time.Now()
			if forced := f.srv.shutdown(5 * time.Second); forced {
				t.Fatal("forced")
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("stop with an open stream took %v, want < 1s", d)
			}
			select {
			case <-f.test.endlessDone: // Send failed: released by the stop
			case <-time.After(time.Second):
				t.Fatal("the stream handler did not return")
			}
			if tt.read {
				if err := <-readErr; status.Code(err) != codes.Unavailable {
					t.Fatalf("the stream ended with %v, want Unavailable", err)
				}
			}
		})
	}
	t.Run("grpc.health.v1 Watch", func(t *testing.T) {
		f := newFixture(t, fixtureOptions{})
		w, err := healthpb.NewHealthClient(f.conn(t)).Watch(authed(t), &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if r, err := w.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("first Watch update = %v, %v", r, err)
		}
		start := time.Now()
		if forced := f.srv.shutdown(5 * time.Second); forced || time.Since(start) > time.Second {
			t.Fatalf("stop with a Watch open: forced=%v after %v", forced, time.Since(start))
		}
		// The watcher may hear NOT_SERVING first; the stream then ends
		// UNAVAILABLE.
		for {
			r, err := w.Recv()
			if err != nil {
				if status.Code(err) != codes.Unavailable {
					t.Fatalf("Watch ended with %v, want Unavailable", err)
				}
				break
			}
			if r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
				t.Fatalf("Watch update during the stop = %v", r)
			}
		}
	})
	t.Run("calls after the stop began are refused", func(t *testing.T) {
		f := newFixture(t, fixtureOptions{})
		f.srv.stop(ErrShuttingDown) // the first step of shutdown, alone
		_, err := pb.NewHealthServiceClient(f.conn(t)).Ping(authed(t), &pb.PingRequest{})
		// The exact message: the plugin sends such a call again to the next
		// incarnation, and only such a call.
		if st := status.Convert(err); st.Code() != codes.Unavailable || st.Message() != refusedWhenStoppingMessage {
			t.Fatalf("Ping during the stop = %v, want UNAVAILABLE %q", err, refusedWhenStoppingMessage)
		}
	})
}

// incoming returns a server-side context carrying authorization metadata.
func incoming(authorization string) context.Context {
	return metadata.NewIncomingContext(context.Background(), metadata.Pairs(AuthorizationKey, authorization))
}

func TestNewServerValidates(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	base := serverOptions{verifier: f.srv.in.verifier, health: f.health, maxMessageBytes: 1024}
	other := pb.HealthService_ServiceDesc
	other.ServiceName = "test.v1.Other"
	healthDesc := testDesc
	healthDesc.ServiceName = "grpc.health.v1.Health"
	for name, tt := range map[string]struct {
		services []Service
		max      int
		contains string
	}{
		"nil service":    {[]Service{nil}, 1024, "service 0 is nil"},
		"empty name":     {[]Service{namedService{"", GRPCService(&testDesc, newTestService())}}, 1024, "empty Name"},
		"twice":          {[]Service{GRPCService(&testDesc, newTestService()), GRPCService(&testDesc, newTestService())}, 1024, "registered twice"},
		"built-in name":  {[]Service{GRPCService(&healthDesc, newTestService())}, 1024, "built-in"},
		"name mismatch":  {[]Service{namedService{"test.v1.Other", GRPCService(&testDesc, newTestService())}}, 1024, "registered no gRPC service of that name"},
		"wrong impl":     {[]Service{GRPCService(&pb.HealthService_ServiceDesc, struct{}{})}, 1024, "does not satisfy"},
		"nil desc":       {[]Service{GRPCService(nil, struct{}{})}, 1024, "nil ServiceDesc"},
		"wrong type":     {[]Service{GRPCService(&other, 42)}, 1024, "does not satisfy"},
		"negative limit": {nil, -1, "maxMessageBytes"},
	} {
		t.Run(name, func(t *testing.T) {
			o := base
			o.services, o.maxMessageBytes = tt.services, tt.max
			_, err := newServer(o)
			if err == nil || !strings.Contains(err.Error(), tt.contains) {
				t.Fatalf("newServer = %v, want an error containing %q", err, tt.contains)
			}
		})
	}
}

// namedService overrides a Service's Name.
type namedService struct {
	name string
	Service
}

func (n namedService) Name() string { return n.name }

// TestSilentConnectionIsDropped checks the handshake timeout: a peer that
// connects and never speaks HTTP/2 is disconnected by the server.
func TestSilentConnectionIsDropped(t *testing.T) {
	f := newFixture(t, fixtureOptions{connectionTimeout: 100 * time.Millisecond})
	conn, err := net.Dial("tcp", f.addr)
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
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("dropped after %v, want about 100ms", d)
	}
}
