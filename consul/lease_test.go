package consul_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/consul"
	"github.com/consul-leader/consul-leader/election"
)

// lockNow reports whether a fresh session with no lock-delay can lock the
// key of resource at once: it can unless another session holds the key or
// its lock-delay runs.
func lockNow(t testing.TB, admin *api.Client, resource string) bool {
	t.Helper()
	id, _, err := admin.Session().Create(&api.SessionEntry{TTL: "60s", LockDelay: time.Millisecond}, nil)
	if err != nil {
		t.Fatalf("create session: %v", err)
	}
	t.Cleanup(func() { _, _ = admin.Session().Destroy(id, nil) })
	ok, _, err := admin.KV().Acquire(&api.KVPair{Key: consul.DefaultKey(resource), Session: id}, nil)
	if err != nil {
		t.Fatalf("lock %q: %v", resource, err)
	}
	return ok
}

func sessionAlive(t testing.TB, admin *api.Client, id string) bool {
	t.Helper()
	e, _, err := admin.Session().Info(id, &api.QueryOptions{RequireConsistent: true})
	if err != nil {
		t.Fatalf("session info: %v", err)
	}
	return e != nil
}

// TestLeaseContract drives a Lease and its claims directly, as the engine
// does: claims lock their keys with the lease's one session; closing a
// claim releases its key (no lock-delay) and leaves the session; a key
// taken from outside is not an error of the lease's Renew; closing the
// lease releases the keys of claims still open and destroys the session.
func TestLeaseContract(t *testing.T) {
	t.Parallel()
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	admin := newClient(t, srv.Addr, "")
	b, err := consul.NewBackend(newClient(t, srv.Addr, ""), consul.Options{LockDelay: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l, err := b.NewLease(ctx, election.LeaseParams{TTL: 10 * time.Second, Name: "billing workers"})
	if err != nil {
		t.Fatalf("NewLease: %v", err)
	}
	id := l.Info().ID
	e, _, err := admin.Session().Info(id, nil)
	if err != nil || e == nil || e.Name != "billing workers" || e.Behavior != api.SessionBehaviorRelease || e.TTL != "10s" || e.LockDelay != 30*time.Second {
		t.Fatalf("the lease's Consul session = %+v, %v", e, err)
	}
	claim := func(resource string) election.Claim {
		t.Helper()
		c, err := l.Claim(election.SessionParams{Resource: resource, ID: "w", Value: []byte(resource), TTL: 10 * time.Second})
		if err != nil {
			t.Fatalf("Claim %q: %v", resource, err)
		}
		return c
	}
	a, c2, c3 := claim("lease-a"), claim("lease-b"), claim("lease-c")
	for _, c := range []election.Claim{a, c2, c3} {
		acq, err := c.Acquire(ctx)
		if err != nil || acq.Session != id || acq.Term == 0 {
			t.Fatalf("Acquire = %+v, %v; want held by %s", acq, err, id)
		}
		if c.Info().ID != id {
			t.Errorf("claim Info().ID = %q, want the lease's %q", c.Info().ID, id)
		}
	}
	if _, err := l.Claim(election.SessionParams{Resource: "lease-a", ID: "w", TTL: 10 * time.Second}); err == nil {
		t.Error("a second open claim of one resource on one lease succeeded")
	}
	if _, err := l.Claim(election.SessionParams{Resource: "", ID: "w", TTL: 10 * time.Second}); !errors.Is(err, election.ErrInvalidOptions) {
		t.Errorf("Claim of an empty resource = %v, want ErrInvalidOptions", err)
	}

	// Closing a claim releases its key only.
	if err := a.Close(ctx); err != nil {
		t.Fatalf("claim Close: %v", err)
	}
	if !sessionAlive(t, admin, id) {
		t.Fatal("closing a claim ended the lease's Consul session")
	}
	if !lockNow(t, admin, "lease-a") {
		t.Error("the key of a closed claim cannot be locked at once (not released, or ended with its session?)")
	}
	if p := leaderOf(t, admin, "lease-b"); p == nil || p.Session != id {
		t.Errorf("closing one claim changed another's key: %+v", p)
	}
	if err := l.Renew(ctx); err != nil {
		t.Fatalf("Renew after a claim closed: %v", err)
	}

	// A key deleted from outside is the claim's loss, not the lease's.
	if _, err := admin.KV().Delete(consul.DefaultKey("lease-b"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Acquire(ctx); !errors.Is(err, election.ErrSessionLost) {
		t.Errorf("Acquire of a claim whose key was deleted = %v, want ErrSessionLost", err)
	}
	if err := l.Renew(ctx); err != nil {
		t.Fatalf("Renew after a key was taken from outside: %v", err)
	}
	if err := c2.Close(ctx); err != nil {
		t.Fatalf("close the lost claim: %v", err)
	}
	// The resource may be claimed again once its claim closed.
	again := claim("lease-a")
	if acq, err := again.Acquire(ctx); err != nil || acq.Session == id {
		t.Errorf("Acquire of a key locked by another session = %+v, %v; want refused", acq, err)
	}

	// Closing the lease releases the keys still held, then ends the session.
	if err := l.Close(ctx); err != nil {
		t.Fatalf("lease Close: %v", err)
	}
	if sessionAlive(t, admin, id) {
		t.Error("the Consul session outlived its lease's Close")
	}
	if !lockNow(t, admin, "lease-c") {
		t.Error("the key of a claim open at the lease's Close cannot be locked at once (not released before the session ended)")
	}
	if _, err := l.Claim(election.SessionParams{Resource: "lease-d", ID: "w", TTL: 10 * time.Second}); err == nil {
		t.Error("Claim after the lease's Close succeeded")
	}
	// Destroyed from outside: Renew tells the lease is lost.
	l2, err := b.NewLease(ctx, election.LeaseParams{TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Session().Destroy(l2.Info().ID, nil); err != nil {
		t.Fatal(err)
	}
	if err := l2.Renew(ctx); !errors.Is(err, election.ErrSessionLost) {
		t.Errorf("Renew of a destroyed lease = %v, want ErrSessionLost", err)
	}
	if err := l2.Close(ctx); err != nil {
		t.Errorf("Close of a lost lease: %v", err)
	}

	// Without LeaseParams.Name, Options.SessionName names the session.
	named, err := consul.NewBackend(newClient(t, srv.Addr, ""), consul.Options{SessionName: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	l3, err := named.NewLease(ctx, election.LeaseParams{TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer l3.Close(ctx)
	if e, _, err := admin.Session().Info(l3.Info().ID, nil); err != nil || e == nil || e.Name != "ops" {
		t.Errorf("session of a lease without a name = %+v, %v; want named Options.SessionName", e, err)
	}
}

// TestLeaseCheckTTL checks that with Options.CheckTTL a lease is bound to
// one TTL check of its own, named after the lease, which Renew passes and
// Close deregisters.
func TestLeaseCheckTTL(t *testing.T) {
	t.Parallel()
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	admin := newClient(t, srv.Addr, "")
	b, err := consul.NewBackend(newClient(t, srv.Addr, ""), consul.Options{CheckTTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l, err := b.NewLease(ctx, election.LeaseParams{TTL: 2 * time.Second, Name: "ingest"})
	if err != nil {
		t.Fatalf("NewLease: %v", err)
	}
	info := l.Info()
	checks, err := admin.Agent().Checks()
	if err != nil {
		t.Fatal(err)
	}
	c, ok := checks[info.Fields["check"]]
	if !ok || len(checks) != 1 || !strings.Contains(c.Name, "ingest") || c.ServiceName != consul.CheckServiceName {
		t.Fatalf("agent checks = %+v; want one check, %q, named after the lease", checks, info.Fields["check"])
	}
	e, _, err := admin.Session().Info(info.ID, nil)
	if err != nil || e == nil || len(e.ServiceChecks) != 1 || e.ServiceChecks[0].ID != info.Fields["check"] {
		t.Fatalf("session = %+v, %v; want bound to the check", e, err)
	}
	for range 8 { // twice the check's TTL
		time.Sleep(500 * time.Millisecond)
		if err := l.Renew(ctx); err != nil {
			t.Fatalf("Renew: %v", err)
		}
	}
	if !sessionAlive(t, admin, info.ID) {
		t.Fatal("the session ended although Renew passed its check")
	}
	if err := l.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if checks, err := admin.Agent().Checks(); err != nil || len(checks) != 0 {
		t.Errorf("agent checks after Close = %v, %v; want none", checks, err)
	}
	// Without a name, the check's own ID names it.
	l2, err := b.NewLease(ctx, election.LeaseParams{TTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close(ctx)
	checks, err = admin.Agent().Checks()
	if c := checks[l2.Info().Fields["check"]]; err != nil || c == nil || !strings.Contains(c.Name, c.ServiceID) {
		t.Errorf("check of an unnamed lease = %+v, %v; want named after its ID", c, err)
	}
	if got := l2.Info().Fields["name"]; got != consul.DefaultSessionNamePrefix+consul.DefaultSharedSessionName {
		t.Errorf("unnamed lease's session name = %q", got)
	}
}

// TestSharedSessionBadInput checks the errors of a shared session's
// misuse: Handoff, which shared sessions do not support; a session of
// another backend, or another client, in consul.New; a TTL out of Consul's
// bounds; an invalid resource.
func TestSharedSessionBadInput(t *testing.T) {
	t.Parallel()
	client, err := api.NewClient(&api.Config{Address: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	field := func(err error) string {
		var oe *election.OptionError
		if errors.As(err, &oe) {
			return oe.Field
		}
		return ""
	}
	ctx := context.Background()

	hb, err := consul.NewBackend(client, consul.Options{Handoff: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := consul.NewSharedSession(hb, election.SessionOptions{}); field(err) != "Handoff" {
		t.Errorf("NewSharedSession with Handoff = %v, want an OptionError naming Handoff", err)
	}
	if _, err := hb.NewLease(ctx, election.LeaseParams{TTL: 15 * time.Second}); field(err) != "Handoff" {
		t.Errorf("NewLease with Handoff = %v, want an OptionError naming Handoff", err)
	}
	hs, err := election.NewSharedSession(hb, election.SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close(ctx)
	if _, err := consul.New(nil, consul.Options{Options: election.Options{Resource: "r", Session: hs}}); field(err) != "Handoff" {
		t.Errorf("consul.New on a shared session with Handoff = %v, want an OptionError naming Handoff", err)
	}
	if _, err := election.New(hb, election.Options{Resource: "r", Session: hs}); field(err) != "Handoff" {
		t.Errorf("election.New on a shared session with Handoff = %v, want an OptionError naming Handoff", err)
	}

	b, err := consul.NewBackend(client, consul.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ss, err := consul.NewSharedSession(b, election.SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close(ctx)
	other, err := api.NewClient(&api.Config{Address: "127.0.0.1:2"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := consul.New(other, consul.Options{Options: election.Options{Resource: "r", Session: ss}}); field(err) != "client" {
		t.Errorf("consul.New with another client than the session's backend's = %v, want an OptionError naming client", err)
	}
	if _, err := consul.New(nil, consul.Options{Options: election.Options{Resource: "r", Session: ss}, Key: "elsewhere"}); field(err) != "Key" {
		t.Errorf("consul.New with another Key than the session's backend's = %v, want an OptionError naming Key", err)
	}
	el, err := consul.New(client, consul.Options{Options: election.Options{Resource: "r", Session: ss}})
	if err != nil {
		t.Fatalf("consul.New with the session's own client: %v", err)
	}
	_ = el.Close(ctx)
	el, err = consul.New(nil, consul.Options{Options: election.Options{Resource: "r", Session: ss}})
	if err != nil {
		t.Fatalf("consul.New with a nil client on a session: %v", err)
	}
	_ = el.Close(ctx)

	ms, err := election.NewSharedSession(otherBackend{}, election.SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close(ctx)
	if _, err := consul.New(nil, consul.Options{Options: election.Options{Resource: "r", Session: ms}}); field(err) != "Session" {
		t.Errorf("consul.New on another backend's session = %v, want an OptionError naming Session", err)
	}

	if _, err := b.NewLease(ctx, election.LeaseParams{TTL: 5 * time.Second}); field(err) != "TTL" {
		t.Errorf("NewLease with a TTL below Consul's minimum = %v, want an OptionError naming TTL", err)
	}
	if _, err := consul.NewSharedSession(nil, election.SessionOptions{}); !errors.Is(err, election.ErrInvalidOptions) {
		t.Errorf("NewSharedSession(nil) = %v, want ErrInvalidOptions", err)
	}
}

// otherBackend stands for a backend of another store, with shared
// sessions; it is never asked anything.
type otherBackend struct{}

var errOther = errors.New("not a store")

func (otherBackend) Name() string { return "other" }
func (otherBackend) NewSession(context.Context, election.SessionParams) (election.Session, error) {
	return nil, errOther
}
func (otherBackend) Watch(context.Context, string, uint64, time.Duration) (election.Record, error) {
	return election.Record{}, errOther
}
func (otherBackend) NewLease(context.Context, election.LeaseParams) (election.Lease, error) {
	return nil, errOther
}
