package health

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeClock advances only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newService() (*Service, *fakeClock) {
	clock := &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)}
	return New(Options{Version: "0.1.0", ProtocolVersion: 1, PID: 42, Now: clock.Now}), clock
}

func TestCheck(t *testing.T) {
	s, clock := newService()
	clock.Advance(1500 * time.Millisecond)
	r, err := s.Check(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := Report{Serving: true, Version: "0.1.0", ProtocolVersion: 1, Uptime: 1500 * time.Millisecond, PID: 42}
	if r != want {
		t.Fatalf("Check = %+v, want %+v", r, want)
	}
	s.Shutdown()
	s.Shutdown() // idempotent
	if r, _ := s.Check(t.Context()); r.Serving || s.Serving() {
		t.Fatal("still serving after Shutdown")
	}
}

func TestPing(t *testing.T) {
	s, clock := newService()
	e, err := s.Ping(t.Context(), "héllo")
	if err != nil || e.Message != "héllo" || !e.HandledAt.Equal(clock.Now()) {
		t.Fatalf("Ping = %+v, %v", e, err)
	}
}

func TestCancelledContext(t *testing.T) {
	s, _ := newService()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Ping(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Ping = %v, want context.Canceled", err)
	}
	if _, err := s.Check(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Check = %v, want context.Canceled", err)
	}
}

func TestRealClock(t *testing.T) {
	s := New(Options{})
	r, err := s.Check(t.Context())
	if err != nil || r.Uptime < 0 {
		t.Fatalf("Check = %+v, %v", r, err)
	}
}

func TestConcurrentUse(t *testing.T) {
	s, _ := newService()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			_, _ = s.Check(context.Background())
			_, _ = s.Ping(context.Background(), "x")
			s.Shutdown()
		})
	}
	wg.Wait()
	if s.Serving() {
		t.Fatal("serving after concurrent Shutdown")
	}
}
