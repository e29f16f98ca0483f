package redis_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/redis"
)

// client returns a go-redis client for addr, closed when t ends.
func client(t testing.TB, addr string, edit ...func(*goredis.Options)) *goredis.Client {
	t.Helper()
	o := &goredis.Options{Addr: addr, ContextTimeoutEnabled: true, MaxRetries: -1}
	for _, e := range edit {
		e(o)
	}
	c := goredis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// ctxT returns a context that ends after d or when t ends.
func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// events records the handler calls of one elector.
type events struct {
	mu    sync.Mutex
	calls []election.Leadership
	ch    chan struct{}
}

func newEvents() *events { return &events{ch: make(chan struct{})} }

func (e *events) handler(ctx context.Context, l election.Leadership) error {
	e.mu.Lock()
	e.calls = append(e.calls, l)
	close(e.ch)
	e.ch = make(chan struct{})
	e.mu.Unlock()
	if l.IsLeader {
		<-ctx.Done()
	}
	return nil
}

// wait returns the first call from position from on that satisfies ok, and
// its position.
func (e *events) wait(t testing.TB, from int, within time.Duration, what string, ok func(election.Leadership) bool) (election.Leadership, int) {
	t.Helper()
	deadline := time.After(within)
	for {
		e.mu.Lock()
		for i := from; i < len(e.calls); i++ {
			if ok(e.calls[i]) {
				l := e.calls[i]
				e.mu.Unlock()
				return l, i
			}
		}
		ch := e.ch
		e.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			e.mu.Lock()
			defer e.mu.Unlock()
			t.Fatalf("no %s within %v; calls: %+v", what, within, e.calls)
		}
	}
}

func (e *events) len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.calls)
}

func leading(l election.Leadership) bool { return l.IsLeader }

// start builds and starts an elector with New on c; it is closed when t ends.
func start(t testing.TB, c goredis.UniversalClient, opts redis.Options) (*election.Elector, *events) {
	t.Helper()
	el, err := redis.New(c, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ev := newEvents()
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := el.Close(cctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		stop()
	})
	if err := el.Start(ctx, ev.handler); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return el, ev
}

// opts returns options for candidate id of resource with a short TTL.
func opts(resource, id string) redis.Options {
	return redis.Options{Options: election.Options{
		Resource:      resource,
		ID:            id,
		Value:         []byte("value-of-" + id),
		TTL:           time.Second,
		RetryInterval: 100 * time.Millisecond,
	}}
}

func startRedis(t testing.TB, o testserver.RedisOptions) *testserver.RedisServer {
	t.Helper()
	return testserver.StartRedis(t, o)
}

// counter is a go-redis hook that counts the commands a client sends, a
// script call counting as one.
type counter struct {
	mu   sync.Mutex
	cmds map[string]int
}

func newCounter() *counter { return &counter{cmds: map[string]int{}} }

func (c *counter) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (c *counter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		c.mu.Lock()
		c.cmds[cmd.Name()]++
		c.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (c *counter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		c.mu.Lock()
		for _, cmd := range cmds {
			c.cmds[cmd.Name()]++
		}
		c.mu.Unlock()
		return next(ctx, cmds)
	}
}

func (c *counter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.cmds {
		n += v
	}
	return n
}

func (c *counter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprint(c.cmds)
}

// srvOpts returns server options with extra redis-server arguments.
func srvOpts(args ...string) testserver.RedisOptions {
	return testserver.RedisOptions{Args: args}
}

// tlsNoRoots trusts no certificate authority of the test servers.
var tlsNoRoots = tls.Config{MinVersion: tls.VersionTLS12, RootCAs: x509.NewCertPool()}
