package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/redis"
)

// backend returns a Backend on c, closed when t ends.
func backend(t testing.TB, c goredis.UniversalClient, o redis.BackendOptions) *redis.Backend {
	t.Helper()
	b, err := redis.NewBackend(c, o)
	if err != nil {
		t.Fatalf("NewBackend: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func session(t testing.TB, b *redis.Backend, resource, id string, ttl time.Duration) election.Session {
	t.Helper()
	s, err := b.NewSession(ctxT(t, time.Second), election.SessionParams{Resource: resource, ID: id, Value: []byte("v-" + id), TTL: ttl})
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	return s
}

func acquire(t testing.TB, s election.Session) election.Acquisition {
	t.Helper()
	a, err := s.Acquire(ctxT(t, time.Second))
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	return a
}

func read(t testing.TB, b *redis.Backend, resource string) election.Record {
	t.Helper()
	r, err := b.Watch(ctxT(t, time.Second), resource, 0, 0)
	if err != nil {
		t.Fatalf("Watch(0): %v", err)
	}
	return r
}

const leaderKey = "election:{res}:leader"

func TestSessionLifecycle(t *testing.T) {
	srv := startRedis(t, srvOpts())
	cnt := newCounter()
	c := client(t, srv.Addr())
	c.AddHook(cnt)
	admin := client(t, srv.Addr())
	b := backend(t, c, redis.BackendOptions{})
	ctx := ctxT(t, 10*time.Second)

	free := read(t, b, "res")
	if !free.Free() || free.Revision == 0 || free.Term != 0 {
		t.Fatalf("initial record %+v; want free with a revision", free)
	}

	a := session(t, b, "res", "a", 2*time.Second)
	got := acquire(t, a)
	if got.Session != a.Info().ID || got.Term != 1 || got.LeaderID != "a" || string(got.Value) != "v-a" || !got.Renewed {
		t.Fatalf("first Acquire = %+v; want a leading term 1, Renewed", got)
	}
	if got.Revision == 0 || got.Revision == free.Revision {
		t.Fatalf("revision %d after acquiring; free was %d", got.Revision, free.Revision)
	}
	if pttl := admin.PTTL(ctx, leaderKey).Val(); pttl <= 1500*time.Millisecond || pttl > 2*time.Second {
		t.Fatalf("PTTL after Acquire = %v, want about 2s", pttl)
	}
	if again := acquire(t, a); again.Term != got.Term || again.Revision != got.Revision || again.Session != got.Session {
		t.Fatalf("second Acquire = %+v, want the same record %+v", again, got)
	}
	if r := read(t, b, "res"); r.Session != got.Session || r.Term != 1 || r.Revision != got.Revision || r.LeaderID != "a" {
		t.Fatalf("read %+v, want %+v", r, got.Record)
	}

	bs := session(t, b, "res", "b", 2*time.Second)
	lost := acquire(t, bs)
	if lost.Session != a.Info().ID || lost.Term != 1 || lost.Renewed {
		t.Fatalf("contender's Acquire = %+v; want a's record", lost)
	}
	before := cnt.total()
	if err := bs.Renew(ctx); err != nil {
		t.Fatalf("follower Renew: %v", err)
	}
	if n := cnt.total() - before; n != 0 {
		t.Fatalf("follower Renew sent %d commands, want none", n)
	}
	if err := a.Renew(ctx); err != nil {
		t.Fatalf("leader Renew: %v", err)
	}

	if err := a.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := admin.Exists(ctx, leaderKey).Val(); n != 0 {
		t.Fatal("Close left the leader key")
	}
	released := read(t, b, "res")
	if !released.Free() || released.Revision == got.Revision || released.Revision == free.Revision {
		t.Fatalf("after Close: %+v; want free with a new revision", released)
	}
	if second := acquire(t, bs); second.Session != bs.Info().ID || second.Term != 2 {
		t.Fatalf("Acquire after release = %+v; want b leading term 2", second)
	}
	if info := bs.Info(); info.Backend != "redis" || info.TTL != 2*time.Second || info.Fields["key"] != leaderKey {
		t.Fatalf("Info = %+v", info)
	}

	// A session that never acquired sends nothing when closed.
	idle := session(t, b, "res", "c", time.Second)
	before = cnt.total()
	if err := idle.Close(ctx); err != nil || cnt.total() != before {
		t.Fatalf("Close of an idle session: %v, %d commands", err, cnt.total()-before)
	}
}

func TestRenewDetectsLoss(t *testing.T) {
	srv := startRedis(t, srvOpts())
	c := client(t, srv.Addr())
	admin := client(t, srv.Addr())
	b := backend(t, c, redis.BackendOptions{})
	ctx := ctxT(t, 10*time.Second)

	for _, tc := range []struct {
		name string
		take func()
	}{
		{"deleted", func() { admin.Del(ctx, leaderKey) }},
		{"overwritten", func() {
			admin.Set(ctx, leaderKey, "0123456789abcdef0123456789abcdef\n99\nintruder\n", time.Second)
		}},
		{"expired", func() { admin.PExpire(ctx, leaderKey, time.Millisecond); time.Sleep(5 * time.Millisecond) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			admin.Del(ctx, leaderKey)
			s := session(t, b, "res", "a", 2*time.Second)
			acquire(t, s)
			tc.take()
			if err := s.Renew(ctx); !errors.Is(err, election.ErrSessionLost) {
				t.Fatalf("Renew = %v, want ErrSessionLost", err)
			}
			before, _ := admin.Get(ctx, leaderKey).Result()
			if err := s.Close(ctx); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if after, _ := admin.Get(ctx, leaderKey).Result(); after != before {
				t.Fatalf("Close of a lost session changed the key: %q -> %q", before, after)
			}
		})
	}
}

func TestTermCounterOutlivesKey(t *testing.T) {
	srv := startRedis(t, srvOpts())
	c := client(t, srv.Addr())
	admin := client(t, srv.Addr())
	b := backend(t, c, redis.BackendOptions{})
	ctx := ctxT(t, 10*time.Second)

	var last uint64
	for i := 0; i < 3; i++ {
		s := session(t, b, "res", "a", 50*time.Millisecond)
		got := acquire(t, s)
		if got.Session != s.Info().ID || got.Term <= last {
			t.Fatalf("round %d: %+v; want leading with a term above %d", i, got, last)
		}
		last = got.Term
		time.Sleep(80 * time.Millisecond) // the key expires, never released
		if r := read(t, b, "res"); !r.Free() {
			t.Fatalf("round %d: key did not expire: %+v", i, r)
		}
	}
	if ttl := admin.PTTL(ctx, "election:{res}:term").Val(); ttl != -1 {
		t.Fatalf("term counter PTTL = %v, want none (-1)", ttl)
	}
}

func TestTermsGrowAfterCounterLoss(t *testing.T) {
	srv := startRedis(t, srvOpts())
	c := client(t, srv.Addr())
	admin := client(t, srv.Addr())
	b := backend(t, c, redis.BackendOptions{})
	ctx := ctxT(t, 10*time.Second)

	admin.Set(ctx, "election:{res}:term", 41, 0)
	s := session(t, b, "res", "a", time.Second)
	if got := acquire(t, s); got.Term != 42 {
		t.Fatalf("term %d, want 42", got.Term)
	}
	admin.FlushAll(ctx) // key and counter gone, as after a failover that lost them
	s2 := session(t, b, "res", "b", time.Second)
	if got := acquire(t, s2); got.Term != 43 {
		t.Fatalf("term after the counter was lost: %d; want 43, above what this backend saw", got.Term)
	}
	if v := admin.Get(ctx, "election:{res}:term").Val(); v != "43" {
		t.Fatalf("counter = %q, want 43", v)
	}
}

func TestForeignValue(t *testing.T) {
	srv := startRedis(t, srvOpts())
	c := client(t, srv.Addr())
	admin := client(t, srv.Addr())
	b := backend(t, c, redis.BackendOptions{})
	ctx := ctxT(t, 10*time.Second)

	admin.Set(ctx, leaderKey, "not a record", 0)
	r := read(t, b, "res")
	if r.Free() || r.Revision == 0 || r.Term != 0 {
		t.Fatalf("foreign value read as %+v; want held by an unknown session", r)
	}
	s := session(t, b, "res", "a", time.Second)
	if got := acquire(t, s); got.Session == s.Info().ID || got.Revision != r.Revision {
		t.Fatalf("Acquire over a foreign value = %+v; want it refused", got)
	}
	admin.Set(ctx, leaderKey, "another value", 0)
	if r2 := read(t, b, "res"); r2.Revision == r.Revision {
		t.Fatal("a different foreign value kept the revision")
	}
	admin.Set(ctx, "election:{res}:term", "NaN", 0)
	admin.Del(ctx, leaderKey)
	if _, err := b.Watch(ctx, "res", 0, 0); err == nil {
		t.Fatal("read with a corrupt term counter succeeded")
	}
	if _, err := s.Acquire(ctx); err == nil || errors.Is(err, election.ErrPermissionDenied) {
		t.Fatalf("Acquire with a corrupt term counter = %v; want a transient error", err)
	}
}

func TestWatch(t *testing.T) {
	srv := startRedis(t, srvOpts())
	c := client(t, srv.Addr())
	b := backend(t, c, redis.BackendOptions{})
	ctx := ctxT(t, 30*time.Second)

	s := session(t, b, "res", "a", 10*time.Second)
	held := acquire(t, s)

	t.Run("ReturnsAfterWait", func(t *testing.T) {
		start := time.Now()
		r, err := b.Watch(ctx, "res", held.Revision, 300*time.Millisecond)
		if err != nil || r.Revision != held.Revision {
			t.Fatalf("Watch = %+v, %v; want the held record", r, err)
		}
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Fatalf("Watch returned after %v, before its wait", d)
		}
	})
	t.Run("ReturnsAtOnceOnOtherRevision", func(t *testing.T) {
		r, err := b.Watch(ctx, "res", held.Revision+2, 10*time.Second)
		if err != nil || r.Revision != held.Revision {
			t.Fatalf("Watch = %+v, %v", r, err)
		}
	})
	t.Run("WakesOnRelease", func(t *testing.T) {
		got := make(chan time.Time, 1)
		var rec election.Record
		go func() {
			rec, _ = b.Watch(ctx, "res", held.Revision, 10*time.Second)
			got <- time.Now()
		}()
		time.Sleep(200 * time.Millisecond) // the watch is subscribed and waiting
		released := time.Now()
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
		at := <-got
		if !rec.Free() || at.Sub(released) > time.Second {
			t.Fatalf("Watch returned %+v %v after the release; want free at once", rec, at.Sub(released))
		}
		t.Logf("watch woke %v after the release", at.Sub(released))
	})
	t.Run("WakesAtExpiry", func(t *testing.T) {
		// Another process's leader, which died: it renews no more.
		other := backend(t, client(t, srv.Addr()), redis.BackendOptions{})
		s := session(t, other, "res", "b", 300*time.Millisecond)
		held := acquire(t, s)
		start := time.Now()
		r, err := b.Watch(ctx, "res", held.Revision, 10*time.Second)
		if err != nil || !r.Free() {
			t.Fatalf("Watch = %+v, %v; want free", r, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("expiry noticed after %v; TTL is 300ms", d)
		}
	})
	t.Run("Cancelled", func(t *testing.T) {
		s := session(t, b, "res", "c", 10*time.Second)
		held := acquire(t, s)
		defer s.Close(ctx)
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if _, err := b.Watch(cctx, "res", held.Revision, 10*time.Second); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Watch = %v, want its context's error", err)
		}
	})
}

// TestWatchKeyspaceNotifications checks that where the server publishes
// keyspace events, a key deleted from outside wakes the followers at once,
// long before its TTL.
func TestWatchKeyspaceNotifications(t *testing.T) {
	srv := startRedis(t, srvOpts("--notify-keyspace-events", "Kg"))
	c := client(t, srv.Addr())
	admin := client(t, srv.Addr())
	b := backend(t, c, redis.BackendOptions{})
	ctx := ctxT(t, 30*time.Second)

	s := session(t, b, "res", "a", 20*time.Second)
	held := acquire(t, s)
	done := make(chan election.Record, 1)
	go func() {
		r, _ := b.Watch(ctx, "res", held.Revision, 20*time.Second)
		done <- r
	}()
	time.Sleep(200 * time.Millisecond)
	// A renewal (an "expire" event) does not end the watch.
	if err := s.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		t.Fatalf("a renewal ended the watch: %+v", r)
	case <-time.After(200 * time.Millisecond):
	}
	deleted := time.Now()
	admin.Del(ctx, leaderKey)
	select {
	case r := <-done:
		if !r.Free() {
			t.Fatalf("Watch = %+v, want free", r)
		}
		t.Logf("external DEL noticed after %v", time.Since(deleted))
	case <-time.After(2 * time.Second):
		t.Fatal("external DEL not noticed within 2s; the TTL is 20s")
	}
}

func TestBackendClosed(t *testing.T) {
	srv := startRedis(t, srvOpts())
	c := client(t, srv.Addr())
	b := backend(t, c, redis.BackendOptions{})
	ctx := ctxT(t, 10*time.Second)
	s := session(t, b, "res", "a", time.Second)
	held := acquire(t, s)
	watched := make(chan error, 1)
	go func() {
		_, err := b.Watch(ctx, "res", held.Revision, 10*time.Second)
		watched <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-watched; !errors.Is(err, election.ErrClosed) {
		t.Fatalf("Watch during Close = %v, want ErrClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := b.Watch(ctx, "res", 0, 0); !errors.Is(err, election.ErrClosed) {
		t.Fatalf("Watch after Close = %v, want ErrClosed", err)
	}
	if _, err := b.NewSession(ctx, election.SessionParams{Resource: "res", TTL: time.Second}); !errors.Is(err, election.ErrClosed) {
		t.Fatalf("NewSession after Close = %v, want ErrClosed", err)
	}
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("the caller's client was closed: %v", err)
	}
}

func TestRaiseTermFloor(t *testing.T) {
	srv := startRedis(t, srvOpts())
	c := client(t, srv.Addr())
	admin := client(t, srv.Addr())
	b := backend(t, c, redis.BackendOptions{})
	ctx := ctxT(t, 10*time.Second)
	var _ election.TermFloorRaiser = b

	if err := b.RaiseTermFloor(ctx, "res", 41); err != nil {
		t.Fatal(err)
	}
	s := session(t, b, "res", "a", time.Second)
	if got := acquire(t, s); got.Term != 42 {
		t.Fatalf("term after raising the floor to 41: %d, want 42", got.Term)
	}
	if err := b.RaiseTermFloor(ctx, "res", 10); err != nil { // lower: no change
		t.Fatal(err)
	}
	if v := admin.Get(ctx, "election:{res}:term").Val(); v != "42" {
		t.Fatalf("counter after a lower floor: %q, want 42", v)
	}
	// Exact far beyond what Lua's numbers hold exactly.
	if err := b.RaiseTermFloor(ctx, "big", 1<<62+1); err != nil {
		t.Fatal(err)
	}
	if v := admin.Get(ctx, "election:{big}:term").Val(); v != "4611686018427387905" {
		t.Fatalf("counter = %q", v)
	}
	sb := session(t, b, "big", "a", time.Second)
	if got := acquire(t, sb); got.Term != 1<<62+2 {
		t.Fatalf("term after a huge floor: %d, want %d", got.Term, uint64(1<<62+2))
	}
	if err := b.RaiseTermFloor(ctx, "bad resource", 1); !errors.Is(err, election.ErrInvalidOptions) {
		t.Fatalf("RaiseTermFloor with a bad resource = %v", err)
	}
}
