package logging

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func records(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(b)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not a JSON line: %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestNewWritesJSONAtLevel(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, slog.LevelWarn)
	log.Info("hidden")
	log.Warn("shown", Error(errors.New("boom")), Error(nil))
	recs := records(t, &buf)
	if len(recs) != 1 || recs[0]["msg"] != "shown" || recs[0]["level"] != "WARN" || recs[0]["error"] != "" {
		t.Fatalf("records = %v", recs)
	}
}

func TestGRPCAdapter(t *testing.T) {
	var buf bytes.Buffer
	g := &grpcLogger{l: New(&buf, slog.LevelDebug).With(slog.String("component", "grpc"))}
	g.Info("a", 1)
	g.Infoln("b", 2)
	g.Infof("c%d", 3)
	g.Warning("d")
	g.Warningln("e")
	g.Warningf("f%s", "!")
	g.Error("g")
	g.Errorln("h")
	g.Errorf("i%v", true)
	want := []struct{ level, msg string }{
		{"DEBUG", "a1"}, {"DEBUG", "b 2"}, {"DEBUG", "c3"},
		{"WARN", "d"}, {"WARN", "e"}, {"WARN", "f!"},
		{"ERROR", "g"}, {"ERROR", "h"}, {"ERROR", "itrue"},
	}
	recs := records(t, &buf)
	if len(recs) != len(want) {
		t.Fatalf("got %d records: %v", len(recs), recs)
	}
	for i, w := range want {
		if recs[i]["level"] != w.level || recs[i]["msg"] != w.msg || recs[i]["component"] != "grpc" {
			t.Errorf("record %d = %v, want %v", i, recs[i], w)
		}
	}
	if !g.V(0) || g.V(1) {
		t.Error("V: want level 0 only")
	}
	quiet := &grpcLogger{l: New(&buf, slog.LevelInfo)}
	if quiet.V(0) {
		t.Error("V(0) true although debug is off")
	}
}

// TestGRPCRecordsCopyNothingFromPeers: grpc's warning about malformed
// metadata copies the peer's bytes; the adapter removes them.
func TestGRPCRecordsCopyNothingFromPeers(t *testing.T) {
	var buf bytes.Buffer
	g := &grpcLogger{l: New(&buf, slog.LevelDebug)}
	evil := "AAAA\"\\\"injected\n" + strings.Repeat("Z", 600)
	g.Warningf("[transport] Failed to decode metadata header (%q, %q): %v", "x-bin", evil, "illegal base64 data at input byte 4")
	g.Warningf("grpc: Server.handleStream rejected malformed method name %q.", evil)
	g.Warning(strings.Repeat("long ", 200))
	recs := records(t, &buf)
	if len(recs) != 3 {
		t.Fatalf("records = %v", recs)
	}
	if got := recs[0]["msg"]; got != `[transport] Failed to decode metadata header ("…", "…"): illegal base64 data at input byte 4` {
		t.Fatalf("msg = %q", got)
	}
	for _, r := range recs {
		msg := r["msg"].(string)
		if strings.Contains(msg, "injected") || strings.Contains(msg, "ZZZ") || len(msg) > MaxGRPCMessageBytes+len("…") {
			t.Fatalf("record copies the peer's text: %q", msg)
		}
	}
}

// TestGRPCRecordsAreRateLimited: a flood of grpc records becomes at most
// GRPCRecordsPerSecond records a second, plus one count of those dropped.
func TestGRPCRecordsAreRateLimited(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1000, 0)
	g := &grpcLogger{l: New(&buf, slog.LevelDebug), now: func() time.Time { return now }}
	for range 10_000 {
		g.Warning("flood")
	}
	if n := len(records(t, &buf)); n != GRPCRecordsPerSecond {
		t.Fatalf("%d records in one second, want %d", n, GRPCRecordsPerSecond)
	}
	now = now.Add(time.Second)
	buf.Reset()
	g.Warning("later")
	recs := records(t, &buf)
	if len(recs) != 2 || recs[0]["msg"] != "grpc log records dropped" || recs[0]["dropped"] != float64(10_000-GRPCRecordsPerSecond) || recs[1]["msg"] != "later" {
		t.Fatalf("records = %v", recs)
	}
	// Disabled levels cost nothing and count nothing.
	quiet := &grpcLogger{l: New(&buf, slog.LevelInfo), now: g.now}
	for range 100 {
		quiet.Info("chatty")
	}
	if quiet.dropped != 0 {
		t.Fatalf("dropped %d disabled records", quiet.dropped)
	}
}

// stalledWriter blocks every Write until release is closed, like a pipe
// whose reader stopped reading.
type stalledWriter struct {
	release chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *stalledWriter) Write(p []byte) (int, error) {
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *stalledWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestSinkNeverBlocks: with a writer that takes nothing, logging returns at
// once, records beyond the bound are dropped and counted, and once the
// writer takes records again a warning says how many were lost.
func TestSinkNeverBlocks(t *testing.T) {
	w := &stalledWriter{release: make(chan struct{})}
	sink := NewSink(w, 4<<10)
	log := New(sink, slog.LevelDebug)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 10_000 {
			log.Debug("rpc", slog.Int("i", i))
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("logging blocked on a writer that does not take records")
	}
	if sink.Dropped() == 0 {
		t.Fatal("nothing dropped although the writer took nothing")
	}
	if sink.Close(50 * time.Millisecond) {
		t.Fatal("Close reported everything written to a stalled writer")
	}
	close(w.release)
	if !eventually(5*time.Second, func() bool { return strings.Contains(w.String(), DroppedMsg) }) {
		t.Fatalf("no %q notice once the writer took records: %d bytes written", DroppedMsg, len(w.String()))
	}
	var dropped float64
	var kept int
	for _, r := range records(t, bytes.NewBufferString(w.String())) {
		if r["msg"] == DroppedMsg {
			dropped += r["dropped"].(float64)
		} else {
			kept++
		}
	}
	if int(dropped)+kept != 10_000 || uint64(dropped) != sink.Dropped() {
		t.Fatalf("%v dropped + %d kept != 10000 records (Dropped() = %d)", dropped, kept, sink.Dropped())
	}
}

// TestSinkWritesInOrder: a writer that keeps up gets every record, in
// order, and Close waits for them.
func TestSinkWritesInOrder(t *testing.T) {
	var buf syncBuffer
	sink := NewSink(&buf, 0)
	log := New(sink, slog.LevelInfo)
	for i := range 1000 {
		log.Info("r", slog.Int("i", i))
	}
	if !sink.Close(5 * time.Second) {
		t.Fatal("Close timed out")
	}
	recs := records(t, bytes.NewBufferString(buf.String()))
	if len(recs) != 1000 {
		t.Fatalf("%d records", len(recs))
	}
	for i, r := range recs {
		if r["i"] != float64(i) {
			t.Fatalf("record %d = %v", i, r)
		}
	}
	log.Info("after close") // dropped, not a panic
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}
