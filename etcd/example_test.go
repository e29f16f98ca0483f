package etcd_test

import (
	"context"
	"log"
	"net/url"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/etcd"
)

// An elector on a client of one's own: the client stays open after the
// elector is closed.
func ExampleNew() {
	client, err := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:2379"}})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	el, err := etcd.New(client, etcd.Options{Options: election.Options{
		Resource: "billing-cron",
		Value:    []byte("10.0.0.7:8080"),
		TTL:      10 * time.Second, // whole seconds, at least etcd.MinTTL
	}})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	err = el.Start(ctx, func(ctx context.Context, l election.Leadership) error {
		if !l.IsLeader {
			log.Printf("leader is %q at %s", l.LeaderID, l.Value)
			return nil
		}
		log.Printf("leading, term %d", l.Term)
		<-ctx.Done() // lead until the term ends
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	defer el.Close(ctx)
}

// An elector from a URL, with a client of its own that Close closes.
func ExampleOpenURL() {
	u, err := url.Parse("etcd://elector:secret@10.0.0.1:2379,10.0.0.2:2379?prefix=services/billing/leader")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	el, err := etcd.OpenURL(ctx, u, election.Options{Resource: "billing", TTL: 5 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer el.Close(context.Background())
}

// A leader guards its writes to etcd with its key: each write succeeds only
// while the leader's key is still the one created when its term began.
func Example_fencing() {
	var client *clientv3.Client // the leader's client
	handler := func(ctx context.Context, l election.Leadership) error {
		if !l.IsLeader {
			return nil
		}
		key := l.Session.Fields["key"]
		created, err := strconv.ParseInt(l.Session.Fields["createRevision"], 10, 64)
		if err != nil {
			return err
		}
		for ctx.Err() == nil {
			resp, err := client.Txn(ctx).
				If(clientv3.Compare(clientv3.CreateRevision(key), "=", created)).
				Then(clientv3.OpPut("billing/last-run", strconv.FormatInt(time.Now().Unix(), 10))).
				Commit()
			if err != nil {
				return err
			}
			if !resp.Succeeded {
				return nil // the term is over; the elector notices too
			}
			time.Sleep(time.Minute)
		}
		return nil
	}
	_ = handler
}
