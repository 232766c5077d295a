package backend

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"strconv"
	"strings"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/auth"
)

// requestGuard reads along with grpc's transport on one connection, frame
// by frame, and finds the requests that grpc would answer itself before
// the auth tap runs: a method other than POST (405), a content-type other
// than application/grpc (415), a malformed grpc-timeout or binary header
// (400), a "connection" header, two :authority or host headers, headers
// over the size limit or not valid HTTP/2. grpc answers those with an HTTP
// error and a gRPC status other than UNAUTHENTICATED, without asking the
// tap. When such a request does not carry the token, the guard stops the
// connection before grpc reads the request's first byte: the peer gets no
// answer at all and the connection is closed, as for any peer that fails
// authentication. An authenticated peer's malformed request is left to
// grpc's own answer.
//
// It decodes header blocks with its own HPACK decoder, which sees exactly
// the bytes grpc's decoder sees, in the same order, so both dynamic tables
// stay identical. DATA and other frames are skipped by length, unread.
// Only the connection's reading goroutine calls feed.
type requestGuard struct {
	verifier *auth.Verifier

	prefaceLeft int // bytes of the client preface still to pass
	head        [9]byte
	headN       int    // bytes of the current frame header seen
	payloadLeft int    // bytes of the current frame's payload still to come
	collect     bool   // the current frame belongs to a header block
	block       []byte // frames of the header block being collected

	src      bytes.Reader // what fr reads: one complete header block
	fr       *http2.Framer
	maxStrID uint32
}

// Bounds of what the guard holds.
const (
	// guardMaxFrame is the largest frame a client may send: grpc
	// advertises HTTP/2's initial SETTINGS_MAX_FRAME_SIZE.
	guardMaxFrame = 16 << 10
	// guardMaxBlock bounds a header block's encoded size. It cannot exceed
	// grpc's own limit on the decoded list by much; a larger block closes
	// the connection.
	guardMaxBlock = maxHeaderListBytes + guardMaxFrame
)

func newRequestGuard(v *auth.Verifier) *requestGuard {
	g := &requestGuard{verifier: v, prefaceLeft: len(http2.ClientPreface)}
	g.fr = http2.NewFramer(io.Discard, &g.src)
	g.fr.SetMaxReadFrameSize(guardMaxFrame)
	g.fr.MaxHeaderListSize = maxHeaderListBytes
	g.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil) // HTTP/2's initial table size, as grpc's
	return g
}

// errGuardRefused marks a request the guard refused.
var errGuardRefused = errors.New("an unauthenticated request that grpc would answer before authentication")

// feed passes the bytes b, just read from the peer, through the guard. It
// returns len(b), or, when b holds the start of a request to refuse, the
// offset where the frame of that request starts (the bytes before it may
// be handed to grpc, the others must not), and errGuardRefused.
func (g *requestGuard) feed(b []byte) (int, error) {
	i := 0
	if g.prefaceLeft > 0 {
		n := min(g.prefaceLeft, len(b))
		g.prefaceLeft -= n
		i = n
	}
	frameStart := 0 // where, in b, the current frame began (0: in an earlier read)
	for i < len(b) {
		if g.payloadLeft == 0 && g.headN < len(g.head) {
			if g.headN == 0 {
				frameStart = i
			}
			n := copy(g.head[g.headN:], b[i:])
			g.headN += n
			i += n
			if g.headN < len(g.head) {
				break
			}
			if err := g.startFrame(); err != nil {
				return frameStart, err
			}
			if g.payloadLeft > 0 {
				continue
			}
		} else {
			n := min(g.payloadLeft, len(b)-i)
			if g.collect {
				g.block = append(g.block, b[i:i+n]...)
			}
			g.payloadLeft -= n
			i += n
			if g.payloadLeft > 0 {
				break
			}
		}
		// The frame is complete.
		if err := g.endFrame(); err != nil {
			return frameStart, err
		}
	}
	return len(b), nil
}

// startFrame looks at a complete frame header.
func (g *requestGuard) startFrame() error {
	length := int(g.head[0])<<16 | int(g.head[1])<<8 | int(g.head[2])
	typ := http2.FrameType(g.head[3])
	g.payloadLeft = length
	g.collect = typ == http2.FrameHeaders || (typ == http2.FrameContinuation && len(g.block) > 0)
	if !g.collect {
		return nil
	}
	if length > guardMaxFrame || len(g.block)+len(g.head)+length > guardMaxBlock {
		return errGuardRefused
	}
	g.block = append(g.block, g.head[:]...)
	return nil
}

// endFrame runs once a frame's payload is complete.
func (g *requestGuard) endFrame() error {
	g.headN = 0
	if !g.collect {
		return nil
	}
	g.collect = false
	// g.head still holds this frame's header. END_HEADERS is the same bit
	// in HEADERS and CONTINUATION.
	if !http2.Flags(g.head[4]).Has(http2.FlagHeadersEndHeaders) {
		return nil // CONTINUATION frames follow
	}
	block := g.block
	g.block = nil
	return g.check(block)
}

// check decodes one complete header block and refuses it when it is a new
// request that grpc would answer before the tap, without the token.
func (g *requestGuard) check(block []byte) error {
	g.src.Reset(block)
	f, err := g.fr.ReadFrame()
	if err != nil {
		// Not valid HTTP/2 headers: grpc resets the stream or closes the
		// connection, without the tap. The token cannot be told.
		return errGuardRefused
	}
	mh, ok := f.(*http2.MetaHeadersFrame)
	if !ok {
		return errGuardRefused
	}
	id := mh.StreamID
	if id%2 != 1 || id <= g.maxStrID {
		return nil // not a new request: grpc closes the connection itself
	}
	g.maxStrID = id
	if answeredByTap(mh) {
		return nil
	}
	var authz []string
	for _, hf := range mh.Fields {
		if hf.Name == AuthorizationKey {
			authz = append(authz, hf.Value)
		}
	}
	if g.verifier.Verify(authz) == nil {
		return nil
	}
	return errGuardRefused
}

// answeredByTap reports whether grpc takes a request with these headers as
// far as the auth tap: the checks grpc's transport makes before it (see
// operateHeaders in grpc's http2_server.go), or stricter.
func answeredByTap(mh *http2.MetaHeadersFrame) bool {
	if mh.Truncated {
		return false
	}
	var method string
	var authorities, hosts int
	grpcType := false
	for _, hf := range mh.Fields {
		switch hf.Name {
		case ":method":
			method = hf.Value
		case ":authority":
			authorities++
		case "host":
			hosts++
		case "connection":
			return false
		case "content-type":
			if !isGRPCContentType(hf.Value) {
				return false
			}
			grpcType = true
		case "grpc-timeout":
			if !isGRPCTimeout(hf.Value) {
				return false
			}
		default:
			if strings.HasSuffix(hf.Name, "-bin") && !isBinHeader(hf.Value) {
				return false
			}
		}
	}
	return grpcType && method == "POST" && authorities <= 1 && hosts <= 1
}

// isGRPCContentType is grpc's test: application/grpc, alone or followed by
// "+subtype" or ";parameters".
func isGRPCContentType(v string) bool {
	const base = "application/grpc"
	if v == base {
		return true
	}
	return strings.HasPrefix(v, base) && (v[len(base)] == '+' || v[len(base)] == ';')
}

// isGRPCTimeout is grpc's test: 1 to 8 digits and a unit.
func isGRPCTimeout(v string) bool {
	if len(v) < 2 || len(v) > 9 || !strings.ContainsRune("HMSmun", rune(v[len(v)-1])) {
		return false
	}
	_, err := strconv.ParseUint(v[:len(v)-1], 10, 64)
	return err == nil
}

// isBinHeader is grpc's test of a "-bin" header: base64, padded or not.
func isBinHeader(v string) bool {
	var err error
	if len(v)%4 == 0 {
		_, err = base64.StdEncoding.DecodeString(v)
	} else {
		_, err = base64.RawStdEncoding.DecodeString(v)
	}
	return err == nil
}
