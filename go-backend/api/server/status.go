package server

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/auth"
)

// toStatus maps an internal error to the gRPC status the client sees. It is
// the one place where Go errors become status codes; handlers and
// interceptors return its result. A nil error stays nil, and an error that
// already is a status passes through unchanged.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, auth.ErrMissingToken):
		return status.Error(codes.Unauthenticated,
			`missing bearer token: send metadata "authorization: Bearer <token>" with the token the parent wrote on the backend's stdin`)
	case errors.Is(err, auth.ErrInvalidToken):
		return status.Error(codes.Unauthenticated,
			`invalid bearer token: "authorization" must be "Bearer <token>" with the token the parent wrote on this backend's stdin`)
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	default:
		return status.Error(codes.Internal, err.Error())
	}
}
