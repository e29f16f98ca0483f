package etcd

import (
	"errors"
	"net/url"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/consul-leader/consul-leader/election"
)

// TestAuth runs electors against an etcd with auth enabled: a user whose
// role may write the election's prefix leads; one that may only read it, or
// has no role, is told ErrPermissionDenied; a wrong password fails OpenURL.
func TestAuth(t *testing.T) {
	srv := startEtcd(t)
	// Roles are granted on the prefix as a range prefix, as
	// `etcdctl role grant-permission elect readwrite election/guarded --prefix`
	// does: it covers the candidates' keys and the term offset key.
	const resource = "guarded"
	prefix := DefaultPrefix(resource)
	setup := newClient(t, srv.Endpoint())
	ctx := testCtx(t, 60*time.Second)
	steps := []func() error{
		func() error { _, err := setup.UserAdd(ctx, "root", "root-pw"); return err },
		func() error { _, err := setup.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := setup.RoleAdd(ctx, "elect"); return err },
		func() error {
			_, err := setup.RoleGrantPermission(ctx, "elect", prefix, clientv3.GetPrefixRangeEnd(prefix), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := setup.RoleAdd(ctx, "observe"); return err },
		func() error {
			_, err := setup.RoleGrantPermission(ctx, "observe", prefix, clientv3.GetPrefixRangeEnd(prefix), clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error { _, err := setup.UserAdd(ctx, "alice", "alice-pw"); return err },
		func() error { _, err := setup.UserGrantRole(ctx, "alice", "elect"); return err },
		func() error { _, err := setup.UserAdd(ctx, "carol", "carol-pw"); return err },
		func() error { _, err := setup.UserGrantRole(ctx, "carol", "observe"); return err },
		func() error { _, err := setup.UserAdd(ctx, "bob", "bob-pw"); return err },
		func() error { _, err := setup.AuthEnable(ctx); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("auth setup step %d: %v", i, err)
		}
	}
	as := func(user string) *clientv3.Client {
		return newClient(t, srv.Endpoint(), func(c *clientv3.Config) { c.Username, c.Password = user, user+"-pw" })
	}

	tr := newTracker(t)
	startElector(t, as("alice"), opts(resource, "alice"), tr)
	if id := tr.waitLeader("", 5*time.Second); id != "alice" {
		t.Fatalf("leader %s, want alice", id)
	}
	for _, user := range []string{"bob", "carol"} {
		el := startElector(t, as(user), opts(resource, user), tr)
		var got election.Leadership
		if !tr.waitFor(5*time.Second, func() bool { got = tr.seen[user]; return got.Err != nil }) {
			t.Fatalf("%s was not told of an error; last told %+v", user, got)
		}
		t.Logf("%s is told: %v", user, got.Err)
		if !errors.Is(got.Err, election.ErrPermissionDenied) {
			t.Errorf("%s was told %v, want ErrPermissionDenied", user, got.Err)
		}
		l, err := el.Leader(ctx)
		switch user {
		case "bob": // may not even read
			if !errors.Is(err, election.ErrPermissionDenied) {
				t.Errorf("bob's Leader() = %+v, %v; want ErrPermissionDenied", l, err)
			}
		case "carol": // may read
			if err != nil || l.LeaderID != "alice" {
				t.Errorf("carol's Leader() = %+v, %v; want alice", l, err)
			}
		}
	}

	// Through a URL: the right password leads once alice is gone; a wrong
	// one is refused at once.
	u, err := url.Parse("etcd://alice:alice-pw@" + srv.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	el, err := OpenURL(ctx, u, election.Options{Resource: resource, ID: "url-alice", TTL: MinTTL})
	if err != nil {
		t.Fatalf("OpenURL with alice's password: %v", err)
	}
	if l, err := el.Leader(ctx); err != nil || l.LeaderID != "alice" {
		t.Errorf("Leader() through the URL = %+v, %v; want alice", l, err)
	}
	if err := el.Close(ctx); err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("alice", "wrong")
	if el, err := OpenURL(ctx, u, election.Options{Resource: resource, TTL: MinTTL}); !errors.Is(err, election.ErrPermissionDenied) {
		if el != nil {
			_ = el.Close(ctx)
		}
		t.Fatalf("OpenURL with a wrong password = %v, want ErrPermissionDenied", err)
	}
}
