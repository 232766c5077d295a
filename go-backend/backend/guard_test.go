package backend

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	pb "github.com/anysync/tauri-plugin-anysync/go-backend/api/proto/anysync/v1"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/auth"
)

// exchange is what a raw HTTP/2 client saw after sending one request.
type exchange struct {
	answer map[string]string // the fields of the server's HEADERS frames for stream 1
	reset  bool              // the server reset stream 1
	closed bool              // the server closed the connection
}

// rawRequest sends the HTTP/2 preface, SETTINGS and one HEADERS frame on
// stream 1 with fields (in order), then reads until the server closes the
// connection or wait passes.
func rawRequest(t *testing.T, addr string, fields [][2]string, wait time.Duration) exchange {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range fields {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	ex := exchange{answer: map[string]string{}}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			var ne net.Error
			ex.closed = !(errors.As(err, &ne) && ne.Timeout())
			return ex
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == 1 {
				for _, hf := range f.Fields {
					ex.answer[hf.Name] = hf.Value
				}
			}
		case *http2.RSTStreamFrame:
			ex.reset = ex.reset || f.StreamID == 1
		}
	}
}

// grpcRequest returns the headers of a well-formed gRPC request for Ping,
// with extra fields appended and fields named in drop left out.
func grpcRequest(method string, extra [][2]string, drop ...string) [][2]string {
	base := [][2]string{
		{":method", method}, {":scheme", "http"}, {":path", "/anysync.v1.HealthService/Ping"},
		{":authority", "127.0.0.1"}, {"content-type", "application/grpc"}, {"te", "trailers"},
	}
	var out [][2]string
	for _, f := range base {
		keep := true
		for _, d := range drop {
			keep = keep && f[0] != d
		}
		if keep {
			out = append(out, f)
		}
	}
	return append(out, extra...)
}

// TestUnauthenticatedMalformedRequestsAreClosed: a request without the
// token that grpc would answer itself, before authentication (405 for GET,
// 415 for another content-type, 400 for a malformed grpc-timeout or binary
// header, a reset for a "connection" header...), gets no answer at all: its
// connection is closed before grpc reads it, and no handler runs.
func TestUnauthenticatedMalformedRequestsAreClosed(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for _, tt := range []struct {
		name    string
		headers [][2]string
	}{
		{"GET", grpcRequest("GET", nil)},
		{"HEAD", grpcRequest("HEAD", nil)},
		{"text/plain", append(grpcRequest("POST", nil, "content-type"), [2]string{"content-type", "text/plain"})},
		{"application/grpcx", append(grpcRequest("POST", nil, "content-type"), [2]string{"content-type", "application/grpcx"})},
		{"no content-type", grpcRequest("POST", nil, "content-type")},
		{"malformed grpc-timeout", grpcRequest("POST", [][2]string{{"grpc-timeout", "1x"}})},
		{"long grpc-timeout", grpcRequest("POST", [][2]string{{"grpc-timeout", "1234567890S"}})},
		{"malformed binary header", grpcRequest("POST", [][2]string{{"x-evil-bin", "!!not base64!!"}})},
		{"connection header", grpcRequest("POST", [][2]string{{"connection", "keep-alive"}})},
		{"two hosts", grpcRequest("POST", [][2]string{{"host", "a"}, {"host", "b"}})},
		{"wrong token and GET", grpcRequest("GET", [][2]string{{"authorization", "Bearer " + strings.Repeat("A", 43)}})},
		{"upper-case header name", grpcRequest("POST", [][2]string{{"X-Upper", "1"}})},
		{"oversized headers", grpcRequest("POST", [][2]string{{"x-big", strings.Repeat("b", maxHeaderListBytes)}})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ex := rawRequest(t, f.addr, tt.headers, 3*time.Second)
			if len(ex.answer) > 0 || ex.reset {
				t.Fatalf("the server answered %v (reset %v), want no answer but UNAUTHENTICATED", ex.answer, ex.reset)
			}
			if !ex.closed {
				t.Fatal("the connection is still open 3s later")
			}
		})
	}
	if rec := f.record(t, "rpc", nil); rec != nil {
		t.Fatalf("a handler ran: %v", rec)
	}
	// The owner is still served.
	if _, err := pb.NewHealthServiceClient(f.conn(t)).Ping(authed(t), &pb.PingRequest{}); err != nil {
		t.Fatal(err)
	}
}

// TestRawRequestsThatReachTheTap: a well-formed request without the token
// is answered UNAUTHENTICATED, then closed; an authenticated peer's
// malformed request gets grpc's own answer and keeps its connection.
func TestRawRequestsThatReachTheTap(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ex := rawRequest(t, f.addr, grpcRequest("POST", nil), 3*time.Second)
	if ex.answer["grpc-status"] != "16" || !ex.closed {
		t.Fatalf("well-formed, no token: %+v, want grpc-status 16 (UNAUTHENTICATED), then the close", ex)
	}
	ex = rawRequest(t, f.addr, grpcRequest("GET", [][2]string{{"authorization", "Bearer " + testToken}}), 500*time.Millisecond)
	if ex.answer[":status"] != "405" || ex.closed {
		t.Fatalf("authenticated GET: %+v, want grpc's 405 on an open connection", ex)
	}
}

// TestGuardAcrossReads: the guard finds a refused request whatever the
// read boundaries, with HPACK state carried from request to request and
// DATA, PING and CONTINUATION frames in between. Everything before the
// refused request reaches grpc, the refused frame never whole.
func TestGuardAcrossReads(t *testing.T) {
	v := newFixture(t, fixtureOptions{}).srv.in.verifier
	var wire, block bytes.Buffer
	enc := hpack.NewEncoder(&block) // one encoder: later blocks index earlier fields
	fr := http2.NewFramer(&wire, nil)
	wire.WriteString(http2.ClientPreface)
	_ = fr.WriteSettings()
	header := func(fields [][2]string) []byte {
		block.Reset()
		for _, f := range fields {
			_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		return bytes.Clone(block.Bytes())
	}
	authz := [][2]string{{"authorization", "Bearer " + testToken}}
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: header(grpcRequest("POST", authz)), EndHeaders: true})
	_ = fr.WriteData(1, true, make([]byte, 40000))
	_ = fr.WritePing(false, [8]byte{})
	// An authenticated malformed request, split into HEADERS and CONTINUATION.
	b := header(grpcRequest("GET", authz))
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: b[:3], EndStream: true})
	_ = fr.WriteContinuation(3, true, b[3:])
	cut := wire.Len()
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, BlockFragment: header(grpcRequest("GET", nil)), EndStream: true, EndHeaders: true})
	refusedEnd := wire.Len()
	_ = fr.WriteData(5, true, []byte("after"))
	all := wire.Bytes()
	for _, chunk := range []int{1, 7, 9, 4096, len(all)} {
		g := newRequestGuard(v)
		passed := 0
		var err error
		for off := 0; off < len(all) && err == nil; off += chunk {
			end := min(off+chunk, len(all))
			var n int
			n, err = g.feed(all[off:end])
			passed += n
		}
		if !errors.Is(err, errGuardRefused) || passed < cut || passed >= refusedEnd {
			t.Fatalf("reads of %d bytes: %d bytes passed, error %v; want %d to %d bytes, then the refusal", chunk, passed, err, cut, refusedEnd-1)
		}
	}
}

// FuzzGuardFeed: whatever a peer sends, in whatever pieces, the guard
// neither panics nor passes more bytes than it was given.
func FuzzGuardFeed(f *testing.F) {
	var wire, block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, hf := range grpcRequest("GET", nil) {
		_ = enc.WriteField(hpack.HeaderField{Name: hf[0], Value: hf[1]})
	}
	fr := http2.NewFramer(&wire, nil)
	_ = fr.WriteSettings()
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndHeaders: true})
	f.Add(wire.Bytes(), uint8(3))
	f.Add([]byte{0, 0, 5, 1, 4, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff}, uint8(1))
	f.Add([]byte{0, 0, 0, 9, 4, 0, 0, 0, 1}, uint8(9))
	v, err := auth.NewVerifier(testToken)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		g := newRequestGuard(v)
		g.prefaceLeft = 0
		step := int(chunk%64) + 1
		for off := 0; off < len(data); off += step {
			b := data[off:min(off+step, len(data))]
			n, err := g.feed(b)
			if n < 0 || n > len(b) {
				t.Fatalf("feed passed %d of %d bytes", n, len(b))
			}
			if err != nil {
				return
			}
		}
	})
}
