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

// TestHandOffRefusedReleases checks that a leader whose handoff Consul
// refuses, because the candidate it saw registered has no session any
// more, releases the key before it ends its session: another session may
// take the key at once, without waiting for the lock-delay.
func TestHandOffRefusedReleases(t *testing.T) {
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client, err := api.NewClient(&api.Config{Address: srv.Addr, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	b := newBackend(Options{Handoff: true, LockDelay: 30 * time.Second}, client, nil)
	ctx := context.Background()
	sess, err := b.NewSession(ctx, election.SessionParams{Resource: "refused", ID: "a", TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	acq, err := sess.Acquire(ctx)
	if err != nil || acq.Session != sess.Info().ID {
		t.Fatalf("Acquire = %+v, %v", acq, err)
	}
	// The leader's last read showed a live registration of a session
	// that Consul no longer has.
	key := b.Key("refused")
	ghost := "00000000-0000-4000-8000-000000000000"
	b.keys.noteList(key, observation{Record: acq.Record}, acq.Revision, []candidate{{
		key: candidateKey(key, ghost), session: ghost, value: encodeRecord("ghost", nil, 0), createIndex: 1, modifyIndex: 1,
	}})
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
