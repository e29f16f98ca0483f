package election_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// BenchmarkHandoverMemory measures the engine's own cost of a graceful
// handover, on the in-memory store: from Release until the next leader's
// handler runs, with three candidates.
func BenchmarkHandoverMemory(b *testing.B) {
	ctx := context.Background()
	store := memory.NewStore()
	leaders := make(chan *election.Elector, 16)
	var els []*election.Elector
	for _, id := range []string{"a", "b", "c"} {
		el, err := memory.New(store, election.Options{Resource: "bench", ID: id, RetryInterval: time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		els = append(els, el)
		self := el
		_ = el.Start(ctx, func(ctx context.Context, l election.Leadership) error {
			if l.IsLeader {
				leaders <- self
			}
			return nil
		})
	}
	defer func() {
		for _, el := range els {
			_ = el.Close(ctx)
		}
	}()
	leader := <-leaders
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := leader.Release(ctx); err != nil {
			b.Fatal(err)
		}
		leader = <-leaders
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkIsLeader measures IsLeader on a leader, from parallel
// goroutines: no store request, no lock, no allocation.
func BenchmarkIsLeader(b *testing.B) {
	el := benchLeader(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !el.IsLeader() {
				b.Error("not leading")
				return
			}
		}
	})
}

// BenchmarkState measures State on a leader.
func BenchmarkState(b *testing.B) {
	el := benchLeader(b)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if !el.State().IsLeader {
			b.Fatal("not leading")
		}
	}
}

// benchLeader returns an elector that leads on a memory store, closed when
// the benchmark ends.
func benchLeader(b *testing.B) *election.Elector {
	ctx := context.Background()
	el, err := memory.New(memory.NewStore(), election.Options{Resource: "bench", ID: "a"})
	if err != nil {
		b.Fatal(err)
	}
	led := make(chan struct{})
	if err := el.Start(ctx, election.LeaderOnly(func(ctx context.Context, _ uint64) error {
		close(led)
		<-ctx.Done()
		return nil
	})); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = el.Close(context.Background()) })
	<-led
	return el
}
