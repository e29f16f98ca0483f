package leaderprom_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
	leaderprom "github.com/consul-leader/consul-leader/prometheus"
)

// heads are the HELP and TYPE lines of each metric, as the exposition
// format shows them.
var heads = map[string]string{
	"leader_election_is_leader": `# HELP leader_election_is_leader 1 while this process leads the resource, else 0 (with a grouping resource label: the number of terms of the group running).
# TYPE leader_election_is_leader gauge
`,
	"leader_election_term": `# HELP leader_election_term Term (fencing token) of the latest term this process started for the resource; it stays after the term ends.
# TYPE leader_election_term gauge
`,
	"leader_election_terms_started_total": `# HELP leader_election_terms_started_total Terms this process started for the resource (times it became leader).
# TYPE leader_election_terms_started_total counter
`,
	"leader_election_terms_ended_total": `# HELP leader_election_terms_ended_total Terms of this process that ended for the resource, by cause.
# TYPE leader_election_terms_ended_total counter
`,
	"leader_election_handler_overruns_total": `# HELP leader_election_handler_overruns_total Terms of the resource whose leader handler kept running a TTL or more after the term ended.
# TYPE leader_election_handler_overruns_total counter
`,
	"leader_election_handlers_overrunning": `# HELP leader_election_handlers_overrunning Leader handlers of the resource still running a TTL or more after their term ended.
# TYPE leader_election_handlers_overrunning gauge
`,
}

// proc is one process of the service: its own registry and metrics.
type proc struct {
	reg *prometheus.Registry
	m   *leaderprom.Metrics
}

func newProc(t testing.TB, opts leaderprom.Options) *proc {
	t.Helper()
	m, err := leaderprom.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	return &proc{reg: reg, m: m}
}

// expect compares the series of the metrics named in want's lines (each
// "name{labels} value") with those gathered from p's registry: every series
// of those metrics, no more, no fewer.
func (p *proc) expect(t testing.TB, want ...string) {
	t.Helper()
	byName := map[string][]string{}
	var names []string
	for _, line := range want {
		name := line[:strings.IndexAny(line, "{ ")]
		if _, ok := byName[name]; !ok {
			names = append(names, name)
		}
		byName[name] = append(byName[name], line)
	}
	var text strings.Builder
	for _, name := range names {
		head, ok := heads[name]
		if !ok {
			t.Fatalf("no HELP known for %s", name)
		}
		text.WriteString(head)
		for _, line := range byName[name] {
			text.WriteString(line + "\n")
		}
	}
	if err := testutil.GatherAndCompare(p.reg, strings.NewReader(text.String()), names...); err != nil {
		t.Error(err)
	}
}

// value returns the value of the series of metric name with labels (name,
// value pairs), gathered from p's registry; NaN when there is none. A
// histogram's value is its sample count.
func (p *proc) value(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := p.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, labels) {
				switch {
				case m.Gauge != nil:
					return m.Gauge.GetValue()
				case m.Counter != nil:
					return m.Counter.GetValue()
				case m.Histogram != nil:
					return float64(m.Histogram.GetSampleCount())
				}
			}
		}
	}
	return math.NaN()
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// startElector starts an elector of opts on store, observed by p, with
// handler h (a leader that waits for the end of its term when nil), and
// closes it when t ends.
func (p *proc) startElector(t testing.TB, store *memory.Store, opts election.Options, h election.Handler) *election.Elector {
	t.Helper()
	opts.Observers = append(opts.Observers, p.m.Observer())
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	el, err := memory.New(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	if h == nil {
		h = waitForEnd
	}
	if err := el.Start(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := el.Close(context.Background()); err != nil {
			t.Errorf("Close %s: %v", opts.ID, err)
		}
	})
	return el
}

// waitForEnd is a handler whose leader calls last until their term ends.
func waitForEnd(ctx context.Context, l election.Leadership) error {
	if l.IsLeader {
		<-ctx.Done()
	}
	return nil
}

// quiet discards the electors' logs: the tests fail stores on purpose.
var quiet = slog.New(slog.DiscardHandler)

func termLine(resource string, term uint64) string {
	return fmt.Sprintf(`leader_election_term{resource=%q} %d`, resource, term)
}

// causes returns the terms of resource ended so far, by cause, gathered
// from p's registry.
func (p *proc) causes(t testing.TB, resource string) map[string]float64 {
	t.Helper()
	mfs, err := p.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "leader_election_terms_ended_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, []string{"resource", resource}) {
				for _, lp := range m.GetLabel() {
					if lp.GetName() == "cause" {
						out[lp.GetValue()] = m.GetCounter().GetValue()
					}
				}
			}
		}
	}
	return out
}
