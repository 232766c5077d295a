package counter_test

import (
	"context"
	"io"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/anysync/tauri-plugin-anysync/go-backend/backend"
	"github.com/anysync/tauri-plugin-anysync/go-backend/backend/backendtest"

	"github.com/anysync/tauri-plugin-anysync/examples/tauri-app/backend/internal/counter"
	examplev1 "github.com/anysync/tauri-plugin-anysync/examples/tauri-app/backend/proto/example/v1"
)

// fixture is the counter service on a real backend (backend.Run, loopback
// TCP, bearer token), as the app runs it.
type fixture struct {
	be *backendtest.Backend
	c  examplev1.CounterServiceClient
}

func start(t *testing.T) *fixture {
	t.Helper()
	be := backendtest.Start(t, nil, backend.GRPCService(&examplev1.CounterService_ServiceDesc, counter.New()))
	return &fixture{be: be, c: examplev1.NewCounterServiceClient(be.Conn)}
}

// client returns a client on a connection of its own: a stream that its
// caller does not read must not share HTTP/2 flow control with the
// observer's calls.
func (f *fixture) client(t *testing.T) examplev1.CounterServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(f.be.Addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(backendtest.Bearer(f.be.Token)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return examplev1.NewCounterServiceClient(conn)
}

func ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (f *fixture) stats(t *testing.T) *examplev1.StatsResponse {
	t.Helper()
	s, err := f.c.Stats(ctx(t), &examplev1.StatsRequest{})
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return s
}

// eventually polls cond every 5 ms for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAddAndGet(t *testing.T) {
	f := start(t)
	if c, err := f.c.Get(ctx(t), &examplev1.GetRequest{Name: "a"}); err != nil || c.GetValue() != 0 || c.GetVersion() != 0 || c.GetName() != "a" {
		t.Fatalf("Get of a new counter = %v, %v", c, err)
	}
	for i, d := range []int64{5, -2, 10} {
		c, err := f.c.Add(ctx(t), &examplev1.AddRequest{Name: "a", Delta: d})
		if err != nil || c.GetVersion() != uint64(i+1) {
			t.Fatalf("Add(%d) = %v, %v", d, c, err)
		}
	}
	if c, err := f.c.Get(ctx(t), &examplev1.GetRequest{Name: "a"}); err != nil || c.GetValue() != 13 || c.GetVersion() != 3 {
		t.Fatalf("Get = %v, %v", c, err)
	}
	if c, err := f.c.Get(ctx(t), &examplev1.GetRequest{Name: "b"}); err != nil || c.GetValue() != 0 {
		t.Fatalf("Get of another counter = %v, %v", c, err)
	}
	if _, err := f.c.Add(ctx(t), &examplev1.AddRequest{Name: "big", Delta: math.MaxInt64}); err != nil {
		t.Fatal(err)
	}
	_, err := f.c.Add(ctx(t), &examplev1.AddRequest{Name: "big", Delta: 1})
	if st := status.Convert(err); st.Code() != codes.OutOfRange || !strings.Contains(st.Message(), "overflows") {
		t.Fatalf("overflowing Add = %v", err)
	}
}

func TestValidation(t *testing.T) {
	f := start(t)
	long := strings.Repeat("n", counter.MaxNameBytes+1)
	calls := map[string]func(context.Context) error{
		"Add empty name": func(ctx context.Context) error {
			_, err := f.c.Add(ctx, &examplev1.AddRequest{Delta: 1})
			return err
		},
		"Add long name": func(ctx context.Context) error {
			_, err := f.c.Add(ctx, &examplev1.AddRequest{Name: long, Delta: 1})
			return err
		},
		"Get empty name": func(ctx context.Context) error {
			_, err := f.c.Get(ctx, &examplev1.GetRequest{})
			return err
		},
		"Watch long name": func(ctx context.Context) error {
			w, err := f.c.Watch(ctx, &examplev1.WatchRequest{Name: long})
			if err != nil {
				return err
			}
			_, err = w.Recv()
			return err
		},
		"Tick payload": func(ctx context.Context) error {
			w, err := f.c.Tick(ctx, &examplev1.TickRequest{Count: 1, PayloadBytes: counter.MaxPayloadBytes + 1})
			if err != nil {
				return err
			}
			_, err = w.Recv()
			return err
		},
		"Tick interval": func(ctx context.Context) error {
			w, err := f.c.Tick(ctx, &examplev1.TickRequest{Count: 1, IntervalMs: counter.MaxDurationMs + 1})
			if err != nil {
				return err
			}
			_, err = w.Recv()
			return err
		},
		"Sleep duration": func(ctx context.Context) error {
			_, err := f.c.Sleep(ctx, &examplev1.SleepRequest{DurationMs: counter.MaxDurationMs + 1})
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			if err := call(ctx(t)); status.Code(err) != codes.InvalidArgument {
				t.Fatalf("%s = %v, want InvalidArgument", name, err)
			}
		})
	}
	// A name of exactly the limit is fine.
	if _, err := f.c.Add(ctx(t), &examplev1.AddRequest{Name: long[:counter.MaxNameBytes], Delta: 1}); err != nil {
		t.Fatalf("Add with a %d-byte name: %v", counter.MaxNameBytes, err)
	}
}

// TestWatchOrder: the current value first, then each change in order.
func TestWatchOrder(t *testing.T) {
	f := start(t)
	if _, err := f.c.Add(ctx(t), &examplev1.AddRequest{Name: "w", Delta: 7}); err != nil {
		t.Fatal(err)
	}
	w, err := f.c.Watch(ctx(t), &examplev1.WatchRequest{Name: "w"})
	if err != nil {
		t.Fatal(err)
	}
	recv := func() *examplev1.Counter {
		t.Helper()
		c, err := w.Recv()
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		return c
	}
	if c := recv(); c.GetValue() != 7 || c.GetVersion() != 1 {
		t.Fatalf("first update = %v, want the current value", c)
	}
	// One change at a time: every one is seen, in order.
	for i := 2; i <= 20; i++ {
		if _, err := f.c.Add(ctx(t), &examplev1.AddRequest{Name: "w", Delta: 1}); err != nil {
			t.Fatal(err)
		}
		if c := recv(); c.GetVersion() != uint64(i) || c.GetValue() != int64(i+6) {
			t.Fatalf("update %d = %v", i, c)
		}
	}
	// A burst: versions only grow, values match them, the last is seen.
	const burst = 2000
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range burst / 4 {
				if _, err := f.c.Add(ctx(t), &examplev1.AddRequest{Name: "w", Delta: 1}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	last := uint64(20)
	for last < 20+burst {
		c := recv()
		if c.GetVersion() <= last || c.GetValue() != int64(c.GetVersion())+6 {
			t.Fatalf("after version %d got %v", last, c)
		}
		last = c.GetVersion()
	}
	wg.Wait()
	// Another counter's changes are not sent to this watcher.
	if _, err := f.c.Add(ctx(t), &examplev1.AddRequest{Name: "other", Delta: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.Add(ctx(t), &examplev1.AddRequest{Name: "w", Delta: 1}); err != nil {
		t.Fatal(err)
	}
	if c := recv(); c.GetName() != "w" || c.GetVersion() != 20+burst+1 {
		t.Fatalf("next update = %v", c)
	}
}

// TestSlowWatcherNeverBlocksAdd: a watcher that does not read skips to the
// latest value; Add goes on at full speed.
func TestSlowWatcherNeverBlocksAdd(t *testing.T) {
	f := start(t)
	slow := f.client(t)
	w, err := slow.Watch(ctx(t), &examplev1.WatchRequest{Name: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := w.Recv(); err != nil || c.GetVersion() != 0 {
		t.Fatalf("first update = %v, %v", c, err)
	}
	start := time.Now()
	const adds = 3000
	for range adds {
		if _, err := f.c.Add(ctx(t), &examplev1.AddRequest{Name: "s", Delta: 1}); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d Adds with a stalled watcher in %v", adds, time.Since(start))
	// Catching up, the watcher reaches the latest version, skipping some.
	var seen int
	for {
		c, err := w.Recv()
		if err != nil {
			t.Fatal(err)
		}
		seen++
		if c.GetVersion() == adds {
			break
		}
	}
	if seen >= adds {
		t.Logf("the watcher saw every change (%d): it kept up", seen)
	}
}

func TestTick(t *testing.T) {
	f := start(t)
	for _, tt := range []struct {
		count, interval, payload uint32
	}{
		{5, 0, 10},
		{4, 20, 0},
		{2, 0, counter.MaxPayloadBytes},
	} {
		start := time.Now()
		s, err := f.c.Tick(ctx(t), &examplev1.TickRequest{Count: uint64(tt.count), IntervalMs: tt.interval, PayloadBytes: tt.payload})
		if err != nil {
			t.Fatal(err)
		}
		var prev int64
		for seq := uint64(1); seq <= uint64(tt.count); seq++ {
			ev, err := s.Recv()
			if err != nil {
				t.Fatalf("tick %d: %v", seq, err)
			}
			if ev.GetSeq() != seq || len(ev.GetPayload()) != int(tt.payload) || ev.GetSentAtUnixMicros() < prev {
				t.Fatalf("tick %d = seq %d, %d bytes, sent at %d", seq, ev.GetSeq(), len(ev.GetPayload()), ev.GetSentAtUnixMicros())
			}
			prev = ev.GetSentAtUnixMicros()
		}
		if _, err := s.Recv(); err != io.EOF {
			t.Fatalf("after the last tick: %v, want EOF", err)
		}
		if min := time.Duration(tt.count-1) * time.Duration(tt.interval) * time.Millisecond; time.Since(start) < min {
			t.Fatalf("%d ticks every %dms took %v", tt.count, tt.interval, time.Since(start))
		}
	}
	if s := f.stats(t); s.GetTicksSent() != 11 || s.GetOpenStreams() != 0 {
		t.Fatalf("Stats = %v", s)
	}
}

func TestSleep(t *testing.T) {
	f := start(t)
	r, err := f.c.Sleep(ctx(t), &examplev1.SleepRequest{DurationMs: 30})
	if err != nil || r.GetSleptMs() < 30 {
		t.Fatalf("Sleep(30) = %v, %v", r, err)
	}
	if s := f.stats(t); s.GetCancelledCalls() != 0 || s.GetLastCancelledAtUnixMicros() != 0 {
		t.Fatalf("Stats after a full sleep = %v", s)
	}

	// The caller's deadline is not a cancellation.
	dctx, dcancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer dcancel()
	if _, err := f.c.Sleep(dctx, &examplev1.SleepRequest{DurationMs: 10_000}); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("Sleep past its deadline = %v", err)
	}
	if s := f.stats(t); s.GetCancelledCalls() != 0 {
		t.Fatalf("a deadline counted as a cancellation: %v", s)
	}

	// The caller going away is seen in Go, and counted with its time.
	cctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := f.c.Sleep(cctx, &examplev1.SleepRequest{DurationMs: 60_000})
		done <- err
	}()
	eventually(t, "the call in its handler", func() bool { return f.stats(t).GetSleepingCalls() == 1 })
	cancelledAt := time.Now().UnixMicro()
	cancel()
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Fatalf("cancelled Sleep = %v", err)
	}
	var s *examplev1.StatsResponse
	eventually(t, "the handler counts the cancellation", func() bool {
		s = f.stats(t)
		return s.GetCancelledCalls() == 1 && s.GetSleepingCalls() == 0
	})
	if at := s.GetLastCancelledAtUnixMicros(); at < cancelledAt || at > time.Now().UnixMicro() {
		t.Fatalf("last_cancelled_at = %d, cancelled at %d", at, cancelledAt)
	}
	t.Logf("cancel to handler: %dµs", s.GetLastCancelledAtUnixMicros()-cancelledAt)
}

func TestStreamCancellation(t *testing.T) {
	f := start(t)
	for name, open := range map[string]func(context.Context) (func() error, error){
		"Tick": func(ctx context.Context) (func() error, error) {
			s, err := f.c.Tick(ctx, &examplev1.TickRequest{IntervalMs: 5})
			return func() error { _, err := s.Recv(); return err }, err
		},
		"Watch": func(ctx context.Context) (func() error, error) {
			s, err := f.c.Watch(ctx, &examplev1.WatchRequest{Name: "c"})
			return func() error { _, err := s.Recv(); return err }, err
		},
	} {
		t.Run(name, func(t *testing.T) {
			before := f.stats(t).GetCancelledStreams()
			sctx, cancel := context.WithCancel(t.Context())
			recv, err := open(sctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := recv(); err != nil {
				t.Fatal(err)
			}
			if s := f.stats(t); s.GetOpenStreams() != 1 {
				t.Fatalf("open_streams = %d", s.GetOpenStreams())
			}
			cancelledAt := time.Now().UnixMicro()
			cancel()
			var s *examplev1.StatsResponse
			eventually(t, "the handler sees the cancellation", func() bool {
				s = f.stats(t)
				return s.GetCancelledStreams() == before+1 && s.GetOpenStreams() == 0
			})
			if s.GetLastCancelledAtUnixMicros() < cancelledAt {
				t.Fatalf("last_cancelled_at %d before the cancel %d", s.GetLastCancelledAtUnixMicros(), cancelledAt)
			}
			t.Logf("cancel to handler: %dµs", s.GetLastCancelledAtUnixMicros()-cancelledAt)
		})
	}
}

// TestTickToAClientThatNeverReads: HTTP/2 flow control reaches the handler.
// Send blocks, ticks_sent stops at a handful, send_blocked says so; then a
// cancel releases the handler.
func TestTickToAClientThatNeverReads(t *testing.T) {
	f := start(t)
	stalled := f.client(t)
	sctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	s, err := stalled.Tick(sctx, &examplev1.TickRequest{PayloadBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	_ = s // never read
	eventually(t, "send_blocked", func() bool { return f.stats(t).GetSendBlocked() })
	first := f.stats(t).GetTicksSent()
	time.Sleep(300 * time.Millisecond)
	st := f.stats(t)
	if st.GetTicksSent() != first || !st.GetSendBlocked() {
		t.Fatalf("ticks_sent went from %d to %d (send_blocked %v) while nobody read", first, st.GetTicksSent(), st.GetSendBlocked())
	}
	// The windows hold a few 64 KiB ticks; nothing else buffers them.
	if first > 64 {
		t.Fatalf("%d ticks of 64 KiB handed to Send to a client that reads none", first)
	}
	t.Logf("ticks handed to Send before it blocked: %d", first)
	cancel()
	eventually(t, "the blocked handler ends on cancel", func() bool {
		s := f.stats(t)
		return s.GetOpenStreams() == 0 && !s.GetSendBlocked() && s.GetCancelledStreams() == 1
	})
}

// TestStopWithOpenStreams: stopping the backend with endless streams open
// (one read, one stalled, one Watch) takes well under its 5 s grace, and
// every stream ends UNAVAILABLE or, for the stalled one, with the
// connection.
func TestStopWithOpenStreams(t *testing.T) {
	f := start(t)
	reading, err := f.c.Tick(ctx(t), &examplev1.TickRequest{IntervalMs: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reading.Recv(); err != nil {
		t.Fatal(err)
	}
	watch, err := f.c.Watch(ctx(t), &examplev1.WatchRequest{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.client(t).Tick(ctx(t), &examplev1.TickRequest{PayloadBytes: 64 << 10}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the stalled stream blocks", func() bool { return f.stats(t).GetSendBlocked() })

	ended := make(chan error, 2)
	go func() {
		for {
			if _, err := reading.Recv(); err != nil {
				ended <- err
				return
			}
		}
	}()
	go func() {
		for {
			if _, err := watch.Recv(); err != nil {
				ended <- err
				return
			}
		}
	}()
	start := time.Now()
	if err := f.be.Stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	took := time.Since(start)
	if took > time.Second {
		t.Fatalf("stop with open streams took %v, want < 1s (grace 5s)", took)
	}
	t.Logf("stopped in %v", took)
	for range 2 {
		if err := <-ended; status.Code(err) != codes.Unavailable {
			t.Fatalf("a stream ended with %v, want Unavailable", err)
		}
	}
	var stopped map[string]any
	for _, r := range f.be.Logs() {
		if r["msg"] == "backend stopped" {
			stopped = r
		}
	}
	if stopped == nil || stopped["forced"] != false {
		t.Fatalf("stopped record = %v", stopped)
	}
}
