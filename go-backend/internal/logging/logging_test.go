package logging

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
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
