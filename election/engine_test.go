//go:build go1.25

package election_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// The engine's timing, tested in fake time: every duration below is exact.

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startElector(t *testing.T, store *memory.Store, opts election.Options, h election.Handler) *election.Elector {
	t.Helper()
	el, err := memory.New(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := el.Start(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := el.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return el
}

// blockingLeader is a handler whose leader calls last until their context
// ends; it sends every call's Leadership, and the end of each term.
func blockingLeader(ch chan<- election.Leadership, ended chan<- time.Time) election.Handler {
	return func(ctx context.Context, l election.Leadership) error {
		ch <- l
		if l.IsLeader {
			<-ctx.Done()
			if ended != nil {
				ended <- time.Now()
			}
		}
		return nil
	}
}

func waitLeader(t *testing.T, ch <-chan election.Leadership) election.Leadership {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case l := <-ch:
			if l.IsLeader {
				return l
			}
		case <-timeout:
			t.Fatal("no leadership within a minute")
		}
	}
}

// TestStepDownDeadline: a leader cut off from its store stops exactly at
// (start of its last successful renewal) + TTL - StepDownMargin(TTL), and
// the store frees the leadership only TTL after that renewal.
func TestStepDownDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		ttl := 15 * time.Second
		ch, ended := make(chan election.Leadership, 10), make(chan time.Time, 1)
		startElector(t, store, election.FixedRenewals(election.Options{Resource: "r", ID: "a", TTL: ttl}), blockingLeader(ch, ended))
		waitLeader(t, ch)
		start := time.Now()
		// Renewals happen every TTL/3 = 5 s; cut just after the one at 10 s.
		time.Sleep(10*time.Second + time.Millisecond)
		store.Cut("a")
		lastRenewal := start.Add(10 * time.Second)
		got := <-ended
		want := lastRenewal.Add(ttl - election.StepDownMargin(ttl))
		if !got.Equal(want) {
			t.Errorf("stepped down at +%v, want +%v (last renewal + 13.5 s)", got.Sub(start), want.Sub(start))
		}
		// The store still holds the session until last renewal + TTL.
		if id, _ := store.Leader("r"); id != "a" {
			t.Errorf("store freed the leadership at step-down; leader %q", id)
		}
		time.Sleep(time.Until(lastRenewal.Add(ttl)))
		synctest.Wait()
		if id, _ := store.Leader("r"); id != "" {
			t.Errorf("store still shows %q TTL after the last renewal", id)
		}
		store.Heal("a")
	})
}

// TestHungRenewalsHaveDeadlines: with every request hanging, each renewal
// attempt is abandoned after RequestTimeout and retried, and the leader
// still steps down on time.
func TestHungRenewalsHaveDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		logs := &syncBuffer{}
		ch, ended := make(chan election.Leadership, 10), make(chan time.Time, 1)
		opts := election.Options{Resource: "r", ID: "a", TTL: 10 * time.Second, Logger: slog.New(slog.NewTextHandler(logs, nil))}
		startElector(t, store, opts, blockingLeader(ch, ended))
		waitLeader(t, ch)
		start := time.Now()
		store.Cut("a")
		got := (<-ended).Sub(start)
		if got != 9*time.Second {
			t.Errorf("stepped down after %v, want 9 s", got)
		}
		if n := strings.Count(logs.String(), "session renewal failed"); n < 2 {
			t.Errorf("%d failed renewals logged, want the hung ones abandoned and retried:\n%s", n, logs)
		}
		store.Heal("a")
	})
}

// TestReleaseFromHandler: a leader may call Release from its own handler.
func TestReleaseFromHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		var el *election.Elector
		released := make(chan error, 1)
		ready := make(chan struct{})
		calls := 0 // only the handler's goroutine touches it
		h := func(ctx context.Context, l election.Leadership) error {
			if l.IsLeader {
				calls++
				if calls == 1 {
					<-ready
					released <- el.Release(context.Background())
				}
				<-ctx.Done()
			}
			return nil
		}
		el = startElector(t, store, election.Options{Resource: "r", ID: "a"}, h)
		close(ready)
		if err := <-released; err != nil {
			t.Fatalf("Release from the handler: %v", err)
		}
		synctest.Wait()
		if id, _ := store.Leader("r"); id != "" {
			t.Errorf("leadership not released: %q leads", id)
		}
		// Alone, it leads again after RetryInterval.
		time.Sleep(election.DefaultRetryInterval)
		synctest.Wait()
		if id, _ := store.Leader("r"); id != "a" {
			t.Errorf("after RetryInterval the only candidate does not lead again: %q", id)
		}
	})
}

// TestReleaseWaitsForStore: with a notification-style handler, Release
// returns once the store has released.
func TestReleaseWaitsForStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		ch := make(chan election.Leadership, 10)
		el := startElector(t, store, election.Options{Resource: "r", ID: "a"}, func(_ context.Context, l election.Leadership) error {
			ch <- l
			return nil
		})
		waitLeader(t, ch)
		synctest.Wait()
		if err := el.Release(context.Background()); err != nil {
			t.Fatal(err)
		}
		if id, _ := store.Leader("r"); id != "" {
			t.Errorf("Release returned before the store released; %q leads", id)
		}
		if err := el.Release(context.Background()); err != nil {
			t.Errorf("Release when not leading = %v, want nil", err)
		}
	})
}

// TestSlowHandlerWarnsAndBlocksCampaign: a handler that ignores its context
// is reported, and the elector does not lead again until it returns.
func TestSlowHandlerWarnsAndBlocksCampaign(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		logs := &syncBuffer{}
		unblock := make(chan struct{})
		leads := make(chan uint64, 10)
		calls := 0 // only the handler's goroutine touches it
		opts := election.Options{Resource: "r", ID: "a", Logger: slog.New(slog.NewTextHandler(logs, nil))}
		el := startElector(t, store, opts, func(ctx context.Context, l election.Leadership) error {
			if l.IsLeader {
				calls++
				leads <- l.Term
				if calls == 1 {
					<-unblock // ignores ctx
				}
			}
			return nil
		})
		<-leads
		go func() { _ = el.Release(context.Background()) }()
		time.Sleep(time.Minute)
		synctest.Wait()
		if !strings.Contains(logs.String(), "handler still running after its term ended") {
			t.Errorf("no warning about the handler ignoring its context:\n%s", logs)
		}
		if len(leads) != 0 {
			t.Fatal("the elector led again while its previous leader call was still running")
		}
		close(unblock)
		select {
		case <-leads:
		case <-time.After(time.Minute):
			t.Fatal("the elector did not lead again after its handler returned")
		}
	})
}

// TestPanicGivesTermUp: a panicking handler is logged with its stack and
// the term is given up; the elector leads again later.
func TestPanicGivesTermUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		logs := &syncBuffer{}
		terms := make(chan uint64, 10)
		calls := 0 // only the handler's goroutine touches it
		opts := election.Options{Resource: "r", ID: "a", Logger: slog.New(slog.NewTextHandler(logs, nil))}
		startElector(t, store, opts, func(ctx context.Context, l election.Leadership) error {
			if l.IsLeader {
				calls++
				terms <- l.Term
				if calls == 1 {
					panic("boom")
				}
				<-ctx.Done()
			}
			return nil
		})
		first := <-terms
		second := <-terms
		if second <= first {
			t.Errorf("term after panic %d, want > %d", second, first)
		}
		if !strings.Contains(logs.String(), "handler panicked") || !strings.Contains(logs.String(), "boom") {
			t.Errorf("panic not logged:\n%s", logs)
		}
	})
}

// deniedBackend refuses every session, as a store without rights would.
type deniedBackend struct{ *memory.Conn }

func (deniedBackend) NewSession(context.Context, election.SessionParams) (election.Session, error) {
	return nil, fmt.Errorf("store says 403: %w", election.ErrPermissionDenied)
}

// TestPermissionErrorReachesHandler: an elector that the store refuses tells
// its handler, once, rather than following silently forever.
func TestPermissionErrorReachesHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el, err := election.New(deniedBackend{memory.NewStore().Connect("a")}, election.Options{Resource: "r", ID: "a"})
		if err != nil {
			t.Fatal(err)
		}
		defer el.Close(context.Background())
		var mu sync.Mutex
		var seen []election.Leadership
		_ = el.Start(context.Background(), func(_ context.Context, l election.Leadership) error {
			mu.Lock()
			seen = append(seen, l)
			mu.Unlock()
			return nil
		})
		time.Sleep(10 * time.Second) // ten retries
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(seen) != 1 || !errors.Is(seen[0].Err, election.ErrPermissionDenied) || seen[0].IsLeader {
			t.Fatalf("handler saw %+v; want one notification carrying ErrPermissionDenied", seen)
		}
	})
}

// lockDelayBackend refuses acquisitions for a while after the resource was
// freed, like Consul's lock-delay, and says for how long.
type lockDelayBackend struct {
	*memory.Conn
	until *time.Time
	mu    *sync.Mutex
}

func (b lockDelayBackend) NewSession(ctx context.Context, p election.SessionParams) (election.Session, error) {
	s, err := b.Conn.NewSession(ctx, p)
	return lockDelaySession{Session: s, b: b}, err
}

type lockDelaySession struct {
	election.Session
	b lockDelayBackend
}

func (s lockDelaySession) Acquire(ctx context.Context) (election.Acquisition, error) {
	s.b.mu.Lock()
	wait := time.Until(*s.b.until)
	s.b.mu.Unlock()
	if wait > 0 {
		return election.Acquisition{Record: election.Record{Revision: 1}, RetryAfter: wait}, nil
	}
	return s.Session.Acquire(ctx)
}

// TestRetryAfterIsHonoured: the engine acquires right when the store's
// refusal ends, not a blind RetryInterval later.
func TestRetryAfterIsHonoured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		until := time.Now().Add(7*time.Second + 300*time.Millisecond)
		b := lockDelayBackend{Conn: memory.NewStore().Connect("a"), until: &until, mu: &sync.Mutex{}}
		el, err := election.New(b, election.Options{Resource: "r", ID: "a", RetryInterval: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer el.Close(context.Background())
		ch := make(chan election.Leadership, 10)
		start := time.Now()
		_ = el.Start(context.Background(), blockingLeader(ch, nil))
		waitLeader(t, ch)
		if got := time.Since(start); got != 7300*time.Millisecond {
			t.Errorf("led after %v, want exactly when the lock-delay ended (7.3 s)", got)
		}
	})
}

// TestFollowersBlockNotPoll: an idle follower reads the store once per
// WaitTime, not more.
func TestFollowersBlockNotPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		ch := make(chan election.Leadership, 10)
		startElector(t, store, election.Options{Resource: "r", ID: "a"}, blockingLeader(ch, nil))
		waitLeader(t, ch)
		counter := &countingBackend{Conn: store.Connect("b")}
		el, err := election.New(counter, election.Options{Resource: "r", ID: "b"})
		if err != nil {
			t.Fatal(err)
		}
		defer el.Close(context.Background())
		_ = el.Start(context.Background(), func(context.Context, election.Leadership) error { return nil })
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := counter.watches(); n > 60/5+2 {
			t.Errorf("%d reads in a minute of following; want about one per WaitTime (12)", n)
		}
	})
}

type countingBackend struct {
	*memory.Conn
	mu sync.Mutex
	n  int
}

func (c *countingBackend) Watch(ctx context.Context, r string, after uint64, wait time.Duration) (election.Record, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.Conn.Watch(ctx, r, after, wait)
}

func (c *countingBackend) watches() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
