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

// deafConn is a memory store's connection whose blocking reads see no
// change: they return only when their context ends, as a read the store
// answers late does.
type deafConn struct{ *memory.Conn }

func (c deafConn) Watch(ctx context.Context, resource string, after uint64, wait time.Duration) (election.Record, error) {
	if after == 0 {
		return c.Conn.Watch(ctx, resource, after, wait)
	}
	<-ctx.Done()
	return election.Record{}, ctx.Err()
}

// TestTermEndAbandonsLeaderRead: once a term's store is released, the
// leader's read of its record still in flight is abandoned, so that the
// elector does not wait for the read's own deadline (LeaderWait, 150 s
// here) to campaign again: a released leader, alone, leads again well
// within 30 s (its read while it holds off sees nothing either, and ends
// at its own deadline, RetryInterval and RequestTimeout later), on a
// private session and on a shared one.
func TestTermEndAbandonsLeaderRead(t *testing.T) {
	for _, shared := range []bool{false, true} {
		name := "private session"
		if shared {
			name = "shared session"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// A leader watches its record through those reads.
				conn := goroutineWatch{deafConn{memory.NewStore().Connect("a")}}
				opts := election.Options{Resource: "deaf", ID: "a", TTL: 15 * time.Second}
				if shared {
					s, err := election.NewSharedSession(conn, election.SessionOptions{TTL: opts.TTL})
					if err != nil {
						t.Fatalf("NewSharedSession: %v", err)
					}
					defer s.Close(context.Background())
					opts.TTL, opts.Session = 0, s
				}
				el, err := election.New(conn, opts)
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				defer el.Close(context.Background())
				terms := make(chan uint64, 2)
				if err := el.Start(context.Background(), func(ctx context.Context, l election.Leadership) error {
					if l.IsLeader {
						terms <- l.Term
						<-ctx.Done()
					}
					return nil
				}); err != nil {
					t.Fatalf("Start: %v", err)
				}
				first := <-terms
				synctest.Wait() // the term's read waits
				if err := el.Release(context.Background()); err != nil {
					t.Fatalf("Release: %v", err)
				}
				const within = 30 * time.Second
				time.Sleep(within)
				synctest.Wait()
				select {
				case second := <-terms:
					if second <= first {
						t.Errorf("term %d after term %d", second, first)
					}
				default:
					t.Fatalf("no new term %v after the release of term %d: the elector still waits for the term's read", within, first)
				}
			})
		})
	}
}
