package benchscale

import "testing"

// Metrics are the custom metrics of one run, in the order measured.
type Metrics []Metric

// Metric is a value and its unit, as testing.B.ReportMetric takes them.
type Metric struct {
	Value float64
	Unit  string
}

func (m *Metrics) add(v float64, unit string) { *m = append(*m, Metric{v, unit}) }

// Report reports m as b's metrics, with an ns/op of zero: a run's time is
// not a per-iteration cost.
func (m Metrics) Report(b *testing.B) {
	b.ReportMetric(0, "ns/op")
	for _, x := range m {
		b.ReportMetric(x.Value, x.Unit)
	}
}

// Run runs f as the sub-benchmark name of b once, however many times the
// testing package calls the sub-benchmark (once with N=1, then again with
// N=100 for -benchtime 100x): every call reports the metrics of the one
// run. The scale runs ignore b.N, and take minutes.
func Run(b *testing.B, name string, f func(b *testing.B) Metrics) {
	var m Metrics
	measured := false
	b.Run(name, func(b *testing.B) {
		if !measured {
			m, measured = f(b), true
		}
		m.Report(b)
	})
}
