// Command bench-echo is baseline B0 of the benchmark harness (bench/): a raw
// TCP echo server on a kernel-chosen loopback port. It prints
// {"addr":"127.0.0.1:PORT"} on stdout, echoes length-prefixed frames (see
// benchbase.Echo) and exits when its stdin closes.
package main

import (
	"context"
	"fmt"
	"net"
	"os"

	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/benchbase"
)

func main() {
	if err := realMain(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "bench-echo:", err)
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
	fmt.Println(benchbase.Ready(ln.Addr()))
	return benchbase.ServeEcho(ctx, ln)
}
