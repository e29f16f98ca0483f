package health_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/election/health"
	"github.com/consul-leader/consul-leader/memory"
)

// A liveness probe for an elector: its Check is attached as an observer
// when the elector is made, and serves /healthz.
func ExampleCheck() {
	ctx := context.Background()
	// The tolerances derive from the electors' TTL: here the default.
	check, err := health.New(health.Options{TTL: election.DefaultTTL})
	if err != nil {
		panic(err)
	}
	el, err := memory.New(memory.NewStore(), election.Options{
		Resource:  "billing-cron",
		Observers: []*election.Observer{check.Observer()},
	})
	if err != nil {
		panic(err)
	}
	defer el.Close(ctx)
	led := make(chan struct{})
	if err := el.Start(ctx, election.LeaderOnly(func(ctx context.Context, term uint64) error {
		close(led)
		<-ctx.Done() // the leader's work, until the term ends
		return nil
	})); err != nil {
		panic(err)
	}
	<-led

	mux := http.NewServeMux()
	mux.Handle("GET /healthz", check)
	w := httptest.NewRecorder() // a probe, for the example
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	fmt.Print(w.Code, " ", w.Body)
	// Output: 200 ok
}

// A readiness probe that is ready only on the leader, so that a Service
// routes to it alone; it reads IsLeader, without a store request.
func ExampleLeaderHandler() {
	ctx := context.Background()
	store := memory.NewStore()
	led := make(chan struct{})
	var electors []*election.Elector
	for _, id := range []string{"a", "b"} {
		el, err := memory.New(store, election.Options{Resource: "billing-api", ID: id})
		if err != nil {
			panic(err)
		}
		defer el.Close(ctx)
		if err := el.Start(ctx, election.LeaderOnly(func(ctx context.Context, term uint64) error {
			close(led)
			<-ctx.Done()
			return nil
		})); err != nil {
			panic(err)
		}
		electors = append(electors, el)
		if id == "a" {
			<-led // a leads before b starts
		}
	}
	for _, el := range electors {
		mux := http.NewServeMux()
		mux.Handle("GET /ready", health.LeaderHandler(el))
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/ready", nil))
		fmt.Print(w.Code, " ", w.Body)
	}
	// Output:
	// 200 leader
	// 503 not leader
}
