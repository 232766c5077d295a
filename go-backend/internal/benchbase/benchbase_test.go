package benchbase

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
)

func TestServeEchoEchoesFramesAndStops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeEcho(ctx, ln) }()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, size := range []int{0, 16, 1024, 70 << 10} {
		payload := bytes.Repeat([]byte{'x'}, size)
		frame := binary.BigEndian.AppendUint32(nil, uint32(size))
		frame = append(frame, payload...)
		if _, err := conn.Write(frame); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(frame))
		if _, err := io.ReadFull(conn, got); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if !bytes.Equal(got, frame) {
			t.Fatalf("size %d: echo differs", size)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("ServeEcho after cancel: %v", err)
	}
}

func TestEchoRejectsOversizedFrame(t *testing.T) {
	var in bytes.Buffer
	in.Write(binary.BigEndian.AppendUint32(nil, MaxFrame+1))
	rw := struct {
		io.Reader
		io.Writer
	}{&in, io.Discard}
	if err := Echo(rw); err == nil {
		t.Fatal("want an error for an oversized frame")
	}
}

func TestUntilEOFEndsOnEOF(t *testing.T) {
	ctx, cancel := UntilEOF(context.Background(), bytes.NewReader(nil))
	defer cancel()
	<-ctx.Done()
}

func TestRunPrintsReadyAndStopsOnEOF(t *testing.T) {
	stdinR, stdinW := io.Pipe()
	var stdout bytes.Buffer
	served := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(context.Background(), stdinR, &stdout, func(ctx context.Context, ln net.Listener) error {
			served <- ln.Addr()
			<-ctx.Done()
			return ln.Close()
		})
	}()
	addr := <-served
	if want := Ready(addr) + "\n"; stdout.String() != want {
		t.Fatalf("stdout = %q, want %q", stdout.String(), want)
	}
	if ip := addr.(*net.TCPAddr).IP; !ip.IsLoopback() {
		t.Fatalf("listening on %v, want loopback", addr)
	}
	_ = stdinW.Close()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}
