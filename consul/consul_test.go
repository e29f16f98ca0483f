package consul_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"go.uber.org/goleak"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/consul"
	"github.com/consul-leader/consul-leader/election"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// candidate returns the options of candidate id of resource on srv, with a
// client of its own and Consul's minimum TTL.
func candidate(t testing.TB, srv *testserver.ConsulServer, resource, id string) cand {
	return cand{newClient(t, srv.Addr, ""), consul.Options{
		Options: election.Options{Resource: resource, ID: id, Value: []byte("value-of-" + id), TTL: 10 * time.Second},
	}}
}

// TestSessionShape checks the session a leader holds: no health checks,
// behaviour release, the TTL and lock-delay asked for, described in
// Leadership.Session; and the key: the leader's record, with api.Lock's
// flags.
func TestSessionShape(t *testing.T) {
	t.Parallel()
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	admin := newClient(t, srv.Addr, "")
	o := candidate(t, srv, "shape", "a")
	o.LockDelay = 2500 * time.Millisecond
	_, ev := start(t, o)
	l := ev.wait(t, 10*time.Second, "leader call", leads)

	s := l.Session
	if s.Backend != "consul" || s.ID == "" || s.TTL != 10*time.Second {
		t.Errorf("Session = %+v", s)
	}
	want := map[string]string{
		"key": "service/shape/leader", "node": srv.NodeName, "behavior": "release",
		"session_ttl": "10s", "lock_delay": "2.5s", "name": "consul-leader: shape",
	}
	for k, v := range want {
		if s.Fields[k] != v {
			t.Errorf("Session.Fields[%q] = %q, want %q", k, s.Fields[k], v)
		}
	}
	if ci, err := strconv.ParseUint(s.Fields["create_index"], 10, 64); err != nil || ci == 0 {
		t.Errorf("Session.Fields[create_index] = %q", s.Fields["create_index"])
	}

	e, _, err := admin.Session().Info(s.ID, nil)
	if err != nil || e == nil {
		t.Fatalf("session info: %v, %v", e, err)
	}
	if len(e.NodeChecks) != 0 || len(e.Checks) != 0 || len(e.ServiceChecks) != 0 {
		t.Errorf("session checks = node %v, legacy %v, service %v; want none", e.NodeChecks, e.Checks, e.ServiceChecks)
	}
	if e.Behavior != api.SessionBehaviorRelease || e.TTL != "10s" || e.LockDelay != 2500*time.Millisecond {
		t.Errorf("session = behavior %q, TTL %q, lock-delay %v", e.Behavior, e.TTL, e.LockDelay)
	}

	pair := leaderOf(t, admin, "shape")
	if pair == nil || pair.Session != s.ID || pair.Flags != api.LockFlagValue {
		t.Fatalf("key = %+v; want held by %s with api.Lock's flags", pair, s.ID)
	}
	if l.Term != pair.ModifyIndex {
		t.Errorf("Term = %d, key's ModifyIndex = %d", l.Term, pair.ModifyIndex)
	}
}

// TestNoLockDelay checks that a session can be created with no lock-delay
// at all, which the api package cannot send.
func TestNoLockDelay(t *testing.T) {
	t.Parallel()
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	admin := newClient(t, srv.Addr, "")
	o := candidate(t, srv, "nodelay", "a")
	o.LockDelay = consul.NoLockDelay
	_, ev := start(t, o)
	l := ev.wait(t, 10*time.Second, "leader call", leads)
	e, _, err := admin.Session().Info(l.Session.ID, nil)
	if err != nil || e == nil {
		t.Fatalf("session info: %v, %v", e, err)
	}
	if e.LockDelay != 0 {
		t.Errorf("lock-delay = %v, want 0", e.LockDelay)
	}
}

// TestLockDelayRetry destroys the leader's session from outside: Consul
// refuses the key for the lock-delay, and the next acquisition lands right
// when it ends, not a RetryInterval later.
func TestLockDelayRetry(t *testing.T) {
	t.Parallel()
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	admin := newClient(t, srv.Addr, "")
	const lockDelay = 3 * time.Second
	mk := func(id string) cand {
		o := candidate(t, srv, "lockdelay", id)
		o.LockDelay = lockDelay
		o.RetryInterval = 5 * time.Second // what a blind retry would wait
		return o
	}
	_, eva := start(t, mk("a"))
	eva.wait(t, 10*time.Second, "a leading", leads)
	_, evb := start(t, mk("b"))
	evb.wait(t, 10*time.Second, "b following a", sees("a"))

	old := leaderOf(t, admin, "lockdelay")
	destroyed := time.Now()
	if _, err := admin.Session().Destroy(old.Session, nil); err != nil {
		t.Fatalf("destroy: %v", err)
	}
	next := waitHeld(t, admin, "lockdelay", old.Session, 2*lockDelay)
	took := time.Since(destroyed)
	t.Logf("next leader %s after %v (lock-delay %v)", next.Session, took, lockDelay)
	if took < lockDelay {
		t.Errorf("key acquired %v after the session was destroyed, within the lock-delay of %v", took, lockDelay)
	}
	// The bound is loose for a busy machine, but well below the 5 s a retry
	// at RetryInterval would take.
	if took > lockDelay+time.Second {
		t.Errorf("key acquired %v after the session was destroyed; the lock-delay ended at %v", took, lockDelay)
	}
}

// waitHeld waits with blocking queries until resource's key is held by a
// session other than except, and returns it.
func waitHeld(t testing.TB, c *api.Client, resource, except string, within time.Duration) *api.KVPair {
	t.Helper()
	deadline := time.Now().Add(within)
	var index uint64
	for time.Now().Before(deadline) {
		q := &api.QueryOptions{WaitIndex: index, WaitTime: time.Until(deadline)}
		pair, meta, err := c.KV().Get(consul.DefaultKey(resource), q)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if pair != nil && pair.Session != "" && pair.Session != except {
			return pair
		}
		index = meta.LastIndex
	}
	t.Fatalf("key of %q not acquired within %v", resource, within)
	return nil
}

// TestKeyRecreatedTermGrows deletes the key under its leader: the next term
// is higher though the new key's LockIndex starts again at 1.
func TestKeyRecreatedTermGrows(t *testing.T) {
	t.Parallel()
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	admin := newClient(t, srv.Addr, "")
	_, ev := start(t, candidate(t, srv, "recreated", "a"))
	first := ev.wait(t, 10*time.Second, "leader call", leads)
	// Lead a few terms so that the key's LockIndex grows.
	for i := 0; i < 2; i++ {
		pair := leaderOf(t, admin, "recreated")
		if _, err := admin.KV().Delete(pair.Key, nil); err != nil {
			t.Fatalf("delete: %v", err)
		}
		ev.wait(t, 10*time.Second, "step-down", stepped)
		next := ev.wait(t, 10*time.Second, "leader call", leads)
		if next.Term <= first.Term {
			t.Fatalf("term %d after the key was recreated, want > %d", next.Term, first.Term)
		}
		first = next
	}
	if pair := leaderOf(t, admin, "recreated"); pair.LockIndex != 1 {
		t.Errorf("recreated key's LockIndex = %d, want 1", pair.LockIndex)
	}
}

// TestAgentRestart restarts the agent under a leader: a dev agent loses
// every session, key and index, the leader steps down, and a leader is
// elected again on the new agent, with a term above the one before, although
// the new agent's indexes start again from the beginning. With Handoff, a
// release on the new agent still hands the key over: the candidates' view
// follows the agent's indexes back.
func TestAgentRestart(t *testing.T) {
	t.Parallel()
	for _, handoff := range []bool{false, true} {
		t.Run(fmt.Sprintf("handoff=%t", handoff), func(t *testing.T) {
			t.Parallel()
			agentRestart(t, handoff)
		})
	}
}

func agentRestart(t *testing.T, handoff bool) {
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	admin := newClient(t, srv.Addr, "")
	// Raise the agent's index, so that the first term is well above the
	// terms the restarted agent would issue on its own.
	for i := range 100 {
		if _, err := admin.KV().Put(&api.KVPair{Key: fmt.Sprint("filler/", i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	logs := map[string]*lines{"a": {}, "b": {}}
	mk := func(id string) cand {
		o := candidate(t, srv, "restart", id)
		o.RetryInterval = 200 * time.Millisecond
		o.Handoff = handoff
		o.Logger = slog.New(slog.NewTextHandler(logs[id], &slog.HandlerOptions{Level: slog.LevelDebug}))
		return o
	}
	a, eva := start(t, mk("a"))
	first := eva.wait(t, 10*time.Second, "a leading", leads)
	b, evb := start(t, mk("b"))
	evb.wait(t, 10*time.Second, "b following a", sees("a"))

	restarted := time.Now()
	srv.Restart(t)
	t.Logf("agent restarted in %v", time.Since(restarted))
	end := eva.wait(t, 15*time.Second, "a's step-down", stepped)
	t.Logf("a stepped down %v after the restart began", end.at.Sub(restarted))
	// Either candidate may lead the new agent.
	timeout := time.After(20 * time.Second)
	var ev event
	for !leads(ev) {
		select {
		case ev = <-eva.ch:
		case ev = <-evb.ch:
		case <-timeout:
			t.Fatal("no leader within 20 s of the restart")
		}
	}
	t.Logf("leader %s elected %v after the restart began, term %d (before: %d)",
		ev.LeaderID, ev.at.Sub(restarted), ev.Term, first.Term)
	if ev.Term <= first.Term {
		t.Errorf("term %d after the restart, not above the %d before", ev.Term, first.Term)
	}
	if !handoff {
		return
	}
	leader, next, nextEvents := a, "b", evb
	if ev.LeaderID == "b" {
		leader, next, nextEvents = b, "a", eva
	}
	waitRegistered(t, admin, "restart", 1)
	if err := leader.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	nextEvents.wait(t, 10*time.Second, next+" leading after the release", leads)
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs[ev.LeaderID].String(), "handed the key over"); {
		if time.Now().After(deadline) {
			t.Fatalf("%s released on the new agent without handing the key over; its logs:\n%s", ev.LeaderID, logs[ev.LeaderID])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTTLBounds checks the options Consul bounds, without a server.
func TestTTLBounds(t *testing.T) {
	client := newClient(t, "127.0.0.1:1", "")
	base := consul.Options{Options: election.Options{Resource: "bounds"}}
	cases := []struct {
		name  string
		field string // empty: valid
		edit  func(o *consul.Options)
	}{
		{"defaults", "", func(o *consul.Options) {}},
		{"TTL at the minimum", "", func(o *consul.Options) { o.TTL = 10 * time.Second }},
		{"TTL below the minimum", "TTL", func(o *consul.Options) { o.TTL = 5 * time.Second }},
		{"TTL above the maximum", "TTL", func(o *consul.Options) { o.TTL = 25 * time.Hour }},
		{"negative TTL", "TTL", func(o *consul.Options) { o.TTL = -time.Second }},
		{"short TTL with CheckTTL", "", func(o *consul.Options) { o.CheckTTL = time.Second }},
		{"short TTL and CheckTTL", "", func(o *consul.Options) { o.CheckTTL, o.TTL = 2*time.Second, time.Second }},
		{"TTL above CheckTTL", "TTL", func(o *consul.Options) { o.CheckTTL, o.TTL = 2*time.Second, 3*time.Second }},
		{"CheckTTL below its minimum", "CheckTTL", func(o *consul.Options) { o.CheckTTL = 500 * time.Millisecond }},
		{"CheckTTL with Checks", "CheckTTL", func(o *consul.Options) {
			o.CheckTTL, o.Checks, o.LockDelay = time.Second, []string{"serfHealth"}, time.Minute
		}},
		{"CheckTTL with Datacenter", "CheckTTL", func(o *consul.Options) { o.CheckTTL, o.Datacenter = time.Second, "dc2" }},
		{"LockDelay above the maximum", "LockDelay", func(o *consul.Options) { o.LockDelay = 61 * time.Second }},
		{"LockDelay below a millisecond", "LockDelay", func(o *consul.Options) { o.LockDelay = 1500 * time.Microsecond }},
		{"no LockDelay", "", func(o *consul.Options) { o.LockDelay = consul.NoLockDelay }},
		{"Checks with LockDelay below TTL", "LockDelay", func(o *consul.Options) {
			o.Checks, o.TTL = []string{"serfHealth"}, 20*time.Second
		}},
		{"Checks with LockDelay at TTL", "", func(o *consul.Options) {
			o.Checks, o.TTL, o.LockDelay = []string{"serfHealth"}, 20*time.Second, 20*time.Second
		}},
		{"ServiceChecks with no LockDelay", "LockDelay", func(o *consul.Options) {
			o.ServiceChecks, o.LockDelay = []api.ServiceCheck{{ID: "web"}}, consul.NoLockDelay
		}},
		{"empty check ID", "Checks", func(o *consul.Options) { o.Checks, o.LockDelay = []string{""}, time.Minute }},
		{"Key with a leading slash", "Key", func(o *consul.Options) { o.Key = "/leader" }},
		{"election option", "RenewInterval", func(o *consul.Options) { o.RenewInterval = time.Minute }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.edit(&o)
			el, err := consul.New(client, o)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				_ = el.Close(context.Background())
				return
			}
			var oe *election.OptionError
			if !errors.As(err, &oe) || oe.Field != tc.field || !errors.Is(err, election.ErrInvalidOptions) {
				t.Fatalf("New = %v; want an *election.OptionError for %s", err, tc.field)
			}
			if el != nil {
				t.Errorf("New returned an elector with its error")
			}
		})
	}
}

// TestBackendRefusesTTL builds an elector with election.New on a backend
// whose TTL the engine accepts and Consul does not: New refuses it at once,
// naming the TTL, without a request to Consul.
func TestBackendRefusesTTL(t *testing.T) {
	b, err := consul.NewBackend(newClient(t, "127.0.0.1:1", ""), consul.Options{})
	if err != nil {
		t.Fatalf("NewBackend: %v", err)
	}
	el, err := election.New(b, election.Options{Resource: "short", TTL: time.Second})
	var oe *election.OptionError
	if !errors.As(err, &oe) || oe.Field != "TTL" || el != nil {
		t.Fatalf("election.New = %v, %v; want the TTL's *election.OptionError", el, err)
	}
}
