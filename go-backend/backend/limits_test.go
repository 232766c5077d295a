package backend

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/anysync/tauri-plugin-anysync/go-backend/api/proto/anysync/v1"
)

// TestInterceptorsAuthenticateWithoutTheTap: with the tap left out, the
// interceptors alone refuse every call without the right token, unary and
// streaming, before any handler runs. (With the tap in place the tap
// refuses first, so only this test fails when the interceptors' check is
// removed from the chains.)
func TestInterceptorsAuthenticateWithoutTheTap(t *testing.T) {
	f := newFixture(t, fixtureOptions{withoutTap: true})
	conn := f.conn(t) // no condemning without the tap: one connection serves all
	calls := map[string]func(ctx context.Context) error{
		"unary": func(ctx context.Context) error {
			_, err := pb.NewHealthServiceClient(conn).Ping(ctx, &pb.PingRequest{})
			return err
		},
		"unary handler that would block": func(ctx context.Context) error {
			return conn.Invoke(ctx, "/test.v1.Test/Block", &pb.PingRequest{}, new(pb.PingResponse))
		},
		"server stream": func(ctx context.Context) error {
			w, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{})
			if err != nil {
				return err
			}
			_, err = w.Recv()
			return err
		},
	}
	for name, call := range calls {
		for _, authz := range []string{"", "Bearer " + strings.Repeat("Q", 43)} {
			ctx := ctxWithDeadline(t)
			if authz != "" {
				ctx = withToken(ctx, authz)
			}
			if err := call(ctx); status.Code(err) != codes.Unauthenticated {
				t.Errorf("%s with authorization %q = %v, want Unauthenticated", name, authz, err)
			}
		}
	}
	select {
	case <-f.test.blocked:
		t.Fatal("a handler ran for a call without the token")
	default:
	}
	if _, err := pb.NewHealthServiceClient(conn).Ping(authed(t), &pb.PingRequest{}); err != nil {
		t.Fatalf("Ping with the token: %v", err)
	}
}

// TestHeaderListLimit: a call's metadata is bounded by maxHeaderListBytes
// (grpc's own default is 16 MiB).
func TestHeaderListLimit(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	c := pb.NewHealthServiceClient(f.conn(t))
	call := func(n int) error {
		ctx := metadata.AppendToOutgoingContext(authed(t), "x-big", strings.Repeat("m", n))
		_, err := c.Ping(ctx, &pb.PingRequest{})
		return err
	}
	if err := call(maxHeaderListBytes / 2); err != nil {
		t.Fatalf("Ping with %d bytes of metadata: %v", maxHeaderListBytes/2, err)
	}
	// The server advertises its limit in SETTINGS, so a grpc client does
	// not even send such a call.
	if err := call(maxHeaderListBytes + 1024); err == nil || !strings.Contains(status.Convert(err).Message(), "65536") {
		t.Fatalf("Ping with %d bytes of metadata = %v, want it refused for the server's 65536-byte limit", maxHeaderListBytes+1024, err)
	}
	if err := call(16); err != nil {
		t.Fatalf("Ping after the oversized one: %v", err)
	}
}

// TestKeepalivePolicyValues: the policy is the documented one (README:
// clients may ping every 10 s, even without calls; the server pings after
// 1 min of silence and gives 20 s for the answer). The tests below check,
// with shorter times, that the server applies what it is given.
func TestKeepalivePolicyValues(t *testing.T) {
	if keepaliveEnforcement != (keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}) {
		t.Errorf("enforcement = %+v", keepaliveEnforcement)
	}
	if keepaliveParams != (keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}) {
		t.Errorf("params = %+v", keepaliveParams)
	}
}

// rawConn is a bare HTTP/2 client connection after the preface and the
// SETTINGS exchange.
type rawConn struct {
	c  net.Conn
	fr *http2.Framer
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	fr := http2.NewFramer(c, c)
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no SETTINGS from the server: %v", err)
		}
		if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
			if err := fr.WriteSettingsAck(); err != nil {
				t.Fatal(err)
			}
			return &rawConn{c: c, fr: fr}
		}
	}
}

// until reads frames for up to d and returns the first for which stop
// holds, or nil (and whether the connection was closed) when none came.
func (r *rawConn) until(d time.Duration, stop func(http2.Frame) bool) (http2.Frame, bool) {
	_ = r.c.SetReadDeadline(time.Now().Add(d))
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			var ne net.Error
			return nil, !(errors.As(err, &ne) && ne.Timeout())
		}
		if stop(f) {
			return f, false
		}
	}
}

func isGoAway(f http2.Frame) bool { _, ok := f.(*http2.GoAwayFrame); return ok }

// TestKeepaliveEnforcement: pings without any call in flight, at the
// permitted pace, are answered; faster pings get a GOAWAY too_many_pings.
func TestKeepaliveEnforcement(t *testing.T) {
	const minTime = 100 * time.Millisecond
	f := newFixture(t, fixtureOptions{keepaliveEnforcement: &keepalive.EnforcementPolicy{MinTime: minTime, PermitWithoutStream: true}})
	r := dialRaw(t, f.addr)
	for i := range 6 {
		if err := r.fr.WritePing(false, [8]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		got, _ := r.until(time.Second, func(fr http2.Frame) bool {
			p, ok := fr.(*http2.PingFrame)
			return isGoAway(fr) || ok && p.IsAck()
		})
		if got == nil || isGoAway(got) {
			t.Fatalf("ping %d at the permitted pace without calls: %v, want its ack", i+1, got)
		}
		time.Sleep(minTime * 3 / 2)
	}
	for i := range 6 {
		_ = r.fr.WritePing(false, [8]byte{byte(100 + i)})
	}
	got, _ := r.until(2*time.Second, isGoAway)
	if g, ok := got.(*http2.GoAwayFrame); !ok || g.ErrCode != http2.ErrCodeEnhanceYourCalm || string(g.DebugData()) != "too_many_pings" {
		t.Fatalf("fast pings got %v, want GOAWAY too_many_pings", got)
	}
}

// TestKeepalivePingsSilentPeers: the server pings a peer that stays silent
// for keepalive Time and closes its connection when the ping is not
// answered within Timeout.
func TestKeepalivePingsSilentPeers(t *testing.T) {
	f := newFixture(t, fixtureOptions{keepaliveParams: &keepalive.ServerParameters{Time: 200 * time.Millisecond, Timeout: 200 * time.Millisecond}})
	r := dialRaw(t, f.addr)
	start := time.Now()
	got, closed := r.until(3*time.Second, func(fr http2.Frame) bool {
		p, ok := fr.(*http2.PingFrame)
		return ok && !p.IsAck()
	})
	if got == nil {
		t.Fatalf("no ping from the server within 3s of silence (closed: %v)", closed)
	}
	// Do not answer: the server must close the connection.
	if _, closed := r.until(3*time.Second, func(http2.Frame) bool { return false }); !closed {
		t.Fatal("the connection of a peer that does not answer pings is still open")
	}
	t.Logf("pinged and dropped %v after the peer fell silent", time.Since(start))
}
