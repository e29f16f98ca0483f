package leaderprom_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/consul"
	"github.com/consul-leader/consul-leader/election"
	leaderprom "github.com/consul-leader/consul-leader/prometheus"
)

// TestConsulSessionDestroyed: on a real Consul agent, a leader whose session
// an operator destroys stops leading at once: is_leader goes to 0, and the
// term ends as lost (its watch sees the lock released) or session_lost (its
// renewal finds the session gone), whichever comes first.
func TestConsulSessionDestroyed(t *testing.T) {
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client, err := api.NewClient(&api.Config{Address: srv.Addr, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	p := newProc(t, leaderprom.Options{})
	sessions := make(chan string, 1)
	el, err := consul.New(client, consul.Options{Options: election.Options{
		Resource: "r", ID: "a", TTL: 10 * time.Second, Logger: quiet,
		Observers: []*election.Observer{p.m.Observer()},
	}})
	if err != nil {
		t.Fatal(err)
	}
	err = el.Start(context.Background(), func(ctx context.Context, l election.Leadership) error {
		if l.IsLeader {
			select {
			case sessions <- l.Session.ID:
			default:
			}
			<-ctx.Done()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := el.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	var session string
	select {
	case session = <-sessions:
	case <-time.After(30 * time.Second):
		t.Fatal("no leader within 30s")
	}
	p.waitValue(t, 1, time.Second, "leader_election_is_leader", "resource", "r")

	destroyed := time.Now()
	if _, err := client.Session().Destroy(session, nil); err != nil {
		t.Fatalf("destroy the session: %v", err)
	}
	p.waitValue(t, 0, 5*time.Second, "leader_election_is_leader", "resource", "r")
	t.Logf("is_leader 0 %v after the session was destroyed", time.Since(destroyed).Round(time.Millisecond))
	if c := p.causes(t, "r"); c["lost"]+c["session_lost"] != 1 || len(c) != 1 {
		t.Errorf("terms ended by cause %v, want one, lost or session_lost", c)
	}
	p.expect(t, `leader_election_terms_started_total{resource="r"} 1`)
}
