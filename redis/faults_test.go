package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

// twoCandidates starts a and b on resource "res" of the server at addr and
// returns the first leader's events, the other's, and the leadership.
func twoCandidates(t *testing.T, addr string) (lead, follow *events, l election.Leadership) {
	t.Helper()
	_, ea := start(t, client(t, addr), opts("res", "a"))
	_, eb := start(t, client(t, addr), opts("res", "b"))
	l, _ = either(t, ea, eb, 0, 0, 3*time.Second)
	if l.LeaderID == "a" {
		return ea, eb, l
	}
	return eb, ea, l
}

// either waits for a leader call on ea (from position fa) or eb (from fb).
func either(t *testing.T, ea, eb *events, fa, fb int, within time.Duration) (election.Leadership, string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for _, c := range []struct {
			e    *events
			from int
			id   string
		}{{ea, fa, "a"}, {eb, fb, "b"}} {
			c.e.mu.Lock()
			for _, l := range c.e.calls[min(c.from, len(c.e.calls)):] {
				if l.IsLeader {
					c.e.mu.Unlock()
					return l, c.id
				}
			}
			c.e.mu.Unlock()
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no leader within %v", within)
	return election.Leadership{}, ""
}

// newTerm waits for a leader call recorded from positions fl (of lead) and
// ff (of follow) on, and checks that terms kept growing.
func newTerm(t *testing.T, lead, follow *events, fl, ff int, old election.Leadership, within time.Duration) election.Leadership {
	t.Helper()
	l, _ := either(t, lead, follow, fl, ff, within)
	if l.Term <= old.Term {
		t.Fatalf("term %d after term %d; terms must grow", l.Term, old.Term)
	}
	return l
}

func TestKeyDeletedFromOutside(t *testing.T) {
	srv := startRedis(t, srvOpts())
	admin := client(t, srv.Addr())
	lead, follow, l := twoCandidates(t, srv.Addr())
	from, ff := lead.len(), follow.len()
	admin.Del(context.Background(), leaderKey)
	lead.wait(t, from, 2*time.Second, "step-down", func(l election.Leadership) bool { return !l.IsLeader })
	newTerm(t, lead, follow, from, ff, l, 3*time.Second)
}

func TestKeyOverwrittenFromOutside(t *testing.T) {
	srv := startRedis(t, srvOpts())
	admin := client(t, srv.Addr())
	lead, follow, l := twoCandidates(t, srv.Addr())
	from, ff := lead.len(), follow.len()
	// Another token, as a stale or rogue writer would leave; it expires.
	admin.Set(context.Background(), leaderKey, "0123456789abcdef0123456789abcdef\n999\nrogue\nx", 700*time.Millisecond)
	lead.wait(t, from, 2*time.Second, "step-down", func(l election.Leadership) bool { return !l.IsLeader })
	if next := newTerm(t, lead, follow, from, ff, l, 3*time.Second); next.Term <= 999 {
		t.Fatalf("term %d after the rogue record's 999", next.Term)
	}
}

func TestFlushAll(t *testing.T) {
	srv := startRedis(t, srvOpts())
	admin := client(t, srv.Addr())
	lead, follow, l := twoCandidates(t, srv.Addr())
	from, ff := lead.len(), follow.len()
	admin.FlushAll(context.Background())
	lead.wait(t, from, 2*time.Second, "step-down", func(l election.Leadership) bool { return !l.IsLeader })
	newTerm(t, lead, follow, from, ff, l, 3*time.Second)
}

func TestServerRestart(t *testing.T) {
	srv := startRedis(t, srvOpts())
	lead, follow, l := twoCandidates(t, srv.Addr())
	from, ff := lead.len(), follow.len()
	srv.Restart() // empty afterwards: key and term counter are gone
	lead.wait(t, from, 3*time.Second, "step-down", func(l election.Leadership) bool { return !l.IsLeader })
	next := newTerm(t, lead, follow, from, ff, l, 5*time.Second)
	t.Logf("term %d before the restart, %d after", l.Term, next.Term)
}

func TestServerDownReported(t *testing.T) {
	srv := startRedis(t, srvOpts())
	_, ev := start(t, client(t, srv.Addr()), opts("res", "a"))
	ev.wait(t, 0, 3*time.Second, "leader", leading)
	srv.Kill()
	from := ev.len()
	l, _ := ev.wait(t, from, 5*time.Second, "error", func(l election.Leadership) bool { return l.Err != nil })
	if errors.Is(l.Err, election.ErrPermissionDenied) {
		t.Fatalf("unreachable server reported as %v", l.Err)
	}
	srv.Restart()
	ev.wait(t, from, 5*time.Second, "leader again", leading)
}
