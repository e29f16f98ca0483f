package leaderprom_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
	leaderprom "github.com/consul-leader/consul-leader/prometheus"
)

func benchMetrics(b *testing.B, opts leaderprom.Options) *leaderprom.Metrics {
	b.Helper()
	m, err := leaderprom.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	prometheus.NewRegistry().MustRegister(m)
	return m
}

// BenchmarkRenewal is the cost of one successful renewal to the metrics.
func BenchmarkRenewal(b *testing.B) {
	obs := benchMetrics(b, leaderprom.Options{}).Observer()
	ev := election.Renewal{Source: election.Source{Resource: "r", Term: 7, Session: "s-1"}, Latency: 3 * time.Millisecond, Margin: 5 * time.Second}
	b.ReportAllocs()
	for b.Loop() {
		obs.Renewed(ev)
	}
}

// BenchmarkHandover is the cost of a term's start and end to the metrics.
func BenchmarkHandover(b *testing.B) {
	obs := benchMetrics(b, leaderprom.Options{}).Observer()
	src := election.Source{Resource: "r", Session: "s-1"}
	b.ReportAllocs()
	for b.Loop() {
		src.Term++
		obs.TermStarted(election.TermStart{Source: src, TTL: 15 * time.Second})
		obs.TermEnded(election.TermEnd{Source: src, Cause: election.CauseReleased})
	}
}

// BenchmarkScrape is the cost of one Gather of a process leading 10,000
// resources, with one set of series per resource and with AllResources.
func BenchmarkScrape(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts leaderprom.Options
	}{{"per-resource", leaderprom.Options{}}, {"all-resources", leaderprom.Options{ResourceLabel: leaderprom.AllResources}}} {
		b.Run(tc.name, func(b *testing.B) {
			m, err := leaderprom.New(tc.opts)
			if err != nil {
				b.Fatal(err)
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(m)
			obs := m.Observer()
			for i := range 10000 {
				obs.TermStarted(election.TermStart{Source: election.Source{Resource: fmt.Sprintf("tenant-%d", i), Term: uint64(i + 1), Session: "s-1"}})
			}
			obs.Renewed(election.Renewal{Source: election.Source{Session: "s-1"}, Latency: time.Millisecond, Margin: time.Second})
			b.ReportAllocs()
			for b.Loop() {
				if _, err := reg.Gather(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMemoryHandover hands the leadership of one resource back and
// forth between two electors on the memory store, without and with the
// metrics: the share of the metrics in a whole handover.
func BenchmarkMemoryHandover(b *testing.B) {
	for _, observed := range []bool{false, true} {
		b.Run(fmt.Sprintf("metrics=%v", observed), func(b *testing.B) {
			store := memory.NewStore()
			var obs []*election.Observer
			if observed {
				obs = []*election.Observer{benchMetrics(b, leaderprom.Options{}).Observer()}
			}
			leads := make(chan *election.Elector, 2)
			var els []*election.Elector
			for _, id := range []string{"a", "b"} {
				el, err := memory.New(store, election.Options{Resource: "r", ID: id, TTL: 10 * time.Second, RetryInterval: time.Millisecond, Observers: obs})
				if err != nil {
					b.Fatal(err)
				}
				els = append(els, el)
				if err := el.Start(context.Background(), election.LeaderOnly(func(ctx context.Context, _ uint64) error {
					leads <- el
					<-ctx.Done()
					return nil
				})); err != nil {
					b.Fatal(err)
				}
			}
			defer func() {
				for _, el := range els {
					_ = el.Close(context.Background())
				}
			}()
			leader := <-leads
			b.ReportAllocs()
			for b.Loop() {
				if err := leader.Release(context.Background()); err != nil {
					b.Fatal(err)
				}
				leader = <-leads
			}
		})
	}
}
