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

// stuckAcquire is a memory connection whose claims' acquisitions wait for
// their context to end, as a request to a store that does not answer does,
// and report its error on ended; or, with fail set, fail at once.
type stuckAcquire struct {
	*memory.Conn
	ended chan error
	fail  bool
}

func (s *stuckAcquire) NewLease(ctx context.Context, p election.LeaseParams) (election.Lease, error) {
	l, err := s.Conn.NewLease(ctx, p)
	if err != nil {
		return nil, err
	}
	return stuckLease{Lease: l, s: s}, nil
}

type stuckLease struct {
	election.Lease
	s *stuckAcquire
}

func (l stuckLease) Claim(p election.SessionParams) (election.Claim, error) {
	c, err := l.Lease.Claim(p)
	if err != nil {
		return nil, err
	}
	return stuckClaim{Claim: c, s: l.s}, nil
}

type stuckClaim struct {
	election.Claim
	s *stuckAcquire
}

func (c stuckClaim) Acquire(ctx context.Context) (election.Acquisition, error) {
	if c.s.fail {
		return election.Acquisition{}, errors.New("refused by the test")
	}
	<-ctx.Done()
	c.s.ended <- ctx.Err()
	return election.Acquisition{}, ctx.Err()
}

// TestCloseEndsSharedSessionAcquisition: the Close of an elector on a
// shared session ends its acquisition in flight at once, rather than
// letting it run to its RequestTimeout.
func TestCloseEndsSharedSessionAcquisition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b := &stuckAcquire{Conn: memory.NewStore().Connect("p1"), ended: make(chan error, 1)}
		sess, err := election.NewSharedSession(b, election.SessionOptions{TTL: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		el, err := election.New(b, election.Options{Resource: "r", ID: "a", Session: sess})
		if err != nil {
			t.Fatal(err)
		}
		if err := el.Start(ctx, func(context.Context, election.Leadership) error { return nil }); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the acquisition waits
		start := time.Now()
		if err := el.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited > 0 {
			t.Errorf("Close returned after %v; want at once, its acquisition ended", waited)
		}
		select {
		case err := <-b.ended:
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
		b := &stuckAcquire{Conn: memory.NewStore().Connect("p1"), fail: true}
		sess, err := election.NewSharedSession(b, election.SessionOptions{TTL: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		el, err := election.New(b, election.Options{Resource: "r", ID: "a", Session: sess})
		if err != nil {
			t.Fatal(err)
		}
		if err := el.Start(ctx, func(context.Context, election.Leadership) error { return nil }); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the campaign waits before its next attempt
		start := time.Now()
		if err := el.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited > 0 {
			t.Errorf("Close returned after %v; want at once, its wait ended", waited)
		}
		if err := sess.Close(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
