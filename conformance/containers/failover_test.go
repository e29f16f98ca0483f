package containers

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

// opener opens an elector from a URL, as the backends' OpenURL do.
type opener func(ctx context.Context, u *url.URL, opts election.Options) (*election.Elector, error)

// campaign starts one candidate per URL for resource, each with its own
// client of the store, and closes them when t ends.
func campaign(t *testing.T, l *leaders, open opener, resource string, ttl time.Duration, urls []*url.URL) []*election.Elector {
	t.Helper()
	els := make([]*election.Elector, len(urls))
	for i, u := range urls {
		id := fmt.Sprintf("candidate-%d", i+1)
		el, err := open(context.Background(), u, election.Options{Resource: resource, ID: id, TTL: ttl})
		if err != nil {
			t.Fatalf("open %s on %s: %v", id, u.Redacted(), err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := el.Close(ctx); err != nil {
				t.Errorf("close %s: %v", id, err)
			}
		})
		if err := el.Start(context.Background(), l.handler(id)); err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
		els[i] = el
	}
	return els
}

// failover describes a test that stops a store member under a leader.
type failover struct {
	// ttl is the candidates' TTL.
	ttl time.Duration
	// expiry is the longest the store takes to free the leadership of a
	// session no longer renewed, counted from its last renewal.
	expiry time.Duration
	// slack is added to every bound for start-up, Raft elections and
	// scheduling.
	slack time.Duration
}

// run waits for a leader among els, calls stop, and checks that the
// candidates keep a leader: the same one, renewing through the members
// left, or another one within the store's expiry bound, and that all of
// them agree on it in the end. l checks throughout that no two lead at once.
func (f failover) run(t *testing.T, l *leaders, els []*election.Elector, stop func()) {
	t.Helper()
	first, term, err := l.await(f.ttl + f.slack)
	if err != nil {
		t.Fatalf("before the stop: %v", err)
	}
	stop()
	stopped := time.Now()
	t.Logf("member stopped under %s (term %d)", first, term)

	// A leader whose renewals fail steps down within its TTL; one that
	// still leads after it renews through the members left.
	time.Sleep(f.ttl + f.slack)
	id, term2, err := l.await(time.Until(stopped.Add(f.ttl + f.expiry + f.slack)))
	if err != nil {
		t.Fatalf("after the stop: %v", err)
	}
	if id == first && term2 == term {
		t.Logf("%s still leads, term %d, %v after the stop", id, term, time.Since(stopped).Round(time.Millisecond))
	} else {
		t.Logf("%s leads now, term %d", id, term2)
	}
	for i, el := range els {
		ctx, cancel := context.WithTimeout(context.Background(), f.slack)
		got, err := el.Leader(ctx)
		cancel()
		if err != nil {
			t.Errorf("candidate-%d: Leader: %v", i+1, err)
			continue
		}
		if got.LeaderID != id || got.Term != term2 {
			t.Errorf("candidate-%d: Leader = %q term %d, want %q term %d", i+1, got.LeaderID, got.Term, id, term2)
		}
	}
}
