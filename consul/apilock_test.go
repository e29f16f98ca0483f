package consul_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/consul"
	"github.com/consul-leader/consul-leader/election"
)

// holders counts who holds a key, and fails the test if two ever do.
type holders struct {
	t  *testing.T
	mu sync.Mutex
	n  int
	by []string
}

func (h *holders) enter(who string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n++
	h.by = append(h.by, who)
	if h.n > 1 {
		h.t.Errorf("two holders at once: %v", h.by)
	}
}

func (h *holders) leave(who string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n--
	for i, b := range h.by {
		if b == who {
			h.by = append(h.by[:i], h.by[i+1:]...)
			break
		}
	}
}

// TestAPILockContention runs an elector and Consul's own api.Lock on the
// same key: they take turns, never hold it together, and the elector shows
// the foreign holder as the leader, named by its session. An elector with
// Handoff, which finds no candidate registered, releases to api.Lock too.
func TestAPILockContention(t *testing.T) {
	t.Parallel()
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	for _, handoff := range []bool{false, true} {
		t.Run(fmt.Sprintf("handoff=%t", handoff), func(t *testing.T) {
			t.Parallel()
			apiLockContention(t, srv, fmt.Sprintf("apilock-%t", handoff), handoff)
		})
	}
}

func apiLockContention(t *testing.T, srv *testserver.ConsulServer, resource string, handoff bool) {
	h := &holders{t: t}

	o := candidate(t, srv, resource, "ours")
	o.Handoff = handoff
	el, err := consul.New(o.client, o.Options)
	if err != nil {
		t.Fatal(err)
	}
	ev := newEvents()
	handler := func(ctx context.Context, l election.Leadership) error {
		if l.IsLeader {
			h.enter("ours")
			defer h.leave("ours")
		}
		return ev.handler(ctx, l)
	}
	if err := el.Start(context.Background(), handler); err != nil {
		t.Fatal(err)
	}
	defer el.Close(context.Background())
	ev.wait(t, 10*time.Second, "our leader call", leads)

	lockClient := newClient(t, srv.Addr, "")
	lock, err := lockClient.LockOpts(&api.LockOptions{
		Key:        consul.DefaultKey(resource),
		Value:      []byte("foreign value"),
		SessionTTL: "10s",
		LockDelay:  time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	locked := make(chan (<-chan struct{}), 1)
	lockErr := make(chan error, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		lost, err := lock.Lock(stop)
		if err != nil {
			lockErr <- err
			return
		}
		if lost != nil {
			h.enter("api.Lock")
		}
		locked <- lost
	}()
	// api.Lock waits while the elector leads.
	select {
	case <-locked:
		t.Fatal("api.Lock acquired a key the elector holds")
	case err := <-lockErr:
		t.Fatalf("api.Lock: %v", err)
	case <-time.After(time.Second):
	}

	// The elector gives up; api.Lock takes over before the elector's
	// RetryInterval has passed, and the elector sees it lead.
	if err := el.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	var lost <-chan struct{}
	select {
	case lost = <-locked:
	case err := <-lockErr:
		t.Fatalf("api.Lock: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("api.Lock did not acquire after the elector released")
	}
	pair := leaderOf(t, lockClient, resource)
	seen := ev.wait(t, 10*time.Second, "the elector seeing api.Lock lead", func(ev event) bool {
		return !ev.IsLeader && ev.LeaderID != "" && ev.LeaderID != "ours"
	})
	if seen.LeaderID != pair.Session || string(seen.Value) != "foreign value" {
		t.Errorf("elector sees leader %q value %q; api.Lock holds with session %s", seen.LeaderID, seen.Value, pair.Session)
	}
	l, err := el.Leader(context.Background())
	if err != nil || l.LeaderID != pair.Session || l.Term != pair.ModifyIndex || l.IsLeader {
		t.Errorf("Leader() = %+v, %v; want api.Lock's session %s, term %d", l, err, pair.Session, pair.ModifyIndex)
	}
	// The elector does not take the key while api.Lock holds it.
	select {
	case <-lost:
		t.Fatal("api.Lock lost the key")
	case <-time.After(2 * time.Second):
	}

	// api.Lock gives up; the elector takes over.
	h.leave("api.Lock")
	if err := lock.Unlock(); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	back := ev.wait(t, 10*time.Second, "our leader call", leads)
	if back.Term <= pair.ModifyIndex {
		t.Errorf("term %d after api.Lock's term %d", back.Term, pair.ModifyIndex)
	}
}
