package backend

import (
	"bytes"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestCallsCarryNoFlowControlPings: with fixed HTTP/2 windows the server
// sends no BDP-estimation PING (nor the connection WINDOW_UPDATE before it)
// with the calls' responses. grpc-go's default, dynamic windows send both
// with nearly every response on loopback, and the client must answer each
// PING: frames, writes and wake-ups on both sides of every call.
func TestCallsCarryNoFlowControlPings(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	raw := dialRaw(t, f.addr)
	c, fr := raw.c, raw.fr
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	const calls = 20
	pings, windowUpdates := 0, 0
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	for i := range calls {
		stream := uint32(2*i + 1)
		block.Reset()
		for _, hf := range grpcRequest("POST", [][2]string{{"authorization", "Bearer " + testToken}}) {
			_ = enc.WriteField(hpack.HeaderField{Name: hf[0], Value: hf[1]})
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: block.Bytes(), EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		// An empty PingRequest: the 5-byte gRPC message prefix alone.
		if err := fr.WriteData(stream, true, []byte{0, 0, 0, 0, 0}); err != nil {
			t.Fatal(err)
		}
		for done := false; !done; {
			frame, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
			switch frame := frame.(type) {
			case *http2.SettingsFrame:
				if !frame.IsAck() {
					_ = fr.WriteSettingsAck()
				}
			case *http2.PingFrame:
				if !frame.IsAck() {
					pings++
					_ = fr.WritePing(true, frame.Data)
				}
			case *http2.WindowUpdateFrame:
				// The first raises the connection window to its fixed size.
				if i > 0 {
					windowUpdates++
				}
			case *http2.MetaHeadersFrame:
				if frame.StreamID == stream && frame.StreamEnded() {
					if got := frame.PseudoValue("status"); got != "" && got != "200" {
						t.Fatalf("call %d: :status %s", i, got)
					}
					for _, hf := range frame.Fields {
						if hf.Name == "grpc-status" && hf.Value != "0" {
							t.Fatalf("call %d: grpc-status %s", i, hf.Value)
						}
					}
					done = true
				}
			case *http2.RSTStreamFrame:
				// grpc-go may reset a stream it answered before it saw the
				// request's END_STREAM, with NO_ERROR: the call is complete.
				if frame.StreamID == stream && frame.ErrCode != http2.ErrCodeNo {
					t.Fatalf("call %d: %v", i, frame)
				}
			case *http2.GoAwayFrame:
				t.Fatalf("call %d: %v", i, frame)
			}
		}
	}
	if pings != 0 || windowUpdates != 0 {
		t.Fatalf("%d calls brought %d PINGs and %d WINDOW_UPDATEs from the server", calls, pings, windowUpdates)
	}
}
