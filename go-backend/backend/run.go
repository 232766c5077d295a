package backend

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/auth"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/config"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/health"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/launch"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/logging"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/redact"
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
	// Every record goes through a bounded buffer drained by one goroutine,
	// so that a parent that stops reading stderr can stall neither serving
	// nor the stop: records are then dropped and counted. The last ones
	// get what is left of the shutdown grace, within the bounds of
	// flushTimeout, to reach the parent.
	sink := logging.NewSink(env.Stderr, 0)
	var graceEnds time.Time // set by run when the stop begins
	defer func() { sink.Close(flushTimeout(graceEnds)) }()
	env.Stderr = sink
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
	inv, err := loadConfig(ctx, env)
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	if errors.Is(err, errStoppedBeforeStart) {
		logging.New(env.Stderr, slog.LevelInfo).LogAttrs(context.Background(), slog.LevelInfo, "backend stopped before it started",
			slog.String("reason", context.Cause(ctx).Error()),
			slog.String("step", "reading the configuration"))
		return nil
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
	warnUnknownEnv(log, inv.UnknownEnv)
	if err := run(ctx, log, cfg, env, services, &started, &graceEnds); err != nil {
		log.LogAttrs(context.Background(), slog.LevelError, "backend failed", logging.Error(err))
		return err
	}
	return nil
}

// Start-up deadlines. Each start-up step that may block runs under one,
// and under ctx (a signal), so that nothing a parent or a file system does
// can hold the process before it serves.
var (
	// configTimeout bounds reading and checking the configuration (the
	// --config file may sit on a file system that hangs).
	configTimeout = 5 * time.Second
	// handshakeTimeout bounds writing the handshake line on stdout (a
	// parent that does not read stdout).
	handshakeTimeout = 5 * time.Second
)

// errStoppedBeforeStart means ctx ended (a signal) while loadConfig waited.
var errStoppedBeforeStart = errors.New("stopped before the backend started")

// loadConfig runs config.Load under configTimeout and ctx. A Load still
// blocked (in a file read) when either ends is abandoned: the process is
// about to exit.
func loadConfig(ctx context.Context, env Env) (*config.Invocation, error) {
	type result struct {
		inv *config.Invocation
		err error
	}
	done := make(chan result, 1)
	go func() {
		inv, err := config.Load(config.Sources{
			Args:      env.Args,
			LookupEnv: env.LookupEnv,
			Environ:   env.Environ,
			ReadFile:  env.ReadFile,
			Usage:     env.Stderr,
		})
		done <- result{inv, err}
	}()
	timer := time.NewTimer(configTimeout)
	defer timer.Stop()
	select {
	case r := <-done:
		return r.inv, r.err
	case <-ctx.Done():
		select {
		case r := <-done: // finished meanwhile: the bootstrap step will see ctx
			return r.inv, r.err
		default:
			return nil, errStoppedBeforeStart
		}
	case <-timer.C:
		return nil, fmt.Errorf("%w: reading the configuration (the --config file) did not finish within %v", config.ErrInvalid, configTimeout)
	}
}

// maxEnvWarnings bounds the warnings about unknown variables.
const maxEnvWarnings = 16

// warnUnknownEnv writes one warning per ANYSYNC_* variable that is not a
// setting, naming it (never its value), at most maxEnvWarnings.
func warnUnknownEnv(log *slog.Logger, names []string) {
	for i, name := range names {
		if i == maxEnvWarnings {
			log.LogAttrs(context.Background(), slog.LevelWarn, "more unknown environment variables ignored",
				slog.Int("more", len(names)-maxEnvWarnings))
			return
		}
		log.LogAttrs(context.Background(), slog.LevelWarn, "unknown environment variable ignored",
			slog.String("variable", redact.Text(name)),
			slog.String("hint", "ANYSYNC_* variables configure the backend; see go-backend/README.md for the known ones"))
	}
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

// Bounds of how long Run waits, before it returns, for its last log records
// to be written to a stderr that is not read (a stderr that is read takes
// them at once): what is left of the shutdown grace, but at least
// minFlush and at most maxFlush.
const (
	minFlush = 50 * time.Millisecond
	maxFlush = 500 * time.Millisecond
)

func flushTimeout(graceEnds time.Time) time.Duration {
	if graceEnds.IsZero() {
		return maxFlush
	}
	return min(max(time.Until(graceEnds), minFlush), maxFlush)
}

// run is Run after the configuration is known. It sets *started once the
// server serves: from then on it closes the services itself.
func run(ctx context.Context, log *slog.Logger, cfg config.Config, env Env, services []Service, started *bool, graceEnds *time.Time) error {
	bctx, cancel := context.WithTimeoutCause(ctx, cfg.BootstrapTimeout,
		fmt.Errorf("no complete line on stdin within bootstrapTimeout (%v; ANYSYNC_BOOTSTRAP_TIMEOUT, --bootstrap-timeout)", cfg.BootstrapTimeout))
	log.LogAttrs(ctx, slog.LevelDebug, "waiting for the bootstrap line on stdin",
		slog.String("bootstrapTimeout", cfg.BootstrapTimeout.String()))
	boot, parentGone, err := launch.Receive(bctx, env.Stdin)
	cancel()
	if err != nil {
		if ctx.Err() != nil { // stopped by a signal before the parent spoke
			log.LogAttrs(context.Background(), slog.LevelInfo, "backend stopped before bootstrap",
				slog.String("reason", context.Cause(ctx).Error()))
			return nil
		}
		return fmt.Errorf("bootstrap from stdin: %w", err)
	}
	verifier, err := auth.NewVerifier(boot.Token)
	if err != nil {
		return fmt.Errorf("bootstrap from stdin: %w", err)
	}
	if err := configureServices(services, Settings{DataDir: cfg.DataDir, Logger: log}); err != nil {
		return err
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
	// A signal while the line is written goes on to the ordered stop below.
	if err := writeHandshake(ctx, env.Stdout, h); err != nil {
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
	*graceEnds = start.Add(cfg.ShutdownGrace)
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

// writeHandshake writes h on w under handshakeTimeout and ctx: it returns
// nil once the line is written or ctx ends (the caller then stops). A write
// still blocked is abandoned: the process is about to exit.
func writeHandshake(ctx context.Context, w io.Writer, h launch.Handshake) error {
	done := make(chan error, 1)
	go func() { done <- launch.WriteHandshake(w, h) }()
	timer := time.NewTimer(handshakeTimeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return nil
	case <-timer.C:
		return fmt.Errorf("writing the handshake line on stdout did not finish within %v: the parent must read the child's stdout", handshakeTimeout)
	}
}

// configureServices hands settings to the services that implement
// Configurer, in registration order.
func configureServices(services []Service, settings Settings) error {
	for _, s := range services {
		if c, ok := s.(Configurer); ok {
			if err := c.Configure(settings); err != nil {
				return fmt.Errorf("configuring service %s: %w", s.Name(), err)
			}
		}
	}
	return nil
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
