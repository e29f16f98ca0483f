//go:build go1.25

package conformance_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/consul-leader/consul-leader/conformance"
	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
	"github.com/consul-leader/consul-leader/memory/memorytest"
)

// The suite must be able to fail. These tests run it on deliberately broken
// backends, in a child process (a failing suite fails its test binary), and
// check that it fails for the right reason.

const brokenEnv = "CONFORMANCE_BROKEN_BACKEND"

func TestSuiteCatchesTwoLeaders(t *testing.T) {
	out := runBroken(t, "two-leaders")
	if !strings.Contains(out, "two leaders of") {
		t.Fatalf("the suite did not report two leaders on a backend that grants two:\n%s", tail(out))
	}
}

func TestSuiteCatchesUnsignalledLoss(t *testing.T) {
	out := runBroken(t, "never-lost")
	if !strings.Contains(out, "--- FAIL: TestBrokenBackend/PartitionedLeaderStepsDown") || !strings.Contains(out, "did not end within") {
		t.Fatalf("the suite did not catch a backend that never signals loss:\n%s", tail(out))
	}
}

// TestBrokenBackend is the child: it runs the suite on the backend named by
// the environment, and is skipped otherwise.
func TestBrokenBackend(t *testing.T) {
	kind := os.Getenv(brokenEnv)
	if kind == "" {
		t.Skip("runs only as the child of TestSuiteCatches*")
	}
	conformance.Run(t, conformance.Config{
		Name:  "broken-" + kind,
		TTL:   15 * time.Second,
		Slack: 100 * time.Millisecond,
		Wrap:  synctest.Test,
		Open: func(t *testing.T) conformance.Store {
			s := memorytest.New()
			s.Wrap = func(b election.Backend) election.Backend {
				return brokenBackend{Conn: b.(*memory.Conn), kind: kind}
			}
			return s
		},
	})
}

func runBroken(t *testing.T, kind string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("child process skipped in -short mode")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenBackend$", "-test.v")
	cmd.Env = append(os.Environ(), brokenEnv+"="+kind)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the suite passed on the %s backend:\n%s", kind, tail(string(out)))
	}
	return string(out)
}

func tail(s string) string {
	if len(s) > 4000 {
		return "..." + s[len(s)-4000:]
	}
	return s
}

// brokenBackend is the memory backend with one deliberate bug.
type brokenBackend struct {
	*memory.Conn
	kind string
}

func (b brokenBackend) NewSession(ctx context.Context, p election.SessionParams) (election.Session, error) {
	s, err := b.Conn.NewSession(ctx, p)
	if err != nil {
		return nil, err
	}
	return brokenSession{Session: s, kind: b.kind}, nil
}

func (b brokenBackend) Watch(ctx context.Context, resource string, after uint64, wait time.Duration) (election.Record, error) {
	rec, err := b.Conn.Watch(ctx, resource, after, wait)
	if b.kind == "never-lost" && after != 0 {
		// Hides every change from a waiting reader: a leader never learns
		// that its record is gone.
		<-ctx.Done()
		return election.Record{}, ctx.Err()
	}
	return rec, err
}

// WatchRecord of never-lost hides every change, as its Watch does.
func (b brokenBackend) WatchRecord(resource string, after uint64, changed func(election.Record, error)) func() {
	if b.kind == "never-lost" {
		return func() {}
	}
	return b.Conn.WatchRecord(resource, after, changed)
}

type brokenSession struct {
	election.Session
	kind string
}

// Acquire of two-leaders reports success whatever the store says.
func (s brokenSession) Acquire(ctx context.Context) (election.Acquisition, error) {
	a, err := s.Session.Acquire(ctx)
	if err == nil && s.kind == "two-leaders" {
		a.Session = s.Info().ID
		a.LeaderID = "forged"
	}
	return a, err
}

// Renew of never-lost always succeeds, even cut off or after expiry.
func (s brokenSession) Renew(ctx context.Context) error {
	if s.kind == "never-lost" {
		return nil
	}
	return s.Session.Renew(ctx)
}
