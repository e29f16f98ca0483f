package consul

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/election"
)

// ghostLeader makes a leader of resource with Handoff, on a backend with
// options o, whose last read showed a live registration of a session that
// Consul does not have. It returns the client, the leader's
// session and the key.
func ghostLeader(t *testing.T, o Options, resource string) (*api.Client, election.Session, string) {
	t.Helper()
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client, err := api.NewClient(&api.Config{Address: srv.Addr, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	o.Handoff = true
	b := newBackend(o, client, nil)
	ctx := context.Background()
	sess, err := b.NewSession(ctx, election.SessionParams{Resource: resource, ID: "a", TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	acq, err := sess.Acquire(ctx)
	if err != nil || acq.Session != sess.Info().ID {
		t.Fatalf("Acquire = %+v, %v", acq, err)
	}
	key := b.Key(resource)
	ghost := "00000000-0000-4000-8000-000000000000"
	b.keys.noteList(key, observation{Record: acq.Record}, acq.Revision, []candidate{{
		key: candidateKey(key, ghost), session: ghost, value: encodeRecord("ghost", nil, 0), createIndex: 1, modifyIndex: 1,
	}})
	return client, sess, key
}

// TestHandOffRefusedReleases checks that a leader whose handoff Consul
// refuses, because the candidate it saw registered has no session any
// more, releases the key before it ends its session: another session may
// take the key at once, without waiting for the lock-delay.
func TestHandOffRefusedReleases(t *testing.T) {
	client, sess, key := ghostLeader(t, Options{LockDelay: 30 * time.Second}, "refused")
	ctx := context.Background()
	if err := sess.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	other, _, err := client.Session().Create(&api.SessionEntry{TTL: "60s", LockDelay: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := client.KV().Acquire(&api.KVPair{Key: key, Session: other}, nil); err != nil || !ok {
		t.Errorf("the key is refused after a refused handoff (ended while held?): %v, %v", ok, err)
	}
}

// TestHandOffReadsAgain checks that a leader whose last read is older than
// the registrations, showing only a candidate whose session has ended (one
// that crashed, or a view from before Consul lost its data), reads them
// again when Consul refuses the handoff, and hands the key over to the
// candidate registered since.
func TestHandOffReadsAgain(t *testing.T) {
	client, sess, key := ghostLeader(t, Options{}, "again")
	ctx := context.Background()
	live, _, err := client.Session().Create(&api.SessionEntry{TTL: "60s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = client.Session().Destroy(live, nil) })
	if ok, _, err := client.KV().Acquire(&api.KVPair{Key: candidateKey(key, live), Value: encodeRecord("b", nil, 0), Session: live}, nil); err != nil || !ok {
		t.Fatalf("register the live candidate: %v, %v", ok, err)
	}
	if err := sess.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	pair, _, err := client.KV().Get(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pair == nil || pair.Session != live {
		t.Fatalf("after the release the key is %+v, want it handed over to %s", pair, live)
	}
}
