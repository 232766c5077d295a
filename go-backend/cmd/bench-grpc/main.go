// Command bench-grpc is baseline B3 of the benchmark harness (bench/): the
// smallest useful grpc-go server (the standard health service only) on a
// kernel-chosen loopback port. Its idle RSS is the floor of the sidecar's.
// It prints {"addr":"127.0.0.1:PORT"} on stdout and exits when stdin closes.
package main

import (
	"context"
	"fmt"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/benchbase"
)

func main() {
	if err := realMain(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "bench-grpc:", err)
		os.Exit(1)
	}
}

func realMain(parent context.Context) error {
	ctx, cancel := benchbase.UntilEOF(parent, os.Stdin)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	stop := context.AfterFunc(ctx, srv.Stop)
	defer stop()
	fmt.Println(benchbase.Ready(ln.Addr()))
	if err := srv.Serve(ln); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
