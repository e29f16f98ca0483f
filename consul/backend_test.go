package consul_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/consul"
	"github.com/consul-leader/consul-leader/election"
)

// TestBackendContract drives the backend's primitives directly, as the
// engine does, and checks the contract of election.Backend on them.
func TestBackendContract(t *testing.T) {
	t.Parallel()
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	admin := newClient(t, srv.Addr, "")
	const lockDelay = 2 * time.Second
	b, err := consul.NewBackend(newClient(t, srv.Addr, ""), consul.Options{LockDelay: lockDelay})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	params := func(id string) election.SessionParams {
		return election.SessionParams{Resource: "contract", ID: id, Value: []byte(id), TTL: 10 * time.Second}
	}

	// Nothing leads yet.
	free, err := b.Watch(ctx, "contract", 0, 0)
	if err != nil || !free.Free() || free.Revision == 0 {
		t.Fatalf("Watch of a missing key = %+v, %v", free, err)
	}
	s1, err := b.NewSession(ctx, params("one"))
	if err != nil {
		t.Fatal(err)
	}
	a1, err := s1.Acquire(ctx)
	if err != nil || a1.Session != s1.Info().ID || a1.LeaderID != "one" || a1.Term == 0 || a1.Renewed || a1.RetryAfter != 0 {
		t.Fatalf("Acquire = %+v, %v", a1, err)
	}
	// Idempotent: the same term.
	again, err := s1.Acquire(ctx)
	if err != nil || again.Term != a1.Term || again.Session != a1.Session {
		t.Fatalf("second Acquire = %+v, %v; want term %d", again, err, a1.Term)
	}
	if err := s1.Renew(ctx); err != nil {
		t.Fatalf("Renew: %v", err)
	}

	// A blocking Watch with no change returns the same record within wait.
	const wait = 300 * time.Millisecond
	started := time.Now()
	same, err := b.Watch(ctx, "contract", a1.Revision, wait)
	if took := time.Since(started); err != nil || same.Revision != a1.Revision || took > wait+100*time.Millisecond {
		t.Fatalf("Watch with no change = %+v, %v after %v", same, err, took)
	}

	// Another session sees the leader, and gets no RetryAfter.
	s2, err := b.NewSession(ctx, params("two"))
	if err != nil {
		t.Fatal(err)
	}
	a2, err := s2.Acquire(ctx)
	if err != nil || a2.Session != s1.Info().ID || a2.LeaderID != "one" || string(a2.Value) != "one" || a2.RetryAfter != 0 {
		t.Fatalf("contending Acquire = %+v, %v", a2, err)
	}

	// The leader's session is destroyed from outside: the key is freed, its
	// Renew and Acquire report the session lost, and the other session is
	// told how long the lock-delay keeps the key.
	changed := make(chan election.Record, 1)
	go func() {
		r, _ := b.Watch(ctx, "contract", a1.Revision, 10*time.Second)
		changed <- r
	}()
	if _, err := admin.Session().Destroy(s1.Info().ID, nil); err != nil {
		t.Fatal(err)
	}
	if r := <-changed; !r.Free() {
		t.Fatalf("Watch after the destroy = %+v; want the key free", r)
	}
	if err := s1.Renew(ctx); !errors.Is(err, election.ErrSessionLost) {
		t.Errorf("Renew of a destroyed session = %v; want ErrSessionLost", err)
	}
	if _, err := s1.Acquire(ctx); !errors.Is(err, election.ErrSessionLost) {
		t.Errorf("Acquire of a destroyed session = %v; want ErrSessionLost", err)
	}
	a3, err := s2.Acquire(ctx)
	if err != nil || !a3.Free() || a3.RetryAfter < lockDelay/2 || a3.RetryAfter > lockDelay+50*time.Millisecond {
		t.Fatalf("Acquire during the lock-delay = %+v, %v; want free with RetryAfter near %v", a3, err, lockDelay)
	}
	time.Sleep(a3.RetryAfter)
	a4, err := s2.Acquire(ctx)
	if err != nil || a4.Session != s2.Info().ID || a4.Term <= a1.Term {
		t.Fatalf("Acquire after RetryAfter = %+v, %v; want held with a term above %d", a4, err, a1.Term)
	}
	if err := s1.Close(ctx); err != nil {
		t.Errorf("Close of a lost session: %v", err)
	}

	// The key is deleted under the leader: its Acquire and Renew report the
	// leadership lost once seen.
	pair := leaderOf(t, admin, "contract")
	if _, err := admin.KV().Delete(pair.Key, nil); err != nil {
		t.Fatal(err)
	}
	gone, err := b.Watch(ctx, "contract", a4.Revision, 5*time.Second)
	if err != nil || !gone.Free() {
		t.Fatalf("Watch after the delete = %+v, %v", gone, err)
	}
	if err := s2.Renew(ctx); !errors.Is(err, election.ErrSessionLost) {
		t.Errorf("Renew after the key was deleted = %v; want ErrSessionLost", err)
	}
	if _, err := s2.Acquire(ctx); !errors.Is(err, election.ErrSessionLost) {
		t.Errorf("Acquire after the key was deleted = %v; want ErrSessionLost", err)
	}
	if err := s2.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	if e, _, _ := admin.Session().Info(s2.Info().ID, nil); e != nil {
		t.Errorf("session after Close = %+v; want destroyed", e)
	}

	// Every call honours its context.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := b.Watch(cctx, "contract", 0, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Watch with a cancelled context = %v", err)
	}
	if _, err := b.NewSession(cctx, params("three")); !errors.Is(err, context.Canceled) {
		t.Errorf("NewSession with a cancelled context = %v", err)
	}
	if _, err := b.Watch(ctx, "bad resource", 0, 0); !errors.Is(err, election.ErrInvalidOptions) {
		t.Errorf("Watch of an invalid resource = %v", err)
	}
}
