//go:build go1.25

package election_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// failingRelease is a memory connection whose claims fail to give their
// resource up once, leaving it held, as a release whose request fails
// does.
type failingRelease struct {
	*memory.Conn
	fail atomic.Bool
}

func (f *failingRelease) NewLease(ctx context.Context, p election.LeaseParams) (election.Lease, error) {
	l, err := f.Conn.NewLease(ctx, p)
	if err != nil {
		return nil, err
	}
	return &failingLease{Lease: l, f: f}, nil
}

type failingLease struct {
	election.Lease
	f *failingRelease
}

func (l *failingLease) Claim(p election.SessionParams) (election.Claim, error) {
	c, err := l.Lease.Claim(p)
	if err != nil {
		return nil, err
	}
	return &failingClaim{Claim: c, f: l.f}, nil
}

type failingClaim struct {
	election.Claim
	f *failingRelease
}

func (c *failingClaim) Close(ctx context.Context) error {
	if c.f.fail.CompareAndSwap(true, false) {
		return errors.New("release refused by the test")
	}
	return c.Claim.Close(ctx)
}

// TestSharedSessionEndsWhenReleaseFails: a claim that cannot give its
// resource up would leave it held, through a lease the other electors keep
// renewing, by an elector that no longer leads it. The engine ends the
// shared session instead, which frees the resource for another candidate.
func TestSharedSessionEndsWhenReleaseFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		store := memory.NewStore()
		b := &failingRelease{Conn: store.Connect("p1")}
		sess, err := election.NewSharedSession(b, election.SessionOptions{TTL: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		block := func(ctx context.Context, l election.Leadership) error {
			if l.IsLeader {
				<-ctx.Done()
			}
			return nil
		}
		a, err := election.New(b, election.Options{Resource: "r", ID: "a", Session: sess, RetryInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(ctx, block); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		startElector(t, store, election.Options{Resource: "r", ID: "b", TTL: 10 * time.Second}, block)
		synctest.Wait()
		b.fail.Store(true)
		if err := a.Release(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if id, _ := store.Leader("r"); id != "b" {
			t.Errorf("a minute after a Release whose release failed, the store shows %q leading; want b", id)
		}
		if err := a.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := sess.Close(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
