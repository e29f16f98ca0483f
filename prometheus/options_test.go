package leaderprom_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/consul-leader/consul-leader/election"

	leaderprom "github.com/consul-leader/consul-leader/prometheus"
)

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		opts  leaderprom.Options
		field string
	}{
		{leaderprom.Options{Namespace: "leader-election"}, "Namespace"},
		{leaderprom.Options{Namespace: "leader election"}, "Namespace"},
		{leaderprom.Options{Namespace: "9lives"}, "Namespace"},
		{leaderprom.Options{RenewalBuckets: []float64{}}, "RenewalBuckets"},
		{leaderprom.Options{RenewalBuckets: []float64{1, 0.5}}, "RenewalBuckets"},
		{leaderprom.Options{RenewalBuckets: []float64{1, 1}}, "RenewalBuckets"},
	} {
		_, err := leaderprom.New(tc.opts)
		var oe *election.OptionError
		if !errors.As(err, &oe) || oe.Field != tc.field || !errors.Is(err, election.ErrInvalidOptions) {
			t.Errorf("New(%+v): %v, want an *election.OptionError on %s", tc.opts, err, tc.field)
		}
	}
	for _, o := range []leaderprom.Options{{}, {Namespace: "myapp_leader"}, {RenewalBuckets: []float64{0.01, 0.1}}} {
		if err := o.Validate(); err != nil {
			t.Errorf("Validate(%+v): %v", o, err)
		}
	}
}

// TestNamespace: every metric name starts with the namespace.
func TestNamespace(t *testing.T) {
	m, err := leaderprom.New(leaderprom.Options{Namespace: "billing_leader"})
	if err != nil {
		t.Fatal(err)
	}
	m.Track("r")
	n, err := testutil.GatherAndCount(registry(t, m))
	if err != nil || n == 0 {
		t.Fatalf("%d series, %v", n, err)
	}
	mfs, _ := registry(t, m).Gather()
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "billing_leader_") {
			t.Errorf("metric %s outside the namespace", mf.GetName())
		}
	}
}
