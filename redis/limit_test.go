package redis_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

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
