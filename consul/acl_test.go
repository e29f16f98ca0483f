package consul_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/consul"
	"github.com/consul-leader/consul-leader/election"
)

// newToken creates a token with a policy of rules; empty rules make a token
// without any right.
func newToken(t *testing.T, mgmt *api.Client, name, rules string) string {
	t.Helper()
	tok := &api.ACLToken{Description: name}
	if rules != "" {
		p, _, err := mgmt.ACL().PolicyCreate(&api.ACLPolicy{Name: name, Rules: rules}, nil)
		if err != nil {
			t.Fatalf("create policy %s: %v", name, err)
		}
		tok.Policies = []*api.ACLTokenPolicyLink{{ID: p.ID}}
	}
	tok, _, err := mgmt.ACL().TokenCreate(tok, nil)
	if err != nil {
		t.Fatalf("create token %s: %v", name, err)
	}
	return tok.SecretID
}

// TestACL runs electors against an agent whose ACLs deny by default: a
// token that may write the key and sessions leads, with a check-bound
// session too if it may write the check's service; tokens without those
// rights make the handler see an error wrapping ErrPermissionDenied rather
// than follow silently.
func TestACL(t *testing.T) {
	t.Parallel()
	srv := testserver.StartConsul(t, testserver.ConsulOptions{ACL: true})
	mgmt := newClient(t, srv.Addr, srv.ManagementToken)
	writer := newToken(t, mgmt, "writer", `
key_prefix "service/acl-" { policy = "write" }
session_prefix "" { policy = "write" }
service "consul-leader" { policy = "write" }`)
	reader := newToken(t, mgmt, "reader", `
key_prefix "service/acl-" { policy = "read" }
session_prefix "" { policy = "write" }`)
	nobody := newToken(t, mgmt, "nobody", "")
	noRegister := newToken(t, mgmt, "no-register", `
key_prefix "service/acl-" { policy = "write" }
key_prefix "service/acl-h/leader.candidates/" { policy = "read" }
session_prefix "" { policy = "write" }`)
	exact := newToken(t, mgmt, "exact", `
key "service/acl-g/leader" { policy = "write" }
session_prefix "" { policy = "write" }`)

	mk := func(resource, id, token string) cand {
		o := candidate(t, srv, resource, id) // a client without a token of its own
		o.Token = token
		return o
	}
	denied := func(ev event) bool { return ev.Err != nil && errors.Is(ev.Err, election.ErrPermissionDenied) }

	t.Run("writer leads", func(t *testing.T) {
		t.Parallel()
		_, ev := start(t, mk("acl-a", "writer", writer))
		ev.wait(t, 10*time.Second, "leader call", leads)
	})
	t.Run("writer leads check-bound", func(t *testing.T) {
		t.Parallel()
		o := mk("acl-b", "writer", writer)
		o.CheckTTL, o.TTL = 2*time.Second, 0
		_, ev := start(t, o)
		ev.wait(t, 10*time.Second, "leader call", leads)
	})
	t.Run("reader cannot acquire", func(t *testing.T) {
		t.Parallel()
		_, ev := start(t, mk("acl-c", "reader", reader))
		got := ev.wait(t, 10*time.Second, "permission error", denied)
		t.Logf("handler told: %v", got.Err)
	})
	t.Run("reader cannot create a check", func(t *testing.T) {
		t.Parallel()
		o := mk("acl-d", "reader", reader)
		o.CheckTTL, o.TTL = 2*time.Second, 0
		_, ev := start(t, o)
		got := ev.wait(t, 10*time.Second, "permission error", denied)
		t.Logf("handler told: %v", got.Err)
	})
	t.Run("nobody cannot create a session", func(t *testing.T) {
		t.Parallel()
		el, ev := start(t, mk("acl-e", "nobody", nobody))
		got := ev.wait(t, 10*time.Second, "permission error", denied)
		t.Logf("handler told: %v", got.Err)
		_, err := el.Leader(context.Background())
		if !errors.Is(err, election.ErrPermissionDenied) {
			t.Errorf("Leader() = %v; want an error wrapping ErrPermissionDenied", err)
		}
	})
	t.Run("no read on the term offset", func(t *testing.T) {
		t.Parallel()
		_, ev := start(t, mk("acl-g", "exact", exact))
		got := ev.wait(t, 10*time.Second, "permission error", denied)
		if !strings.Contains(got.Err.Error(), consul.OffsetKeySuffix) || !strings.Contains(got.Err.Error(), "key:read") {
			t.Errorf("handler told %v; want the offset key and the right it needs named", got.Err)
		}
		t.Logf("handler told: %v", got.Err)
	})
	t.Run("handoff without the right to register", func(t *testing.T) {
		t.Parallel()
		oa := mk("acl-h", "a", noRegister)
		oa.Handoff = true
		a, evA := start(t, oa)
		evA.wait(t, 10*time.Second, "a leads", leads)
		ob := mk("acl-h", "b", noRegister)
		ob.Handoff = true
		logs := &lines{}
		ob.Logger = slog.New(slog.NewTextHandler(logs, nil))
		_, evB := start(t, ob)
		evB.wait(t, 10*time.Second, "b sees a", sees("a"))
		for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), "cannot register for handoff"); {
			if time.Now().After(deadline) {
				t.Fatalf("b did not warn that it cannot register; its logs:\n%s", logs)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := a.Release(context.Background()); err != nil {
			t.Fatal(err)
		}
		evB.wait(t, 5*time.Second, "b leads after a plain release", leads)
	})
	t.Run("unknown token", func(t *testing.T) {
		t.Parallel()
		_, ev := start(t, mk("acl-f", "stranger", "00000000-0000-4000-8000-000000000000"))
		got := ev.wait(t, 10*time.Second, "permission error", denied)
		t.Logf("handler told: %v", got.Err)
	})
}
