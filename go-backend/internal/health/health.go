// Package health holds the backend's health state and the logic behind
// anysync.v1.HealthService, free of gRPC types: api/server translates.
package health

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// Report is the answer to a health check.
type Report struct {
	// Serving is false once shutdown began.
	Serving bool
	// Version is the backend's semantic version.
	Version string
	// ProtocolVersion is the launch-protocol version.
	ProtocolVersion int
	// Uptime is the time since the service was created.
	Uptime time.Duration
	// PID is the backend's process id.
	PID int
}

// Echo is the answer to a ping.
type Echo struct {
	// Message is the ping's message, unchanged.
	Message string
	// HandledAt is when the ping was handled.
	HandledAt time.Time
}

// Options configure a Service.
type Options struct {
	// Version and ProtocolVersion identify the backend.
	Version         string
	ProtocolVersion int
	// PID is the process id to report.
	PID int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service is the health state of one backend. It is safe for concurrent
// use. It starts serving; Shutdown makes it report not serving for good.
type Service struct {
	opts    Options
	started time.Time
	down    atomic.Bool
}

// New returns a serving Service whose uptime counts from now.
func New(opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{opts: opts, started: opts.Now()}
}

// Shutdown marks the service as not serving. Safe to call more than once;
// there is no way back (a stopping backend is replaced, not resumed).
func (s *Service) Shutdown() { s.down.Store(true) }

// Serving reports whether Shutdown has not been called yet.
func (s *Service) Serving() bool { return !s.down.Load() }

// Check reports the service's state. It fails only when ctx is already
// done, with an error wrapping ctx's error.
func (s *Service) Check(ctx context.Context) (Report, error) {
	if err := ctx.Err(); err != nil {
		return Report{}, fmt.Errorf("health check: %w", err)
	}
	return Report{
		Serving:         s.Serving(),
		Version:         s.opts.Version,
		ProtocolVersion: s.opts.ProtocolVersion,
		Uptime:          s.opts.Now().Sub(s.started),
		PID:             s.opts.PID,
	}, nil
}

// Ping echoes msg with the time it was handled. It fails only when ctx is
// already done, with an error wrapping ctx's error.
func (s *Service) Ping(ctx context.Context, msg string) (Echo, error) {
	if err := ctx.Err(); err != nil {
		return Echo{}, fmt.Errorf("ping: %w", err)
	}
	return Echo{Message: msg, HandledAt: s.opts.Now()}, nil
}
