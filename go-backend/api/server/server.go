// Package server is the backend's gRPC edge: it builds the grpc.Server with
// its limits and interceptors, registers anysync.v1.HealthService and the
// standard grpc.health.v1.Health, and runs the graceful stop.
//
// It is the only package that knows gRPC status codes: internal packages
// return plain Go errors (wrapped with %w, compared with errors.Is) and
// this package maps them in toStatus.
package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	pb "github.com/anysync/tauri-plugin-anysync/go-backend/api/proto/anysync/v1"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/auth"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/health"
)

// Defaults of the Options left zero.
const (
	// DefaultConnectionTimeout bounds a new connection's HTTP/2 handshake,
	// so a peer that connects and sends nothing (or garbage) is dropped.
	DefaultConnectionTimeout = 5 * time.Second
	// DefaultMaxConcurrentStreams bounds the calls in flight per connection.
	DefaultMaxConcurrentStreams = 128
	// DefaultMaxHeaderListBytes bounds a call's metadata. Ours is a few
	// dozen bytes; grpc-go's own default is 16 MiB.
	DefaultMaxHeaderListBytes = 64 << 10
	// DefaultMaxMessageBytes bounds a message when Options.MaxMessageBytes
	// is zero; it matches the config default.
	DefaultMaxMessageBytes = 4 << 20
)

// Keepalive policy. The only client is the parent on loopback: let it ping
// every 10 s even between calls, and ping it after a minute of silence so a
// vanished peer's connection is reclaimed.
var (
	keepaliveEnforcement = keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}
	keepaliveParams      = keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}
)

// Options configure a Server. Verifier and Health are required.
type Options struct {
	// Verifier checks the bearer token of every call.
	Verifier *auth.Verifier
	// Health is the state behind both health services.
	Health *health.Service
	// Logger receives one debug record per call and an error record per
	// recovered panic. Nil discards them.
	Logger *slog.Logger
	// MaxMessageBytes bounds received and sent messages; larger requests
	// fail with RESOURCE_EXHAUSTED. Zero means DefaultMaxMessageBytes.
	MaxMessageBytes int
	// ConnectionTimeout bounds a connection's handshake. Zero means
	// DefaultConnectionTimeout.
	ConnectionTimeout time.Duration
	// MaxConcurrentStreams bounds the calls in flight per connection. Zero
	// means DefaultMaxConcurrentStreams.
	MaxConcurrentStreams uint32
}

// Server is the backend's gRPC server. Create it with New, run it with
// Serve, stop it with Shutdown.
type Server struct {
	grpc   *grpc.Server
	std    *grpchealth.Server
	health *health.Service
	log    *slog.Logger

	stopOnce sync.Once
	forced   bool
}

// New builds a Server from opts; it does not listen yet.
func New(opts Options) (*Server, error) {
	if opts.Verifier == nil {
		return nil, errors.New("server: Options.Verifier is required")
	}
	if opts.Health == nil {
		return nil, errors.New("server: Options.Health is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxMessageBytes == 0 {
		opts.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if opts.MaxMessageBytes < 0 {
		return nil, fmt.Errorf("server: Options.MaxMessageBytes is %d, expected a positive size", opts.MaxMessageBytes)
	}
	if opts.ConnectionTimeout == 0 {
		opts.ConnectionTimeout = DefaultConnectionTimeout
	}
	if opts.MaxConcurrentStreams == 0 {
		opts.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}

	in := &interceptors{verifier: opts.Verifier, log: opts.Logger}
	g := grpc.NewServer(
		grpc.MaxRecvMsgSize(opts.MaxMessageBytes),
		grpc.MaxSendMsgSize(opts.MaxMessageBytes),
		grpc.MaxConcurrentStreams(opts.MaxConcurrentStreams),
		grpc.MaxHeaderListSize(DefaultMaxHeaderListBytes),
		grpc.ConnectionTimeout(opts.ConnectionTimeout),
		grpc.KeepaliveEnforcementPolicy(keepaliveEnforcement),
		grpc.KeepaliveParams(keepaliveParams),
		// The token is checked when the headers arrive, before any message
		// is read (see authTap), and again by the interceptors.
		grpc.InTapHandle(in.authTap),
		// Order matters: logging sees the final code, including the
		// INTERNAL of a recovered panic and the UNAUTHENTICATED of auth.
		grpc.ChainUnaryInterceptor(in.logUnary, in.recoverUnary, in.authUnary),
		grpc.ChainStreamInterceptor(in.logStream, in.recoverStream, in.authStream),
	)

	std := grpchealth.NewServer()
	std.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	std.SetServingStatus(pb.HealthService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(g, std)
	pb.RegisterHealthServiceServer(g, &healthService{svc: opts.Health})

	return &Server{grpc: g, std: std, health: opts.Health, log: opts.Logger}, nil
}

// Serve accepts connections on lis until Shutdown, then returns nil; any
// other return is an error that wraps the listener's failure. Shutdown may
// come first (a signal right after start): Serve then returns nil at once.
// lis is closed when Serve returns. Call it at most once.
func (s *Server) Serve(lis net.Listener) error {
	if err := s.grpc.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serving gRPC on %s: %w", lis.Addr(), err)
	}
	return nil
}

// Shutdown stops the server gracefully: both health services report
// NOT_SERVING, new calls are refused, and calls in flight may finish for up
// to grace; after that they are cancelled and connections closed. It
// returns when the server has stopped and reports whether the grace ran
// out. Safe to call more than once and concurrently; later calls wait for
// nothing and return the first call's result.
func (s *Server) Shutdown(grace time.Duration) (forced bool) {
	s.stopOnce.Do(func() {
		s.health.Shutdown()
		s.std.Shutdown()
		timer := time.AfterFunc(grace, s.grpc.Stop)
		s.grpc.GracefulStop()
		// Stop reports false when the timer already fired: the grace ran out.
		s.forced = !timer.Stop()
	})
	return s.forced
}
