package redis

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"
)

// DefaultMaxRequests is BackendOptions.MaxRequests when it is zero.
const DefaultMaxRequests = 8

// limiter runs a backend's scripts through its client, at most cap(slots)
// at a time, so that a burst of requests (10,000 resources acquired at
// once on a shared session) takes a few connections from the client's
// pool rather than growing it to its PoolSize.
type limiter struct {
	client goredis.UniversalClient
	slots  chan struct{}
}

var _ goredis.Scripter = (*limiter)(nil)

func newLimiter(client goredis.UniversalClient, n int) *limiter {
	return &limiter{client: client, slots: make(chan struct{}, n)}
}

// take waits for a free slot, or until ctx ends.
func (l *limiter) take(ctx context.Context) error {
	select {
	case l.slots <- struct{}{}:
		return nil
	default:
	}
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("redis: waiting for one of the backend's %d request slots: %w", cap(l.slots), ctx.Err())
	}
}

func (l *limiter) done() { <-l.slots }

// refused returns a command that failed with err before it was sent.
func refused(ctx context.Context, err error, args ...any) *goredis.Cmd {
	cmd := goredis.NewCmd(ctx, args...)
	cmd.SetErr(err)
	return cmd
}

func (l *limiter) Eval(ctx context.Context, script string, keys []string, args ...any) *goredis.Cmd {
	if err := l.take(ctx); err != nil {
		return refused(ctx, err, "eval")
	}
	defer l.done()
	return l.client.Eval(ctx, script, keys, args...)
}

func (l *limiter) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *goredis.Cmd {
	if err := l.take(ctx); err != nil {
		return refused(ctx, err, "evalsha")
	}
	defer l.done()
	return l.client.EvalSha(ctx, sha1, keys, args...)
}

func (l *limiter) EvalRO(ctx context.Context, script string, keys []string, args ...any) *goredis.Cmd {
	if err := l.take(ctx); err != nil {
		return refused(ctx, err, "eval_ro")
	}
	defer l.done()
	return l.client.EvalRO(ctx, script, keys, args...)
}

func (l *limiter) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...any) *goredis.Cmd {
	if err := l.take(ctx); err != nil {
		return refused(ctx, err, "evalsha_ro")
	}
	defer l.done()
	return l.client.EvalShaRO(ctx, sha1, keys, args...)
}

func (l *limiter) ScriptExists(ctx context.Context, hashes ...string) *goredis.BoolSliceCmd {
	if err := l.take(ctx); err != nil {
		cmd := goredis.NewBoolSliceCmd(ctx, "script", "exists")
		cmd.SetErr(err)
		return cmd
	}
	defer l.done()
	return l.client.ScriptExists(ctx, hashes...)
}

func (l *limiter) ScriptLoad(ctx context.Context, script string) *goredis.StringCmd {
	if err := l.take(ctx); err != nil {
		cmd := goredis.NewStringCmd(ctx, "script", "load")
		cmd.SetErr(err)
		return cmd
	}
	defer l.done()
	return l.client.ScriptLoad(ctx, script)
}
