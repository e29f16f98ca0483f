//go:build go1.25

package election_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// watchResult is what one WatchLeader call returned, and when.
type watchResult struct {
	l   election.Leadership
	rev uint64
	err error
	at  time.Time
}

func watchLeaderAsync(ctx context.Context, el *election.Elector, after uint64, wait time.Duration) <-chan watchResult {
	c := make(chan watchResult, 1)
	go func() {
		l, rev, err := el.WatchLeader(ctx, after, wait)
		c <- watchResult{l, rev, err, time.Now()}
	}()
	return c
}

// TestWatchLeader: WatchLeader with after == 0 reads at once; with the
// revision it returned it waits for a change (a release, a new leader, an
// expiry) and returns it at once, and otherwise returns the same
// leadership when its wait has passed. A store that does not answer fails
// it within wait + RequestTimeout; a bad wait and a closed elector are
// refused.
func TestWatchLeader(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		quiet := slog.New(slog.DiscardHandler)
		store := memory.NewStore()
		const ttl = 10 * time.Second
		obs, err := election.NewOwning(store.Connect("obs"), election.Options{Resource: "r", ID: "obs", TTL: ttl, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		var a *election.Elector
		t.Cleanup(func() { // also after a failure, so that no goroutine is left in the bubble
			store.Heal("a")
			store.Heal("obs")
			if a != nil {
				_ = a.Close(ctx)
			}
			_ = obs.Close(ctx)
		})
		l, rev, err := obs.WatchLeader(ctx, 0, 0)
		if err != nil || l.LeaderID != "" || rev == 0 {
			t.Fatalf("WatchLeader of a free resource = %+v, %d, %v; want no leader and a revision", l, rev, err)
		}

		// A leader is elected: the waiting call returns at once.
		start := time.Now()
		next := watchLeaderAsync(ctx, obs, rev, time.Minute)
		a, err = election.NewOwning(store.Connect("a"), election.Options{Resource: "r", ID: "a", TTL: ttl, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(ctx, func(context.Context, election.Leadership) error { return nil }); err != nil {
			t.Fatal(err)
		}
		r := <-next
		if r.err != nil || r.l.LeaderID != "a" || r.l.Term == 0 || r.rev == rev || r.l.IsLeader {
			t.Fatalf("after a's election: %+v; want a, a term, a new revision, not IsLeader", r)
		}
		if d := r.at.Sub(start); d >= time.Minute {
			t.Errorf("a's election seen after %v, the whole wait", d)
		}
		term, rev := r.l.Term, r.rev

		// Nothing changes: the call returns the same leadership at the
		// end of its wait (a's renewals change nothing visible).
		start = time.Now()
		r = <-watchLeaderAsync(ctx, obs, rev, 3*ttl)
		if r.err != nil || r.l.LeaderID != "a" || r.l.Term != term {
			t.Fatalf("after an idle wait: %+v; want a's term %d", r, term)
		}
		if d := r.at.Sub(start); d < 3*ttl {
			t.Errorf("idle wait returned after %v, want its whole wait %v", d, 3*ttl)
		}
		rev = r.rev

		// A releases: seen at once.
		next = watchLeaderAsync(ctx, obs, rev, time.Minute)
		synctest.Wait()
		start = time.Now()
		if err := a.Release(ctx); err != nil {
			t.Fatal(err)
		}
		r = <-next
		if r.err != nil || r.l.LeaderID != "" {
			t.Fatalf("after a's release: %+v; want no leader", r)
		}
		if d := r.at.Sub(start); d > 0 {
			t.Errorf("release seen %v after it", d)
		}
		rev = r.rev

		// a leads again after its RetryInterval; then its session expires.
		r = <-watchLeaderAsync(ctx, obs, rev, time.Minute)
		if r.err != nil || r.l.LeaderID != "a" || r.l.Term <= term {
			t.Fatalf("a's next term: %+v; want a with a term above %d", r, term)
		}
		rev = r.rev
		next = watchLeaderAsync(ctx, obs, rev, time.Minute)
		synctest.Wait()
		start = time.Now()
		store.Cut("a")
		if !store.Expire("r") {
			t.Fatal("no session to expire")
		}
		r = <-next
		if r.err != nil || r.l.LeaderID != "" {
			t.Fatalf("after the expiry: %+v; want no leader", r)
		}
		if d := r.at.Sub(start); d > 0 {
			t.Errorf("expiry seen %v after it", d)
		}
		rev = r.rev

		// A store that does not answer: the call fails once its wait and
		// the request timeout have passed.
		store.Cut("obs")
		start = time.Now()
		r = <-watchLeaderAsync(ctx, obs, rev, 5*time.Second)
		if r.err == nil {
			t.Fatalf("WatchLeader through a cut connection = %+v, want an error", r)
		}
		limit := 5*time.Second + (election.Options{TTL: ttl}).WithDefaults().RequestTimeout
		if d := r.at.Sub(start); d > limit {
			t.Errorf("WatchLeader through a cut connection returned after %v, past wait + RequestTimeout = %v", d, limit)
		}
		store.Heal("obs")

		for _, wait := range []time.Duration{-time.Second, election.MaxWaitTime + time.Second} {
			if _, _, err := obs.WatchLeader(ctx, rev, wait); !errors.Is(err, election.ErrInvalidOptions) {
				t.Errorf("WatchLeader with wait %v = %v, want ErrInvalidOptions", wait, err)
			}
		}
		store.Heal("a")
		if err := a.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := obs.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, err := obs.WatchLeader(ctx, 0, 0); !errors.Is(err, election.ErrClosed) {
			t.Errorf("WatchLeader after Close = %v, want ErrClosed", err)
		}
	})
}
