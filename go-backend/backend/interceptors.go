package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/anysync/tauri-plugin-anysync/go-backend/backend/errs"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/auth"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/logging"
)

// AuthorizationKey is the metadata key that carries "Bearer <token>".
const AuthorizationKey = "authorization"

// interceptors hold what the tap and the interceptors share.
type interceptors struct {
	verifier *auth.Verifier
	log      *slog.Logger
	srv      *server

	// refused counts calls refused by the tap since the last report;
	// refusedTotal since the start.
	refused      atomic.Uint64
	refusedTotal atomic.Uint64
}

// authorize checks the call's bearer token and returns nil or an
// UNAUTHENTICATED status. It never logs or echoes a token.
func (in *interceptors) authorize(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	if err := in.verifier.Verify(md.Get(AuthorizationKey)); err != nil {
		return authStatus(err)
	}
	return nil
}

// authTap checks the bearer token as soon as a call's headers arrive,
// before the server creates the stream, looks up the method or reads the
// request message. Interceptors run only after the generated handler has
// received and decoded the request, so without this a caller with no token
// could make the server buffer up to maxMessageBytes per stream, and could
// learn which services exist from UNIMPLEMENTED answers.
//
// A refused call gets UNAUTHENTICATED, and its connection is condemned: it
// reads no more frames and closes shortly after (a legitimate client always
// sends the token, so a peer without it can cost only a small, fixed
// amount). The tap runs on the connection's reading goroutine: it never
// logs; refusals are counted and reported once per refusedReportEvery.
//
// Once the stop has begun, authenticated calls are refused with
// UNAVAILABLE. A streaming call gets a transport context that the stop can
// cut (see server.streamContext). The interceptors check the token again:
// cheap, and correct on their own.
func (in *interceptors) authTap(ctx context.Context, info *tap.Info) (context.Context, error) {
	if err := in.verifier.Verify(info.Header.Get(AuthorizationKey)); err != nil {
		in.refused.Add(1)
		in.refusedTotal.Add(1)
		if p, ok := peer.FromContext(ctx); ok {
			in.srv.conns.condemn(p.Addr)
		}
		return ctx, authStatus(err)
	}
	if in.srv.isStopping() {
		return ctx, refusedWhenStopping
	}
	if in.srv.methods[info.FullMethodName] {
		return in.srv.streamContext(ctx), nil
	}
	return ctx, nil
}

// reportRefused writes, at most once per refusedReportEvery, one warning
// that counts the calls refused for a missing or wrong token and the
// connections closed, until done is closed. Nothing the peer sent is in it.
func (in *interceptors) reportRefused(done <-chan struct{}) {
	t := time.NewTicker(refusedReportEvery)
	defer t.Stop()
	var lastConns, lastCondemned uint64
	report := func() {
		calls := in.refused.Swap(0)
		conns := in.srv.conns.refusedConns.Load()
		condemned := in.srv.conns.condemned.Load()
		if calls == 0 && conns == lastConns && condemned == lastCondemned {
			return
		}
		in.log.LogAttrs(context.Background(), slog.LevelWarn, "refused calls without the bearer token",
			slog.Uint64("calls", calls),
			slog.Uint64("connectionsClosed", condemned-lastCondemned),
			slog.Uint64("connectionsOverLimit", conns-lastConns),
			slog.String("period", refusedReportEvery.String()),
		)
		lastConns, lastCondemned = conns, condemned
	}
	for {
		select {
		case <-t.C:
			report()
		case <-done:
			report()
			return
		}
	}
}

// stopStream gives a streaming handler a context that the stop cancels with
// ErrShuttingDown, so an endless stream ends instead of holding the stop;
// once it is cancelled, SendMsg fails with UNAVAILABLE without sending. A
// handler blocked inside SendMsg (its client does not read) is released
// later, when the stop cuts the stream's transport context.
func (in *interceptors) stopStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, next grpc.StreamHandler) error {
	ctx, cancel := context.WithCancelCause(ss.Context())
	defer cancel(nil)
	unhook := context.AfterFunc(in.srv.stopping, func() { cancel(ErrShuttingDown) })
	defer unhook()
	return next(srv, &stoppableStream{ServerStream: ss, ctx: ctx})
}

type stoppableStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *stoppableStream) Context() context.Context { return s.ctx }

func (s *stoppableStream) SendMsg(m any) error {
	if errors.Is(context.Cause(s.ctx), ErrShuttingDown) {
		return unavailableWhenStopping
	}
	return s.ServerStream.SendMsg(m)
}

func (in *interceptors) authUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	if err := in.authorize(ctx); err != nil {
		return nil, err
	}
	return next(ctx, req)
}

func (in *interceptors) authStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, next grpc.StreamHandler) error {
	if err := in.authorize(ss.Context()); err != nil {
		return err
	}
	return next(srv, ss)
}

// recovered turns a panic value into an INTERNAL status and an error record
// with the stack. The client learns only that the backend failed.
func (in *interceptors) recovered(ctx context.Context, method string, p any) error {
	in.log.LogAttrs(ctx, slog.LevelError, "panic while handling a call",
		slog.String("method", method),
		slog.String("panic", fmt.Sprint(p)),
		slog.String("stack", string(debug.Stack())),
	)
	return status.Errorf(codes.Internal, "internal error: the backend failed while handling %s; its log has the details", method)
}

func (in *interceptors) recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			resp, err = nil, in.recovered(ctx, info.FullMethod, p)
		}
	}()
	return next(ctx, req)
}

func (in *interceptors) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = in.recovered(ss.Context(), info.FullMethod, p)
		}
	}()
	return next(srv, ss)
}

// toStatus is the one place where a handler's error becomes the status the
// client sees:
//
//   - nil stays nil, and a status error passes unchanged;
//   - an error with an errs.Kind gets the code of that kind and its own
//     text as the message;
//   - context.Canceled and context.DeadlineExceeded become CANCELLED and
//     DEADLINE_EXCEEDED;
//   - anything else is INTERNAL with a generic message naming the method,
//     and the error itself is logged (it may hold details the caller must
//     not see).
func (in *interceptors) toStatus(ctx context.Context, method string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if kind := errs.KindOf(err); kind != errs.Unknown {
		return status.Error(codeOf(kind), err.Error())
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	in.log.LogAttrs(ctx, slog.LevelError, "call failed", slog.String("method", method), logging.Error(err))
	return status.Errorf(codes.Internal, "internal error: the backend failed while handling %s; its log has the details", method)
}

// codeOf maps a kind to the status code of the same name.
func codeOf(k errs.Kind) codes.Code {
	switch k {
	case errs.InvalidArgument:
		return codes.InvalidArgument
	case errs.NotFound:
		return codes.NotFound
	case errs.AlreadyExists:
		return codes.AlreadyExists
	case errs.FailedPrecondition:
		return codes.FailedPrecondition
	case errs.Aborted:
		return codes.Aborted
	case errs.ResourceExhausted:
		return codes.ResourceExhausted
	case errs.PermissionDenied:
		return codes.PermissionDenied
	case errs.Unavailable:
		return codes.Unavailable
	case errs.Unimplemented:
		return codes.Unimplemented
	case errs.OutOfRange:
		return codes.OutOfRange
	case errs.DataLoss:
		return codes.DataLoss
	default:
		return codes.Internal
	}
}

func (in *interceptors) errorsUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	resp, err := next(ctx, req)
	if err != nil {
		return nil, in.toStatus(ctx, info.FullMethod, err)
	}
	return resp, nil
}

// errorsStream maps the handler's error like errorsUnary, except that a
// stream the stop ended gets UNAVAILABLE whatever the handler returned.
func (in *interceptors) errorsStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
	err := next(srv, ss)
	if err != nil && errors.Is(context.Cause(ss.Context()), ErrShuttingDown) {
		return unavailableWhenStopping
	}
	return in.toStatus(ss.Context(), info.FullMethod, err)
}

// logCall writes the one debug record of a finished call. method is always
// a registered method's name: the interceptors run for nothing else.
func (in *interceptors) logCall(ctx context.Context, method string, start time.Time, err error) {
	if !in.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	st := status.Convert(err)
	attrs := []slog.Attr{
		slog.String("method", method),
		slog.String("code", st.Code().String()),
		slog.Float64("durationMs", float64(time.Since(start).Microseconds())/1000),
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", st.Message()))
	}
	in.log.LogAttrs(ctx, slog.LevelDebug, "rpc", attrs...)
}

func (in *interceptors) logUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	in.srv.calls.enter()
	defer in.srv.calls.exit()
	start := time.Now()
	resp, err := next(ctx, req)
	in.logCall(ctx, info.FullMethod, start, err)
	return resp, err
}

func (in *interceptors) logStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
	in.srv.calls.enter()
	defer in.srv.calls.exit()
	start := time.Now()
	err := next(srv, ss)
	in.logCall(ss.Context(), info.FullMethod, start, err)
	return err
}

// authStatus maps a Verify error to the UNAUTHENTICATED status the client
// sees.
func authStatus(err error) error {
	if errors.Is(err, auth.ErrMissingToken) {
		return status.Error(codes.Unauthenticated,
			`missing bearer token: send metadata "authorization: Bearer <token>" with the token the parent wrote on the backend's stdin`)
	}
	return status.Error(codes.Unauthenticated,
		`invalid bearer token: "authorization" must be "Bearer <token>" with the token the parent wrote on this backend's stdin`)
}
