package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	pb "github.com/anysync/tauri-plugin-anysync/go-backend/api/proto/anysync/v1"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/auth"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/health"
)

// Fixed server limits.
const (
	// connectionTimeout bounds a new connection's HTTP/2 handshake, so a
	// peer that connects and sends nothing (or garbage) is dropped.
	connectionTimeout = 5 * time.Second
	// maxConcurrentStreams bounds the calls in flight per connection.
	maxConcurrentStreams = 128
	// maxHeaderListBytes bounds a call's metadata. Ours is a few dozen
	// bytes; grpc-go's own default is 16 MiB.
	maxHeaderListBytes = 64 << 10
	// maxConnections bounds the connections open at once. The plugin uses
	// two (unary calls and streams); the rest of the room is for tools and
	// tests. A connection over the bound is closed as soon as it is accepted.
	maxConnections = 64
	// maxConnectionIdle closes a connection that had no call for this long
	// (with a GOAWAY: a client reconnects on its next call), so idle
	// connections cannot pile up.
	maxConnectionIdle = 2 * time.Minute
	// ResponseHeadroomBytes is how much larger than maxMessageBytes a
	// response may be: a request at the limit must be answerable, and an
	// answer carries the request's data plus a few fields (an echo, a
	// document with its revision). Clients must accept responses of
	// maxMessageBytes + ResponseHeadroomBytes.
	ResponseHeadroomBytes = 64 << 10
	// cutAfter is how long after the stop began the transport contexts of
	// streams still open are cancelled, which releases a handler blocked
	// in Send to a client that does not read (its HTTP/2 window closed).
	cutAfter = 150 * time.Millisecond
	// drainAfterIdle bounds how long a stop waits, once every handler has
	// returned, for the last bytes to reach the clients: a client that
	// does not read would otherwise hold the graceful stop until the grace
	// runs out.
	drainAfterIdle = 250 * time.Millisecond
	// streamWindowBytes and connWindowBytes are fixed HTTP/2 receive
	// windows. Fixed windows turn off grpc-go's BDP estimation, which on
	// loopback sends a WINDOW_UPDATE and a PING with nearly every response
	// (and the client answers each PING): two frames, a write and a read
	// more on each side per call. 1 MiB per stream takes a request at the
	// 4 MiB limit in four window updates.
	streamWindowBytes = 1 << 20
	connWindowBytes   = 16 << 20
	// refusedReportEvery is the period of the one record that counts calls
	// refused for want of the token: refusals themselves never log.
	refusedReportEvery = time.Second
)

// Keepalive policy. The only client is the parent on loopback: let it ping
// every 10 s even between calls, and ping it after a minute of silence so a
// vanished peer's connection is reclaimed.
var (
	keepaliveEnforcement = keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}
	keepaliveParams      = keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}
)

// ErrShuttingDown is the cause (context.Cause) of a streaming call's context
// when the backend cancelled it because it is stopping, as opposed to the
// caller cancelling (context.Canceled) or a deadline. Such a stream ends with
// UNAVAILABLE for the client, which may resubscribe to the next incarnation.
var ErrShuttingDown = errors.New("the backend is shutting down")

// serverOptions configure a server.
type serverOptions struct {
	verifier *auth.Verifier
	health   *health.Service
	log      *slog.Logger
	// maxMessageBytes bounds received messages; responses may be
	// ResponseHeadroomBytes larger.
	maxMessageBytes int
	// connectionTimeout and maxConnections override the fixed limits in
	// tests when non-zero.
	connectionTimeout time.Duration
	maxConnections    int
	maxConnectionIdle time.Duration
	// keepaliveEnforcement and keepaliveParams override the keepalive
	// policy in tests when non-nil.
	keepaliveEnforcement *keepalive.EnforcementPolicy
	keepaliveParams      *keepalive.ServerParameters
	// withoutTap leaves the auth tap out, so that tests reach the
	// interceptors without the token.
	withoutTap bool
	services   []Service
}

// server is the backend's gRPC edge: the grpc.Server with its limits and
// interceptors, both health services, the registered services, and the
// ordered stop.
type server struct {
	grpc   *grpc.Server
	std    *grpchealth.Server
	health *health.Service
	log    *slog.Logger
	in     *interceptors

	// methods maps every registered "/pkg.Service/Method" to whether it
	// streams; filled once before serving, read-only afterwards.
	methods map[string]bool
	conns   *connLimiter

	// stopping is cancelled with ErrShuttingDown when the stop begins;
	// cutting cutAfter later, if streaming handlers still run.
	stopping context.Context
	stop     context.CancelCauseFunc
	cutting  context.Context
	cut      context.CancelCauseFunc
	calls    callTracker

	stopOnce sync.Once
	forced   bool
}

// builtinServices are registered by every backend.
var builtinServices = []string{healthpb.Health_ServiceDesc.ServiceName, pb.HealthService_ServiceDesc.ServiceName}

// newServer builds a server from o and registers the services; it does not
// listen yet.
func newServer(o serverOptions) (*server, error) {
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.maxMessageBytes <= 0 {
		return nil, fmt.Errorf("maxMessageBytes is %d, expected a positive size", o.maxMessageBytes)
	}
	if o.connectionTimeout == 0 {
		o.connectionTimeout = connectionTimeout
	}
	if o.maxConnections == 0 {
		o.maxConnections = maxConnections
	}
	if o.maxConnectionIdle == 0 {
		o.maxConnectionIdle = maxConnectionIdle
	}
	kp, kep := keepaliveParams, keepaliveEnforcement
	if o.keepaliveParams != nil {
		kp = *o.keepaliveParams
	}
	if o.keepaliveEnforcement != nil {
		kep = *o.keepaliveEnforcement
	}
	kp.MaxConnectionIdle = o.maxConnectionIdle
	s := &server{health: o.health, log: o.log, conns: newConnLimiter(o.maxConnections)}
	s.conns.verifier = o.verifier
	s.stopping, s.stop = context.WithCancelCause(context.Background())
	s.cutting, s.cut = context.WithCancelCause(context.Background())
	s.in = &interceptors{verifier: o.verifier, log: o.log, srv: s}
	in := s.in
	tap := grpc.InTapHandle(in.authTap)
	if o.withoutTap {
		tap = grpc.EmptyServerOption{}
	}
	s.grpc = grpc.NewServer(
		grpc.MaxRecvMsgSize(o.maxMessageBytes),
		grpc.MaxSendMsgSize(o.maxMessageBytes+ResponseHeadroomBytes),
		grpc.MaxConcurrentStreams(maxConcurrentStreams),
		grpc.MaxHeaderListSize(maxHeaderListBytes),
		grpc.ConnectionTimeout(o.connectionTimeout),
		grpc.KeepaliveEnforcementPolicy(kep),
		grpc.KeepaliveParams(kp),
		grpc.InitialWindowSize(streamWindowBytes),
		grpc.InitialConnWindowSize(connWindowBytes),
		// The token is checked when the headers arrive, before any message
		// is read (see authTap), and again by the interceptors.
		tap,
		// Order matters: logging sees the final code, including the
		// INTERNAL of a recovered panic and the UNAUTHENTICATED of auth;
		// errors map innermost, right at the handler.
		grpc.ChainUnaryInterceptor(in.logUnary, in.recoverUnary, in.authUnary, in.errorsUnary),
		grpc.ChainStreamInterceptor(in.logStream, in.stopStream, in.recoverStream, in.authStream, in.errorsStream),
	)

	s.std = grpchealth.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.std)
	pb.RegisterHealthServiceServer(s.grpc, &healthService{svc: o.health})
	if err := s.register(o.services); err != nil {
		return nil, err
	}
	s.std.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.methods = map[string]bool{}
	for name, info := range s.grpc.GetServiceInfo() {
		s.std.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
		for _, m := range info.Methods {
			s.methods["/"+name+"/"+m.Name] = m.IsServerStream || m.IsClientStream
		}
	}
	return s, nil
}

// register registers services on the grpc.Server and checks their names:
// non-empty, distinct, and each the name of a service it registered.
func (s *server) register(services []Service) (err error) {
	seen := map[string]bool{}
	for _, name := range builtinServices {
		seen[name] = true
	}
	for i, svc := range services {
		if svc == nil {
			return fmt.Errorf("service %d is nil", i)
		}
		if c, ok := svc.(interface{ check() error }); ok {
			if err := c.check(); err != nil {
				return fmt.Errorf("service %d: %w", i, err)
			}
		}
		name := svc.Name()
		if name == "" {
			return fmt.Errorf("service %d (%T) has an empty Name", i, svc)
		}
		if seen[name] {
			return fmt.Errorf("service %s is registered twice (or is a built-in service)", name)
		}
		seen[name] = true
		if err := registerOne(s.grpc, svc); err != nil {
			return fmt.Errorf("registering %s: %w", name, err)
		}
		if _, ok := s.grpc.GetServiceInfo()[name]; !ok {
			return fmt.Errorf("service %s (%T) registered no gRPC service of that name: Name must be the full service name of its ServiceDesc", name, svc)
		}
	}
	return nil
}

// registerOne turns grpc's registration panics (a duplicate, a wrong
// implementation type) into errors.
func registerOne(g *grpc.Server, svc Service) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	svc.Register(g)
	return nil
}

// serve accepts connections on lis until the stop, then returns nil; any
// other return wraps the listener's failure. The stop may come first (a
// signal right after start): serve then returns nil at once. lis is closed
// when serve returns. Call it at most once.
func (s *server) serve(lis net.Listener) error {
	reporter := make(chan struct{})
	defer close(reporter)
	go s.in.reportRefused(reporter)
	if err := s.grpc.Serve(s.conns.wrap(lis)); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serving gRPC on %s: %w", lis.Addr(), err)
	}
	return nil
}

// shutdown stops the server in order:
//
//  1. both health services report NOT_SERVING, and new calls are refused
//     with UNAVAILABLE;
//  2. the contexts of streaming handlers are cancelled with
//     ErrShuttingDown, so endless streams end, with UNAVAILABLE, instead of
//     holding the stop; cutAfter later (bounded by grace), streams still
//     open have their transport context cancelled too, which releases a
//     handler blocked in Send to a client that does not read;
//  3. unary calls in flight may finish for up to grace;
//  4. once no handler runs, the last bytes get drainAfterIdle to reach
//     their clients; then, or when grace runs out, every connection is
//     closed.
//
// It returns when the gRPC server has fully stopped and reports whether
// grace ran out with handlers still running. Safe to call more than once
// and concurrently; later calls wait for the first and return its result.
func (s *server) shutdown(grace time.Duration) (forced bool) {
	s.stopOnce.Do(func() {
		s.forced = s.stopInOrder(grace)
	})
	return s.forced
}

func (s *server) stopInOrder(grace time.Duration) (forced bool) {
	s.health.Shutdown()
	s.std.Shutdown()
	s.stop(ErrShuttingDown)
	defer s.cut(ErrShuttingDown)

	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	graceOver := time.NewTimer(grace)
	defer graceOver.Stop()
	cutNow := time.NewTimer(min(cutAfter, grace))
	defer cutNow.Stop()
	idle := s.calls.idle()
	var drained <-chan time.Time
	for {
		select {
		case <-stopped:
			return false
		case <-cutNow.C:
			s.cut(ErrShuttingDown)
		case <-idle:
			idle = nil
			drain := time.NewTimer(drainAfterIdle)
			defer drain.Stop()
			drained = drain.C
		case <-drained:
			s.grpc.Stop()
			<-stopped
			return false
		case <-graceOver.C:
			forced = !s.calls.isIdle()
			s.grpc.Stop()
			<-stopped
			return forced
		}
	}
}

// isStopping reports whether the stop has begun.
func (s *server) isStopping() bool { return s.stopping.Err() != nil }

// streamContext derives a streaming call's transport context from ctx so
// that the stop can cut it (cancel it with ErrShuttingDown). It is installed
// by the tap, before grpc binds the stream's flow control to the context, so
// cutting releases a handler blocked in Send. The handler's own context is
// cancelled earlier, by stopStream: a cut stream's Send fails with
// CANCELLED, which its client, not reading, never sees anyway.
func (s *server) streamContext(ctx context.Context) context.Context {
	ctx, cancel := context.WithCancelCause(ctx)
	unhook := context.AfterFunc(s.cutting, func() { cancel(ErrShuttingDown) })
	// The transport cancels the parent when the stream ends: release the
	// hook then.
	context.AfterFunc(ctx, func() { unhook(); cancel(nil) })
	return ctx
}

// unavailableWhenStopping returns the status a call ends with once the
// backend cancelled it for the stop.
var unavailableWhenStopping = status.Error(codes.Unavailable,
	"the backend is shutting down: the call was ended; call again once the backend has restarted")

// refusedWhenStoppingMessage is the message of the UNAVAILABLE status a call gets
// when the stop refused it before any handler ran. A client may send such a
// call again to the next incarnation: nothing of it was done. The plugin
// matches it exactly (docs/call-path.md), so it is part of the protocol.
const refusedWhenStoppingMessage = "the backend is shutting down: the call was not started; call again once the backend has restarted"

var refusedWhenStopping = status.Error(codes.Unavailable, refusedWhenStoppingMessage)

// callTracker counts the handlers running, to learn when none is left.
type callTracker struct {
	mu      sync.Mutex
	n       int
	waiters []chan struct{}
}

func (c *callTracker) enter() {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
}

func (c *callTracker) exit() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n--
	if c.n == 0 {
		for _, w := range c.waiters {
			close(w)
		}
		c.waiters = nil
	}
}

func (c *callTracker) isIdle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n == 0
}

// idle returns a channel closed once no handler runs (at once if none does).
func (c *callTracker) idle() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan struct{})
	if c.n == 0 {
		close(ch)
	} else {
		c.waiters = append(c.waiters, ch)
	}
	return ch
}
