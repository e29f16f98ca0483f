package etcd_test

import (
	"context"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/consul-leader/consul-leader/backends"
	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/etcd"
)

// TestMigrationBetweenEtcds moves an election from one etcd to another
// with backends.Migration: an old candidate on the first store, then a
// migrating one on both, then a new one on the second. The second store's
// revisions start far below the first's, so only the term floors keep the
// terms growing.
func TestMigrationBetweenEtcds(t *testing.T) {
	oldSrv := testserver.StartEtcd(t, testserver.EtcdOptions{})
	newSrv := testserver.StartEtcd(t, testserver.EtcdOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := func(srv *testserver.EtcdServer) *clientv3.Client {
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.Endpoint()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	oldAdmin := client(oldSrv)
	for i := range 200 { // the old store is far ahead
		if _, err := oldAdmin.Put(ctx, "filler", string(rune('a'+i%26))); err != nil {
			t.Fatal(err)
		}
	}

	var (
		mu      sync.Mutex
		terms   []uint64
		leading = make(chan string, 8)
	)
	start := func(name string, b election.Backend) *election.Elector {
		el, err := election.NewOwning(b, election.Options{Resource: "moved", ID: name, TTL: etcd.MinTTL})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = el.Close(context.Background()) })
		if err := el.Start(ctx, func(ctx context.Context, l election.Leadership) error {
			if !l.IsLeader {
				return nil
			}
			mu.Lock()
			if n := len(terms); n > 0 && l.Term <= terms[n-1] {
				t.Errorf("%s leads with term %d after term %d", name, l.Term, terms[n-1])
			}
			terms = append(terms, l.Term)
			mu.Unlock()
			leading <- name
			<-ctx.Done()
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return el
	}
	backend := func(srv *testserver.EtcdServer) *etcd.Backend {
		b, err := etcd.NewBackend(client(srv), etcd.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	wait := func(want string) {
		t.Helper()
		select {
		case got := <-leading:
			if got != want {
				t.Fatalf("%s leads, want %s", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s does not lead", want)
		}
	}

	old := start("old", backend(oldSrv))
	wait("old")
	m, err := backends.Migration(backend(oldSrv), backend(newSrv))
	if err != nil {
		t.Fatal(err)
	}
	migrating := start("migrating", m)
	time.Sleep(500 * time.Millisecond) // it queues on the old store
	if err := old.Release(ctx); err != nil {
		t.Fatal(err)
	}
	wait("migrating")
	if err := old.Close(ctx); err != nil {
		t.Fatal(err)
	}
	start("new", backend(newSrv))
	time.Sleep(500 * time.Millisecond) // it queues on the new store
	if err := migrating.Release(ctx); err != nil {
		t.Fatal(err)
	}
	wait("new")
	mu.Lock()
	defer mu.Unlock()
	t.Logf("terms: %v", terms)
}
