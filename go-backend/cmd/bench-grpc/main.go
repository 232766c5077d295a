// Command bench-grpc is baseline B3 of the benchmark harness (bench/): the
// smallest useful grpc-go server (the standard health service only) on a
// kernel-chosen loopback port. Its idle RSS is the floor of the sidecar's.
// It prints {"addr":"127.0.0.1:PORT"} on stdout and exits when stdin closes.
package main

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/benchbase"
)

func main() { benchbase.Main("bench-grpc", serve) }

// serve runs the health-only gRPC server on ln until ctx is done.
func serve(ctx context.Context, ln net.Listener) error {
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	stop := context.AfterFunc(ctx, srv.Stop)
	defer stop()
	if err := srv.Serve(ln); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
