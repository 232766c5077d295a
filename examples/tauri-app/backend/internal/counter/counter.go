// Package counter is the example app's CounterService
// (proto/example/v1/counter.proto): named counters in memory, a live Watch
// of one counter, and the calls the end-to-end tests and benchmarks use to
// observe cancellation and flow control from the Go side (Tick, Sleep,
// Stats).
//
// Errors are plain Go errors with an errs.Kind; package backend turns them
// into gRPC codes. A handler that sees its context end returns the
// context's error: CANCELLED when the caller went away, DEADLINE_EXCEEDED
// for its deadline, UNAVAILABLE when the backend is stopping.
package counter

import (
	"bytes"
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"

	"github.com/anysync/tauri-plugin-anysync/go-backend/backend"
	"github.com/anysync/tauri-plugin-anysync/go-backend/backend/errs"

	examplev1 "github.com/anysync/tauri-plugin-anysync/examples/tauri-app/backend/proto/example/v1"
)

// Bounds of the requests.
const (
	// MaxNameBytes bounds a counter's name.
	MaxNameBytes = 128
	// MaxCounters bounds how many counters exist at once.
	MaxCounters = 10_000
	// MaxPayloadBytes bounds a tick's payload.
	MaxPayloadBytes = 1 << 20
	// MaxDurationMs bounds Sleep's duration_ms and Tick's interval_ms.
	MaxDurationMs = 600_000
	// SendBlockedAfter is how long a Tick handler must have been inside
	// Send for Stats to report send_blocked. A Send that only hands the
	// message to gRPC returns within microseconds; one that waits this long
	// is held by HTTP/2 flow control: the caller does not read.
	SendBlockedAfter = 50 * time.Millisecond
)

// Service implements examplev1.CounterServiceServer. Create it with New.
// It is safe for concurrent use.
type Service struct {
	examplev1.UnimplementedCounterServiceServer

	mu       sync.Mutex
	counters map[string]*examplev1.Counter // guarded by mu; never handed out
	watchers map[string]map[*watcher]struct{}
	ticks    map[*tick]struct{}

	cancelledCalls   atomic.Uint64
	cancelledStreams atomic.Uint64
	openStreams      atomic.Int32
	sleepingCalls    atomic.Int32
	ticksSent        atomic.Uint64
	lastCancelled    atomic.Int64 // Unix microseconds
}

// watcher is one open Watch: Add signals notify without ever blocking, so
// a watcher that falls behind reads the latest value when it catches up,
// and the versions it sees tell how many changes it skipped.
type watcher struct{ notify chan struct{} }

// tick is one open Tick stream.
type tick struct {
	// sendingSince is when the handler entered Send (Unix nanoseconds), or
	// 0 while it is not inside Send.
	sendingSince atomic.Int64
}

var _ examplev1.CounterServiceServer = (*Service)(nil)

// New returns a Service with no counters.
func New() *Service {
	return &Service{
		counters: map[string]*examplev1.Counter{},
		watchers: map[string]map[*watcher]struct{}{},
		ticks:    map[*tick]struct{}{},
	}
}

func checkName(name string) error {
	switch {
	case name == "":
		return errs.New(errs.InvalidArgument, "name is empty: give the counter a name of 1 to %d bytes", MaxNameBytes)
	case len(name) > MaxNameBytes:
		return errs.New(errs.InvalidArgument, "name is %d bytes; the limit is %d", len(name), MaxNameBytes)
	case !utf8.ValidString(name):
		return errs.New(errs.InvalidArgument, "name is not valid UTF-8")
	}
	return nil
}

// Add adds delta to the named counter, creating it at zero, and wakes its
// watchers.
func (s *Service) Add(_ context.Context, req *examplev1.AddRequest) (*examplev1.Counter, error) {
	if err := checkName(req.GetName()); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counters[req.GetName()]
	if c == nil {
		if len(s.counters) >= MaxCounters {
			return nil, errs.New(errs.ResourceExhausted, "there are %d counters already, the limit", MaxCounters)
		}
		c = &examplev1.Counter{Name: req.GetName()}
		s.counters[req.GetName()] = c
	}
	d := req.GetDelta()
	if (d > 0 && c.Value > math.MaxInt64-d) || (d < 0 && c.Value < math.MinInt64-d) {
		return nil, errs.New(errs.OutOfRange, "adding %d to %d overflows a 64-bit counter", d, c.Value)
	}
	c.Value += d
	c.Version++
	for w := range s.watchers[c.Name] {
		select {
		case w.notify <- struct{}{}:
		default: // already signalled: it will read the latest value
		}
	}
	return cloneCounter(c), nil
}

// Get returns the named counter, zero (version 0) if it was never added to.
func (s *Service) Get(_ context.Context, req *examplev1.GetRequest) (*examplev1.Counter, error) {
	if err := checkName(req.GetName()); err != nil {
		return nil, err
	}
	return s.snapshot(req.GetName()), nil
}

func (s *Service) snapshot(name string) *examplev1.Counter {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.counters[name]; c != nil {
		return cloneCounter(c)
	}
	return &examplev1.Counter{Name: name}
}

func cloneCounter(c *examplev1.Counter) *examplev1.Counter {
	return &examplev1.Counter{Name: c.Name, Value: c.Value, Version: c.Version}
}

// Watch sends the counter's current value, then its value after each
// change, until the caller cancels. A watcher that reads slower than the
// counter changes skips to the latest value (the versions show the gap);
// it never slows Add down, and costs one pending notification at most.
func (s *Service) Watch(req *examplev1.WatchRequest, stream grpc.ServerStreamingServer[examplev1.Counter]) error {
	if err := checkName(req.GetName()); err != nil {
		return err
	}
	ctx := stream.Context()
	w := &watcher{notify: make(chan struct{}, 1)}
	s.mu.Lock()
	if s.watchers[req.GetName()] == nil {
		s.watchers[req.GetName()] = map[*watcher]struct{}{}
	}
	s.watchers[req.GetName()][w] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.watchers[req.GetName()], w)
		if len(s.watchers[req.GetName()]) == 0 {
			delete(s.watchers, req.GetName())
		}
		s.mu.Unlock()
	}()
	s.openStreams.Add(1)
	defer s.openStreams.Add(-1)

	sent := false
	var last uint64
	for {
		// Registered before this read: a change after it signals notify.
		c := s.snapshot(req.GetName())
		if !sent || c.GetVersion() != last {
			if err := stream.Send(c); err != nil {
				return s.streamEnded(ctx, err)
			}
			sent, last = true, c.GetVersion()
		}
		select {
		case <-w.notify:
		case <-ctx.Done():
			return s.streamEnded(ctx, ctx.Err())
		}
	}
}

// Tick sends req.count ticks (0: until the caller cancels), the first at
// once and then one every interval_ms (0: as fast as Send returns, that is
// as fast as the caller reads), each with payload_bytes of filler.
func (s *Service) Tick(req *examplev1.TickRequest, stream grpc.ServerStreamingServer[examplev1.TickEvent]) error {
	if req.GetPayloadBytes() > MaxPayloadBytes {
		return errs.New(errs.InvalidArgument, "payload_bytes is %d; the limit is %d", req.GetPayloadBytes(), MaxPayloadBytes)
	}
	if req.GetIntervalMs() > MaxDurationMs {
		return errs.New(errs.InvalidArgument, "interval_ms is %d; the limit is %d", req.GetIntervalMs(), MaxDurationMs)
	}
	ctx := stream.Context()
	t := &tick{}
	s.mu.Lock()
	s.ticks[t] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.ticks, t)
		s.mu.Unlock()
	}()
	s.openStreams.Add(1)
	defer s.openStreams.Add(-1)

	// One filler for every tick: gRPC encodes a message in Send and never
	// writes to it, so sharing it is safe.
	payload := bytes.Repeat([]byte{'t'}, int(req.GetPayloadBytes()))
	var every <-chan time.Time
	if req.GetIntervalMs() > 0 {
		ticker := time.NewTicker(time.Duration(req.GetIntervalMs()) * time.Millisecond)
		defer ticker.Stop()
		every = ticker.C
	}
	for seq := uint64(1); req.GetCount() == 0 || seq <= req.GetCount(); seq++ {
		if seq > 1 && every != nil {
			select {
			case <-every:
			case <-ctx.Done():
				return s.streamEnded(ctx, ctx.Err())
			}
		} else if err := ctx.Err(); err != nil {
			return s.streamEnded(ctx, err)
		}
		now := time.Now()
		s.ticksSent.Add(1)
		t.sendingSince.Store(now.UnixNano())
		err := stream.Send(&examplev1.TickEvent{Seq: seq, SentAtUnixMicros: now.UnixMicro(), Payload: payload})
		t.sendingSince.Store(0)
		if err != nil {
			return s.streamEnded(ctx, err)
		}
	}
	return nil
}

// Sleep answers after duration_ms, or returns the context's error when the
// caller goes away or its deadline passes first.
func (s *Service) Sleep(ctx context.Context, req *examplev1.SleepRequest) (*examplev1.SleepResponse, error) {
	if req.GetDurationMs() > MaxDurationMs {
		return nil, errs.New(errs.InvalidArgument, "duration_ms is %d; the limit is %d", req.GetDurationMs(), MaxDurationMs)
	}
	s.sleepingCalls.Add(1)
	defer s.sleepingCalls.Add(-1)
	start := time.Now()
	timer := time.NewTimer(time.Duration(req.GetDurationMs()) * time.Millisecond)
	defer timer.Stop()
	select {
	case <-timer.C:
		return &examplev1.SleepResponse{SleptMs: uint32(time.Since(start).Milliseconds())}, nil
	case <-ctx.Done():
		if callerWentAway(ctx) {
			s.lastCancelled.Store(time.Now().UnixMicro())
			s.cancelledCalls.Add(1)
		}
		return nil, ctx.Err()
	}
}

// Stats reports what the service observed of its callers.
func (s *Service) Stats(context.Context, *examplev1.StatsRequest) (*examplev1.StatsResponse, error) {
	return &examplev1.StatsResponse{
		CancelledCalls:            s.cancelledCalls.Load(),
		CancelledStreams:          s.cancelledStreams.Load(),
		OpenStreams:               uint32(max(s.openStreams.Load(), 0)),
		TicksSent:                 s.ticksSent.Load(),
		LastCancelledAtUnixMicros: s.lastCancelled.Load(),
		SendBlocked:               s.sendBlocked(),
		SleepingCalls:             uint32(max(s.sleepingCalls.Load(), 0)),
	}, nil
}

// sendBlocked reports whether a Tick handler has been inside Send for
// SendBlockedAfter or longer.
func (s *Service) sendBlocked() bool {
	limit := time.Now().Add(-SendBlockedAfter).UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range s.ticks {
		if since := t.sendingSince.Load(); since != 0 && since <= limit {
			return true
		}
	}
	return false
}

// streamEnded counts a stream its caller cancelled and returns err, the
// reason it ended: a Send error, or the context's error.
func (s *Service) streamEnded(ctx context.Context, err error) error {
	if callerWentAway(ctx) {
		s.lastCancelled.Store(time.Now().UnixMicro())
		s.cancelledStreams.Add(1)
	}
	return err
}

// callerWentAway reports whether ctx ended because the caller cancelled the
// call, as opposed to its deadline or the backend stopping. gRPC cancels a
// call's context when its deadline passes, so a context cancelled at or
// after its deadline counts as the deadline.
func callerWentAway(ctx context.Context) bool {
	if !errors.Is(ctx.Err(), context.Canceled) || errors.Is(context.Cause(ctx), backend.ErrShuttingDown) {
		return false
	}
	deadline, ok := ctx.Deadline()
	return !ok || time.Now().Before(deadline)
}
