package consul_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/consul-leader/consul-leader/conformance"
	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/consul"
	"github.com/consul-leader/consul-leader/election"
)

// TestAgentLostData restarts a dev agent, which loses every key, session
// and index, three times under three electors, the first time after the
// agent's index reached about 1,500. After each restart the electors must
// settle on one leader within one TTL and keep it for two more TTLs (a
// stale view of the key from before the restart once ended every term at
// its first renewal, until the new indexes passed the old ones); every
// handler must be given terms that never decrease, and the first leader
// after a restart a term above every term announced before it (the term
// offset is lost with the data: the electors raise the floor again before
// anyone acquires).
func TestAgentLostData(t *testing.T) {
	t.Parallel()
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	admin := newClient(t, srv.Addr, "")
	fillIndex(t, admin, 1500)

	const ttl = 10 * time.Second
	rec := &conformance.TermLog{}
	logs := map[string]*lines{}
	defer func() {
		if t.Failed() {
			for id, l := range logs {
				t.Logf("logs of %s:\n%s", id, l)
			}
		}
	}()
	ids := []string{"a", "b", "c"}
	for _, id := range ids {
		o := candidate(t, srv, "lost", id)
		o.RetryInterval = 200 * time.Millisecond
		logs[id] = &lines{}
		o.Logger = slog.New(slog.NewTextHandler(logs[id], &slog.HandlerOptions{Level: slog.LevelDebug}))
		startHandler(t, o, rec.Handler(id))
	}
	first, ok := rec.WaitLeader(time.Now(), 20*time.Second)
	if !ok {
		t.Fatal("no leader within 20 s")
	}
	t.Logf("first leader %s, term %d", first.ID, first.L.Term)

	leader := first
	for restart := 1; restart <= 3; restart++ {
		// Every elector has been told the leader's term: the agent's loss
		// is then one that all of them can notice.
		if !rec.WaitTold(ids, leader.L.Term, ttl) {
			t.Fatalf("restart %d: not every elector was told term %d within %v:\n%s", restart, leader.L.Term, ttl, rec.Since(leader.At))
		}
		// Electors may acquire before the agent has registered its node,
		// which Restart waits for: a leader counts from the restart on.
		leader = rec.CheckSettles(t, fmt.Sprintf("restart %d", restart), ttl, func() { srv.Restart(t) })
	}
	rec.CheckMonotonic(t)
}

// startHandler creates and starts an elector with handler h, closed when
// t ends.
func startHandler(t *testing.T, o cand, h election.Handler) {
	t.Helper()
	el, err := consul.New(o.client, o.Options)
	if err != nil {
		t.Fatalf("consul.New: %v", err)
	}
	if err := el.Start(context.Background(), h); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := el.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

// fillIndex raises the agent's Raft index to at least n with cheap KV
// writes, each one Raft entry. Each write changes its key's value: Consul
// leaves a key's index as it is when a write changes nothing.
func fillIndex(t *testing.T, c *api.Client, n uint64) {
	t.Helper()
	for round := 0; ; round++ {
		_, meta, err := c.KV().List("filler/", nil)
		if err != nil {
			t.Fatal(err)
		}
		if meta.LastIndex >= n {
			return
		}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 50 {
					if _, err := c.KV().Put(&api.KVPair{Key: fmt.Sprintf("filler/%d/%d", w, i), Value: []byte(fmt.Sprint(round))}, nil); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
}
