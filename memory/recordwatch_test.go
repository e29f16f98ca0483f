//go:build go1.25

package memory_test

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

// TestWatchRecordAsWatch: WatchRecord tells a change as a blocking Watch of
// its connection returns it: not while the connection is cut (it tells on
// Heal), and late by the connection's delay; nothing once stopped.
func TestWatchRecordAsWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		leader, watcher := store.Connect("leader"), store.Connect("w")
		ctx := context.Background()
		sess, err := leader.NewSession(ctx, election.SessionParams{Resource: "r", ID: "a", TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		acq, err := sess.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var (
			mu      sync.Mutex
			records []election.Record
		)
		told := func() []election.Record {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(records)
		}
		stop := watcher.WatchRecord("r", acq.Revision, func(r election.Record, err error) {
			if err != nil {
				t.Errorf("WatchRecord failed: %v", err)
			}
			mu.Lock()
			records = append(records, r)
			mu.Unlock()
		})
		defer stop()
		if len(told()) != 0 {
			t.Fatalf("told %+v before any change", told())
		}

		store.Cut("w")
		store.DeleteRecord("r")
		synctest.Wait()
		if len(told()) != 0 {
			t.Fatalf("told %+v while cut off", told())
		}
		store.Heal("w")
		if len(told()) != 1 || !told()[0].Free() {
			t.Fatalf("told %+v on Heal; want the record freed", told())
		}

		store.Delay("w", time.Second)
		if _, err := sess.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second - time.Millisecond)
		synctest.Wait()
		if len(told()) != 1 {
			t.Fatalf("told %+v before the delay passed", told()[1:])
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if len(told()) != 2 || told()[1].Session != sess.Info().ID {
			t.Fatalf("told %+v once the delay passed; want the record held again", told()[1:])
		}

		store.DeleteRecord("r")
		stop() // before the delayed reply arrives
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if len(told()) != 2 {
			t.Fatalf("told %+v after stop", told()[2:])
		}
	})
}
