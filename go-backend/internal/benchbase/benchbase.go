// Package benchbase holds the baselines of the benchmark harness (bench/ at
// the repository root): a raw TCP echo server, the floor that the gRPC path
// is compared with, and a minimal gRPC server, whose idle memory is the
// floor of the sidecar's. Nothing in the sidecar imports it.
package benchbase

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
)

// MaxFrame bounds one echoed frame, so a bad length cannot exhaust memory.
const MaxFrame = 64 << 20

// ServeEcho accepts connections on ln until ctx is done or ln fails, and
// echoes every frame on each: a 4-byte big-endian length, then that many
// bytes. Each connection gets TCP_NODELAY, like the gRPC connections it is
// compared with. It returns nil when ctx ends the loop.
func ServeEcho(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept: %w", err)
		}
		if tcp, ok := conn.(*net.TCPConn); ok {
			_ = tcp.SetNoDelay(true)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			closeOnDone := context.AfterFunc(ctx, func() { _ = conn.Close() })
			defer closeOnDone()
			_ = Echo(conn)
			_ = conn.Close()
		}()
	}
}

// Echo echoes frames on rw until EOF (nil) or an error.
func Echo(rw io.ReadWriter) error {
	r := bufio.NewReaderSize(rw, 64<<10)
	var header [4]byte
	buf := make([]byte, 0, 64<<10)
	for {
		if _, err := io.ReadFull(r, header[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read header: %w", err)
		}
		n := binary.BigEndian.Uint32(header[:])
		if n > MaxFrame {
			return fmt.Errorf("frame of %d bytes exceeds %d", n, MaxFrame)
		}
		if cap(buf) < int(n)+4 {
			buf = make([]byte, 0, int(n)+4)
		}
		frame := buf[:int(n)+4]
		copy(frame, header[:])
		if _, err := io.ReadFull(r, frame[4:]); err != nil {
			return fmt.Errorf("read frame: %w", err)
		}
		// One write per frame: header and body leave in one segment when small.
		if _, err := rw.Write(frame); err != nil {
			return fmt.Errorf("write frame: %w", err)
		}
	}
}

// Ready is the line a baseline server prints on stdout once it listens.
func Ready(addr net.Addr) string {
	return fmt.Sprintf("{\"addr\":%q}", addr.String())
}

// UntilEOF returns a context that ends when r reaches EOF (or fails) or
// parent ends: the parent closing our stdin stops a baseline server, as it
// stops the sidecar.
func UntilEOF(parent context.Context, r io.Reader) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	go func() {
		_, _ = io.Copy(io.Discard, r)
		cancel()
	}()
	return ctx, cancel
}

// Main is the whole main function of a baseline server named name: it
// listens on a kernel-chosen loopback port, prints Ready on stdout, and
// runs serve with a context that ends when stdin closes. serve must return
// once that context is done. An error is printed on stderr as
// "name: error", with exit status 1.
func Main(name string, serve func(ctx context.Context, ln net.Listener) error) {
	if err := run(context.Background(), os.Stdin, os.Stdout, serve); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

func run(parent context.Context, stdin io.Reader, stdout io.Writer, serve func(context.Context, net.Listener) error) error {
	ctx, cancel := UntilEOF(parent, stdin)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	_, _ = fmt.Fprintln(stdout, Ready(ln.Addr()))
	return serve(ctx, ln)
}
