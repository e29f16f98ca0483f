package consul_test

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/consul-leader/consul-leader/consul"
	"github.com/consul-leader/consul-leader/election"
)

// The whole life of a service: it campaigns until SIGINT or SIGTERM, does
// the leader's work while it leads, and gives the leadership up on its way
// out. The nil Consul client is made from the environment (CONSUL_HTTP_ADDR,
// CONSUL_HTTP_TOKEN, ...). The README's quick start is this function's body.
func Example_service() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// nil: a Consul client from CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, ..., closed with the elector.
	el, err := consul.New(nil, consul.Options{Options: election.Options{Resource: "billing-cron"}})
	if err != nil {
		log.Fatal(err) // an *election.OptionError names the field at fault
	}
	// Campaigns until SIGINT or SIGTERM; then ends the term, waits for the leader's work, releases.
	err = el.Run(ctx, election.LeaderOnly(func(ctx context.Context, term uint64) error {
		return runBillingUntil(ctx, term) // the leader's work, until ctx ends; term fences its writes
	}))
	if err != nil {
		log.Fatal(err) // nil on SIGINT or SIGTERM
	}
}

// runBillingUntil is the leader's work: it runs until the term's context
// ends, checks that context before every write, and sends the term with
// every write as a fencing token.
func runBillingUntil(ctx context.Context, term uint64) error {
	ticker := time.NewTicker(time.Minute)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil // the term ended: stop at once
		case <-ticker.C:
			if ctx.Err() != nil {
				return nil
			}
			runBilling(ctx, term)
		}
	}
}
