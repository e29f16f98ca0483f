package consul_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/consul"
	"github.com/consul-leader/consul-leader/election"
)

// TestNilClientFromEnvironment: New and NewBackend with a nil client make
// one from the CONSUL_* environment variables, as api.DefaultConfig does:
// the agent's address and the ACL token, without which an agent that
// denies by default refuses the session. The elector closes that client's
// connections when it is closed.
func TestNilClientFromEnvironment(t *testing.T) {
	srv := testserver.StartConsul(t, testserver.ConsulOptions{ACL: true})
	t.Setenv("CONSUL_HTTP_ADDR", srv.Addr)
	t.Setenv("CONSUL_HTTP_TOKEN", srv.ManagementToken)

	before := goleak.IgnoreCurrent()
	o := consul.Options{Options: election.Options{Resource: "from-env", ID: "a", TTL: 10 * time.Second}}
	el, ev := start(t, cand{nil, o})
	ev.wait(t, 10*time.Second, "leader call", leads)
	if _, err := el.Leader(context.Background()); err != nil {
		t.Fatalf("Leader: %v", err)
	}
	// The client is closed with the elector: none of its connections'
	// goroutines is left, though the agent still runs.
	if err := el.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := goleak.Find(before); err != nil {
		t.Errorf("the elector's own client was left open: %v", err)
	}

	_, ev = start(t, cand{nil, o})
	ev.wait(t, 10*time.Second, "leader call", leads)
	b, err := consul.NewBackend(nil, consul.Options{})
	if err != nil {
		t.Fatalf("NewBackend(nil): %v", err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rec, err := b.Watch(ctx, "from-env", 0, 0)
	if err != nil || rec.LeaderID != "a" {
		t.Fatalf("Watch on NewBackend(nil) = %+v, %v; want the leader a", rec, err)
	}

	t.Setenv("CONSUL_HTTP_TOKEN", "")
	nb, err := consul.NewBackend(nil, consul.Options{})
	if err != nil {
		t.Fatalf("NewBackend(nil): %v", err)
	}
	defer nb.Close()
	if _, err := nb.Watch(ctx, "from-env", 0, 0); !errors.Is(err, election.ErrPermissionDenied) {
		t.Errorf("Watch without CONSUL_HTTP_TOKEN = %v; want ErrPermissionDenied (the token of the first read came from the environment)", err)
	}
}

// TestNilBackendOfSharedSession: NewSharedSession refuses a nil backend
// with an *election.OptionError naming backend, as election.NewSharedSession
// does.
func TestNilBackendOfSharedSession(t *testing.T) {
	_, err := consul.NewSharedSession(nil, election.SessionOptions{})
	var oe *election.OptionError
	if !errors.As(err, &oe) || oe.Field != "backend" || !errors.Is(err, election.ErrInvalidOptions) {
		t.Errorf("NewSharedSession(nil) = %v; want an *election.OptionError naming backend", err)
	}
}
