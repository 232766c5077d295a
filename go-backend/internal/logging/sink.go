package logging

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// DefaultSinkBytes bounds what a Sink holds while its writer is slow or
// stalled: about 1700 debug records of one call each.
const DefaultSinkBytes = 256 << 10

// DroppedMsg is the message of the warning a Sink writes, once its writer
// takes records again, to count the records it dropped meanwhile.
const DroppedMsg = "log records dropped"

// Sink decouples the log from its writer (stderr, a pipe the parent reads):
// Write copies the record into a buffer bounded in bytes and returns at
// once; one goroutine drains the buffer into the writer. When the writer
// does not keep up (the parent stopped reading its end of the pipe), new
// records are dropped and counted, and once the writer takes records again
// a warning DroppedMsg says how many were lost. So logging never blocks
// serving or the shutdown, whatever the parent does with the pipe.
type Sink struct {
	w   io.Writer
	max int

	mu      sync.Mutex
	queue   [][]byte
	queued  int    // bytes in queue
	dropped uint64 // records dropped since the last notice was queued
	total   uint64 // records dropped since the start
	closed  bool
	wake    chan struct{}
	done    chan struct{}
}

// NewSink starts a Sink writing to w that holds at most maxBytes of records
// (DefaultSinkBytes when maxBytes <= 0). Close it to stop its goroutine.
func NewSink(w io.Writer, maxBytes int) *Sink {
	if maxBytes <= 0 {
		maxBytes = DefaultSinkBytes
	}
	s := &Sink{w: w, max: maxBytes, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go s.drain()
	return s
}

// Write queues a copy of p, or drops it when the queue is full (or the
// Sink is closed). It never blocks on the writer and never fails: a log
// record must not fail or stall the work it describes.
func (s *Sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	switch {
	case s.closed:
		s.dropped++
		s.total++
	case s.queued+len(p) > s.max:
		s.dropped++
		s.total++
	default:
		if s.dropped > 0 {
			// The notice goes where the lost records were; it may exceed
			// the bound by its own few dozen bytes.
			s.push(droppedRecord(s.dropped))
			s.dropped = 0
		}
		s.push(bytes.Clone(p))
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (s *Sink) push(b []byte) {
	s.queue = append(s.queue, b)
	s.queued += len(b)
}

// Dropped reports how many records were dropped since the start.
func (s *Sink) Dropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

func (s *Sink) drain() {
	defer close(s.done)
	for {
		s.mu.Lock()
		// Back for more: the writer took the last batch, so it is time to
		// say how many records were lost meanwhile (even if no record
		// follows).
		if s.dropped > 0 {
			s.push(droppedRecord(s.dropped))
			s.dropped = 0
		}
		for len(s.queue) == 0 {
			if s.closed {
				s.mu.Unlock()
				return
			}
			s.mu.Unlock()
			<-s.wake
			s.mu.Lock()
		}
		batch := s.queue
		s.queue = nil
		s.mu.Unlock()
		for _, b := range batch {
			// A failed write (the parent closed the pipe) loses the
			// record; there is nowhere else to report it.
			_, _ = s.w.Write(b)
			s.mu.Lock()
			s.queued -= len(b)
			s.mu.Unlock()
		}
	}
}

// Close stops taking records and waits up to timeout for those queued to be
// written, adding the notice of records dropped if any. It reports whether
// everything queued was written. When the writer is stalled, what is left
// is abandoned to the draining goroutine (the process is about to exit).
func (s *Sink) Close(timeout time.Duration) bool {
	s.mu.Lock()
	if !s.closed {
		if s.dropped > 0 {
			s.push(droppedRecord(s.dropped))
			s.dropped = 0
		}
		s.closed = true
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	select {
	case <-s.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// droppedRecord renders the notice for n dropped records as one JSON line,
// like the records of New.
func droppedRecord(n uint64) []byte {
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).LogAttrs(context.Background(), slog.LevelWarn, DroppedMsg,
		slog.Uint64("dropped", n),
		slog.String("reason", "stderr was not read fast enough; these records were lost"),
	)
	return buf.Bytes()
}
