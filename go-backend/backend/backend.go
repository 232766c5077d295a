// Package backend is the Go side of tauri-plugin-anysync: everything a
// backend process needs except its own services. It owns the launch
// protocol with the plugin (configuration, the bootstrap line on stdin, the
// handshake line on stdout, stdin EOF as the parent's exit), bearer-token
// authentication, limits, JSON logging on stderr, both health services
// (anysync.v1.HealthService and grpc.health.v1.Health), panic recovery,
// the mapping of errors to gRPC codes, and the ordered graceful stop.
//
// An app's backend is one line of main:
//
//	func main() {
//		backend.Main(backend.GRPCService(&examplev1.CounterService_ServiceDesc, counter.New()))
//	}
//
// Handlers return plain Go errors carrying an errs.Kind (package
// backend/errs), or gRPC status errors; see Run for the mapping. The launch
// protocol, the configuration keys and the exit codes are documented in
// go-backend/README.md.
package backend

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"syscall"

	"google.golang.org/grpc"

	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/config"
)

// Service is one gRPC service served by the backend.
type Service interface {
	// Name is the service's full gRPC name, e.g. "example.v1.CounterService"
	// (its ServiceDesc's ServiceName). The backend reports it SERVING in
	// grpc.health.v1 until the stop begins. It must be unique and not one
	// of the built-in services.
	Name() string
	// Register registers the service on r, once, before serving starts;
	// typically examplev1.RegisterCounterServiceServer(r, impl). It must
	// register a service called Name.
	Register(r grpc.ServiceRegistrar)
}

// Settings are the parts of the backend's configuration that services may
// use. They are known once the configuration has loaded (defaults, --config,
// ANYSYNC_* environment, flags).
type Settings struct {
	// DataDir is the directory the app keeps the backend's data in (dataDir,
	// ANYSYNC_DATA_DIR, --data-dir), an absolute path; empty when none was
	// given.
	DataDir string
	// Logger is the backend's logger: its records reach the app's log at
	// the configured level. Services log through it what no call reports.
	Logger *slog.Logger
}

// Configurer is implemented by services that need the Settings. The backend
// calls Configure once per service, after the configuration loaded and
// before Register, in registration order; an error ends the start-up (the
// backend exits 1 and logs it). Configure is not called for --help,
// --version or an invalid configuration.
type Configurer interface {
	Configure(Settings) error
}

// Closer is implemented by services that hold resources (a database, a
// file). The backend calls Close once, after the gRPC server has fully
// stopped (no handler of any service runs any more), in reverse order of
// registration, each under what remains of the shutdown grace (ctx's
// deadline, possibly already past; a Close must still release what it
// holds, just without waiting for anything optional). A Close error is
// logged and makes the process exit 1.
type Closer interface {
	Close(ctx context.Context) error
}

// GRPCService returns the Service that registers impl with desc, as the
// generated Register<Name>Server function would, and takes its Name from
// desc.ServiceName. When impl implements Closer, so does the Service, and
// its Close calls impl's; when impl implements Configurer, the Service's
// Configure calls impl's.
func GRPCService(desc *grpc.ServiceDesc, impl any) Service {
	s := grpcService{desc: desc, impl: impl}
	if c, ok := impl.(Closer); ok {
		return closingService{s, c}
	}
	return s
}

type grpcService struct {
	desc *grpc.ServiceDesc
	impl any
}

func (s grpcService) Name() string                     { return s.desc.ServiceName }
func (s grpcService) Register(r grpc.ServiceRegistrar) { r.RegisterService(s.desc, s.impl) }

// Configure implements Configurer by handing settings to impl, if it wants them.
func (s grpcService) Configure(settings Settings) error {
	if c, ok := s.impl.(Configurer); ok {
		return c.Configure(settings)
	}
	return nil
}

// check reports what grpc's RegisterService would otherwise end the process
// for: an impl that does not implement desc's handler interface.
func (s grpcService) check() error {
	if s.desc == nil {
		return errors.New("GRPCService: nil ServiceDesc")
	}
	if s.desc.HandlerType == nil {
		return nil
	}
	want := reflect.TypeOf(s.desc.HandlerType).Elem()
	if got := reflect.TypeOf(s.impl); got == nil || !got.Implements(want) {
		return fmt.Errorf("the implementation of type %v does not satisfy %v", got, want)
	}
	return nil
}

type closingService struct {
	grpcService
	c Closer
}

func (s closingService) Close(ctx context.Context) error { return s.c.Close(ctx) }

// Exit codes of the backend process.
const (
	// ExitOK: normal stop (stdin closed, SIGTERM/SIGINT), --version, --help.
	ExitOK = 0
	// ExitFailure: a runtime failure (bad bootstrap, address in use, a
	// service that failed to register or to close, ...).
	ExitFailure = 1
	// ExitConfig: invalid configuration (flags, file, environment).
	ExitConfig = 2
)

// ErrAddrInUse means the configured listen address is taken.
var ErrAddrInUse = errors.New("address already in use")

// Env is the process environment Run works in. Main fills it from the real
// process; tests pass fakes.
type Env struct {
	// Args are the command-line arguments without the program name.
	Args []string
	// Stdin carries the bootstrap line; its end of file stops the backend.
	Stdin io.Reader
	// Stdout receives the handshake line (or the --version output) and
	// nothing else.
	Stdout io.Writer
	// Stderr receives the JSON log records, through a buffer bounded in
	// bytes and drained by one goroutine: a Stderr that blocks (a pipe the
	// parent stopped reading) costs records, dropped and later counted in
	// a warning "log records dropped", never a call or the stop.
	Stderr io.Writer
	// LookupEnv is os.LookupEnv; nil means an empty environment.
	LookupEnv func(string) (string, bool)
	// Environ is os.Environ, used only to warn about ANYSYNC_* variables
	// that are not settings; nil means none.
	Environ func() []string
	// ReadFile reads the --config file; nil means ReadConfigFile (a
	// bounded read of a regular file).
	ReadFile func(string) ([]byte, error)
	// PID is the process id to report.
	PID int
	// RouteGRPCLogs, when true, sends grpc-go's own logs to the backend's
	// logger. Process-global: only a binary's Main should set it.
	RouteGRPCLogs bool
}

// ExitCode maps Run's result to the process exit status: ExitOK for nil
// and for a help request, ExitConfig for an invalid configuration,
// ExitFailure for anything else.
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

// Main is the whole main function of a backend binary: it runs the backend
// with the process's stdio, arguments and environment until SIGINT, SIGTERM
// or the end of stdin, and exits with ExitCode of the result. It never
// returns.
func Main(services ...Service) {
	// A parent that dies closes our stderr pipe too: log writes must then
	// fail quietly instead of killing the process with SIGPIPE before its
	// graceful stop.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := ExitCode(Run(ctx, Env{
		Args:          os.Args[1:],
		Stdin:         os.Stdin,
		Stdout:        os.Stdout,
		Stderr:        os.Stderr,
		LookupEnv:     os.LookupEnv,
		Environ:       os.Environ,
		ReadFile:      ReadConfigFile,
		PID:           os.Getpid(),
		RouteGRPCLogs: true,
	}, services...))
	stop()
	os.Exit(code)
}
