package server

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/auth"
)

// AuthorizationKey is the metadata key that carries "Bearer <token>".
const AuthorizationKey = "authorization"

// interceptors hold what the unary and stream interceptors share.
type interceptors struct {
	verifier *auth.Verifier
	log      *slog.Logger
}

// authorize checks the call's bearer token and returns nil or an
// UNAUTHENTICATED status. It never logs or echoes a token.
func (in *interceptors) authorize(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	if err := in.verifier.Verify(md.Get(AuthorizationKey)); err != nil {
		return toStatus(err)
	}
	return nil
}

// authTap checks the bearer token as soon as a call's headers arrive,
// before the server creates the stream, looks up the method or reads the
// request message. Interceptors run only after the generated handler has
// received and decoded the request, so without this a caller with no token
// could make the server buffer up to maxMessageBytes per stream (128 streams
// per connection, any number of connections), and could learn which
// services exist from UNIMPLEMENTED answers. A refused call gets the same
// UNAUTHENTICATED status the interceptors give, and the same debug "rpc"
// record. The interceptors still check: cheap, and correct on their own.
func (in *interceptors) authTap(ctx context.Context, info *tap.Info) (context.Context, error) {
	err := in.verifier.Verify(info.Header.Get(AuthorizationKey))
	if err == nil {
		return ctx, nil
	}
	st := toStatus(err)
	in.logCall(ctx, truncate(info.FullMethodName, maxLoggedMethod), time.Now(), st)
	return ctx, st
}

// maxLoggedMethod bounds a method name in a log record: before the token is
// checked, the name is whatever the caller sent.
const maxLoggedMethod = 256

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
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

// logCall writes the one debug record of a finished call.
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
	start := time.Now()
	resp, err := next(ctx, req)
	in.logCall(ctx, info.FullMethod, start, err)
	return resp, err
}

func (in *interceptors) logStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
	start := time.Now()
	err := next(srv, ss)
	in.logCall(ss.Context(), info.FullMethod, start, err)
	return err
}
