// Command server is the anysync backend sidecar. The Tauri plugin spawns
// it, writes the bootstrap line on its stdin, and reads the handshake line
// from its stdout; see internal/launch and go-backend/README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/app"
)

func main() {
	// A parent that dies closes our stderr pipe too: log writes must then
	// fail quietly instead of killing the process with SIGPIPE before its
	// graceful stop.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.ExitCode(realMain(ctx))
	stop()
	os.Exit(code)
}

// realMain runs the backend with the process's real stdio and environment.
// Its error has already been logged; main only maps it to an exit code.
func realMain(ctx context.Context) error {
	return app.Run(ctx, app.Env{
		Args:          os.Args[1:],
		Stdin:         os.Stdin,
		Stdout:        os.Stdout,
		Stderr:        os.Stderr,
		LookupEnv:     os.LookupEnv,
		ReadFile:      os.ReadFile,
		PID:           os.Getpid(),
		RouteGRPCLogs: true,
	})
}
