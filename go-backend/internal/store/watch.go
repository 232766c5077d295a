package store

import (
	"context"
	"strconv"

	"zombiezen.com/go/sqlite"

	"github.com/anysync/tauri-plugin-anysync/go-backend/backend/errs"
)

// EventKind is the kind of a watch Event.
type EventKind int

// The kinds of event.
const (
	// EventInitial is one document of the initial set.
	EventInitial EventKind = iota + 1
	// EventReady ends the initial set (or, when resuming, says the watch
	// is registered); Seq is the sequence number it reflects.
	EventReady
	EventInsert
	EventUpdate
	EventDelete
)

// Event is one event of a Watch.
type Event struct {
	Kind EventKind
	// Seq is the change's sequence number (for EventReady, the last one
	// the initial set reflects; 0 for EventInitial).
	Seq uint64
	Doc Doc
	// Matches says whether the document matches the filter after the
	// change (false for a delete).
	Matches bool
}

// WatchQuery is what a Watch follows.
type WatchQuery struct {
	Collection string
	Filter     string
	// AfterSeq, when set, resumes after that sequence number: no initial
	// set, every later change.
	AfterSeq *uint64
}

const lastSeqSQL = "SELECT coalesce(max(seq), 0) FROM changes"

// watchBatch bounds the changes read from the log at once.
const watchBatch = 256

// Watch sends the initial set (unless resuming), then a ready event, then
// every change of the collection in commit order, until ctx ends (its
// error is returned), send fails (its error is returned), or the space
// closes (Unavailable) or is deleted (NotFound). send is called from
// Watch's goroutine only, never while a database read is open.
func (st *Store) Watch(ctx context.Context, space string, q WatchQuery, send func(Event) error) error {
	sp, err := st.space(ctx, space)
	if err != nil {
		return err
	}
	// The watch is not an in-flight call while it waits: only its reads
	// are (see read below), so closing the space never waits for it.
	sp.done()
	p, err := sp.compile(Query{Collection: q.Collection, Filter: q.Filter}, false)
	if err != nil {
		return err
	}
	read := func(fn func(conn *sqlite.Conn) error) error {
		if err := sp.begin(); err != nil {
			return err
		}
		defer sp.done()
		return sp.read(ctx, fn)
	}

	var last uint64
	// matched: the ids this stream has reported as matching; nil after a
	// resume, where it cannot know, so every change is sent.
	var matched map[string]bool
	if q.AfterSeq != nil {
		var max uint64
		err := read(func(conn *sqlite.Conn) error {
			_, err := one(conn, lastSeqSQL, nil, func(s *sqlite.Stmt) { max = uint64(s.ColumnInt64(0)) })
			return err
		})
		if err != nil {
			return sp.mapErr(err, "watch")
		}
		if *q.AfterSeq > max {
			return errs.New(errs.OutOfRange, "watch: after_seq %d is beyond the space's last change %d (was the space deleted and created again?)", *q.AfterSeq, max)
		}
		last = *q.AfterSeq
	} else {
		matched = map[string]bool{}
		var initial []Doc
		err := read(func(conn *sqlite.Conn) (err error) {
			// One read transaction: the set reflects exactly the
			// changes up to the sequence number read with it.
			if err := run(conn, "BEGIN", nil, nil); err != nil {
				return err
			}
			defer func() {
				if rerr := run(conn, "ROLLBACK", nil, nil); err == nil {
					err = rerr
				}
			}()
			err = sp.filters.run(conn, "SELECT "+docColumns+" "+p.from+" ORDER BY id", p.args, func(s *sqlite.Stmt) error {
				initial = append(initial, scanDoc(s, 0))
				return nil
			})
			if err != nil {
				return err
			}
			_, err = one(conn, lastSeqSQL, nil, func(s *sqlite.Stmt) { last = uint64(s.ColumnInt64(0)) })
			return err
		})
		if err != nil {
			return sp.mapErr(err, "watch")
		}
		for _, d := range initial {
			matched[d.ID] = true
			if err := send(Event{Kind: EventInitial, Doc: d, Matches: true}); err != nil {
				return err
			}
		}
	}
	if err := send(Event{Kind: EventReady, Seq: last}); err != nil {
		return err
	}

	query := "SELECT seq, op, id, rev, coalesce(doc, ''), created, updated, doc IS NOT NULL AND coalesce(" + p.where + ", 0)" +
		" FROM changes WHERE seq > ? AND collection = " + sqlString(q.Collection) + " ORDER BY seq LIMIT " + strconv.Itoa(watchBatch)
	for {
		changed := sp.waitChanged() // before the read: a later commit closes it
		var events []Event
		err := read(func(conn *sqlite.Conn) error {
			return sp.filters.run(conn, query, append(append([]any{}, p.args...), last), func(s *sqlite.Stmt) error {
				e := Event{Seq: uint64(s.ColumnInt64(0)), Doc: scanDoc(s, 2), Matches: s.ColumnBool(7)}
				switch s.ColumnText(1) {
				case "insert":
					e.Kind = EventInsert
				case "update":
					e.Kind = EventUpdate
				default:
					e.Kind = EventDelete
				}
				events = append(events, e)
				return nil
			})
		})
		if err != nil {
			return sp.mapErr(err, "watch")
		}
		for _, e := range events {
			last = e.Seq
			if matched != nil {
				if !e.Matches && !matched[e.Doc.ID] {
					continue
				}
				if e.Matches {
					matched[e.Doc.ID] = true
				} else {
					delete(matched, e.Doc.ID)
				}
			}
			if err := send(e); err != nil {
				return err
			}
		}
		if len(events) == watchBatch {
			continue
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-sp.closing:
			return sp.begin() // NotFound (deleted) or Unavailable (closing)
		}
	}
}
