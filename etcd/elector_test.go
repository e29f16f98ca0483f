package etcd

import (
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/consul-leader/consul-leader/election"
)

// TestRemovedFromOutside revokes the leader's lease, or deletes its key,
// with another client: the leader steps down, the next candidate leads, and
// the old leader campaigns again behind it.
func TestRemovedFromOutside(t *testing.T) {
	srv := startEtcd(t)
	admin := newClient(t, srv.Endpoint())
	for _, what := range []string{"lease", "key"} {
		t.Run(what, func(t *testing.T) {
			tr := newTracker(t)
			resource := "removed-" + what
			for _, id := range []string{"a", "b"} {
				startElector(t, newClient(t, srv.Endpoint()), opts(resource, id), tr)
			}
			old := tr.waitLeader("", 5*time.Second)
			ctx := testCtx(t, 10*time.Second)
			resp, err := admin.Get(ctx, DefaultPrefix(resource)+"/", clientv3.WithFirstCreate()...)
			if err != nil || len(resp.Kvs) != 1 {
				t.Fatalf("leader key: %+v, %v", resp, err)
			}
			tr.mu.Lock()
			tr.tolerate = true // the old leader learns it a moment after the store
			tr.mu.Unlock()
			removed := time.Now()
			if what == "lease" {
				_, err = admin.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease))
			} else {
				_, err = admin.Delete(ctx, string(resp.Kvs[0].Key))
			}
			if err != nil {
				t.Fatal(err)
			}
			next := tr.waitLeader(old, 5*time.Second)
			if !tr.waitFor(5*time.Second, func() bool { return tr.causes[old] != nil }) {
				t.Fatalf("%s did not step down", old)
			}
			t.Logf("%s removed: %s stepped down (%v), %s leads, after %v", what, old, tr.cause(old), next, time.Since(removed))
			if cause := tr.cause(old); !errors.Is(cause, election.ErrLeadershipLost) && !errors.Is(cause, election.ErrSessionLost) {
				t.Errorf("term ended with %v, want leadership or session lost", cause)
			}
			tr.waitSeen(old, next, 5*time.Second)
		})
	}
}

// TestCompactionWhileFollowing compacts the store repeatedly while a
// follower waits with a short WaitTime, so that its watches start from
// compacted revisions: it must still take over at once on a release, and
// read the leader only once per compaction.
func TestCompactionWhileFollowing(t *testing.T) {
	srv := startEtcd(t)
	admin := newClient(t, srv.Endpoint())
	tr := newTracker(t)
	a := opts("compacted", "a")
	leader := startElector(t, newClient(t, srv.Endpoint()), a, tr)
	tr.waitLeader("", 5*time.Second)
	counter := newRPCCounter()
	b := opts("compacted", "b")
	b.WaitTime = 200 * time.Millisecond
	startElector(t, newClient(t, srv.Endpoint(), counter.install), b, tr)
	tr.waitSeen("b", "a", 5*time.Second)

	ctx := testCtx(t, 30*time.Second)
	before := counter.snapshot()
	const compactions = 4
	for range compactions {
		var rev int64
		for range 10 {
			resp, err := admin.Put(ctx, "unrelated", "x")
			if err != nil {
				t.Fatal(err)
			}
			rev = resp.Header.Revision
		}
		if _, err := admin.Compact(ctx, rev); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * b.WaitTime)
	}
	if reads := counter.since(before).reads(); reads > compactions {
		t.Errorf("the follower read the leader %d times across %d compactions", reads, compactions)
	}
	released := time.Now()
	if err := leader.Release(ctx); err != nil {
		t.Fatal(err)
	}
	tr.waitLeader("a", 2*time.Second)
	t.Logf("handover after compactions: %v", time.Since(released))
}

// TestRestartUnderLeader restarts etcd under a leader and two followers:
// at once, so that the leader may keep its term, and after an outage longer
// than the TTL, so that it must step down; a single leader exists
// afterwards, and every elector agrees on it. A restart at once may still
// take longer than the step-down deadline on a busy machine: the leader
// then steps down after the restart, and another is elected, so the leader
// checked is the one every elector was told of, not the first seen.
func TestRestartUnderLeader(t *testing.T) {
	for _, outage := range []time.Duration{0, MinTTL + time.Second} {
		t.Run(outage.String(), func(t *testing.T) {
			srv := startEtcd(t)
			tr := newTracker(t)
			ids := []string{"a", "b", "c"}
			els := map[string]*election.Elector{}
			for _, id := range ids {
				els[id] = startElector(t, newClient(t, srv.Endpoint()), opts("restart", id), tr)
			}
			old := tr.waitLeader("", 5*time.Second)
			if outage == 0 {
				srv.Restart(t)
			} else {
				srv.Kill()
				if !tr.waitFor(MinTTL+time.Second, func() bool { return tr.causes[old] != nil }) {
					t.Fatalf("%s still leads %v into an outage", old, MinTTL+time.Second)
				}
				if cause := tr.cause(old); !errors.Is(cause, election.ErrLeaseExpired) {
					t.Errorf("term ended with %v during the outage, want ErrLeaseExpired", cause)
				}
				time.Sleep(outage - MinTTL - time.Second)
				srv.Restart(t)
			}
			restarted := time.Now()
			// Agreed on by every handler and every Leader() call; a leader
			// that steps down after the restart makes them agree anew.
			deadline := restarted.Add(2*MinTTL + 15*time.Second)
			for {
				now := tr.waitAgreed(ids, time.Until(deadline))
				var disagree []string
				for _, id := range ids {
					if l, err := askLeader(t, els[id]); err != nil || l.LeaderID != now || l.IsLeader != (id == now) {
						disagree = append(disagree, fmt.Sprintf("%s's Leader() = %+v, %v", id, l, err))
					}
				}
				if len(disagree) == 0 {
					t.Logf("after a %v outage: %s led, %s leads (old term ended: %v); all agree %v after the restart",
						outage, old, now, tr.cause(old), time.Since(restarted))
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("handlers agree that %s leads, but %v", now, disagree)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

// askLeader asks el for the leader until it answers: clients reconnect
// with a backoff after a restart.
func askLeader(t *testing.T, el *election.Elector) (l election.Leadership, err error) {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if l, err = el.Leader(testCtx(t, 5*time.Second)); err == nil {
			break
		}
	}
	return l, err
}

// TestFencingToken guards a write with the leader key's create revision, as
// the package documentation shows: it succeeds during the term and fails
// after it.
func TestFencingToken(t *testing.T) {
	srv := startEtcd(t)
	client := newClient(t, srv.Endpoint())
	tr := newTracker(t)
	el := startElector(t, client, opts("fenced", "a"), tr)
	tr.waitLeader("", 5*time.Second)
	l := tr.snapshot()["a"]
	key, created := l.Session.Fields["key"], l.Session.Fields["createRevision"]
	rev, err := strconv.ParseInt(created, 10, 64)
	if err != nil || uint64(rev) != l.Term {
		t.Fatalf("createRevision %q, term %d: without a raised floor they are equal", created, l.Term)
	}
	ctx := testCtx(t, 10*time.Second)
	write := func() bool {
		resp, err := client.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", rev)).
			Then(clientv3.OpPut("fenced/data", "written by a")).
			Commit()
		if err != nil {
			t.Fatal(err)
		}
		return resp.Succeeded
	}
	if !write() {
		t.Fatalf("a fenced write during term %d (key %s) failed", l.Term, key)
	}
	if err := el.Release(ctx); err != nil {
		t.Fatal(err)
	}
	// After the term's context, the store is released, and then the
	// handler is told that a no longer leads.
	if !tr.waitFor(5*time.Second, func() bool { return tr.causes["a"] != nil && !tr.seen["a"].IsLeader }) {
		t.Fatal("the term did not end")
	}
	if write() {
		t.Fatal("a fenced write succeeded after the term ended")
	}
}
