package election_test

import (
	"context"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// BenchmarkHandoverObserved measures a graceful handover on the in-memory
// store, as BenchmarkHandoverMemory does, without observers and with one
// observer on every elector that takes every event: its cost per handover
// (one term ended, one begun) is the difference.
func BenchmarkHandoverObserved(b *testing.B) {
	nop := &election.Observer{
		TermStarted:    func(election.TermStart) {},
		TermEnded:      func(election.TermEnd) {},
		Renewed:        func(election.Renewal) {},
		StoreFailed:    func(election.StoreFailure) {},
		StoreRecovered: func(election.StoreRecovery) {},
		HandlerOverran: func(election.HandlerOverrun) {},
	}
	for _, bc := range []struct {
		name string
		obs  []*election.Observer
	}{{"observers=0", nil}, {"observers=1", []*election.Observer{nop}}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			store := memory.NewStore()
			leaders := make(chan *election.Elector, 16)
			for _, id := range []string{"a", "b", "c"} {
				el, err := memory.New(store, election.Options{Resource: "bench", ID: id, RetryInterval: time.Millisecond, Observers: bc.obs})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = el.Close(ctx) })
				self := el
				_ = el.Start(ctx, func(ctx context.Context, l election.Leadership) error {
					if l.IsLeader {
						leaders <- self
					}
					return nil
				})
			}
			leader := <-leaders
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := leader.Release(ctx); err != nil {
					b.Fatal(err)
				}
				leader = <-leaders
			}
		})
	}
}
