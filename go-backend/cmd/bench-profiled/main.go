// Command bench-profiled is the shipped sidecar (cmd/server: the same
// services, the same backend package) that also writes a CPU profile of its
// whole run to the file BENCH_CPU_PROFILE names, for bench/profile.ts. The
// profile starts once the configuration has loaded and stops after the
// gRPC server has stopped, so it covers every call. Not part of the package
// an app depends on (Cargo.toml excludes cmd/bench-*).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"

	anysyncv1 "github.com/anysync/tauri-plugin-anysync/go-backend/api/proto/anysync/v1"
	"github.com/anysync/tauri-plugin-anysync/go-backend/backend"
	"github.com/anysync/tauri-plugin-anysync/go-backend/storeservice"
)

// profileEnv names the profile's file. It is not an ANYSYNC_* setting: the
// backend warns about unknown ones.
const profileEnv = "BENCH_CPU_PROFILE"

func main() {
	store := backend.GRPCService(&anysyncv1.StoreService_ServiceDesc, storeservice.FromSettings(storeservice.Options{}))
	backend.Main(&profiled{Service: store, path: os.Getenv(profileEnv)})
}

// profiled is a Service that profiles the process from its Configure to its
// Close, around the Service it wraps.
type profiled struct {
	backend.Service
	path string
	file *os.File
}

func (p *profiled) Configure(s backend.Settings) error {
	if c, ok := p.Service.(backend.Configurer); ok {
		if err := c.Configure(s); err != nil {
			return err
		}
	}
	if p.path == "" {
		return fmt.Errorf("%s names no file for the CPU profile", profileEnv)
	}
	f, err := os.Create(p.path)
	if err != nil {
		return fmt.Errorf("creating the CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return errors.Join(fmt.Errorf("starting the CPU profile: %w", err), f.Close())
	}
	p.file = f
	return nil
}

func (p *profiled) Close(ctx context.Context) error {
	var errs []error
	if p.file != nil {
		pprof.StopCPUProfile()
		errs = append(errs, p.file.Close())
	}
	if c, ok := p.Service.(backend.Closer); ok {
		errs = append(errs, c.Close(ctx))
	}
	return errors.Join(errs...)
}
