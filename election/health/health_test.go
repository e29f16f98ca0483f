//go:build go1.25

package health_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/election/health"
	"github.com/consul-leader/consul-leader/memory"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.DiscardHandler)

// start starts an elector for "r" with id on store, watched by c and
// more, with handler h, closed at the end of the test.
func start(t *testing.T, store *memory.Store, id string, ttl time.Duration, c *health.Check, h election.Handler, more ...*election.Observer) *election.Elector {
	t.Helper()
	el, err := memory.New(store, election.Options{Resource: "r", ID: id, TTL: ttl, Logger: quiet, Observers: append([]*election.Observer{c.Observer()}, more...)})
	if err != nil {
		t.Fatal(err)
	}
	if err := el.Start(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = el.Close(context.Background()) })
	return el
}

func newCheck(t *testing.T, o health.Options) *health.Check {
	t.Helper()
	c, err := health.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// renewals returns an observer that sends the time of each successful
// renewal on the channel it returns. A session's first renewal comes at a
// random point in the second half of RenewInterval; the tests time the
// check from it.
func renewals() (*election.Observer, chan time.Time) {
	ch := make(chan time.Time, 100)
	return &election.Observer{Renewed: func(r election.Renewal) {
		if r.Err == nil {
			select {
			case ch <- time.Now():
			default:
			}
		}
	}}, ch
}

// at sleeps until base+d and returns the check's verdict then.
func at(base time.Time, d time.Duration, c *health.Check) error {
	time.Sleep(time.Until(base.Add(d)))
	synctest.Wait()
	return c.Err()
}

func holdTerm(ctx context.Context, _ uint64) error { <-ctx.Done(); return nil }

// TestRenewalAgeAndUnreachable: a leader cut off from its store fails the
// check once its last successful renewal is older than MaxRenewalAge, and,
// once it stepped down, once its requests have failed for longer than
// MaxUnreachable; it passes again when the store is back.
func TestRenewalAgeAndUnreachable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ttl = 9 * time.Second // renewals every 3 s, request timeout 1.8 s, step-down at 8.1 s
		c := newCheck(t, health.Options{TTL: ttl})
		o := c.Options()
		if o.MaxRenewalAge != ttl/2 || o.MaxOverrun != election.StepDownMargin(ttl) || o.MaxUnreachable != ttl {
			t.Fatalf("defaults %+v", o)
		}
		store := memory.NewStore()
		obs, renewed := renewals()
		el := start(t, store, "a", ttl, c, election.LeaderOnly(holdTerm), obs)
		// Times below are from the first renewal (base); the next ones
		// come every 3 s.
		base := <-renewed
		if err := at(base, 0, c); err != nil || !el.IsLeader() {
			t.Fatalf("a leader renewing: %v", err)
		}
		store.Cut("a")
		defer store.Heal("a")
		// The last successful renewal was sent at 0 s: too old after 4.5 s.
		if err := at(base, 4500*time.Millisecond, c); err != nil {
			t.Errorf("at 4.5 s: %v, want healthy", err)
		}
		err := at(base, 4500*time.Millisecond+time.Millisecond, c)
		if !errors.Is(err, health.ErrUnhealthy) || !strings.Contains(err.Error(), "last renewed") {
			t.Errorf("at 4.501 s: %v, want unhealthy for an old renewal", err)
		}
		// Stepped down at 8.1 s; the first failed request was the
		// renewal sent at 3 s: unreachable for too long after 12 s.
		if err := at(base, 12*time.Second, c); err != nil || el.IsLeader() {
			t.Errorf("at 12 s, stepped down: %v, want healthy", err)
		}
		err = at(base, 12*time.Second+time.Millisecond, c)
		if !errors.Is(err, health.ErrUnhealthy) || !strings.Contains(err.Error(), "not reached its store") {
			t.Errorf("at 12.001 s: %v, want unhealthy for an unreachable store", err)
		}
		store.Heal("a")
		if err := at(base, 27*time.Second, c); err != nil || !el.IsLeader() {
			t.Errorf("with the store back: %v (leading %v), want a healthy leader", err, el.IsLeader())
		}
	})
}

// TestOverrun: a handler that keeps running after its term ended fails the
// check from the first report past MaxOverrun until it returns.
func TestOverrun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ttl = 10 * time.Second
		c := newCheck(t, health.Options{TTL: ttl})
		store := memory.NewStore()
		unblock := make(chan struct{})
		el := start(t, store, "a", ttl, c, election.LeaderOnly(func(ctx context.Context, _ uint64) error {
			<-unblock // ignores ctx
			return nil
		}))
		synctest.Wait()
		base := time.Now()
		time.Sleep(time.Second)
		if err := el.Release(context.Background()); err != nil {
			t.Fatal(err)
		}
		// Reported at the check 10 s after the call began.
		if err := at(base, 10*time.Second-time.Millisecond, c); err != nil {
			t.Errorf("before the first report: %v, want healthy", err)
		}
		err := at(base, 10*time.Second, c)
		if !errors.Is(err, health.ErrUnhealthy) || !strings.Contains(err.Error(), "still runs 9s after the term ended") {
			t.Errorf("at the report: %v, want unhealthy for a handler 9 s past its term", err)
		}
		close(unblock)
		synctest.Wait()
		if err := c.Err(); err != nil {
			t.Errorf("once the handler returned: %v, want healthy", err)
		}
	})
}

// TestOverrunWithinTolerance: an overrun reported before MaxOverrun has
// passed does not fail the check until it has.
func TestOverrunWithinTolerance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ttl = 10 * time.Second
		c := newCheck(t, health.Options{TTL: ttl, MaxOverrun: 15 * time.Second})
		store := memory.NewStore()
		unblock := make(chan struct{})
		defer close(unblock)
		el := start(t, store, "a", ttl, c, election.LeaderOnly(func(ctx context.Context, _ uint64) error {
			<-unblock
			return nil
		}))
		synctest.Wait()
		base := time.Now()
		time.Sleep(time.Second)
		_ = el.Release(context.Background())
		if err := at(base, 16*time.Second, c); err != nil {
			t.Errorf("15 s past the end: %v, want healthy", err)
		}
		if err := at(base, 16*time.Second+time.Millisecond, c); !errors.Is(err, health.ErrUnhealthy) {
			t.Errorf("15.001 s past the end: %v, want unhealthy", err)
		}
	})
}

// TestSharedSessionRenewals: on a shared session, the renewals are the
// session's events: a check attached to both sees a leader whose session
// cannot renew.
func TestSharedSessionRenewals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		const ttl = 9 * time.Second
		c := newCheck(t, health.Options{TTL: ttl})
		store := memory.NewStore()
		conn := store.Connect("p1")
		obs, renewed := renewals()
		sess, err := election.NewSharedSession(conn, election.SessionOptions{TTL: ttl, Logger: quiet, Observers: []*election.Observer{c.Observer(), obs}})
		if err != nil {
			t.Fatal(err)
		}
		el, err := election.New(conn, election.Options{Resource: "r", ID: "a", Session: sess, Logger: quiet, Observers: []*election.Observer{c.Observer()}})
		if err != nil {
			t.Fatal(err)
		}
		if err := el.Start(ctx, election.LeaderOnly(holdTerm)); err != nil {
			t.Fatal(err)
		}
		// Times below are from the session's first renewal (base).
		base := <-renewed
		if err := at(base, 0, c); err != nil {
			t.Fatal(err)
		}
		store.Cut("p1")
		if err := at(base, 4500*time.Millisecond, c); err != nil {
			t.Errorf("at 4.5 s: %v, want healthy", err)
		}
		if err := at(base, 4501*time.Millisecond, c); !errors.Is(err, health.ErrUnhealthy) {
			t.Errorf("at 4.501 s: %v, want unhealthy", err)
		}
		store.Heal("p1")
		if err := el.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := sess.Close(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// TestHandlers: the liveness handler answers 200 "ok" or 500 and the
// reason; the readiness handler 200 on the leader, 503 elsewhere.
func TestHandlers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ttl = 10 * time.Second
		c := newCheck(t, health.Options{TTL: ttl})
		store := memory.NewStore()
		unblock := make(chan struct{})
		a := start(t, store, "a", ttl, c, election.LeaderOnly(func(ctx context.Context, _ uint64) error {
			<-unblock
			return nil
		}))
		synctest.Wait()
		b := start(t, store, "b", ttl, c, election.LeaderOnly(holdTerm))
		synctest.Wait()
		get := func(h http.Handler) (int, string) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
			return w.Code, w.Body.String()
		}
		if code, body := get(c); code != http.StatusOK || body != "ok\n" {
			t.Errorf("liveness: %d %q, want 200 ok", code, body)
		}
		if code, body := get(health.LeaderHandler(a)); code != http.StatusOK || body != "leader\n" {
			t.Errorf("readiness of the leader: %d %q, want 200 leader", code, body)
		}
		if code, body := get(health.LeaderHandler(b)); code != http.StatusServiceUnavailable || body != "not leader\n" {
			t.Errorf("readiness of a follower: %d %q, want 503 not leader", code, body)
		}
		_ = a.Release(context.Background())
		time.Sleep(ttl)
		synctest.Wait()
		if code, body := get(c); code != http.StatusInternalServerError || !strings.Contains(body, `elector "a" of "r" (memory)`) {
			t.Errorf("liveness with an overrunning handler: %d %q, want 500 naming it", code, body)
		}
		if code, _ := get(health.LeaderHandler(a)); code != http.StatusServiceUnavailable {
			t.Errorf("readiness of a released leader: %d, want 503", code)
		}
		close(unblock)
		synctest.Wait()
	})
}

// TestOptionsValidate: bad tolerances are refused, naming the field.
func TestOptionsValidate(t *testing.T) {
	for _, c := range []struct {
		o     health.Options
		field string
	}{
		{health.Options{TTL: -1}, "TTL"},
		{health.Options{TTL: time.Millisecond}, "TTL"},
		{health.Options{MaxRenewalAge: -time.Second}, "MaxRenewalAge"},
		{health.Options{TTL: 10 * time.Second, MaxRenewalAge: 9 * time.Second}, "MaxRenewalAge"},
		{health.Options{MaxOverrun: -1}, "MaxOverrun"},
		{health.Options{MaxUnreachable: -1}, "MaxUnreachable"},
	} {
		_, err := health.New(c.o)
		var oe *election.OptionError
		if !errors.As(err, &oe) || oe.Field != c.field || !errors.Is(err, election.ErrInvalidOptions) {
			t.Errorf("New(%+v): %v, want an OptionError naming %s", c.o, err, c.field)
		}
	}
	if _, err := health.New(health.Options{TTL: 10 * time.Second, MaxRenewalAge: 8999 * time.Millisecond}); err != nil {
		t.Errorf("a renewal age just below the step-down: %v", err)
	}
}

// TestRenewalAgeCountsFromTermStart: a leader whose first renewal fails is
// judged from the start of its term, not from a renewal that never came.
func TestRenewalAgeCountsFromTermStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ttl = 9 * time.Second
		c := newCheck(t, health.Options{TTL: ttl, MaxRenewalAge: 6 * time.Second})
		store := memory.NewStore()
		start(t, store, "a", ttl, c, election.LeaderOnly(holdTerm))
		synctest.Wait()
		base := time.Now()
		time.Sleep(time.Second)
		store.Cut("a")
		defer store.Heal("a")
		// The renewal sent at 3 s fails at 4.8 s.
		if err := at(base, 6*time.Second, c); err != nil {
			t.Errorf("at 6 s: %v, want healthy", err)
		}
		if err := at(base, 6*time.Second+time.Millisecond, c); !errors.Is(err, health.ErrUnhealthy) {
			t.Errorf("at 6.001 s: %v, want unhealthy", err)
		}
	})
}

// TestRecoveryWithoutRenewals: an elector on a shared session, watched
// without its session, fails the check while its store requests fail, and
// passes again at the first that succeeds.
func TestRecoveryWithoutRenewals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		const ttl = 9 * time.Second
		c := newCheck(t, health.Options{TTL: ttl})
		store := memory.NewStore()
		start(t, store, "a", ttl, bystander(t), election.LeaderOnly(holdTerm))
		synctest.Wait()
		conn := store.Connect("p1")
		sess, err := election.NewSharedSession(conn, election.SessionOptions{TTL: ttl, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		el, err := election.New(conn, election.Options{Resource: "r", ID: "b", Session: sess, Logger: quiet, Observers: []*election.Observer{c.Observer()}})
		if err != nil {
			t.Fatal(err)
		}
		if err := el.Start(ctx, election.LeaderOnly(holdTerm)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		store.Cut("p1")
		time.Sleep(3 * ttl)
		synctest.Wait()
		if err := c.Err(); !errors.Is(err, health.ErrUnhealthy) {
			t.Errorf("cut off: %v, want unhealthy", err)
		}
		store.Heal("p1")
		time.Sleep(ttl)
		synctest.Wait()
		if err := c.Err(); err != nil {
			t.Errorf("with the store back: %v, want healthy", err)
		}
		// Closed while cut off, the elector no longer counts.
		store.Cut("p1")
		time.Sleep(3 * ttl)
		synctest.Wait()
		if err := c.Err(); !errors.Is(err, health.ErrUnhealthy) {
			t.Errorf("cut off again: %v, want unhealthy", err)
		}
		cctx, cancel := context.WithTimeout(ctx, ttl)
		defer cancel()
		if err := el.Close(cctx); err != nil {
			t.Fatal(err)
		}
		if err := c.Err(); err != nil {
			t.Errorf("closed: %v, want healthy", err)
		}
		store.Heal("p1")
		if err := el.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := sess.Close(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// bystander is a check nobody reads, for an elector that only competes.
func bystander(t *testing.T) *health.Check { return newCheck(t, health.Options{}) }
