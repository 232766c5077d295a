package backend

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/auth"
)

// condemnLinger is how long a condemned connection stays open after its
// last frame was read, so that the UNAUTHENTICATED answer already queued
// reaches the peer before the connection closes.
const condemnLinger = 100 * time.Millisecond

// errCondemned ends the reads of a condemned connection.
var errCondemned = errors.New("connection closed: a call on it failed authentication")

// connLimiter bounds the connections open at once and can condemn one
// (close it after a peer failed to authenticate on it). It keeps the open
// connections by remote address, which is what a call's peer.Peer carries.
type connLimiter struct {
	slots chan struct{}
	// verifier, when set, gives every connection a requestGuard.
	verifier *auth.Verifier

	mu    sync.Mutex
	conns map[string]*limitedConn

	// refusedConns counts connections closed at once for lack of a slot;
	// condemned counts connections condemned. Both are reported by the
	// periodic record of refused calls.
	refusedConns atomic.Uint64
	condemned    atomic.Uint64
}

func newConnLimiter(max int) *connLimiter {
	return &connLimiter{slots: make(chan struct{}, max), conns: map[string]*limitedConn{}}
}

// wrap returns lis with the limit applied to what it accepts.
func (l *connLimiter) wrap(lis net.Listener) net.Listener {
	return &limitedListener{Listener: lis, l: l}
}

// condemn makes the connection whose peer is remote stop reading at once
// and close condemnLinger later. Unknown addresses are ignored.
func (l *connLimiter) condemn(remote net.Addr) {
	if remote == nil {
		return
	}
	l.mu.Lock()
	c := l.conns[remote.String()]
	l.mu.Unlock()
	if c != nil && c.condemned.CompareAndSwap(false, true) {
		l.condemned.Add(1)
	}
}

type limitedListener struct {
	net.Listener
	l *connLimiter
}

// Accept returns the next connection that gets a slot; connections beyond
// the bound are closed without a word (the owner uses two).
func (ll *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case ll.l.slots <- struct{}{}:
		default:
			ll.l.refusedConns.Add(1)
			_ = c.Close()
			continue
		}
		lc := &limitedConn{Conn: c, l: ll.l, key: c.RemoteAddr().String()}
		if ll.l.verifier != nil {
			lc.guard = newRequestGuard(ll.l.verifier)
		}
		ll.l.mu.Lock()
		ll.l.conns[lc.key] = lc
		ll.l.mu.Unlock()
		return lc, nil
	}
}

// limitedConn holds a slot until it is closed.
type limitedConn struct {
	net.Conn
	l         *connLimiter
	key       string
	condemned atomic.Bool
	closeOnce sync.Once
	// guard, if set, refuses unauthenticated requests that grpc would
	// answer before the auth tap; only Read (grpc's reading goroutine)
	// uses it.
	guard *requestGuard
}

// Read reads until the connection is condemned. grpc reads frames on one
// goroutine, the one that runs the auth tap; so once the tap condemns the
// connection, no further frame is read beyond grpc's own read buffer, and
// the peer's flood stays in kernel buffers, which are bounded.
func (c *limitedConn) Read(p []byte) (int, error) {
	if c.condemned.Load() {
		time.Sleep(condemnLinger)
		return 0, errCondemned
	}
	n, err := c.Conn.Read(p)
	if n > 0 && c.guard != nil {
		if keep, gerr := c.guard.feed(p[:n]); gerr != nil {
			// grpc gets the bytes before the refused request only, then
			// the end of the connection: it never sees the request.
			if c.condemned.CompareAndSwap(false, true) {
				c.l.condemned.Add(1)
			}
			if keep == 0 {
				return 0, errCondemned
			}
			return keep, nil
		}
	}
	return n, err
}

func (c *limitedConn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		err = c.Conn.Close()
		c.l.mu.Lock()
		if c.l.conns[c.key] == c {
			delete(c.l.conns, c.key)
		}
		c.l.mu.Unlock()
		<-c.l.slots
	})
	return err
}
