package backend

import (
	"context"

	pb "github.com/anysync/tauri-plugin-anysync/go-backend/api/proto/anysync/v1"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/health"
)

// healthService serves anysync.v1.HealthService from a health.Service.
type healthService struct {
	pb.UnimplementedHealthServiceServer
	svc *health.Service
}

var _ pb.HealthServiceServer = (*healthService)(nil)

// Check reports SERVING, or NOT_SERVING once shutdown began, with the
// backend's identity and uptime.
func (h *healthService) Check(ctx context.Context, _ *pb.HealthCheckRequest) (*pb.HealthCheckResponse, error) {
	r, err := h.svc.Check(ctx)
	if err != nil {
		return nil, err
	}
	st := pb.HealthCheckResponse_SERVING_STATUS_SERVING
	if !r.Serving {
		st = pb.HealthCheckResponse_SERVING_STATUS_NOT_SERVING
	}
	return &pb.HealthCheckResponse{
		Status:          st,
		Version:         r.Version,
		ProtocolVersion: uint32(r.ProtocolVersion),
		UptimeMs:        r.Uptime.Milliseconds(),
		Pid:             int32(r.PID),
	}, nil
}

// Ping echoes the message with the time it was handled.
func (h *healthService) Ping(ctx context.Context, req *pb.PingRequest) (*pb.PingResponse, error) {
	e, err := h.svc.Ping(ctx, req.GetMessage())
	if err != nil {
		return nil, err
	}
	return &pb.PingResponse{
		Message:             e.Message,
		HandledAtUnixMicros: e.HandledAt.UnixMicro(),
	}, nil
}
