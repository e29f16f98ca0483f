package memory_test

import (
	"context"
	"fmt"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// Two candidates share a store; when the leader releases, the other takes
// over at once, with a higher term.
func Example() {
	ctx := context.Background()
	store := memory.NewStore()
	leading := make(chan string, 4)
	candidate := func(id string) *election.Elector {
		el, err := memory.New(store, election.Options{Resource: "billing-cron", ID: id})
		if err != nil {
			panic(err)
		}
		_ = el.Start(ctx, func(ctx context.Context, l election.Leadership) error {
			if l.IsLeader {
				leading <- fmt.Sprintf("%s leads, term %d", l.LeaderID, l.Term)
			}
			return nil
		})
		return el
	}
	a := candidate("node-a")
	defer a.Close(ctx)
	fmt.Println(<-leading)

	b := candidate("node-b")
	defer b.Close(ctx)
	_ = a.Release(ctx)
	fmt.Println(<-leading)
	// Output:
	// node-a leads, term 2
	// node-b leads, term 4
}

// An application's unit test can cut its elector off the store and check
// that the leader's work stops before the TTL runs out.
func ExampleStore_Cut() {
	ctx := context.Background()
	store := memory.NewStore()
	stopped := make(chan error, 1)
	el, _ := memory.New(store, election.Options{Resource: "queue-consumer", ID: "worker-1", TTL: 500 * time.Millisecond})
	defer el.Close(ctx)
	_ = el.Start(ctx, func(ctx context.Context, l election.Leadership) error {
		if l.IsLeader {
			<-ctx.Done() // the leader's work runs until here
			stopped <- context.Cause(ctx)
		}
		return nil
	})
	time.Sleep(100 * time.Millisecond)
	store.Cut("worker-1")
	fmt.Println(<-stopped)
	store.Heal("worker-1")
	// Output:
	// election: lease not renewed in time, stepped down: no renewal succeeded within 450ms of TTL 500ms
}
