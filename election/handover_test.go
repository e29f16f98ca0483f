//go:build go1.25

package election_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// The handover path, tested in fake time on the memory store.

// TestTakeoverNotAnnouncedAsLeaderless: a follower that takes the resource
// over at once, when the leader releases it, is told that it leads, with no
// "no leader" notification in between.
func TestTakeoverNotAnnouncedAsLeaderless(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		a := startLeader(t, store, "a")
		var mu sync.Mutex
		var seen []election.Leadership
		startElector(t, store, election.Options{Resource: "r", ID: "b"}, func(ctx context.Context, l election.Leadership) error {
			mu.Lock()
			seen = append(seen, l)
			mu.Unlock()
			if l.IsLeader {
				<-ctx.Done()
			}
			return nil
		})
		synctest.Wait()
		if err := a.Release(context.Background()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(seen) != 2 || seen[0].LeaderID != "a" || seen[0].IsLeader || !seen[1].IsLeader || seen[1].LeaderID != "b" {
			t.Fatalf("b saw %+v; want a leading, then b leading", seen)
		}
	})
}

// startLeader starts an elector of resource "r" that leads, and returns
// once it does.
func startLeader(t *testing.T, store *memory.Store, id string) *election.Elector {
	t.Helper()
	ch := make(chan election.Leadership, 10)
	el := startElector(t, store, election.Options{Resource: "r", ID: id}, blockingLeader(ch, nil))
	waitLeader(t, ch)
	return el
}

// watchLog records, for a memory connection, whether a Watch ended because
// its context did, and when sessions start closing.
type watchLog struct {
	*memory.Conn
	orderLog
}

func (w *watchLog) Watch(ctx context.Context, r string, after uint64, wait time.Duration) (election.Record, error) {
	rec, err := w.Conn.Watch(ctx, r, after, wait)
	if err != nil && ctx.Err() != nil {
		w.add("watch cancelled")
	}
	return rec, err
}

// WatchRecord notes when a leader's watch of its record is stopped.
func (w *watchLog) WatchRecord(resource string, after uint64, changed func(election.Record, error)) func() {
	stop := w.Conn.WatchRecord(resource, after, changed)
	return func() {
		w.add("watch stopped")
		stop()
	}
}

func (w *watchLog) NewSession(ctx context.Context, p election.SessionParams) (election.Session, error) {
	s, err := w.Conn.NewSession(ctx, p)
	if err != nil {
		return nil, err
	}
	return closeLog{Session: s, w: w}, nil
}

type closeLog struct {
	election.Session
	w *watchLog
}

func (c closeLog) Close(ctx context.Context) error {
	c.w.add("close")
	return c.Session.Close(ctx)
}

// TestLeaderWatchEndsWithTheRelease: a leader's blocking read of its own
// record is not cut off when the term ends; the release ends it, as a change
// of the record, so a store connection is not torn down at the handover.
// A watch through RecordWatcher, too, is stopped only after the release.
func TestLeaderWatchEndsWithTheRelease(t *testing.T) {
	t.Run("Watch", func(t *testing.T) {
		testLeaderWatchEndsWithTheRelease(t, false, func(w *watchLog) election.Backend { return goroutineWatch{w} })
	})
	t.Run("WatchRecord", func(t *testing.T) {
		testLeaderWatchEndsWithTheRelease(t, true, func(w *watchLog) election.Backend { return w })
	})
}

func testLeaderWatchEndsWithTheRelease(t *testing.T, registered bool, backend func(*watchLog) election.Backend) {
	synctest.Test(t, func(t *testing.T) {
		w := &watchLog{Conn: memory.NewStore().Connect("a")}
		el, err := election.New(backend(w), election.Options{Resource: "r", ID: "a"})
		if err != nil {
			t.Fatal(err)
		}
		defer el.Close(context.Background())
		ch := make(chan election.Leadership, 10)
		_ = el.Start(context.Background(), blockingLeader(ch, nil))
		waitLeader(t, ch)
		synctest.Wait()
		if err := el.Release(context.Background()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		events := w.all()
		if len(events) == 0 || events[0] != "close" {
			t.Fatalf("events %q; want the session closed before any watch is cut off", events)
		}
		if registered && !slices.Equal(events, []string{"close", "watch stopped"}) {
			t.Fatalf("events %q; want the session closed, then the leader's watch stopped", events)
		}
	})
}

// TestLeaderCallWaitsForEarlierNotifications: the leader call, made on the
// campaign's own goroutine, still comes after every notification queued
// before it, one call at a time.
func TestLeaderCallWaitsForEarlierNotifications(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		a := startLeader(t, store, "a")
		var mu sync.Mutex
		var calls []string
		inCall := false
		startElector(t, store, election.Options{Resource: "r", ID: "b"}, func(ctx context.Context, l election.Leadership) error {
			mu.Lock()
			if inCall {
				t.Error("two handler calls at once")
			}
			inCall = true
			calls = append(calls, l.LeaderID)
			mu.Unlock()
			if !l.IsLeader {
				time.Sleep(time.Minute) // a slow follower notification
			}
			mu.Lock()
			inCall = false
			mu.Unlock()
			if l.IsLeader {
				<-ctx.Done()
			}
			return nil
		})
		synctest.Wait() // b's notification of a's term is running
		if err := a.Release(context.Background()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if id, _ := store.Leader("r"); id != "b" {
			t.Fatalf("store leader = %q, want b", id)
		}
		mu.Lock()
		if len(calls) != 1 {
			t.Errorf("calls = %q while the first is running; want the leader call to wait", calls)
		}
		mu.Unlock()
		time.Sleep(time.Minute)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(calls) != 2 || calls[0] != "a" || calls[1] != "b" {
			t.Errorf("calls = %q, want [a b]", calls)
		}
	})
}

// TestStuckHandlerStopsRenewals: a leader whose handler ignores the end of
// its term stops renewing at once, so that its session expires and another
// candidate leads, while the stuck call still keeps this elector from
// campaigning.
func TestStuckHandlerStopsRenewals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		unblock := make(chan struct{})
		release := sync.OnceFunc(func() { close(unblock) })
		opts := election.Options{Resource: "r", ID: "a", TTL: 10 * time.Second}
		leads := make(chan struct{}, 1)
		a := startElector(t, store, opts, func(ctx context.Context, l election.Leadership) error {
			if l.IsLeader {
				leads <- struct{}{}
				<-unblock // ignores ctx
			}
			return nil
		})
		t.Cleanup(release) // runs before the elector's Close, which waits for the handler
		<-leads
		if err := a.Release(context.Background()); err != nil {
			t.Fatal(err)
		}
		// Without renewals the memory store ends the session one TTL after
		// its last renewal, at most RenewInterval before the release.
		time.Sleep(opts.TTL + time.Second)
		synctest.Wait()
		if id, _ := store.Leader("r"); id != "" {
			t.Errorf("store leader = %q one TTL after the release; the stuck leader kept renewing", id)
		}
		bCh := make(chan election.Leadership, 10)
		startElector(t, store, election.Options{Resource: "r", ID: "b", TTL: 10 * time.Second}, blockingLeader(bCh, nil))
		if l := waitLeader(t, bCh); l.LeaderID != "b" {
			t.Errorf("leader = %+v, want b", l)
		}
		release()
	})
}
