//go:build go1.25

package election_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// failingWatch is a memory connection whose WatchRecord fails while down:
// at once for a watch begun then, and, when fail is called, for every
// watch under way.
type failingWatch struct {
	*memory.Conn
	mu      sync.Mutex
	down    bool
	begun   []time.Time // when each watch was begun
	watches map[*func(election.Record, error)]func()
}

var errWatchDown = errors.New("watch down")

func (f *failingWatch) WatchRecord(resource string, after uint64, changed func(election.Record, error)) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.begun = append(f.begun, time.Now())
	if f.down {
		changed(election.Record{}, errWatchDown)
		return func() {}
	}
	key := &changed
	f.watches[key] = f.Conn.WatchRecord(resource, after, changed)
	return func() {
		f.mu.Lock()
		stop := f.watches[key]
		delete(f.watches, key)
		f.mu.Unlock()
		if stop != nil {
			stop()
		}
	}
}

// fail fails every watch under way, and those begun until heal.
func (f *failingWatch) fail() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = true
	for key, stop := range f.watches {
		stop()
		(*key)(election.Record{}, errWatchDown)
	}
	clear(f.watches)
}

func (f *failingWatch) heal() {
	f.mu.Lock()
	f.down = false
	f.mu.Unlock()
}

func (f *failingWatch) watchesBegun() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.begun)
}

// TestRecordWatchFailureRetried: a leader whose watch of its record
// through RecordWatcher fails keeps its term, logs the failure, reports it
// to its observers (OpWatch), and watches again after a backoff: after
// RetryInterval ± RetryJitter, then twice that, at most RenewInterval.
// Once a watch is taken again, it reports the recovery, and the removal of
// its record ends the term.
func TestRecordWatchFailureRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		f := &failingWatch{Conn: store.Connect("a"), watches: map[*func(election.Record, error)]func(){}}
		var logs syncBuffer
		rec := &events{}
		opts := election.Options{Resource: "r", ID: "a", TTL: 60 * time.Second, RetryInterval: time.Second,
			Observers: []*election.Observer{rec.observer()}, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
		el, err := election.New(f, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer el.Close(context.Background())
		ch := make(chan election.Leadership, 10)
		ended := make(chan time.Time, 1)
		_ = el.Start(context.Background(), blockingLeader(ch, ended))
		waitLeader(t, ch)
		synctest.Wait()
		if n := len(f.watchesBegun()); n != 1 {
			t.Fatalf("%d watches begun by the leader; want 1", n)
		}
		failed := time.Now()
		f.fail()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		begun := f.watchesBegun()[1:]
		// 1 s ± 20 %, then 2 s ± 20 %: two more within 5 s, at most four.
		if len(begun) < 2 || len(begun) > 4 {
			t.Fatalf("watches begun at %v after the failure; want about 1 s, then 2 s more", sinceEach(failed, begun))
		}
		if d := begun[0].Sub(failed); d < 800*time.Millisecond || d > 1200*time.Millisecond {
			t.Errorf("first watch again %v after the failure; want 1 s ± 20 %%", d)
		}
		if d := begun[1].Sub(begun[0]); d < 1600*time.Millisecond || d > 2400*time.Millisecond {
			t.Errorf("second watch again %v after the first; want 2 s ± 20 %%", d)
		}
		if !el.IsLeader() {
			t.Fatalf("the term ended with its watch failing")
		}
		if !strings.Contains(logs.String(), "leader cannot watch its record") {
			t.Errorf("the failure was not logged:\n%s", logs.String())
		}
		rec.mu.Lock()
		nf := len(rec.failures)
		var op election.Op
		if nf > 0 {
			op = rec.failures[0].Op
		}
		rec.mu.Unlock()
		if nf != 1+len(begun) || op != election.OpWatch {
			t.Errorf("%d failures reported (first %v) for %d failed watches; want each, as OpWatch", nf, op, 1+len(begun))
		}
		f.heal()
		time.Sleep(10 * time.Second) // the backoff is at most RenewInterval, 20 s
		synctest.Wait()
		rec.mu.Lock()
		recovered := slices.Clone(rec.recovered)
		rec.mu.Unlock()
		if len(recovered) != 1 || recovered[0].Op != election.OpWatch || recovered[0].Failures != nf {
			t.Errorf("recoveries %+v; want one of OpWatch after %d failures", recovered, nf)
		}
		store.DeleteRecord("r")
		synctest.Wait()
		select {
		case <-ended:
		default:
			t.Fatalf("the term did not end when its record was removed, once the watch worked again")
		}
	})
}

func sinceEach(from time.Time, ts []time.Time) []time.Duration {
	ds := make([]time.Duration, len(ts))
	for i, t := range ts {
		ds[i] = t.Sub(from)
	}
	return ds
}
