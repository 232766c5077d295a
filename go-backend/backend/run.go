package backend

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/auth"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/config"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/health"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/launch"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/logging"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/version"
)

// Run runs the backend with services (besides the built-in health
// services) until ctx is done (a signal), env.Stdin reaches end of file
// (the parent is gone), or serving fails. A stop for the first two reasons
// is graceful and returns nil unless a service's Close fails.
//
// Run owns the services: it closes every one that implements Closer before
// it returns, whatever the outcome (after the server stopped when it
// started; in reverse order of registration). Any failure has already been
// logged as the last JSON record on env.Stderr when Run returns it; the
// caller only maps it to an exit code with ExitCode.
//
// While serving, a handler's error reaches the client as follows: a gRPC
// status error unchanged; an error carrying an errs.Kind with the code of
// that kind and the error's text; context.Canceled and
// context.DeadlineExceeded as CANCELLED and DEADLINE_EXCEEDED; any other
// error as INTERNAL with a generic message, the error itself logged. A
// streaming call that the stop ended is UNAVAILABLE.
func Run(ctx context.Context, env Env, services ...Service) (err error) {
	started := false
	var log *slog.Logger
	defer func() {
		// Services of a backend that never got to serve are closed here;
		// the others were closed by run after the server stopped.
		if !started {
			if cerr := closeServices(context.Background(), log, services); cerr != nil && err == nil {
				err = cerr
			}
		}
	}()
	if env.ReadFile == nil {
		env.ReadFile = ReadConfigFile
	}
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
	log = logging.New(env.Stderr, cfg.LogLevel)
	if env.RouteGRPCLogs {
		logging.RouteGRPC(log)
	}
	if err := run(ctx, log, cfg, env, services, &started); err != nil {
		log.LogAttrs(context.Background(), slog.LevelError, "backend failed", logging.Error(err))
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

// run is Run after the configuration is known. It sets *started once the
// server serves: from then on it closes the services itself.
func run(ctx context.Context, log *slog.Logger, cfg config.Config, env Env, services []Service, started *bool) error {
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
	hs := health.New(health.Options{
		Version:         version.Version,
		ProtocolVersion: version.ProtocolVersion,
		PID:             env.PID,
	})
	srv, err := newServer(serverOptions{
		verifier:        verifier,
		health:          hs,
		log:             log,
		maxMessageBytes: cfg.MaxMessageBytes,
		services:        services,
	})
	if err != nil {
		return fmt.Errorf("building the gRPC server: %w", err)
	}
	lis, err := listen(ctx, cfg.ListenAddr)
	if err != nil {
		return err
	}

	*started = true
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.serve(lis) }()
	h := launch.Handshake{
		Anysync:         launch.Ready,
		ProtocolVersion: version.ProtocolVersion,
		Addr:            lis.Addr().String(),
		PID:             env.PID,
		Version:         version.Version,
	}
	if err := launch.WriteHandshake(env.Stdout, h); err != nil {
		srv.shutdown(0)
		<-serveErr
		return errors.Join(err, closeServices(context.Background(), log, services))
	}
	log.LogAttrs(ctx, slog.LevelInfo, "backend ready",
		slog.String("addr", h.Addr),
		slog.Int("pid", h.PID),
		slog.String("version", h.Version),
		slog.Int("protocolVersion", h.ProtocolVersion),
		slog.Any("config", cfg),
		slog.Any("services", serviceNames(services)),
	)

	var reason string
	select {
	case <-ctx.Done():
		reason = context.Cause(ctx).Error()
	case <-parentGone:
		reason = "stdin closed: the parent process is gone"
	case err := <-serveErr:
		srv.shutdown(0)
		return errors.Join(err, closeServices(context.Background(), log, services))
	}
	log.LogAttrs(context.Background(), slog.LevelInfo, "backend shutting down",
		slog.String("reason", reason),
		slog.String("shutdownGrace", cfg.ShutdownGrace.String()),
	)
	start := time.Now()
	budget, cancelBudget := context.WithDeadline(context.Background(), start.Add(cfg.ShutdownGrace))
	defer cancelBudget()
	forced := srv.shutdown(cfg.ShutdownGrace)
	if err := <-serveErr; err != nil {
		log.LogAttrs(context.Background(), slog.LevelWarn, "serve ended with an error during shutdown", logging.Error(err))
	}
	closeErr := closeServices(budget, log, services)
	log.LogAttrs(context.Background(), slog.LevelInfo, "backend stopped",
		slog.String("reason", reason),
		slog.Bool("forced", forced),
		slog.Float64("durationMs", float64(time.Since(start).Microseconds())/1000),
	)
	return closeErr
}

// closeServices closes the services that implement Closer, last registered
// first, each with ctx, and logs each failure. log may be nil (before the
// configuration is known): failures are then only returned.
func closeServices(ctx context.Context, log *slog.Logger, services []Service) error {
	var all []error
	for i := len(services) - 1; i >= 0; i-- {
		c, ok := services[i].(Closer)
		if !ok {
			continue
		}
		name := services[i].Name()
		if err := closeOne(ctx, c); err != nil {
			err = fmt.Errorf("closing service %s: %w", name, err)
			if log != nil {
				log.LogAttrs(context.Background(), slog.LevelError, "closing a service failed",
					slog.String("service", name), logging.Error(err))
			}
			all = append(all, err)
		}
	}
	return errors.Join(all...)
}

// closeOne calls c.Close, turning a panic into an error: one service's bug
// must not keep the others open.
func closeOne(ctx context.Context, c Closer) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return c.Close(ctx)
}

func serviceNames(services []Service) []string {
	names := make([]string, 0, len(builtinServices)+len(services))
	names = append(names, builtinServices...)
	for _, s := range services {
		if s != nil {
			names = append(names, s.Name())
		}
	}
	return names
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
