package redis_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/redis"
)

// newShared returns a shared session on a new Backend of c; the session and
// then the backend are closed when t ends, after the electors started later.
func newShared(t testing.TB, c goredis.UniversalClient, ttl time.Duration) (*redis.Backend, *election.SharedSession) {
	t.Helper()
	b, err := redis.NewBackend(c, redis.BackendOptions{})
	if err != nil {
		t.Fatalf("NewBackend: %v", err)
	}
	s, err := election.NewSharedSession(b, election.SessionOptions{TTL: ttl, RetryInterval: 100 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatalf("NewSharedSession: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close shared session: %v", err)
		}
		if err := b.Close(); err != nil {
			t.Errorf("close backend: %v", err)
		}
	})
	return b, s
}

// quiet discards the logs of the shared-session tests, which lose sessions
// on purpose.
var quiet = slog.New(slog.DiscardHandler)

// sharedOpts returns options for candidate id of resource on session s.
func sharedOpts(resource, id string, s *election.SharedSession) redis.Options {
	return redis.Options{Options: election.Options{
		Resource:      resource,
		ID:            id,
		Value:         []byte("value-of-" + id),
		RetryInterval: 100 * time.Millisecond,
		Session:       s,
		Logger:        quiet,
	}}
}

// leaderKeyOf is the leader key of resource under the default prefix.
func leaderKeyOf(resource string) string {
	return redis.DefaultKeyPrefix + ":{" + resource + "}:leader"
}

// span is one term as a handler saw it: from its leader call to the end of
// its context (zero while it runs).
type span struct {
	id         string
	term       uint64
	start, end time.Time
	ctx        context.Context // the term's context
	cause      error           // the context's cause, once the handler saw the end

	// afterPrev reports that the previous term of the resource had ended
	// when this one's leader call was made: its handler saw the end, or
	// its context, asked then, reported it.
	afterPrev bool
}

// spans records the terms of every elector, by resource.
type spans struct {
	mu    sync.Mutex
	terms map[string][]*span
}

func newSpans() *spans { return &spans{terms: map[string][]*span{}} }

// handler returns the handler of candidate id for resource.
func (s *spans) handler(resource, id string) election.Handler {
	return func(ctx context.Context, l election.Leadership) error {
		if !l.IsLeader {
			return nil
		}
		sp := &span{id: id, term: l.Term, start: time.Now(), ctx: ctx, afterPrev: true}
		s.mu.Lock()
		if list := s.terms[resource]; len(list) > 0 {
			// A handler blocked on Done learns of the end only once its
			// goroutine runs, which a loaded machine may delay past the
			// next leader call; the term's context itself must have ended.
			prev := list[len(list)-1]
			sp.afterPrev = !prev.end.IsZero() || prev.ctx.Err() != nil
		}
		s.terms[resource] = append(s.terms[resource], sp)
		s.mu.Unlock()
		<-ctx.Done()
		s.mu.Lock()
		sp.end = time.Now()
		sp.cause = context.Cause(ctx)
		s.mu.Unlock()
		return nil
	}
}

// leaders returns, for each resource, the candidate whose term runs; ""
// when none does.
func (s *spans) leaders(resources []string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for _, r := range resources {
		out[r] = ""
		if list := s.terms[r]; len(list) > 0 && list[len(list)-1].end.IsZero() {
			out[r] = list[len(list)-1].id
		}
	}
	return out
}

// waitAll waits up to d until every resource has a running term of id ("":
// no running term), and fails t otherwise.
func (s *spans) waitAll(t testing.TB, resources []string, id string, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for deadline := start.Add(d); ; time.Sleep(5 * time.Millisecond) {
		ls := s.leaders(resources)
		n := 0
		for _, l := range ls {
			if l == id {
				n++
			}
		}
		if n == len(resources) {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %d of %d resources have %q as leader; terms:\n%s", d, n, len(resources), id, s.dump())
		}
	}
}

// waitEnded waits up to d until every term of id that began before since
// has ended (of the resources only, if any), fails t otherwise, and
// returns how long it waited.
func (s *spans) waitEnded(t testing.TB, id string, since time.Time, d time.Duration, only ...string) time.Duration {
	t.Helper()
	start := time.Now()
	for deadline := start.Add(d); ; time.Sleep(5 * time.Millisecond) {
		running := 0
		s.mu.Lock()
		for r, list := range s.terms {
			if len(only) > 0 && !slices.Contains(only, r) {
				continue
			}
			for _, sp := range list {
				if sp.id == id && sp.start.Before(since) && sp.end.IsZero() {
					running++
				}
			}
		}
		s.mu.Unlock()
		if running == 0 {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %d terms of %s that began before %s still run; terms:\n%s", d, running, id, since.Format("15:04:05.000"), s.dump())
		}
	}
}

// checkEndedBy fails t if a term of id that began before since ended for a
// cause other than want.
func (s *spans) checkEndedBy(t testing.TB, id string, since time.Time, want error) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for r, list := range s.terms {
		for _, sp := range list {
			if sp.id == id && sp.start.Before(since) && !sp.end.IsZero() && !errors.Is(sp.cause, want) {
				t.Errorf("%s: term %d of %s ended at %s with %v, not %v", r, sp.term, id, sp.end.Format("15:04:05.000"), sp.cause, want)
			}
		}
	}
}

// checkNoOverlap fails t if a term of a resource began before the previous
// term of that resource ended, or if terms did not grow. A term has ended
// once its context has: a handler that checks its context before acting
// acts no more, whenever its goroutine next runs.
func (s *spans) checkNoOverlap(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for r, list := range s.terms {
		for i := 1; i < len(list); i++ {
			prev, cur := list[i-1], list[i]
			switch {
			case !cur.afterPrev:
				t.Errorf("%s: term %d of %s began at %s, before term %d of %s ended (its handler saw the end at %s)", r, cur.term, cur.id,
					cur.start.Format("15:04:05.000"), prev.term, prev.id, prev.end.Format("15:04:05.000"))
			case !cur.start.After(prev.end):
				t.Logf("%s: term %d of %s began at %s, after the context of term %d of %s had ended; its handler saw the end at %s",
					r, cur.term, cur.id, cur.start.Format("15:04:05.000"), prev.term, prev.id, prev.end.Format("15:04:05.000"))
			}
			if cur.term <= prev.term {
				t.Errorf("%s: term %d of %s follows term %d of %s", r, cur.term, cur.id, prev.term, prev.id)
			}
		}
	}
}

func (s *spans) dump() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var rs []string
	for r := range s.terms {
		rs = append(rs, r)
	}
	sort.Strings(rs)
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "  %s:", r)
		for _, sp := range s.terms[r] {
			end := "running"
			if !sp.end.IsZero() {
				end = sp.end.Format("15:04:05.000")
			}
			fmt.Fprintf(&b, " [%s term %d %s-%s]", sp.id, sp.term, sp.start.Format("15:04:05.000"), end)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// leaseCalls is a go-redis hook that counts the script calls whose only
// key is a lease key (the renewals, and the final close), and every other
// command.
type leaseCalls struct {
	mu     sync.Mutex
	leases int
	others map[string]int
}

func newLeaseCalls() *leaseCalls { return &leaseCalls{others: map[string]int{}} }

func (c *leaseCalls) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (c *leaseCalls) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		c.count(cmd)
		return next(ctx, cmd)
	}
}

func (c *leaseCalls) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		for _, cmd := range cmds {
			c.count(cmd)
		}
		return next(ctx, cmds)
	}
}

func (c *leaseCalls) count(cmd goredis.Cmder) {
	args := cmd.Args()
	c.mu.Lock()
	defer c.mu.Unlock()
	if name := cmd.Name(); (name == "evalsha" || name == "eval") && len(args) >= 4 && fmt.Sprint(args[2]) == "1" &&
		strings.HasPrefix(fmt.Sprint(args[3]), redis.DefaultKeyPrefix+":lease:") {
		c.leases++
		return
	}
	c.others[cmd.Name()]++
}

// quiet waits until no command but lease calls was sent for d, and fails t
// if that takes longer than limit.
func (c *leaseCalls) quiet(t testing.TB, d, limit time.Duration) {
	t.Helper()
	end := time.Now().Add(limit)
	_, last := c.snapshot()
	since := time.Now()
	for time.Since(since) < d {
		if time.Now().After(end) {
			t.Fatalf("commands other than lease calls still sent %v after the acquisitions", limit)
		}
		time.Sleep(d / 10)
		if _, now := c.snapshot(); len(diff(now, last)) > 0 {
			last, since = now, time.Now()
		}
	}
}

// snapshot returns the lease calls and the other commands counted so far.
func (c *leaseCalls) snapshot() (leases int, others map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	others = map[string]int{}
	for k, v := range c.others {
		others[k] = v
	}
	return c.leases, others
}

// diff returns the counts of after minus before, without zeros.
func diff(after, before map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}
