//go:build go1.25

package election_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// stuckAcquire returns a memory store connection whose claims'
// acquisitions wait for their context to end, as a request to a store that
// does not answer does, and report its error on ended; or, with ended nil,
// fail at once.
func stuckAcquire(ended chan error) *acquireHook {
	return &acquireHook{Conn: memory.NewStore().Connect("p1"), hook: func(ctx context.Context, _ func(context.Context) (election.Acquisition, error)) (election.Acquisition, error) {
		if ended == nil {
			return election.Acquisition{}, errors.New("refused by the test")
		}
		<-ctx.Done()
		ended <- ctx.Err()
		return election.Acquisition{}, ctx.Err()
	}}
}

// startShared starts an elector of resource on a new shared session of b,
// whose handler does nothing.
func startShared(t *testing.T, b election.Backend, resource string) (*election.SharedSession, *election.Elector) {
	t.Helper()
	sess, err := election.NewSharedSession(b, election.SessionOptions{TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	el, err := election.New(b, election.Options{Resource: resource, ID: "a", Session: sess})
	if err != nil {
		t.Fatal(err)
	}
	if err := el.Start(context.Background(), func(context.Context, election.Leadership) error { return nil }); err != nil {
		t.Fatal(err)
	}
	return sess, el
}

// closeAtOnce closes el and fails t unless Close returned without the
// bubble's clock moving: what el waited on ended with it.
func closeAtOnce(t *testing.T, el *election.Elector, what string) {
	t.Helper()
	start := time.Now()
	if err := el.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited > 0 {
		t.Errorf("Close returned after %v; want at once, %s", waited, what)
	}
}

// TestCloseEndsSharedSessionAcquisition: the Close of an elector on a
// shared session ends its acquisition in flight at once, rather than
// letting it run to its RequestTimeout.
func TestCloseEndsSharedSessionAcquisition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		ended := make(chan error, 1)
		sess, el := startShared(t, stuckAcquire(ended), "r")
		synctest.Wait() // the acquisition waits
		closeAtOnce(t, el, "its acquisition ended")
		select {
		case err := <-ended:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("the acquisition ended with %v; want context.Canceled", err)
			}
		default:
			t.Error("the acquisition in flight did not end with Close")
		}
		if err := sess.Close(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// TestCloseEndsSharedSessionRetryWait: the Close of an elector on a shared
// session whose acquisitions fail ends its wait before the next attempt at
// once.
func TestCloseEndsSharedSessionRetryWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		sess, el := startShared(t, stuckAcquire(nil), "r")
		synctest.Wait() // the campaign waits before its next attempt
		closeAtOnce(t, el, "its wait ended")
		if err := sess.Close(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// TestCloseEndsSharedSessionTurnWait: the Close of an elector on a shared
// session whose turn to acquire has not come (see AcquireLimiter) ends its
// wait at once.
func TestCloseEndsSharedSessionTurnWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b := stuckAcquire(make(chan error, 2))
		b.max = 1
		sess, first := startShared(t, b, "r1")
		synctest.Wait() // r1 acquires, and holds the one turn
		second, err := election.New(b, election.Options{Resource: "r2", ID: "a", Session: sess})
		if err != nil {
			t.Fatal(err)
		}
		if err := second.Start(ctx, func(context.Context, election.Leadership) error { return nil }); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // r2 waits for its turn
		closeAtOnce(t, second, "its wait for a turn ended")
		if err := first.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := sess.Close(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
