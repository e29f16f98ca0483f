package consul_test

import (
	"context"
	"fmt"
	"log"
	"net/url"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/consul-leader/consul-leader/consul"
	"github.com/consul-leader/consul-leader/election"
)

// A cron job that must run in one place only: the handler does the
// leader's work until its context ends, passing the term along as a fencing
// token. The nil client is made from the environment (CONSUL_HTTP_ADDR,
// ...), and closed with the elector.
func ExampleNew() {
	el, err := consul.New(nil, consul.Options{
		Options: election.Options{Resource: "billing-cron", TTL: 15 * time.Second},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer el.Close(context.Background())

	err = el.Start(context.Background(), func(ctx context.Context, l election.Leadership) error {
		if !l.IsLeader {
			log.Printf("following %q (term %d)", l.LeaderID, l.Term)
			return nil
		}
		log.Printf("leading with term %d", l.Term)
		ticker := time.NewTicker(time.Minute)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil // the term ended: stop writing at once
			case <-ticker.C:
				runBilling(ctx, l.Term)
			}
		}
	})
	if err != nil {
		log.Fatal(err)
	}
}

func runBilling(ctx context.Context, fencingToken uint64) {}

// Fast failover: every session is bound to a TTL check of 2 s on the local
// agent, so a crashed leader is replaced about 2 s later instead of up to
// 2×TTL + lock-delay.
func ExampleOptions_checkTTL() {
	el, err := consul.New(nil, consul.Options{
		Options:  election.Options{Resource: "billing-cron"},
		CheckTTL: 2 * time.Second, // the election TTL defaults to it
	})
	if err != nil {
		log.Fatal(err)
	}
	defer el.Close(context.Background())
}

// Handoff: a release hands the key straight to the candidate that waited
// longest, one round trip sooner than a plain release. The price is that a
// frozen candidate can be handed the key (see Options.Handoff).
func ExampleOptions_handoff() {
	el, err := consul.New(nil, consul.Options{
		Options: election.Options{Resource: "billing-cron", TTL: 15 * time.Second},
		Handoff: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer el.Close(context.Background())
}

// NewBackend gives the backend itself, to build electors with
// election.New; they leave it open, for the others on it.
func ExampleNewBackend() {
	b, err := consul.NewBackend(nil, consul.Options{LockDelay: 5 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close() // last: closes the client the backend created
	el, err := election.New(b, election.Options{Resource: "billing-cron", TTL: 10 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer el.Close(context.Background())
}

// Electors of several resources can share one Consul client; an elector
// does not close a client it was given.
func ExampleNew_sharedClient() {
	client, err := api.NewClient(api.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	for _, resource := range []string{"billing-cron", "report-mailer"} {
		el, err := consul.New(client, consul.Options{
			Options: election.Options{Resource: resource},
		})
		if err != nil {
			log.Fatal(err)
		}
		defer el.Close(context.Background())
	}
}

// OpenURL is what package backends calls for consul:// URLs; the common
// election parameters arrive in the options.
func ExampleOpenURL() {
	u, err := url.Parse("consul://127.0.0.1:8500?lockDelay=1s&sessionName=billing")
	if err != nil {
		log.Fatal(err)
	}
	el, err := consul.OpenURL(context.Background(), u, election.Options{Resource: "billing-cron", TTL: 10 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer el.Close(context.Background())
}

// Many resources on one Consul session: one session, renewed once per
// RenewInterval, holds the leadership of every shard this process leads.
// Each elector is made by New with the session in Options.Session, and no
// client of its own: it uses the session's backend's.
func ExampleNewSharedSession() {
	b, err := consul.NewBackend(nil, consul.Options{}) // a client from the environment
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	ss, err := consul.NewSharedSession(b, election.SessionOptions{TTL: 15 * time.Second, Name: "shard-worker"})
	if err != nil {
		log.Fatal(err)
	}
	defer ss.Close(context.Background())

	for i := range 100 {
		el, err := consul.New(nil, consul.Options{
			Options: election.Options{Resource: fmt.Sprintf("shard-%03d", i), Session: ss},
		})
		if err != nil {
			log.Fatal(err)
		}
		defer el.Close(context.Background())
		err = el.Start(context.Background(), func(ctx context.Context, l election.Leadership) error {
			if l.IsLeader {
				log.Printf("leading %s with term %d on session %s", l.Resource, l.Term, l.Session.ID)
				<-ctx.Done()
			}
			return nil
		})
		if err != nil {
			log.Fatal(err)
		}
	}
}
