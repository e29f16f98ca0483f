package redis

import (
	"context"
	"sync/atomic"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/internal/turn/turntest"
)

// acquireCounter counts the acquire scripts a client sends, and its reads.
type acquireCounter struct{ n, reads atomic.Int64 }

func (c *acquireCounter) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (c *acquireCounter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		args := cmd.Args()
		if len(args) > 1 {
			switch a := args[1].(type) {
			case string:
				switch a {
				case acquireScript.Hash():
					c.n.Add(1)
				case readScript.Hash():
					c.reads.Add(1)
				}
			}
		}
		return next(ctx, cmd)
	}
}

func (c *acquireCounter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// TestCandidatesTakeTurnsAtTheKey: the candidates of one process for one
// resource send one acquisition at a time, and share its outcome, and the
// followers woken by a change share their read of it, so that a release
// costs a few scripts, not one or two per candidate.
func TestCandidatesTakeTurnsAtTheKey(t *testing.T) {
	srv := testserver.StartRedis(t, testserver.RedisOptions{})
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = client.Close() })
	counter := &acquireCounter{}
	client.AddHook(counter)
	b, err := NewBackend(client, BackendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	const n = 40
	handOver := turntest.Herd(t, b, n)
	const handovers = 5
	before, readsBefore := counter.n.Load(), counter.reads.Load()
	for range handovers {
		handOver()
	}
	per := float64(counter.n.Load()-before) / handovers
	reads := float64(counter.reads.Load()-readsBefore) / handovers
	t.Logf("%d candidates: %.1f acquire scripts and %.1f reads per handover", n, per, reads)
	if reads > 10 {
		t.Errorf("%.1f reads per handover among %d candidates of one process; want at most 10 (one per notice)", reads, n)
	}
	if per > 5 {
		t.Errorf("%.1f acquire scripts per handover among %d candidates of one process; want at most 5 (one in flight at a time)", per, n)
	}
}
