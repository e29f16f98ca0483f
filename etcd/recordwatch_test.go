package etcd

import (
	"errors"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

// TestWatchRecordFailsStopsAndTells: a WatchRecord call is told of a change
// of its record by the shared watch; ended by a failure of that watch,
// with its error, at once when begun while it fails; and by Close; and
// each ended call no longer counts as one waiting on the watch.
func TestWatchRecordFailsStopsAndTells(t *testing.T) {
	srv := startEtcd(t)
	b := newBackend(t, newClient(t, srv.Endpoint()))
	p := params("r", "a")
	p.TTL = time.Minute // not renewed here
	s := newSession(t, b, p)
	acq := acquire(t, s)
	told := make(chan watchResult, 16)
	after := acq.Revision
	watch := func() func() {
		return b.WatchRecord("r", after, func(rec election.Record, err error) {
			told <- watchResult{rec, err}
		})
	}
	expect := func(what string) watchResult {
		t.Helper()
		select {
		case r := <-told:
			return r
		case <-time.After(5 * time.Second):
			t.Fatalf("not told %s within 5 s", what)
		}
		return watchResult{}
	}
	waiting := func() int {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.hubs["r"].waiting
	}

	stop := watch()
	defer stop()
	boom := errors.New("boom")
	// Once the group's watch has loaded, a failure of it ends the call.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b.mu.Lock()
		loaded := b.group.elects != nil
		b.mu.Unlock()
		if loaded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the group's watch did not load within 5 s")
		}
	}
	b.group.setErr(boom)
	if r := expect("the failure"); !errors.Is(r.err, boom) {
		t.Fatalf("told %+v; want the watch's error", r)
	}
	if n := waiting(); n != 0 {
		t.Errorf("%d calls waiting after the failure; want 0", n)
	}
	// Begun while the watch fails: told at once.
	watch()
	select {
	case r := <-told:
		if !errors.Is(r.err, boom) {
			t.Fatalf("told %+v; want the watch's error", r)
		}
	default:
		t.Fatal("a call begun while the watch fails was not told at once")
	}

	b.group.setErr(nil)
	stop = watch()
	if err := s.Close(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	r := expect("the release")
	if r.err != nil || !r.rec.Free() {
		t.Fatalf("told %+v; want the record freed", r)
	}
	after = r.rec.Revision
	stop()
	stop()
	if n := waiting(); n != 0 {
		t.Errorf("%d calls waiting after stop; want 0", n)
	}

	defer watch()() // ended by Close
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if r := expect("the end of the watch by Close"); r.err == nil {
		t.Fatalf("told %+v at Close; want an error", r)
	}
	if n := waiting(); n != 0 {
		t.Errorf("%d calls waiting after Close; want 0", n)
	}
	select {
	case r := <-told:
		t.Errorf("told %+v after the end", r)
	default:
	}
}
