package backend

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/anysync/tauri-plugin-anysync/go-backend/api/proto/anysync/v1"
	"github.com/anysync/tauri-plugin-anysync/go-backend/backend/errs"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/auth"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/health"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/testsupport"
)

const testToken = "mF0Vq3nE4r7b1xX9kQ2pZcLw8TfYhG5sJdA6uRvN0eI"

// testService is "test.v1.Test", written by hand with the health proto's
// messages, to drive the server through its real chain:
//
//   - Boom panics;
//   - Fail returns the error its message names (see failure);
//   - Block waits for its context to end, then returns its error;
//   - Endless streams PingResponses carrying the request's message until
//     Send fails.
type testService struct {
	// blocked receives a value when Block starts waiting.
	blocked chan struct{}
	// endlessDone receives Endless's result.
	endlessDone chan error
}

func newTestService() *testService {
	return &testService{blocked: make(chan struct{}, 16), endlessDone: make(chan error, 16)}
}

// failure returns the error Fail returns for msg.
func failure(msg string) error {
	switch msg {
	case "kind":
		return errs.New(errs.NotFound, "space %q not found", "s1")
	case "wrapped kind":
		return errors.Join(errors.New("outer"), errs.Wrap(errs.Aborted, errors.New("rev 3"), "conflict"))
	case "status":
		return status.Error(codes.AlreadyExists, "exists already")
	case "canceled":
		return context.Canceled
	case "deadline":
		return context.DeadlineExceeded
	default:
		return errors.New("secret detail: " + msg)
	}
}

func unary(name string, h func(ctx context.Context, ts *testService, req *pb.PingRequest) (*pb.PingResponse, error)) grpc.MethodDesc {
	return grpc.MethodDesc{
		MethodName: name,
		Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			in := new(pb.PingRequest)
			if err := dec(in); err != nil {
				return nil, err
			}
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: "/test.v1.Test/" + name}
			return ic(ctx, in, info, func(ctx context.Context, req any) (any, error) {
				return h(ctx, srv.(*testService), req.(*pb.PingRequest))
			})
		},
	}
}

var testDesc = grpc.ServiceDesc{
	ServiceName: "test.v1.Test",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{
		unary("Boom", func(_ context.Context, _ *testService, req *pb.PingRequest) (*pb.PingResponse, error) {
			panic("boom: " + req.GetMessage())
		}),
		unary("Fail", func(_ context.Context, _ *testService, req *pb.PingRequest) (*pb.PingResponse, error) {
			return nil, failure(req.GetMessage())
		}),
		unary("Block", func(ctx context.Context, ts *testService, _ *pb.PingRequest) (*pb.PingResponse, error) {
			ts.blocked <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		}),
		unary("Echo", func(_ context.Context, _ *testService, req *pb.PingRequest) (*pb.PingResponse, error) {
			return &pb.PingResponse{Message: req.GetMessage(), HandledAtUnixMicros: time.Now().UnixMicro()}, nil
		}),
	},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Endless",
		ServerStreams: true,
		Handler: func(srv any, ss grpc.ServerStream) error {
			ts := srv.(*testService)
			req := new(pb.PingRequest)
			if err := ss.RecvMsg(req); err != nil {
				return err
			}
			for {
				if err := ss.SendMsg(&pb.PingResponse{Message: req.GetMessage()}); err != nil {
					ts.endlessDone <- err
					return err
				}
			}
		},
	}},
}

type fixture struct {
	srv    *server
	health *health.Service
	test   *testService
	addr   string
	logs   *testsupport.SyncBuffer
	served chan error
}

type fixtureOptions struct {
	maxMessageBytes   int
	connectionTimeout time.Duration
	maxConnections    int
	maxConnectionIdle time.Duration
	logLevel          slog.Level
	// The fields below are passed to serverOptions as they are.
	keepaliveEnforcement *keepalive.EnforcementPolicy
	keepaliveParams      *keepalive.ServerParameters
	withoutTap           bool
}

// newFixture serves the built-in services and test.v1.Test on a loopback
// port; the server is shut down when the test ends.
func newFixture(t *testing.T, o fixtureOptions) *fixture {
	t.Helper()
	v, err := auth.NewVerifier(testToken)
	if err != nil {
		t.Fatal(err)
	}
	if o.maxMessageBytes == 0 {
		o.maxMessageBytes = 4 << 20
	}
	if o.logLevel == 0 {
		o.logLevel = slog.LevelDebug
	}
	logs := &testsupport.SyncBuffer{}
	hs := health.New(health.Options{Version: "0.1.0", ProtocolVersion: 1, PID: 77})
	ts := newTestService()
	srv, err := newServer(serverOptions{
		verifier:          v,
		health:            hs,
		log:               slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: o.logLevel})),
		maxMessageBytes:   o.maxMessageBytes,
		connectionTimeout: o.connectionTimeout,
		maxConnections:    o.maxConnections,
		maxConnectionIdle: o.maxConnectionIdle,
		services:          []Service{GRPCService(&testDesc, ts)},

		keepaliveEnforcement: o.keepaliveEnforcement,
		keepaliveParams:      o.keepaliveParams,
		withoutTap:           o.withoutTap,
	})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{srv: srv, health: hs, test: ts, addr: lis.Addr().String(), logs: logs, served: make(chan error, 1)}
	go func() { f.served <- srv.serve(lis) }()
	t.Cleanup(func() {
		srv.shutdown(time.Second)
		if err := <-f.served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return f
}

// conn returns a new client connection to the fixture, closed when the test
// ends. Each call gets its own TCP connection.
func (f *fixture) conn(t *testing.T) *grpc.ClientConn {
	t.Helper()
	c, err := grpc.NewClient(f.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func withToken(ctx context.Context, value string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, AuthorizationKey, value)
}

func ctxWithDeadline(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func authed(t *testing.T) context.Context {
	return withToken(ctxWithDeadline(t), "Bearer "+testToken)
}

// record returns the last record with msg for which match (if not nil)
// holds, or nil.
func (f *fixture) record(t *testing.T, msg string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	var found map[string]any
	for _, r := range f.logs.Records(t) {
		if r["msg"] == msg && (match == nil || match(r)) {
			found = r
		}
	}
	return found
}

func hasPrefix(s any, prefix string) bool {
	str, ok := s.(string)
	return ok && strings.HasPrefix(str, prefix)
}

// openConns returns how many connections the server holds.
func (f *fixture) openConns() int {
	f.srv.conns.mu.Lock()
	defer f.srv.conns.mu.Unlock()
	return len(f.srv.conns.conns)
}

// eventually polls cond every 5 ms until it holds or d has passed.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}
