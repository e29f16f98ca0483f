package redis_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/backends"
	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/redis"
)

// TestMigrationBetweenPrefixes moves a resource from one key prefix to
// another through backends.Migration, which needs RaiseTermFloor: the term
// on the new keys is above every term of the old ones.
func TestMigrationBetweenPrefixes(t *testing.T) {
	srv := startRedis(t, srvOpts())
	admin := client(t, srv.Addr())
	ctx := ctxT(t, 10*time.Second)
	admin.Set(ctx, "old:{res}:term", 41, 0)

	open := func(prefix string) *redis.Backend {
		u := &url.URL{Scheme: "redis", Host: srv.Addr(), RawQuery: "keyPrefix=" + prefix}
		b, err := redis.OpenBackend(ctx, u, election.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	m, err := backends.Migration(open("old"), open("new"))
	if err != nil {
		t.Fatal(err)
	}
	el, err := election.NewOwning(m, opts("res", "a").Options)
	if err != nil {
		t.Fatal(err)
	}
	ev := newEvents()
	if err := el.Start(context.Background(), ev.handler); err != nil {
		t.Fatal(err)
	}
	l, _ := ev.wait(t, 0, 3*time.Second, "leader", leading)
	if l.Term <= 42 {
		t.Fatalf("term %d through the migration; the old keys issued 42", l.Term)
	}
	// The old counter was raised to the new term, so that a process still on
	// the old keys alone cannot issue it again.
	if v, _ := admin.Get(ctx, "old:{res}:term").Uint64(); v < l.Term {
		t.Fatalf("old counter %d, below the term %d", v, l.Term)
	}
	if err := el.Close(ctx); err != nil { // closes both backends and their clients
		t.Fatal(err)
	}
	if n := admin.Exists(ctx, "old:{res}:leader", "new:{res}:leader").Val(); n != 0 {
		t.Fatalf("%d leader keys left after Close", n)
	}
	// Campaigning on the new prefix alone continues above.
	b := open("new")
	defer b.Close()
	s := session(t, b, "res", "b", time.Second)
	if got := acquire(t, s); got.Term <= l.Term {
		t.Fatalf("term %d on the new keys after %d", got.Term, l.Term)
	}
}
