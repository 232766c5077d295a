// Package app runs the sidecar: configuration, bootstrap, listen,
// handshake, serve, graceful stop. cmd/server calls Run with the process's
// real stdio; tests may call it with fakes.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/anysync/tauri-plugin-anysync/go-backend/api/server"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/auth"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/config"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/health"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/launch"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/logging"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/version"
)

// Exit codes of the backend process.
const (
	// ExitOK: normal stop (stdin closed, SIGTERM/SIGINT), --version, --help.
	ExitOK = 0
	// ExitFailure: a runtime failure (bad bootstrap, address in use, ...).
	ExitFailure = 1
	// ExitConfig: invalid configuration (flags, file, environment).
	ExitConfig = 2
)

// ErrAddrInUse means the configured listen address is taken.
var ErrAddrInUse = errors.New("address already in use")

// Env is the process environment Run works in.
type Env struct {
	// Args are the command-line arguments without the program name.
	Args []string
	// Stdin carries the bootstrap line; its end of file stops the backend.
	Stdin io.Reader
	// Stdout receives the handshake line (or the --version output) and
	// nothing else.
	Stdout io.Writer
	// Stderr receives the JSON log records.
	Stderr io.Writer
	// LookupEnv and ReadFile are os.LookupEnv and os.ReadFile.
	LookupEnv func(string) (string, bool)
	ReadFile  func(string) ([]byte, error)
	// PID is the process id to report.
	PID int
	// RouteGRPCLogs, when true, sends grpc-go's own logs to the backend's
	// logger. Process-global: only the binary should set it.
	RouteGRPCLogs bool
}

// ExitCode maps Run's result to the process exit status: ExitOK for nil
// and for a help request, ExitConfig for an error wrapping
// config.ErrInvalid, ExitFailure for anything else.
func ExitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.Is(err, config.ErrInvalid):
		return ExitConfig
	default:
		return ExitFailure
	}
}

// Run runs the backend until ctx is done (a signal), stdin reaches end of
// file (the parent is gone), or serving fails. A stop for the first two
// reasons is graceful and returns nil. Any failure has already been logged
// as the last JSON record on env.Stderr when Run returns it; the caller
// only maps it to an exit code with ExitCode.
func Run(ctx context.Context, env Env) error {
	inv, err := config.Load(config.Sources{
		Args:      env.Args,
		LookupEnv: env.LookupEnv,
		ReadFile:  env.ReadFile,
		Usage:     env.Stderr,
	})
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	if err != nil {
		logConfigError(logging.New(env.Stderr, slog.LevelInfo), err)
		return err
	}
	if inv.PrintVersion {
		if _, err := fmt.Fprintln(env.Stdout, version.Version); err != nil {
			return fmt.Errorf("printing the version: %w", err)
		}
		return nil
	}

	cfg := inv.Config
	log := logging.New(env.Stderr, cfg.LogLevel)
	if env.RouteGRPCLogs {
		logging.RouteGRPC(log)
	}
	if err := run(ctx, log, cfg, env); err != nil {
		log.LogAttrs(ctx, slog.LevelError, "backend failed", logging.Error(err))
		return err
	}
	return nil
}

func logConfigError(log *slog.Logger, err error) {
	attrs := []slog.Attr{logging.Error(err)}
	var ce *config.Error
	if errors.As(err, &ce) {
		attrs = append(attrs,
			slog.String("key", ce.Key),
			slog.String("env", ce.Env),
			slog.String("flag", ce.Flag),
			slog.String("allowed", ce.Allowed),
		)
	}
	log.LogAttrs(context.Background(), slog.LevelError, "invalid configuration; the backend did not start", attrs...)
}

// run is Run after the configuration is known.
func run(ctx context.Context, log *slog.Logger, cfg config.Config, env Env) error {
	bctx, cancel := context.WithTimeoutCause(ctx, cfg.BootstrapTimeout,
		fmt.Errorf("no complete line on stdin within bootstrapTimeout (%v; ANYSYNC_BOOTSTRAP_TIMEOUT, --bootstrap-timeout)", cfg.BootstrapTimeout))
	boot, parentGone, err := launch.Receive(bctx, env.Stdin)
	cancel()
	if err != nil {
		if ctx.Err() != nil { // stopped by a signal before the parent spoke
			log.LogAttrs(ctx, slog.LevelInfo, "backend stopped before bootstrap",
				slog.String("reason", context.Cause(ctx).Error()))
			return nil
		}
		return fmt.Errorf("bootstrap from stdin: %w", err)
	}
	verifier, err := auth.NewVerifier(boot.Token)
	if err != nil {
		return fmt.Errorf("bootstrap from stdin: %w", err)
	}

	lis, err := listen(ctx, cfg.ListenAddr)
	if err != nil {
		return err
	}
	hs := health.New(health.Options{
		Version:         version.Version,
		ProtocolVersion: version.ProtocolVersion,
		PID:             env.PID,
	})
	srv, err := server.New(server.Options{
		Verifier:        verifier,
		Health:          hs,
		Logger:          log,
		MaxMessageBytes: cfg.MaxMessageBytes,
	})
	if err != nil {
		_ = lis.Close()
		return fmt.Errorf("building the gRPC server: %w", err)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(lis) }()

	h := launch.Handshake{
		Anysync:         launch.Ready,
		ProtocolVersion: version.ProtocolVersion,
		Addr:            lis.Addr().String(),
		PID:             env.PID,
		Version:         version.Version,
	}
	if err := launch.WriteHandshake(env.Stdout, h); err != nil {
		srv.Shutdown(0)
		return err
	}
	log.LogAttrs(ctx, slog.LevelInfo, "backend ready",
		slog.String("addr", h.Addr),
		slog.Int("pid", h.PID),
		slog.String("version", h.Version),
		slog.Int("protocolVersion", h.ProtocolVersion),
		slog.Any("config", cfg),
	)

	var reason string
	select {
	case <-ctx.Done():
		reason = context.Cause(ctx).Error()
	case <-parentGone:
		reason = "stdin closed: the parent process is gone"
	case err := <-serveErr:
		hs.Shutdown()
		return err
	}

	log.LogAttrs(context.Background(), slog.LevelInfo, "backend shutting down",
		slog.String("reason", reason),
		slog.String("shutdownGrace", cfg.ShutdownGrace.String()),
	)
	start := time.Now()
	forced := srv.Shutdown(cfg.ShutdownGrace)
	if err := <-serveErr; err != nil {
		log.LogAttrs(context.Background(), slog.LevelWarn, "serve ended with an error during shutdown", logging.Error(err))
	}
	log.LogAttrs(context.Background(), slog.LevelInfo, "backend stopped",
		slog.String("reason", reason),
		slog.Bool("forced", forced),
		slog.Float64("durationMs", float64(time.Since(start).Microseconds())/1000),
	)
	return nil
}

// listen binds addr, turning "address in use" into ErrAddrInUse with
// advice.
func listen(ctx context.Context, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", addr)
	if err == nil {
		return lis, nil
	}
	if isAddrInUse(err) {
		return nil, fmt.Errorf("%w: cannot listen on %s, another process holds it; remove listenAddr (ANYSYNC_LISTEN_ADDR, --listen-addr) to let the kernel choose a free port: %w",
			ErrAddrInUse, addr, err)
	}
	return nil, fmt.Errorf("cannot listen on %s (listenAddr): %w", addr, err)
}
