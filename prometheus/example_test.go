package leaderprom_test

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
	leaderprom "github.com/consul-leader/consul-leader/prometheus"
)

// Metrics of an elector, registered with a registry of the program's own and
// served for Prometheus to scrape.
func Example() {
	reg := prometheus.NewRegistry()
	metrics, err := leaderprom.New(leaderprom.Options{})
	if err != nil {
		log.Fatal(err)
	}
	reg.MustRegister(metrics)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	defer srv.Close()

	el, err := memory.New(memory.NewStore(), election.Options{
		Resource:  "billing-cron",
		Observers: []*election.Observer{metrics.Observer()},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer el.Close(context.Background())
	led := make(chan struct{})
	err = el.Start(context.Background(), election.LeaderOnly(func(ctx context.Context, term uint64) error {
		close(led)
		<-ctx.Done()
		return nil
	}))
	if err != nil {
		log.Fatal(err)
	}
	<-led

	resp, err := http.Get(srv.URL) // what Prometheus scrapes
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		if l := lines.Text(); strings.HasPrefix(l, "leader_election_is_leader") || strings.HasPrefix(l, "leader_election_terms_started_total") {
			fmt.Println(l)
		}
	}
	// Output:
	// leader_election_is_leader{resource="billing-cron"} 1
	// leader_election_terms_started_total{resource="billing-cron"} 1
}

// One set of series for every resource of the process, however many it
// leads on its shared session.
func ExampleAllResources() {
	reg := prometheus.NewRegistry()
	metrics, err := leaderprom.New(leaderprom.Options{ResourceLabel: leaderprom.AllResources})
	if err != nil {
		log.Fatal(err)
	}
	reg.MustRegister(metrics)
	backend := memory.NewStore().Connect("shared")
	sess, err := election.NewSharedSession(backend, election.SessionOptions{
		Observers: []*election.Observer{metrics.Observer()}, // its renewals
	})
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close(context.Background())
	for i := range 100 {
		el, err := election.New(backend, election.Options{
			Resource:  fmt.Sprintf("tenant-%d", i),
			Session:   sess,
			Observers: []*election.Observer{metrics.Observer()}, // its terms
		})
		if err != nil {
			log.Fatal(err)
		}
		defer el.Close(context.Background())
		if err := el.Start(context.Background(), election.LeaderOnly(func(ctx context.Context, term uint64) error {
			<-ctx.Done()
			return nil
		})); err != nil {
			log.Fatal(err)
		}
	}
	for isLeader(reg) < 100 { // until every term has started
		time.Sleep(10 * time.Millisecond)
	}
	series, err := testutil.GatherAndCount(reg, "leader_election_is_leader", "leader_election_terms_started_total")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("is_leader{resource=\"all\"} %v, in %d series for two metrics\n", isLeader(reg), series)
	// Output:
	// is_leader{resource="all"} 100, in 2 series for two metrics
}

// isLeader returns the value of the only series of leader_election_is_leader.
func isLeader(reg *prometheus.Registry) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		log.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "leader_election_is_leader" && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}
