package backend

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/anysync/tauri-plugin-anysync/go-backend/api/proto/anysync/v1"
)

// TestTokenIsCheckedBeforeTheMessageIsRead: a caller without the token is
// refused when its headers arrive, so the server never reads its message
// (an oversized one is UNAUTHENTICATED, not RESOURCE_EXHAUSTED, which is
// decided by reading it) and never tells it which methods exist.
func TestTokenIsCheckedBeforeTheMessageIsRead(t *testing.T) {
	f := newFixture(t, fixtureOptions{maxMessageBytes: 1024})
	huge := &pb.PingRequest{Message: strings.Repeat("x", 4096)}
	tests := []struct {
		name   string
		method string
		token  string
		want   codes.Code
	}{
		{"oversized, no token", "/anysync.v1.HealthService/Ping", "", codes.Unauthenticated},
		{"oversized, wrong token", "/anysync.v1.HealthService/Ping", "Bearer " + strings.Repeat("B", 43), codes.Unauthenticated},
		{"oversized, right token", "/anysync.v1.HealthService/Ping", "Bearer " + testToken, codes.ResourceExhausted},
		{"unknown method, no token", "/anysync.v1.HealthService/Shutdown", "", codes.Unauthenticated},
		{"unknown service, no token", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "", codes.Unauthenticated},
		{"unknown method, right token", "/anysync.v1.HealthService/Shutdown", "Bearer " + testToken, codes.Unimplemented},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctxWithDeadline(t)
			if tt.token != "" {
				ctx = withToken(ctx, tt.token)
			}
			err := f.conn(t).Invoke(ctx, tt.method, huge, new(pb.PingResponse))
			if got := status.Code(err); got != tt.want {
				t.Fatalf("%s = %v, want %v", tt.method, err, tt.want)
			}
		})
	}
}

// TestRefusalsAreCountedNotCopied: refused calls never log on grpc's
// connection goroutine and never copy what the peer sent: they appear in
// one warning per period that counts them.
func TestRefusalsAreCountedNotCopied(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	evil := "/evil\u2028service" + strings.Repeat("E", 300) + "/M"
	badToken := "Bearer " + strings.Repeat("C", 43)
	for range 5 {
		_ = f.conn(t).Invoke(withToken(ctxWithDeadline(t), badToken), evil, &pb.PingRequest{}, new(pb.PingResponse))
	}
	var rec map[string]any
	if !eventually(3*time.Second, func() bool {
		rec = f.record(t, "refused calls without the bearer token", nil)
		return rec != nil
	}) {
		t.Fatalf("no report of refused calls; logs: %s", f.logs)
	}
	if rec["level"] != "WARN" || rec["calls"] != float64(5) || rec["connectionsClosed"] != float64(5) {
		t.Fatalf("report = %v", rec)
	}
	for _, s := range []string{"evil", "EEEE", strings.Repeat("C", 43), testToken} {
		if strings.Contains(f.logs.String(), s) {
			t.Fatalf("the log copies %q: %s", s, f.logs)
		}
	}
	if f.record(t, "rpc", nil) != nil {
		t.Fatalf("a refused call left an rpc record: %s", f.logs)
	}
}

// TestFailedAuthenticationClosesTheConnection: the connection of a peer
// without the token closes after its first refused call, while the
// owner's connection stays open.
func TestFailedAuthenticationClosesTheConnection(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	owner := f.conn(t)
	if _, err := pb.NewHealthServiceClient(owner).Ping(authed(t), &pb.PingRequest{}); err != nil {
		t.Fatal(err)
	}
	attacker := f.conn(t)
	_, err := pb.NewHealthServiceClient(attacker).Ping(withToken(ctxWithDeadline(t), "Bearer nope"), &pb.PingRequest{})
	if st := status.Convert(err); st.Code() != codes.Unauthenticated {
		t.Fatalf("unauthenticated Ping = %v, want the UNAUTHENTICATED answer before the close", err)
	}
	if !eventually(2*time.Second, func() bool { return f.openConns() == 1 }) {
		t.Fatalf("%d connections open, want the owner's only", f.openConns())
	}
	if _, err := pb.NewHealthServiceClient(owner).Ping(authed(t), &pb.PingRequest{}); err != nil {
		t.Fatalf("the owner's Ping after the attacker's: %v", err)
	}
}

// TestHeadersFloodWithoutTokenIsBounded: a peer that sends HEADERS frames
// without the token as fast as it can gets its connection closed, after the
// server has read a bounded number of them (grpc's read buffer), whatever it
// sends.
func TestHeadersFloodWithoutTokenIsBounded(t *testing.T) {
	f := newFixture(t, fixtureOptions{logLevel: 8}) // no records: only counting
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, hf := range [][2]string{
		{":method", "POST"}, {":scheme", "http"}, {":path", "/anysync.v1.HealthService/Ping"},
		{":authority", "x"}, {"content-type", "application/grpc"}, {"te", "trailers"},
	} {
		_ = enc.WriteField(hpack.HeaderField{Name: hf[0], Value: hf[1]})
	}
	header := block.Bytes()
	// The reads of the server's frames and of its close.
	closed := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, c); close(closed) }()

	var frames bytes.Buffer
	fr := http2.NewFramer(&frames, nil)
	_, _ = io.WriteString(&frames, http2.ClientPreface)
	_ = fr.WriteSettings()
	sent := 0
	streamID := uint32(1)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for range 1000 {
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: streamID, BlockFragment: header, EndStream: true, EndHeaders: true})
			_ = fr.WriteRSTStream(streamID, http2.ErrCodeCancel)
			streamID += 2
		}
		_ = c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := c.Write(frames.Bytes()); err != nil {
			break // closed, or the server stopped reading
		}
		frames.Reset()
		sent += 1000
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatalf("the flooding connection is still open after %d streams", sent)
	}
	refused := f.srv.in.refusedTotal.Load()
	t.Logf("sent %d+ streams; the server refused %d before closing the connection", sent, refused)
	if refused > 5000 {
		t.Fatalf("the server read %d unauthenticated streams from one connection", refused)
	}
}

// TestConnectionLimit: connections beyond the bound are closed at once;
// a slot that frees serves again.
func TestConnectionLimit(t *testing.T) {
	f := newFixture(t, fixtureOptions{maxConnections: 2})
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	if !eventually(2*time.Second, func() bool { return f.openConns() == 2 }) {
		t.Fatalf("%d connections accepted", f.openConns())
	}
	extra, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	_ = extra.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.Copy(io.Discard, extra); err != nil && !isReset(err) {
		t.Fatalf("the connection over the limit was not closed: %v", err)
	}
	_ = held[0].Close()
	if !eventually(2*time.Second, func() bool { return f.openConns() == 1 }) {
		t.Fatalf("%d connections after one closed", f.openConns())
	}
	if _, err := pb.NewHealthServiceClient(f.conn(t)).Ping(authed(t), &pb.PingRequest{}); err != nil {
		t.Fatalf("Ping in the freed slot: %v", err)
	}
}

func isReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset")
}

// TestIdleConnectionsAreClosed: MaxConnectionIdle closes a connection that
// has had no call for that long.
func TestIdleConnectionsAreClosed(t *testing.T) {
	f := newFixture(t, fixtureOptions{maxConnectionIdle: 200 * time.Millisecond})
	conn := f.conn(t)
	if _, err := pb.NewHealthServiceClient(conn).Ping(authed(t), &pb.PingRequest{}); err != nil {
		t.Fatal(err)
	}
	if !eventually(3*time.Second, func() bool { return f.openConns() == 0 }) {
		t.Fatal("an idle connection is still open")
	}
	// The client reconnects on its next call.
	if _, err := pb.NewHealthServiceClient(conn).Ping(authed(t), &pb.PingRequest{}); err != nil {
		t.Fatalf("Ping after the idle close: %v", err)
	}
}
