package election_test

import (
	"context"
	"fmt"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// An Observer that reports the start and the end of every term, with why
// it ended. Its functions run on the engine's goroutines: they must not
// block, so the end is handed over without waiting.
func ExampleObserver() {
	ctx := context.Background()
	ended := make(chan election.TermEnd, 1)
	obs := &election.Observer{
		TermStarted: func(e election.TermStart) {
			fmt.Printf("%s leads %s, term %d (%s)\n", e.ID, e.Resource, e.Term, e.Backend)
		},
		TermEnded: func(e election.TermEnd) {
			select {
			case ended <- e:
			default: // never block the engine
			}
		},
	}
	el, err := memory.New(memory.NewStore(), election.Options{
		Resource:  "billing-cron",
		ID:        "a",
		Observers: []*election.Observer{obs},
	})
	if err != nil {
		panic(err)
	}
	defer el.Close(ctx)
	led := make(chan struct{}, 1)
	if err := el.Start(ctx, election.LeaderOnly(func(ctx context.Context, term uint64) error {
		led <- struct{}{}
		<-ctx.Done()
		return nil
	})); err != nil {
		panic(err)
	}
	<-led
	if err := el.Release(ctx); err != nil {
		panic(err)
	}
	e := <-ended
	fmt.Printf("term %d ended: %v\n", e.Term, e.Cause)
	// Output:
	// a leads billing-cron, term 2 (memory)
	// term 2 ended: released
}
