package conformance

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

// testRecordWatch: a backend that implements election.RecordWatcher tells
// a watch of a led resource's record, within Slack, that its record was
// removed, with a record no longer held by the leader's session; a watch
// stopped is told nothing once its stop has returned.
func testRecordWatch(s *suite) {
	a, b := s.newShared("wa"), s.newShared("wb")
	w, ok := a.ss.Backend().(election.RecordWatcher)
	if !ok {
		s.t.Skipf("the backend of %s does not implement election.RecordWatcher", s.c.Name)
	}
	r := s.resource
	held := s.leadAll(a, b, []string{r})[r].l.Session.ID
	ctx, cancel := context.WithTimeout(context.Background(), s.defaults().RequestTimeout)
	rec, err := a.ss.Backend().Watch(ctx, r, 0, 0)
	cancel()
	if err != nil {
		s.t.Fatalf("read of %q: %v", r, err)
	}
	if rec.Session != held {
		s.t.Fatalf("the store shows %q held by session %q; want %q", r, rec.Session, held)
	}
	// A watch stopped at once.
	var stopped, late atomic.Bool
	stopFirst := w.WatchRecord(r, rec.Revision, func(election.Record, error) {
		if stopped.Load() {
			late.Store(true)
		}
	})
	stopFirst()
	stopped.Store(true)
	// A watch of the removal, started anew after a failure, as the
	// engine does.
	type seen struct {
		rec election.Record
		err error
	}
	ch := make(chan seen, 64)
	watch := func(after uint64) func() {
		return w.WatchRecord(r, after, func(rec election.Record, err error) {
			select {
			case ch <- seen{rec, err}:
			default:
			}
		})
	}
	stop := watch(rec.Revision)
	defer func() { stop() }()
	s.rec.takenFromOutside(r)
	removed := time.Now()
	s.store.Remove(s.t, r, RemoveRecord)
	deadline := time.NewTimer(s.c.Slack)
	defer deadline.Stop()
	for after := rec.Revision; ; {
		select {
		case v := <-ch:
			switch {
			case v.err != nil:
				s.t.Logf("watch of %q failed: %v; watching again", r, v.err)
				stop()
				stop = watch(after)
				continue
			case v.rec.Revision == after:
				continue // spurious
			case v.rec.Session == held:
				s.t.Errorf("the watch of %q was told of revision %d, still held by %q, after revision %d", r, v.rec.Revision, held, after)
				after = v.rec.Revision
				continue
			}
			s.t.Logf("the watch was told %v after the removal: %+v", time.Since(removed), v.rec)
		case <-deadline.C:
			s.t.Fatalf("the watch of %q was not told of the removal of its record within %v", r, s.c.Slack)
		}
		break
	}
	if late.Load() {
		s.t.Errorf("a watch of %q was told of a change after its stop returned", r)
	}
}
