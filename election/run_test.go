//go:build go1.25

package election_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

func newElector(t *testing.T, store *memory.Store, id string) *election.Elector {
	t.Helper()
	el, err := memory.New(store, election.Options{Resource: "r", ID: id})
	if err != nil {
		t.Fatal(err)
	}
	return el
}

// TestRunReturnsNilOnCancel: Run campaigns until its context ends, then
// ends the term, waits for the handler, releases and returns nil, with no
// goroutine of the elector left.
func TestRunReturnsNilOnCancel(t *testing.T) {
	store := memory.NewStore()
	el := newElector(t, store, "a")
	ctx, cancel := context.WithCancel(context.Background())
	led := make(chan struct{})
	handlerDone := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- el.Run(ctx, election.LeaderOnly(func(ctx context.Context, term uint64) error {
			close(led)
			<-ctx.Done()
			time.Sleep(10 * time.Millisecond) // some cleanup after the term
			close(handlerDone)
			return nil
		}))
	}()
	<-led
	if !el.IsLeader() {
		t.Error("IsLeader false during the leader call")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	select {
	case <-handlerDone:
	default:
		t.Error("Run returned before the handler did")
	}
	if id, _ := store.Leader("r"); id != "" {
		t.Errorf("Run returned with the leadership held by %q", id)
	}
	goleak.VerifyNone(t)
	if el.IsLeader() {
		t.Error("IsLeader true after Run returned")
	}
	if err := el.Close(context.Background()); err != nil {
		t.Errorf("Close after Run = %v, want nil", err)
	}
	if err := el.Run(context.Background(), election.LeaderOnly(func(context.Context, uint64) error { return nil })); !errors.Is(err, election.ErrClosed) {
		t.Errorf("Run after Run = %v, want ErrClosed", err)
	}
}

// group runs functions as golang.org/x/sync/errgroup.WithContext does: the
// first error cancels the group's context, and Wait returns it.
type group struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	err    error
}

func withContext(ctx context.Context) (*group, context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	return &group{cancel: cancel}, ctx
}

func (g *group) Go(f func() error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := f(); err != nil {
			g.once.Do(func() { g.err = err; g.cancel() })
		}
	}()
}

func (g *group) Wait() error {
	g.wg.Wait()
	g.cancel()
	return g.err
}

// TestRunInErrGroup: in an errgroup, a shutdown of the parent context ends
// Run with nil, so that Wait reports no error; another member's error ends
// Run too, and Wait reports that error.
func TestRunInErrGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		work := func(ctx context.Context, term uint64) error { <-ctx.Done(); return nil }

		parent, shutdown := context.WithCancel(context.Background())
		g, ctx := withContext(parent)
		el := newElector(t, store, "a")
		g.Go(func() error { return el.Run(ctx, election.LeaderOnly(work)) })
		g.Go(func() error { <-ctx.Done(); return nil }) // another service
		time.Sleep(time.Second)
		if !el.IsLeader() {
			t.Fatal("not leading")
		}
		shutdown()
		if err := g.Wait(); err != nil {
			t.Errorf("Wait after a shutdown = %v, want nil", err)
		}

		boom := errors.New("boom")
		g, ctx = withContext(context.Background())
		el = newElector(t, store, "b")
		g.Go(func() error { return el.Run(ctx, election.LeaderOnly(work)) })
		g.Go(func() error { time.Sleep(time.Second); return boom })
		if err := g.Wait(); !errors.Is(err, boom) {
			t.Errorf("Wait = %v, want the other member's error", err)
		}
		if id, _ := store.Leader("r"); id != "" {
			t.Errorf("%q still leads after the group ended", id)
		}
	})
}

// TestRunBadStart: Run fails at once where Start would.
func TestRunBadStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		ctx := context.Background()
		h := election.LeaderOnly(func(context.Context, uint64) error { return nil })

		el := newElector(t, store, "a")
		if err := el.Run(ctx, nil); !errors.Is(err, election.ErrInvalidOptions) {
			t.Errorf("Run(nil) = %v, want ErrInvalidOptions", err)
		}
		if err := el.Run(ctx, election.LeaderOnly(nil)); !errors.Is(err, election.ErrInvalidOptions) {
			t.Errorf("Run(LeaderOnly(nil)) = %v, want ErrInvalidOptions", err)
		}
		if err := el.Start(ctx, h); err != nil {
			t.Fatal(err)
		}
		if err := el.Run(ctx, h); !errors.Is(err, election.ErrAlreadyStarted) {
			t.Errorf("Run after Start = %v, want ErrAlreadyStarted", err)
		}
		if err := el.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := el.Run(ctx, h); !errors.Is(err, election.ErrClosed) {
			t.Errorf("Run after Close = %v, want ErrClosed", err)
		}

		el = newElector(t, store, "b")
		if err := el.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := el.Run(ctx, h); !errors.Is(err, election.ErrClosed) {
			t.Errorf("Run on a closed, never started elector = %v, want ErrClosed", err)
		}

		// A second Run while the first runs.
		el = newElector(t, store, "c")
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- el.Run(rctx, h) }()
		synctest.Wait()
		if err := el.Run(ctx, h); !errors.Is(err, election.ErrAlreadyStarted) {
			t.Errorf("second Run = %v, want ErrAlreadyStarted", err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("first Run = %v, want nil", err)
		}

		var zero election.Elector
		if err := zero.Run(ctx, h); !errors.Is(err, election.ErrInvalidOptions) {
			t.Errorf("Run on the zero Elector = %v, want ErrInvalidOptions", err)
		}
		if zero.IsLeader() || zero.State().IsLeader {
			t.Error("the zero Elector leads")
		}
	})
}

// TestRunEndsOnClose: a Close from another goroutine ends Run, with
// ErrClosed, once the elector is gone.
func TestRunEndsOnClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		el := newElector(t, store, "a")
		done := make(chan error, 1)
		go func() {
			done <- el.Run(context.Background(), election.LeaderOnly(func(ctx context.Context, _ uint64) error {
				<-ctx.Done()
				return nil
			}))
		}()
		time.Sleep(time.Second)
		if err := el.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, election.ErrClosed) {
			t.Errorf("Run after Close = %v, want ErrClosed", err)
		}
	})
}

// TestRunWaitsForHandler: Run returns only once a handler that ignores its
// context has returned.
func TestRunWaitsForHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		el := newElector(t, store, "a")
		ctx, cancel := context.WithCancel(context.Background())
		led := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- el.Run(ctx, election.LeaderOnly(func(context.Context, uint64) error {
				close(led)
				time.Sleep(time.Hour) // ignores its context
				return nil
			}))
		}()
		<-led
		start := time.Now()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run = %v", err)
		}
		if got := time.Since(start); got != time.Hour {
			t.Errorf("Run returned %v after cancel, want once the handler returned, 1h", got)
		}
	})
}
