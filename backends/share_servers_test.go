package backends_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/backends"
	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/election"
)

// Electors of one etcd cluster share one client: an elector that closes
// leaves it open for the others (closing an etcd backend closes its
// client), and Opener.Close closes it.
func TestSharedEtcdClientOutlivesElectors(t *testing.T) {
	if testing.Short() {
		t.Skip("real-server test skipped in -short mode")
	}
	srv := testserver.StartEtcd(t, testserver.EtcdOptions{})
	ctx := context.Background()
	var o backends.Opener
	u := "etcd://" + srv.Endpoint() + "?ttl=2"
	var els []*election.Elector
	leads := make(chan string, 8)
	for i := range 3 {
		el, err := o.Open(ctx, fmt.Sprintf("%s&id=n%d", u, i), election.Options{Resource: fmt.Sprint("shared-client-", i%2)})
		if err != nil {
			t.Fatal(err)
		}
		if err := el.Start(ctx, func(ctx context.Context, l election.Leadership) error {
			if l.IsLeader {
				leads <- l.LeaderID
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		els = append(els, el)
	}
	got := map[string]bool{}
	for len(got) < 2 {
		select {
		case id := <-leads:
			got[id] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("leaders so far %v, want one per resource", got)
		}
	}
	// Close the leader of shared-client-0 (n0 or n2): the other candidate
	// of it must take over through the same client.
	leader := "n0"
	if !got["n0"] {
		leader = "n2"
	}
	other := map[string]string{"n0": "n2", "n2": "n0"}[leader]
	idx := map[string]int{"n0": 0, "n2": 2}
	if err := els[idx[leader]].Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-leads:
		if id != other {
			t.Fatalf("%s leads after %s closed, want %s", id, leader, other)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s never took over after %s closed: the shared client was closed with it", other, leader)
	}
	// A new elector of the cluster campaigns through the same client too.
	el, err := o.Open(ctx, u+"&id=n3", election.Options{Resource: "shared-client-2"})
	if err != nil {
		t.Fatal(err)
	}
	if err := el.Start(ctx, func(ctx context.Context, l election.Leadership) error {
		if l.IsLeader {
			leads <- l.LeaderID
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	els = append(els, el)
	select {
	case id := <-leads:
		if id != "n3" {
			t.Fatalf("%s became leader, want n3", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("an elector opened after %s closed never led: the shared client was closed with it", leader)
	}
	for i, el := range els {
		if i != idx[leader] {
			if err := el.Close(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := o.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// session=shared on real stores: the electors of a process lead on one
// store session, also while migrating between two stores, where the
// session is a session on each.
func TestSharedSessionOnServers(t *testing.T) {
	if testing.Short() {
		t.Skip("real-server test skipped in -short mode")
	}
	etcdSrv := testserver.StartEtcd(t, testserver.EtcdOptions{})
	redisSrv := testserver.StartRedis(t, testserver.RedisOptions{})
	consulSrv := testserver.StartConsul(t, testserver.ConsulOptions{})
	ctx := context.Background()
	var o backends.Opener
	defer o.Close(ctx)
	from, to := "etcd://"+etcdSrv.Endpoint(), "redis://"+redisSrv.Addr()
	for _, u := range []string{from, to, "consul://" + consulSrv.Addr, "migrate://?" + url.Values{"from": {from}, "to": {to}}.Encode()} {
		els, ls := leadAll(t, &o, u+sep(u)+"session=shared&id=p&ttl=10", election.Options{}, "s1", "s2", "s3")
		s, err := o.Session(ctx, u, election.SessionOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if id := s.Info().ID; id == "" || l.Session.ID != id {
				t.Errorf("%s: leads on %q, want the shared session %q", u, l.Session.ID, id)
			}
		}
		for _, el := range els {
			if err := el.Close(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := o.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func sep(u string) string {
	if strings.Contains(u, "?") {
		return "&"
	}
	return "?"
}
