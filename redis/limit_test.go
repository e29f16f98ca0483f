package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/consul-leader/consul-leader/conformance"
	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/redis"
)

// TestMaxRequestsBoundsThePool: a burst of requests through one backend
// takes at most MaxRequests connections from the client's pool, however
// large the pool may grow.
func TestMaxRequestsBoundsThePool(t *testing.T) {
	srv := startRedis(t, srvOpts())
	for _, max := range []int{0, 3} {
		c := client(t, srv.Addr(), func(o *goredis.Options) { o.PoolSize = 200 })
		b, err := redis.NewBackend(c, redis.BackendOptions{MaxRequests: max})
		if err != nil {
			t.Fatal(err)
		}
		want := max
		if want == 0 {
			want = redis.DefaultMaxRequests
		}
		ctx := ctxT(t, 30*time.Second)
		var wg sync.WaitGroup
		for range 400 {
			wg.Go(func() {
				if _, err := b.Watch(ctx, "burst", 0, 0); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if got := c.PoolStats().TotalConns; got > uint32(want) || got == 0 {
			t.Errorf("MaxRequests %d: %d connections in the pool after 400 concurrent reads; want 1 to %d", max, got, want)
		}
		_ = b.Close()
	}
}

// TestMaxRequestsWaitHonoursTheDeadline: a request waiting for a slot
// fails when its context ends, while the slots are taken.
func TestMaxRequestsWaitHonoursTheDeadline(t *testing.T) {
	srv := startRedis(t, srvOpts())
	c := client(t, srv.Addr())
	b, err := redis.NewBackend(c, redis.BackendOptions{MaxRequests: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	// The server holds every command for a second: the first read keeps
	// the one slot meanwhile.
	if err := client(t, srv.Addr()).Do(ctxT(t, 5*time.Second), "CLIENT", "PAUSE", "1000", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() {
		_, err := b.Watch(ctxT(t, 10*time.Second), "slot", 0, 0)
		first <- err
	}()
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = b.Watch(ctx, "slot", 0, 0)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "request slots") {
		t.Errorf("a read waiting for the one slot: %v; want its deadline, waiting for a slot", err)
	}
	if err := <-first; err != nil {
		t.Errorf("the read holding the slot: %v", err)
	}
}

// TestSharedSessionBurstWaitsItsTurn: on a slow network (every reply 100
// ms late), 20 resources started at once on one shared session of a
// backend with two request slots all lead without an error: the session
// lets one acquisition at a time begin (MaxAcquiring), so none spends its
// deadline (RequestTimeout, 600 ms at TTL 3 s) waiting for a slot, which
// ten rounds of two would pass.
func TestSharedSessionBurstWaitsItsTurn(t *testing.T) {
	srv := startRedis(t, srvOpts())
	p := testserver.NewProxy(t, srv.Addr())
	b, err := redis.NewBackend(client(t, p.Addr()), redis.BackendOptions{MaxRequests: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if got := b.MaxAcquiring(); got != 1 {
		t.Fatalf("MaxAcquiring() = %d with 2 request slots, want 1", got)
	}
	ss, err := election.NewSharedSession(b, election.SessionOptions{TTL: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ss.Close(ctxT(t, 10*time.Second)); err != nil {
			t.Errorf("Close of the session: %v", err)
		}
	})
	p.DelayReplies(100 * time.Millisecond)
	log := &conformance.TermLog{}
	els := make([]*election.Elector, 20)
	for i := range els {
		el, err := election.New(b, election.Options{Resource: fmt.Sprintf("burst-%02d", i), ID: "a", Session: ss})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := el.Close(ctxT(t, 10*time.Second)); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		els[i] = el
	}
	for _, el := range els {
		if err := el.Start(context.Background(), log.Handler("a")); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, el := range els {
		for !el.IsLeader() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if !el.IsLeader() {
			t.Fatalf("%s does not lead after 30 s", el.State().Resource)
		}
	}
	for _, c := range log.Calls() {
		if c.L.Err != nil {
			t.Errorf("%s told: %v", c.L.Resource, c.L.Err)
		}
	}
}
