package leaderprom_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
	leaderprom "github.com/consul-leader/consul-leader/prometheus"
)

func registry(t testing.TB, c prometheus.Collector) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	return reg
}

// TestLint: every metric, once it has series, follows the Prometheus
// conventions (names, units, _total counters, help), and the collector
// describes exactly what it collects (the pedantic registry checks).
func TestLint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		p := newProc(t, leaderprom.Options{})
		el := p.startElector(t, store, election.Options{Resource: "r", ID: "a", TTL: ttl}, nil)
		synctest.Wait()
		time.Sleep(ttl / 2) // a renewal
		synctest.Wait()
		if err := el.Release(context.Background()); err != nil {
			t.Fatal(err)
		}
		store.Cut("a") // store errors
		time.Sleep(ttl / 2)
		synctest.Wait()
		store.Heal("a")
		p.m.Track("other")

		problems, err := testutil.CollectAndLint(p.m)
		if err != nil {
			t.Fatal(err)
		}
		for _, pr := range problems {
			t.Errorf("lint: %s: %s", pr.Metric, pr.Text)
		}
		if _, err := p.reg.Gather(); err != nil { // the pedantic checks
			t.Error(err)
		}
		n, err := testutil.GatherAndCount(p.reg)
		if err != nil || n < 10 {
			t.Errorf("%d series gathered (%v), want every metric", n, err)
		}
	})
}
