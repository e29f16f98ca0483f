//go:build go1.25

package election_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// followOnly is a memory connection whose sessions never acquire: its
// elector only follows.
type followOnly struct{ *memory.Conn }

func (f followOnly) NewSession(ctx context.Context, p election.SessionParams) (election.Session, error) {
	s, err := f.Conn.NewSession(ctx, p)
	if err != nil {
		return nil, err
	}
	return followSession{Session: s, c: f.Conn, resource: p.Resource}, nil
}

type followSession struct {
	election.Session
	c        *memory.Conn
	resource string
}

func (s followSession) Acquire(ctx context.Context) (election.Acquisition, error) {
	rec, err := s.c.Watch(ctx, s.resource, 0, 0)
	return election.Acquisition{Record: rec, RetryAfter: time.Second}, err
}

// TestSlowHandlerSeesLatestState: while a follower's handler is busy, the
// changes it has not been told of do not pile up: it is told the latest
// state once it returns, not every state in between.
func TestSlowHandlerSeesLatestState(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		var mu sync.Mutex
		var seen []election.Leadership
		unblock := make(chan struct{})
		f, err := election.New(followOnly{store.Connect("f")}, election.Options{Resource: "r", ID: "f"})
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close(context.Background())
		err = f.Start(context.Background(), func(ctx context.Context, l election.Leadership) error {
			mu.Lock()
			seen = append(seen, l)
			first := len(seen) == 1
			mu.Unlock()
			if first {
				<-unblock // a slow handler
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		a := startElector(t, store, election.Options{Resource: "r", ID: "a"}, blockingLeader(make(chan election.Leadership, 1000), nil))
		b := startElector(t, store, election.Options{Resource: "r", ID: "b"}, blockingLeader(make(chan election.Leadership, 1000), nil))
		els := map[string]*election.Elector{"a": a, "b": b}
		const flaps = 300
		for range flaps {
			synctest.Wait()
			id, _ := store.Leader("r")
			if id == "" {
				time.Sleep(time.Second)
				continue
			}
			_ = els[id].Release(context.Background())
			time.Sleep(100 * time.Millisecond)
		}
		synctest.Wait()
		id, term := store.Leader("r")
		close(unblock)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		t.Logf("%d changes of leadership while the handler was busy; %d calls after it returned", flaps, len(seen)-1)
		if len(seen) > 3 {
			t.Errorf("the slow handler got %d calls for the changes made while it was busy; want the latest state only", len(seen)-1)
		}
		last := seen[len(seen)-1]
		if last.LeaderID != id || last.Term != term {
			t.Errorf("last call told leader %q term %d; the store says %q term %d", last.LeaderID, last.Term, id, term)
		}
	})
}
