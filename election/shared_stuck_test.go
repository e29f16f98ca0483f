//go:build go1.25

package election_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// TestSharedSessionKeepsResourceOfStuckHandler: on a shared session, a term
// whose handler ignores its end keeps the resource until the handler
// returns (the session, renewed for the others, keeps it), and then it is
// released at once.
func TestSharedSessionKeepsResourceOfStuckHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		store := memory.NewStore()
		conn := store.Connect("p1")
		sess, err := election.NewSharedSession(conn, election.SessionOptions{TTL: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		a, err := election.New(conn, election.Options{Resource: "r", ID: "a", Session: sess})
		if err != nil {
			t.Fatal(err)
		}
		unblock := make(chan struct{})
		if err := a.Start(ctx, election.LeaderOnly(func(ctx context.Context, term uint64) error {
			<-unblock // ignores ctx
			return nil
		})); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		startElector(t, store, election.Options{Resource: "r", ID: "b", TTL: 10 * time.Second}, func(ctx context.Context, l election.Leadership) error {
			if l.IsLeader {
				<-ctx.Done()
			}
			return nil
		})
		if err := a.Release(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if id, _ := store.Leader("r"); id != "a" {
			t.Fatalf("a minute after a Release whose handler still runs, the store shows %q leading; want a, still holding", id)
		}
		close(unblock)
		synctest.Wait()
		if id, _ := store.Leader("r"); id != "b" {
			t.Errorf("once the handler returned, the store shows %q leading; want b at once", id)
		}
		if err := a.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := sess.Close(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
