package etcd

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/conformance"
	"github.com/consul-leader/consul-leader/conformance/testserver"
)

// TestLostDataSettles rebuilds the member empty (its data directory
// deleted: every key, lease and revision lost) under three electors, three
// times, the first after the revision reached about 1,500: the electors
// must settle on one leader within one TTL of the member's return and keep
// it for two more TTLs; every handler must be given terms that never
// decrease, and the first leader after a loss a term above every term
// announced before it.
func TestLostDataSettles(t *testing.T) {
	srv := startEtcd(t)
	admin := newClient(t, srv.Endpoint())
	ctx := testCtx(t, 5*time.Minute)
	for i := range 1500 {
		if _, err := admin.Put(ctx, fmt.Sprint("filler/", i%16), "x"); err != nil {
			t.Fatal(err)
		}
	}
	const ttl = MinTTL
	rec := &conformance.TermLog{}
	ids := []string{"a", "b", "c"}
	started := time.Now() // the first elector may lead before the last starts
	for _, id := range ids {
		el, err := New(newClient(t, srv.Endpoint()), opts("lost", id))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := el.Close(cctx); err != nil {
				t.Errorf("Close %s: %v", id, err)
			}
		})
		if err := el.Start(context.Background(), rec.Handler(id)); err != nil {
			t.Fatal(err)
		}
	}
	checkLossesSettle(t, srv, rec, ids, ttl, started)
}

// TestLostDataSettlesShared is TestLostDataSettles with electors on three
// shared sessions, whose backends watch the prefix root: each must notice
// the loss, watch afresh and settle as electors with their own watches do.
func TestLostDataSettlesShared(t *testing.T) {
	srv := startEtcd(t)
	admin := newClient(t, srv.Endpoint())
	ctx := testCtx(t, 5*time.Minute)
	for i := range 1500 {
		if _, err := admin.Put(ctx, fmt.Sprint("filler/", i%16), "x"); err != nil {
			t.Fatal(err)
		}
	}
	rec := &conformance.TermLog{}
	var ids []string
	started := time.Now() // the first group may lead before the last starts
	for _, id := range []string{"a", "b", "c"} {
		startGroup(t, newClient(t, srv.Endpoint()), id, []string{"lost"}, rec)
		ids = append(ids, id+"/lost")
	}
	checkLossesSettle(t, srv, rec, ids, sharedTTL, started)
}

// checkLossesSettle waits for the first leader among the electors ids of
// TTL ttl, started at started, and then rebuilds the member empty three
// times: each time every elector must have been told the leader's term,
// and the electors must settle (TermLog.CheckSettles); every handler must
// be given terms that never decrease.
func checkLossesSettle(t *testing.T, srv *testserver.EtcdServer, rec *conformance.TermLog, ids []string, ttl time.Duration, started time.Time) {
	t.Helper()
	leader, ok := rec.WaitLeader(started, 10*time.Second)
	if !ok {
		t.Fatal("no leader within 10 s")
	}
	for i := 1; i <= 3; i++ {
		if !rec.WaitTold(ids, leader.L.Term, ttl) {
			t.Fatalf("loss %d: not every elector was told term %d within %v:\n%s", i, leader.L.Term, ttl, rec.Since(leader.At))
		}
		time.Sleep(ttl / 2) // some renewals first
		leader = rec.CheckSettles(t, fmt.Sprintf("loss %d", i), ttl, func() { srv.RestartEmpty(t) })
	}
	rec.CheckMonotonic(t)
}
