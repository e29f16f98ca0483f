package redis_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/consul-leader/consul-leader/election"
)

// minimalACL is the least a user needs, as documented in the package: the
// scripts and the commands they run, on the prefix's keys, and the
// release-notice and keyspace channels.
var minimalACL = []any{
	"resetkeys", "~election:*",
	"resetchannels", "&election:*", "&__keyspace@*__:election:*",
	"-@all", "+hello", "+ping", "+evalsha", "+eval",
	"+get", "+set", "+incr", "+pexpire", "+pttl", "+del", "+publish",
	"+subscribe", "+unsubscribe",
}

// aclUser creates a user with password pw and the given rules.
func aclUser(t *testing.T, admin *goredis.Client, name string, rules ...any) {
	t.Helper()
	args := append([]any{"ACL", "SETUSER", name, "reset", "on", ">pw"}, rules...)
	if err := admin.Do(context.Background(), args...).Err(); err != nil {
		t.Fatalf("ACL SETUSER %s: %v", name, err)
	}
}

func asUser(name string) func(*goredis.Options) {
	return func(o *goredis.Options) { o.Username, o.Password = name, "pw" }
}

// logBuffer collects an elector's warnings.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestACLAllowedUserLeads(t *testing.T) {
	srv := startRedis(t, srvOpts())
	admin := client(t, srv.Addr())
	aclUser(t, admin, "elector", minimalACL...)
	logs := &logBuffer{}
	oa := opts("res", "a")
	oa.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ea, eva := start(t, client(t, srv.Addr(), asUser("elector")), oa)
	l, _ := eva.wait(t, 0, 3*time.Second, "a leading", leading)
	_, evb := start(t, client(t, srv.Addr(), asUser("elector")), opts("res", "b"))
	evb.wait(t, 0, 3*time.Second, "b following a", func(l election.Leadership) bool { return l.LeaderID == "a" })
	time.Sleep(100 * time.Millisecond) // b waits for a change
	fb := evb.len()
	released := time.Now()
	if err := ea.Release(ctxT(t, 2*time.Second)); err != nil {
		t.Fatal(err)
	}
	next, _ := evb.wait(t, fb, 2*time.Second, "b leading", leading)
	if next.Term <= l.Term {
		t.Fatalf("term %d after %d", next.Term, l.Term)
	}
	if d := time.Since(released); d > 500*time.Millisecond {
		t.Errorf("handover took %v with channel rights; want a release notice", d)
	}
	if strings.Contains(logs.String(), "level=WARN") || strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("warnings with the documented ACL:\n%s", logs)
	}
}

func TestACLDeniedUserIsTold(t *testing.T) {
	srv := startRedis(t, srvOpts())
	admin := client(t, srv.Addr())
	aclUser(t, admin, "stranger", "~other:*", "&*", "+@all")
	_, ev := start(t, client(t, srv.Addr(), asUser("stranger")), opts("res", "a"))
	l, _ := ev.wait(t, 0, 3*time.Second, "error", func(l election.Leadership) bool { return l.Err != nil })
	if !errors.Is(l.Err, election.ErrPermissionDenied) || !strings.Contains(l.Err.Error(), "NOPERM") {
		t.Fatalf("Leadership.Err = %v; want ErrPermissionDenied from NOPERM", l.Err)
	}
	if l.IsLeader {
		t.Fatal("a refused user leads")
	}
}

func TestACLWrongPassword(t *testing.T) {
	srv := startRedis(t, srvOpts())
	admin := client(t, srv.Addr())
	aclUser(t, admin, "elector", minimalACL...)
	_, ev := start(t, client(t, srv.Addr(), func(o *goredis.Options) { o.Username, o.Password = "elector", "wrong" }), opts("res", "a"))
	l, _ := ev.wait(t, 0, 3*time.Second, "error", func(l election.Leadership) bool { return l.Err != nil })
	if !errors.Is(l.Err, election.ErrPermissionDenied) {
		t.Fatalf("Leadership.Err = %v; want ErrPermissionDenied", l.Err)
	}
}

// TestACLWithoutChannels checks that a user without channel rights still
// elects: releases reach the followers by their timers, and the refusal is
// logged once.
func TestACLWithoutChannels(t *testing.T) {
	srv := startRedis(t, srvOpts())
	admin := client(t, srv.Addr())
	aclUser(t, admin, "deaf", "~election:*", "resetchannels", "+@all")
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var els []*election.Elector
	var evs []*events
	for _, id := range []string{"a", "b"} {
		o := opts("res", id)
		o.WaitTime = 300 * time.Millisecond
		o.RetryInterval = time.Second // the released leader leaves the follower time to notice
		o.Logger = log
		el, ev := start(t, client(t, srv.Addr(), asUser("deaf")), o)
		els, evs = append(els, el), append(evs, ev)
	}
	l, id := either(t, evs[0], evs[1], 0, 0, 3*time.Second)
	leader, follower := 0, 1
	if id == "b" {
		leader, follower = 1, 0
	}
	from := evs[follower].len()
	if err := els[leader].Release(ctxT(t, 2*time.Second)); err != nil {
		t.Fatal(err)
	}
	next, _ := evs[follower].wait(t, from, 2*time.Second, "handover", leading)
	if next.Term <= l.Term {
		t.Fatalf("term %d after %d", next.Term, l.Term)
	}
	// The refusal is logged by the subscription's goroutine once the
	// waiting calls were let go: on a busy machine, after the handover.
	const warning = "refused the release-notice channel"
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), warning) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), warning) {
		t.Errorf("no warning about the refused channel within 5s; logs:\n%s", logs)
	}
}
