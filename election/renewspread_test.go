package election_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// TestFirstRenewalsSpread starts 100 electors at the same instant, each on
// a private session, and 20 shared sessions: each session is renewed
// first at a random point in the second half of RenewInterval after its
// creation, so that sessions created together do not renew together; and
// every RenewInterval after that.
func TestFirstRenewalsSpread(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ttl = 15 * time.Second
		interval := election.Options{TTL: ttl}.WithDefaults().RenewInterval
		var mu sync.Mutex
		renewals := map[string][]time.Duration{} // by session, from the start
		start := time.Now()
		obs := &election.Observer{Renewed: func(r election.Renewal) {
			mu.Lock()
			defer mu.Unlock()
			renewals[r.Session] = append(renewals[r.Session], time.Since(start))
		}}
		lead := election.LeaderOnly(func(ctx context.Context, _ uint64) error { <-ctx.Done(); return nil })
		store := memory.NewStore()
		for i := range 100 {
			startElector(t, store, election.Options{Resource: fmt.Sprint("r", i), ID: "a", TTL: ttl, Observers: []*election.Observer{obs}}, lead)
		}
		for i := range 20 {
			s := newShared(t, store, fmt.Sprint("p", i), election.SessionOptions{TTL: ttl, Observers: []*election.Observer{obs}})
			startOn(t, s, "a", []string{fmt.Sprint("s", i)}, lead)
		}
		time.Sleep(2*interval + time.Millisecond)
		synctest.Wait()

		mu.Lock()
		defer mu.Unlock()
		if len(renewals) != 120 {
			t.Fatalf("%d sessions renewed, want 120", len(renewals))
		}
		firsts := map[time.Duration]bool{}
		for id, at := range renewals {
			if len(at) != 2 {
				t.Errorf("session %s renewed at %v, want twice", id, at)
				continue
			}
			if at[0] < interval/2 || at[0] > interval {
				t.Errorf("session %s renewed first at +%v, want within the second half of %v", id, at[0], interval)
			}
			if at[1]-at[0] != interval {
				t.Errorf("session %s renewed again %v after the first, want %v", id, at[1]-at[0], interval)
			}
			firsts[at[0]] = true
		}
		// Drawn at random over 2.5 s to the nanosecond: instants shared by
		// two sessions would show a spread that is not one.
		if len(firsts) < 110 {
			t.Errorf("the first renewals of 120 sessions fell on %d instants, want them spread", len(firsts))
		}
	})
}
