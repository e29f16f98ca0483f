package backends_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/consul-leader/consul-leader/backends"
	"github.com/consul-leader/consul-leader/election"
)

// leadAll starts an elector per resource on url and waits until each leads.
func leadAll(t *testing.T, o *backends.Opener, url string, opts election.Options, resources ...string) ([]*election.Elector, []election.Leadership) {
	t.Helper()
	ctx := context.Background()
	var els []*election.Elector
	var ls []election.Leadership
	for _, r := range resources {
		opts.Resource = r
		el, err := o.Open(ctx, url, opts)
		if err != nil {
			t.Fatalf("Open(%s) for %s: %v", url, r, err)
		}
		led := make(chan election.Leadership, 1)
		if err := el.Start(ctx, func(ctx context.Context, l election.Leadership) error {
			if l.IsLeader {
				select {
				case led <- l:
				default:
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		select {
		case l := <-led:
			ls = append(ls, l)
		case <-time.After(10 * time.Second):
			t.Fatalf("%s never led", r)
		}
		els = append(els, el)
	}
	return els, ls
}

// Electors opened with session=shared campaign on the Opener's one session
// of the store, which Session returns; Opener.Close closes it.
func TestOpenerSharedSession(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx := context.Background()
	var o backends.Opener
	s, err := o.Session(ctx, "memory://s?ttl=3s", election.SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	again, err := o.Session(ctx, "memory://s", election.SessionOptions{})
	if err != nil || again != s {
		t.Fatalf("Session again = %p, %v; want the same session %p", again, err, s)
	}
	if _, err := o.Session(ctx, "memory://s", election.SessionOptions{TTL: 9 * time.Second}); !errors.Is(err, election.ErrInvalidOptions) {
		t.Errorf("Session with other options: %v, want ErrInvalidOptions", err)
	}
	els, ls := leadAll(t, &o, "memory://s?session=shared&id=n1", election.Options{}, "a", "b")
	el3, ls3 := leadAll(t, &o, "memory://s?id=n1", election.Options{Session: s}, "c")
	els, ls = append(els, el3...), append(ls, ls3...)
	id := s.Info().ID
	for _, l := range ls {
		if id == "" || l.Session.ID != id {
			t.Errorf("%s leads on session %q, want the shared session %q", l.LeaderID, l.Session.ID, id)
		}
	}
	if err := o.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"a", "b", "c"} {
		if leader, _ := o.MemoryStore("s").Leader(r); leader != "" {
			t.Errorf("after Opener.Close, %s is still led by %q", r, leader)
		}
	}
	for _, el := range els {
		if err := el.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenerSessionErrors(t *testing.T) {
	ctx := context.Background()
	var o backends.Opener
	defer o.Close(ctx)
	a, err := o.Session(ctx, "memory://a", election.SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Open(ctx, "memory://b?id=x", election.Options{Resource: "r", Session: a}); !errors.Is(err, backends.ErrOtherSession) {
		t.Errorf("a session of another store: %v, want ErrOtherSession", err)
	}
	own, err := election.NewSharedSession(o.MemoryStore("a").Connect("x"), election.SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Open(ctx, "memory://a?id=x", election.Options{Resource: "r", Session: own}); !errors.Is(err, backends.ErrOtherSession) {
		t.Errorf("a session not of the Opener: %v, want ErrOtherSession", err)
	}
	for _, bad := range []struct{ url, want string }{
		{"memory://a?id=x&session=private", "session=shared"},
		{"consul://127.0.0.1:1?key=jobs&session=shared", "key names the key of one resource"},
		{"etcd://127.0.0.1:1?prefix=/jobs&session=shared", "prefix names the key of one resource"},
	} {
		if _, err := o.Open(ctx, bad.url, election.Options{Resource: "r"}); !errors.Is(err, backends.ErrBadURL) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Open(%s) = %v; want ErrBadURL mentioning %q", bad.url, err, bad.want)
		}
	}
	if _, err := backends.Open(ctx, "consul://127.0.0.1:1?session=shared", election.Options{Resource: "r"}); !errors.Is(err, backends.ErrBadURL) || !strings.Contains(err.Error(), "needs an Opener") {
		t.Errorf("package-level Open with session=shared: %v", err)
	}
	// An elector's TTL must be the session's.
	if _, err := o.Open(ctx, "memory://a?id=y&session=shared&ttl=20s", election.Options{Resource: "r"}); !errors.Is(err, election.ErrInvalidOptions) {
		t.Errorf("another TTL on the session: %v, want ErrInvalidOptions", err)
	}
}

// migrate://...&session=shared puts the electors of a migrating process on
// one shared session, which holds a session on each store.
func TestOpenerMigrationSharedSession(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx := context.Background()
	var o backends.Opener
	const u = "migrate://?from=memory://old&to=memory://new"
	els, ls := leadAll(t, &o, u+"&session=shared&id=p", election.Options{}, "a", "b")
	s, err := o.Session(ctx, u, election.SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range ls {
		if l.Session.ID != s.Info().ID {
			t.Errorf("%s leads on %q, want the Opener's session %q", l.LeaderID, l.Session.ID, s.Info().ID)
		}
		for _, store := range []string{"old", "new"} {
			if id, _ := o.MemoryStore(store).Leader([]string{"a", "b"}[i]); id != "p" {
				t.Errorf("store %s: leader %q, want p", store, id)
			}
		}
	}
	for _, el := range els {
		if err := el.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// With session=shared and no session yet, the first elector creates it
// with its own durations.
func TestOpenerSessionFromFirstElector(t *testing.T) {
	ctx := context.Background()
	var o backends.Opener
	el, err := o.Open(ctx, "memory://s?session=shared&id=a&ttl=3s&renewInterval=500ms", election.Options{Resource: "r"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := o.Session(ctx, "memory://s", election.SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if so := s.Options(); so.TTL != 3*time.Second || so.RenewInterval != 500*time.Millisecond {
		t.Errorf("session TTL %v, renewal %v; want the first elector's 3s and 500ms", so.TTL, so.RenewInterval)
	}
	_ = el.Close(ctx)
	if err := o.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
