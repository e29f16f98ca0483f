//go:build go1.25

package election_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// logKeys are the attribute names the module logs under. The first seven
// name the same things in every record, and in the events (see Source):
// an error is always "err"; a term's end, "cause".
var logKeys = []string{
	"resource", "id", "term", "session", "backend", "cause", "err",
	// Names of one record each.
	"step", "highest_seen", "leader", "for_at_least", "panic", "stack", "shared_session",
}

// keyChecker is a slog.Handler that reports every record with an
// attribute name not in logKeys, an error under a name other than err or
// cause, or an elector's record without resource, id and backend.
type keyChecker struct {
	mu    *sync.Mutex
	bad   *[]string
	seen  map[string]bool // every key seen in a record
	attrs []slog.Attr
}

func newKeyChecker() *keyChecker {
	return &keyChecker{mu: &sync.Mutex{}, bad: new([]string), seen: map[string]bool{}}
}

func (k *keyChecker) Enabled(context.Context, slog.Level) bool { return true }

func (k *keyChecker) WithAttrs(as []slog.Attr) slog.Handler {
	return &keyChecker{mu: k.mu, bad: k.bad, seen: k.seen, attrs: append(slices.Clip(k.attrs), as...)}
}

func (k *keyChecker) WithGroup(name string) slog.Handler {
	k.report("a group %q", name)
	return k
}

func (k *keyChecker) report(format string, args ...any) {
	k.mu.Lock()
	defer k.mu.Unlock()
	*k.bad = append(*k.bad, fmt.Sprintf(format, args...))
}

func (k *keyChecker) Handle(_ context.Context, r slog.Record) error {
	as := slices.Clone(k.attrs)
	r.Attrs(func(a slog.Attr) bool { as = append(as, a); return true })
	has := map[string]bool{}
	for _, a := range as {
		has[a.Key] = true
		k.mu.Lock()
		k.seen[a.Key] = true
		k.mu.Unlock()
		if !slices.Contains(logKeys, a.Key) {
			k.report("record %q: attribute %q is not a known name (resource, id, term, session, backend, cause, err, ...)", r.Message, a.Key)
		}
		if _, isErr := a.Value.Any().(error); isErr && a.Key != "err" && a.Key != "cause" {
			k.report("record %q: an error under %q, not err", r.Message, a.Key)
		}
	}
	if !has["shared_session"] && !(has["resource"] && has["id"] && has["backend"]) {
		k.report("record %q: an elector's record without resource, id and backend: %v", r.Message, as)
	}
	if has["shared_session"] && !has["backend"] {
		k.report("record %q: a shared session's record without backend", r.Message)
	}
	return nil
}

// TestLogKeys: over a run of the memory store that goes through the
// engine's logging paths (leading, following, a store cut off, a release,
// handler errors and panics and overruns, a lost session, a shared
// session), every record names the elector, term, session, backend, cause
// and error under the same keys.
func TestLogKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		kc := newKeyChecker()
		log := slog.New(kc)
		store := memory.NewStore()
		const ttl = 10 * time.Second
		var calls int
		var mu sync.Mutex
		h := func(ctx context.Context, l election.Leadership) error {
			if !l.IsLeader {
				return errors.New("follower handler error")
			}
			mu.Lock()
			calls++
			n := calls
			mu.Unlock()
			switch n {
			case 1:
				<-ctx.Done()
				time.Sleep(ttl + time.Second) // overruns its term
				return nil
			case 2:
				return errors.New("leader handler error")
			case 3:
				panic("handler panic")
			}
			<-ctx.Done()
			return nil
		}
		opts := func(id string) election.Options {
			return election.Options{Resource: "r", ID: id, TTL: ttl, Logger: log}
		}
		a := startElector(t, store, opts("a"), h)
		synctest.Wait()
		startElector(t, store, opts("b"), h)
		time.Sleep(time.Second)
		_ = a.Release(ctx)
		time.Sleep(3 * ttl)
		synctest.Wait()
		for _, id := range []string{"a", "b"} {
			store.Cut(id)
			time.Sleep(2 * ttl) // past the step-down, and a new session's creation
			synctest.Wait()
			store.Heal(id)
			time.Sleep(ttl)
			synctest.Wait()
		}
		store.Expire("r")
		time.Sleep(ttl)
		synctest.Wait()
		store.Reset() // terms go back
		time.Sleep(3 * ttl)
		synctest.Wait()

		conn := store.Connect("p1")
		sess, err := election.NewSharedSession(conn, election.SessionOptions{TTL: ttl, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		c, err := election.New(conn, election.Options{Resource: "s", ID: "c", Session: sess, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(ctx, h); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		store.Cut("p1")
		time.Sleep(ttl)
		synctest.Wait()
		store.Heal("p1")
		time.Sleep(ttl)
		synctest.Wait()
		store.Expire("s")
		time.Sleep(ttl)
		synctest.Wait()
		if err := c.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := sess.Close(ctx); err != nil {
			t.Fatal(err)
		}

		kc.mu.Lock()
		defer kc.mu.Unlock()
		for _, b := range slices.Compact(slices.Sorted(slices.Values(*kc.bad))) {
			t.Error(b)
		}
		for _, key := range logKeys {
			// "leader" names the leader with a term gone back, which
			// TestTermsGrowAfterStoreLoss covers.
			if !kc.seen[key] && key != "leader" {
				t.Errorf("no record had %q: the run does not cover the records that log it", key)
			}
		}
	})
}
