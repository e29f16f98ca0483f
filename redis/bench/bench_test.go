package bench

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-redsync/redsync/v4"
	rsgoredis "github.com/go-redsync/redsync/v4/redis/goredis/v9"
	goredis "github.com/redis/go-redis/v9"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/redis"
)

// pace is the pause between handovers; retry is the electors'
// RetryInterval, and hold how long a released redsync candidate waits
// before it locks again (longer than redsync's largest retry delay, so that
// another candidate takes over).
const (
	pace  = 150 * time.Millisecond
	retry = 100 * time.Millisecond
	hold  = 300 * time.Millisecond
)

type leaderEvent struct {
	id int
	at time.Time
}

// counter counts the commands a client sends, a script call counting as one.
type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (c *counter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		c.mu.Lock()
		c.n++
		c.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (c *counter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		c.mu.Lock()
		c.n += len(cmds)
		c.mu.Unlock()
		return next(ctx, cmds)
	}
}

func (c *counter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func newClient(b *testing.B, addr string) (*goredis.Client, *counter) {
	c := goredis.NewClient(&goredis.Options{Addr: addr, ContextTimeoutEnabled: true})
	cnt := &counter{}
	c.AddHook(cnt)
	b.Cleanup(func() { _ = c.Close() })
	return c, cnt
}

// rounds releases the current leader b.N times, reports the latencies from
// the release to the next leader's start, and returns the last leader.
func rounds(b *testing.B, leaders <-chan leaderEvent, release func(id int)) int {
	cur := <-leaders
	samples := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		time.Sleep(pace)
		released := time.Now()
		release(cur.id)
		next := <-leaders
		samples = append(samples, next.at.Sub(released))
		cur = next
	}
	b.StopTimer()
	slices.Sort(samples)
	q := func(p float64) float64 {
		return float64(samples[min(int(p*float64(len(samples))), len(samples)-1)].Microseconds()) / 1000
	}
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	return cur.id
}

// idle reports the commands per second of the busiest follower's client
// over 5 s, from a second after the last handover.
func idle(b *testing.B, counters []*counter, leader int) {
	time.Sleep(time.Second)
	before := make([]int, len(counters))
	for i, c := range counters {
		before[i] = c.total()
	}
	const window = 5 * time.Second
	time.Sleep(window)
	var worst float64
	for i, c := range counters {
		if i != leader {
			worst = max(worst, float64(c.total()-before[i])/window.Seconds())
		}
	}
	b.ReportMetric(worst, "idle-follower-cmds/s")
}

func BenchmarkHandover(b *testing.B) {
	srv := testserver.StartRedis(b, testserver.RedisOptions{})

	b.Run("elector", func(b *testing.B) {
		leaders := make(chan leaderEvent, 8)
		var els []*election.Elector
		var counters []*counter
		for i := range 3 {
			c, cnt := newClient(b, srv.Addr())
			el, err := redis.New(c, redis.Options{Options: election.Options{Resource: "bench", TTL: 10 * time.Second, RetryInterval: retry}})
			if err != nil {
				b.Fatal(err)
			}
			ctx, stop := context.WithCancel(context.Background())
			b.Cleanup(func() { _ = el.Close(context.Background()); stop() })
			err = el.Start(ctx, func(ctx context.Context, l election.Leadership) error {
				if l.IsLeader {
					select {
					case leaders <- leaderEvent{i, time.Now()}:
					case <-ctx.Done():
					}
					<-ctx.Done()
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			els, counters = append(els, el), append(counters, cnt)
		}
		last := rounds(b, leaders, func(id int) {
			if err := els[id].Release(context.Background()); err != nil {
				b.Fatal(err)
			}
		})
		idle(b, counters, last)
	})

	b.Run("redsync", func(b *testing.B) {
		leaders := make(chan leaderEvent, 8)
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var releases []chan struct{}
		var counters []*counter
		for i := range 3 {
			c, cnt := newClient(b, srv.Addr())
			rs := redsync.New(rsgoredis.NewPool(c))
			rel := make(chan struct{})
			releases, counters = append(releases, rel), append(counters, cnt)
			wg.Add(1)
			go func() {
				defer wg.Done()
				m := rs.NewMutex("bench-redsync") // default expiry 8 s, 32 tries, 50-250 ms apart
				for ctx.Err() == nil {
					if err := m.LockContext(ctx); err != nil {
						continue
					}
					select {
					case leaders <- leaderEvent{i, time.Now()}:
					case <-ctx.Done():
					}
					select {
					case <-rel:
						_, _ = m.UnlockContext(ctx)
						sleep(ctx, hold)
					case <-ctx.Done():
						_, _ = m.UnlockContext(context.Background())
					}
				}
			}()
		}
		defer func() { stop(); wg.Wait() }()
		last := rounds(b, leaders, func(id int) { releases[id] <- struct{}{} })
		idle(b, counters, last)
	})
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
