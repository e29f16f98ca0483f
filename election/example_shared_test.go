package election_test

import (
	"context"
	"fmt"
	"sync"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// One process leads many resources (here, a shard each) on one shared
// session: one store session, renewed once for all of them. The electors
// must be made on the session's backend; the session and the electors are
// closed by their owner.
//
// The leader calls return at once: a term lasts until its context ends
// either way, and a process leading thousands of resources keeps no
// goroutine for each of them. Work done for the term checks ctx, which it
// is given, before each write.
func ExampleSharedSession() {
	ctx := context.Background()
	store := memory.NewStore()
	backend := store.Connect("worker-1")

	sess, err := election.NewSharedSession(backend, election.SessionOptions{})
	if err != nil {
		panic(err)
	}
	defer sess.Close(ctx)

	var wg sync.WaitGroup
	var mu sync.Mutex
	sessions := map[string]bool{} // the store sessions the terms ran on
	for i := range 3 {
		el, err := election.New(backend, election.Options{
			Resource: fmt.Sprintf("shard-%d", i),
			ID:       "worker-1",
			Session:  sess,
		})
		if err != nil {
			panic(err)
		}
		defer el.Close(ctx)
		wg.Add(1)
		var once sync.Once
		err = el.Start(ctx, election.LeaderOnly(func(ctx context.Context, term uint64) error {
			mu.Lock()
			sessions[sess.Info().ID] = true
			mu.Unlock()
			once.Do(wg.Done)
			return nil // the term goes on until ctx ends
		}))
		if err != nil {
			panic(err)
		}
	}
	wg.Wait()
	fmt.Println("store sessions for 3 resources:", len(sessions))

	// A second elector for a resource already on the session is refused.
	_, err = election.New(backend, election.Options{Resource: "shard-0", Session: sess})
	fmt.Println(err)
	// Output:
	// store sessions for 3 resources: 1
	// election: invalid option Resource: must not have another open elector on the same session (close that one first) (got "shard-0")
}

// Phase tells where an elector's campaign is, for a health check, without
// a store request.
func ExampleElector_Phase() {
	ctx := context.Background()
	el, err := memory.New(memory.NewStore(), election.Options{Resource: "billing-cron"})
	if err != nil {
		panic(err)
	}
	fmt.Println(el.Phase())
	leading := make(chan struct{})
	err = el.Start(ctx, election.LeaderOnly(func(ctx context.Context, term uint64) error {
		close(leading)
		<-ctx.Done()
		return nil
	}))
	if err != nil {
		panic(err)
	}
	<-leading
	fmt.Println(el.Phase())
	if err := el.Close(ctx); err != nil {
		panic(err)
	}
	fmt.Println(el.Phase())
	// Output:
	// stopped
	// leading
	// stopped
}
