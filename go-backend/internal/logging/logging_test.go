package logging

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
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
