package etcd

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

// TestRaiseTermFloor raises the term floor of an election without a
// leader, then under a leader with a candidate already queued: later terms
// exceed the floor, the leader's term stays, and readers, the watch and the
// fencing revision agree.
func TestRaiseTermFloor(t *testing.T) {
	srv := startEtcd(t)
	client := newClient(t, srv.Endpoint())
	b := newBackend(t, client)
	observer := newBackend(t, newClient(t, srv.Endpoint()))
	ctx := testCtx(t, 30*time.Second)

	t.Run("free", func(t *testing.T) {
		const floor = 1_000_000
		if err := b.RaiseTermFloor(ctx, "floor-free", floor); err != nil {
			t.Fatal(err)
		}
		s := newSession(t, b, params("floor-free", "a"))
		acq := acquire(t, s)
		if acq.Session != s.Info().ID || acq.Term <= floor {
			t.Fatalf("Acquire after a floor of %d = %+v", floor, acq.Record)
		}
		if rec, err := observer.Watch(ctx, "floor-free", 0, 0); err != nil || rec.Term != acq.Term {
			t.Fatalf("a reader sees %+v, %v; want term %d", rec, err, acq.Term)
		}
		created, _ := strconv.ParseInt(s.Info().Fields["createRevision"], 10, 64)
		kv, err := client.Get(ctx, s.Info().Fields["key"])
		if err != nil || len(kv.Kvs) != 1 || kv.Kvs[0].CreateRevision != created {
			t.Fatalf("createRevision %d, key %+v, %v", created, kv, err)
		}
		for _, f := range []uint64{0, 10, floor, acq.Term - 1} {
			if err := b.RaiseTermFloor(ctx, "floor-free", f); err != nil {
				t.Fatalf("RaiseTermFloor(%d): %v", f, err)
			}
		}
		if rec, err := observer.Watch(ctx, "floor-free", 0, 0); err != nil || rec.Term != acq.Term {
			t.Fatalf("after lower floors a reader sees %+v, %v; want term %d", rec, err, acq.Term)
		}
	})

	t.Run("held", func(t *testing.T) {
		leader := newSession(t, b, params("floor-held", "leader"))
		held := acquire(t, leader)
		queued := newSession(t, b, params("floor-held", "queued"))
		acquire(t, queued)
		// The observer follows through its watch.
		if _, err := observer.Watch(ctx, "floor-held", held.Revision, 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		floors := []uint64{held.Term + 1_000_000, held.Term + 5_000_000}
		for _, f := range floors {
			if err := b.RaiseTermFloor(ctx, "floor-held", f); err != nil {
				t.Fatal(err)
			}
			if again := acquire(t, leader); again.Term != held.Term {
				t.Fatalf("the leader's term after a raise to %d is %d, was %d", f, again.Term, held.Term)
			}
			if rec, err := observer.Watch(ctx, "floor-held", 0, 0); err != nil || rec.Term != held.Term {
				t.Fatalf("after a raise to %d a reader sees %+v, %v; want term %d", f, rec, err, held.Term)
			}
		}
		// The candidate queued before the raises leads above the floor.
		next := make(chan election.Record, 1)
		go func() {
			rec, err := observer.Watch(ctx, "floor-held", held.Revision, 10*time.Second)
			if err != nil {
				t.Error(err)
			}
			next <- rec
		}()
		if err := leader.Close(ctx); err != nil {
			t.Fatal(err)
		}
		rec := <-next
		if rec.Session != queued.Info().ID || rec.Term <= floors[1] {
			t.Fatalf("after the release the watch sees %+v; want queued leading above %d", rec, floors[1])
		}
		if got := acquire(t, queued); got.Term != rec.Term {
			t.Fatalf("queued's Acquire = %+v, the watch said term %d", got.Record, rec.Term)
		}
		if read, err := observer.Watch(ctx, "floor-held", 0, 0); err != nil || read.Term != rec.Term {
			t.Fatalf("a reader sees %+v, %v; want term %d", read, err, rec.Term)
		}
	})

	t.Run("invalid", func(t *testing.T) {
		if err := b.RaiseTermFloor(ctx, "floor-bad", MaxTermFloor+1); !errors.Is(err, election.ErrInvalidOptions) {
			t.Errorf("a floor above MaxTermFloor: %v", err)
		}
		if _, err := client.Put(ctx, offsetKey(DefaultPrefix("floor-bad")), "garbage"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Watch(ctx, "floor-bad", 0, 0); err == nil {
			t.Error("a read with an invalid term offset succeeded")
		}
		if err := b.RaiseTermFloor(ctx, "floor-bad", 10); err == nil {
			t.Error("a raise over an invalid term offset succeeded")
		}
	})
}
