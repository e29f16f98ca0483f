package consul_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/consul"
	"github.com/consul-leader/consul-leader/election"
)

// newBackend returns a backend on srv with a client of its own, so that it
// has seen nothing yet.
func newBackend(t testing.TB, srv *testserver.ConsulServer) *consul.Backend {
	t.Helper()
	b, err := consul.NewBackend(newClient(t, srv.Addr, ""), consul.Options{LockDelay: consul.NoLockDelay})
	if err != nil {
		t.Fatalf("NewBackend: %v", err)
	}
	return b
}

// campaign opens a session of id on resource and acquires; the session is
// closed when t ends.
func campaign(t testing.TB, b *consul.Backend, resource, id string) (election.Session, election.Acquisition) {
	t.Helper()
	ctx := context.Background()
	s, err := b.NewSession(ctx, election.SessionParams{Resource: resource, ID: id, TTL: 10 * time.Second})
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	acq, err := s.Acquire(ctx)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	return s, acq
}

// watchTerm reads the record of resource with a backend that has seen
// nothing of it, as a follower elsewhere would.
func watchTerm(t testing.TB, srv *testserver.ConsulServer, resource string) election.Record {
	t.Helper()
	rec, err := newBackend(t, srv).Watch(context.Background(), resource, 0, 0)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	return rec
}

func offsetKey(t testing.TB, c *api.Client, resource string) *api.KVPair {
	t.Helper()
	pair, _, err := c.KV().Get(consul.DefaultKey(resource)+consul.OffsetKeySuffix, &api.QueryOptions{RequireConsistent: true})
	if err != nil {
		t.Fatalf("read offset: %v", err)
	}
	return pair
}

// TestRaiseTermFloor checks that a floor above Consul's index makes the
// next term exceed it, that the holder at the time of a raise keeps its
// term, for itself and for every reader, and that a lower floor changes
// nothing.
func TestRaiseTermFloor(t *testing.T) {
	t.Parallel()
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	admin := newClient(t, srv.Addr, "")
	ctx := context.Background()

	t.Run("next term above floor", func(t *testing.T) {
		b := newBackend(t, srv)
		const floor = 1_000_000
		if err := b.RaiseTermFloor(ctx, "floor-next", floor); err != nil {
			t.Fatalf("RaiseTermFloor: %v", err)
		}
		_, acq := campaign(t, b, "floor-next", "a")
		if acq.Session == "" || acq.Term <= floor {
			t.Fatalf("acquired %+v; want a term above %d", acq.Record, floor)
		}
		if rec := watchTerm(t, srv, "floor-next"); rec.Term != acq.Term || rec.Session != acq.Session {
			t.Errorf("a reader sees %+v, the leader %+v", rec, acq.Record)
		}

		// A lower floor, or the same, writes nothing and changes no term.
		before := offsetKey(t, admin, "floor-next")
		for _, f := range []uint64{0, 10, floor, acq.Term - 1} {
			if err := b.RaiseTermFloor(ctx, "floor-next", f); err != nil {
				t.Fatalf("RaiseTermFloor(%d): %v", f, err)
			}
		}
		if after := offsetKey(t, admin, "floor-next"); after.ModifyIndex != before.ModifyIndex {
			t.Errorf("a lower floor rewrote the offset: %q at %d, then %q at %d", before.Value, before.ModifyIndex, after.Value, after.ModifyIndex)
		}
		if rec := watchTerm(t, srv, "floor-next"); rec.Term != acq.Term {
			t.Errorf("term after lower floors = %d, want %d", rec.Term, acq.Term)
		}
	})

	t.Run("holder keeps its term", func(t *testing.T) {
		b := newBackend(t, srv)
		s1, acq1 := campaign(t, b, "floor-held", "a")
		floors := []uint64{acq1.Term + 1_000_000, acq1.Term + 5_000_000}
		for _, f := range floors {
			if err := b.RaiseTermFloor(ctx, "floor-held", f); err != nil {
				t.Fatalf("RaiseTermFloor: %v", err)
			}
			again, err := s1.Acquire(ctx)
			if err != nil || again.Term != acq1.Term || again.Session != acq1.Session {
				t.Fatalf("second Acquire after a raise = %+v, %v; want term %d", again.Record, err, acq1.Term)
			}
			if rec := watchTerm(t, srv, "floor-held"); rec.Term != acq1.Term || rec.Session != acq1.Session {
				t.Fatalf("after a raise to %d a reader sees %+v; want term %d", f, rec, acq1.Term)
			}
			if err := s1.Renew(ctx); err != nil {
				t.Fatalf("Renew after a raise: %v", err)
			}
		}
		if err := s1.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		s2, acq2 := campaign(t, newBackend(t, srv), "floor-held", "b")
		if acq2.Session != s2.Info().ID || acq2.Term <= floors[1] {
			t.Fatalf("next holder = %+v; want a term above %d", acq2.Record, floors[1])
		}
		if rec := watchTerm(t, srv, "floor-held"); rec.Term != acq2.Term {
			t.Errorf("a reader sees term %d, the leader %d", rec.Term, acq2.Term)
		}

		// Deleted and created again, the key still gives higher terms.
		if err := s2.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if _, err := admin.KV().Delete(consul.DefaultKey("floor-held"), nil); err != nil {
			t.Fatal(err)
		}
		_, acq3 := campaign(t, b, "floor-held", "c")
		if acq3.Session == "" || acq3.Term <= acq2.Term {
			t.Errorf("term after the key was recreated = %d, before %d", acq3.Term, acq2.Term)
		}
	})

	t.Run("acquisitions check the offset", func(t *testing.T) {
		// A backend that saw the offset checks, in each acquisition, that
		// it is still there: the check passes while it is unchanged, and
		// one changed by another backend is read again.
		b := newBackend(t, srv)
		const floor = 1_000_000
		if err := b.RaiseTermFloor(ctx, "floor-again", floor); err != nil {
			t.Fatalf("RaiseTermFloor: %v", err)
		}
		s1, acq1 := campaign(t, b, "floor-again", "a")
		if acq1.Session != s1.Info().ID || acq1.Term <= floor {
			t.Fatalf("first acquisition = %+v; want a term above %d", acq1.Record, floor)
		}
		if err := s1.Close(ctx); err != nil {
			t.Fatal(err)
		}
		s2, acq2 := campaign(t, b, "floor-again", "b")
		if acq2.Session != s2.Info().ID || acq2.Term <= acq1.Term {
			t.Fatalf("second acquisition with the offset unchanged = %+v; want a term above %d", acq2.Record, acq1.Term)
		}
		if err := s2.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := newBackend(t, srv).RaiseTermFloor(ctx, "floor-again", 5*floor); err != nil {
			t.Fatalf("RaiseTermFloor: %v", err)
		}
		s3, acq3 := campaign(t, b, "floor-again", "c")
		if acq3.Session != "" {
			t.Fatalf("acquisition after another backend raised the offset = %+v; want it refused for the check", acq3.Record)
		}
		acq3, err := s3.Acquire(ctx)
		if err != nil || acq3.Session != s3.Info().ID || acq3.Term <= 5*floor {
			t.Fatalf("acquisition after the offset was read again = %+v, %v; want a term above %d", acq3.Record, err, 5*floor)
		}
	})

	t.Run("electors agree", func(t *testing.T) {
		const resource = "floor-electors"
		oa := candidate(t, srv, resource, "a")
		oa.LockDelay = consul.NoLockDelay
		ela, eva := start(t, oa)
		la := eva.wait(t, 10*time.Second, "leader call", leads)
		b := newBackend(t, srv)
		if err := b.RaiseTermFloor(ctx, resource, la.Term+1_000_000); err != nil {
			t.Fatalf("RaiseTermFloor: %v", err)
		}
		ob := candidate(t, srv, resource, "b")
		ob.LockDelay = consul.NoLockDelay
		elb, evb := start(t, ob)
		fb := evb.wait(t, 10*time.Second, "follower call", sees("a"))
		if fb.Term != la.Term {
			t.Errorf("follower sees term %d, the leader has %d", fb.Term, la.Term)
		}
		for name, el := range map[string]*election.Elector{"leader": ela, "follower": elb} {
			l, err := el.Leader(ctx)
			if err != nil || l.Term != la.Term || l.LeaderID != "a" {
				t.Errorf("%s's Leader() = %+v, %v; want a at term %d", name, l, err, la.Term)
			}
		}
		if err := ela.Release(ctx); err != nil {
			t.Fatalf("Release: %v", err)
		}
		lb := evb.wait(t, 10*time.Second, "leader call of b", leads)
		if lb.Term <= la.Term+1_000_000 {
			t.Errorf("b leads with term %d; want above the floor %d", lb.Term, la.Term+1_000_000)
		}
		fa := eva.wait(t, 10*time.Second, "follower call of a", sees("b"))
		if fa.Term != lb.Term {
			t.Errorf("a sees term %d, b leads with %d", fa.Term, lb.Term)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		b := newBackend(t, srv)
		if err := b.RaiseTermFloor(ctx, "", 5); err == nil {
			t.Error("an empty resource was accepted")
		}
		if err := b.RaiseTermFloor(ctx, "floor-bad", consul.MaxTermFloor+1); !errors.Is(err, election.ErrInvalidOptions) {
			t.Errorf("a floor above MaxTermFloor: %v", err)
		}
		if _, err := admin.KV().Put(&api.KVPair{Key: consul.DefaultKey("floor-bad") + consul.OffsetKeySuffix, Value: []byte("junk")}, nil); err != nil {
			t.Fatal(err)
		}
		if err := b.RaiseTermFloor(ctx, "floor-bad", 5); err == nil {
			t.Error("a corrupt offset was overwritten")
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := b.RaiseTermFloor(cctx, "floor-next", 5); err == nil {
			t.Error("a cancelled context was ignored")
		}
	})
}

// BenchmarkRaiseTermFloor measures a raise that writes (a read and a
// check-and-set, both transactions) and one that finds the floor already
// met (the read only).
func BenchmarkRaiseTermFloor(b *testing.B) {
	srv := testserver.StartConsul(b, testserver.ConsulOptions{})
	be := newBackend(b, srv)
	ctx := context.Background()
	b.Run("write", func(b *testing.B) {
		floor := uint64(1_000_000)
		for b.Loop() {
			floor += 1_000_000
			if err := be.RaiseTermFloor(ctx, "bench-floor", floor); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("met", func(b *testing.B) {
		for b.Loop() {
			if err := be.RaiseTermFloor(ctx, "bench-floor", 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}
