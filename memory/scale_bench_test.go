package memory_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/internal/benchscale"
	"github.com/consul-leader/consul-leader/memory"
)

// quiet drops the electors' logs, as the benchmarks on servers do.
var quiet = slog.New(slog.DiscardHandler)

// BenchmarkScaleLead measures the engine's own cost of one process leading
// many resources (200, or SCALE_RESOURCES) on the in-memory store, with
// TTL 15 s: on one SharedSession, and with a session each. No request
// leaves the process, so only the time to acquire, the goroutines and the
// memory are reported (see internal/benchscale.Lead). Run it with
//
//	go test -run '^$' -bench ScaleLead -benchtime 1x ./memory/
//	SCALE_RESOURCES=10000 go test -run '^$' -bench ScaleLead -benchtime 1x ./memory/
func BenchmarkScaleLead(b *testing.B) {
	p := benchscale.LeadParamsFromEnv(0)
	p.Window = benchscale.Duration(benchscale.EnvWindow, time.Second)
	benchscale.Run(b, "shared-session", func(b *testing.B) benchscale.Metrics { return benchscale.Lead(b, p, leadMemory(b, true)) })
	benchscale.Run(b, "private-sessions", func(b *testing.B) benchscale.Metrics { return benchscale.Lead(b, p, leadMemory(b, false)) })
}

func leadMemory(b *testing.B, shared bool) benchscale.Recipe {
	store := memory.NewStore()
	conn := store.Connect("p")
	var ss *election.SharedSession
	if shared {
		var err error
		if ss, err = election.NewSharedSession(conn, election.SessionOptions{TTL: 15 * time.Second, Logger: quiet}); err != nil {
			b.Skipf("shared session: %v", err)
		}
	}
	var els benchscale.Electors
	return benchscale.Recipe{
		Start: func(_ context.Context, i int, led, lost func()) error {
			o := election.Options{Resource: fmt.Sprint("scale-", i), ID: "p", Session: ss, Logger: quiet}
			var el *election.Elector
			var err error
			if shared {
				el, err = election.New(conn, o)
			} else {
				o.TTL = 15 * time.Second
				el, err = memory.New(store, o)
			}
			if err != nil {
				return err
			}
			return els.StartLeader(el, led, lost)
		},
		Stop: func() { els.Stop(b, ss) },
	}
}
