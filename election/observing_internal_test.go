package election

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// countingRenewer succeeds at every renewal, and closes done at the
// target-th one.
type countingRenewer struct {
	n      atomic.Int64
	target int64
	done   chan struct{}
}

func (r *countingRenewer) Info() SessionInfo { return SessionInfo{ID: "s"} }

func (r *countingRenewer) Renew(context.Context) error {
	if r.n.Add(1) == r.target {
		close(r.done)
	}
	return nil
}

// BenchmarkRenewal measures one renewal of a session by its keepalive,
// renewing every millisecond, without observers and with one that
// counts the renewals: the allocations per renewal are the same.
func BenchmarkRenewal(b *testing.B) {
	for _, bc := range []struct {
		name string
		obs  []*Observer
	}{
		{"observers=0", nil},
		{"observers=1", []*Observer{{Renewed: func(Renewal) {}, StoreFailed: func(StoreFailure) {}, StoreRecovered: func(StoreRecovery) {}}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			o := Options{Resource: "r", ID: "a", TTL: time.Second, RenewInterval: time.Millisecond, RequestTimeout: 100 * time.Millisecond}.WithDefaults()
			r := &countingRenewer{target: int64(b.N) + 1, done: make(chan struct{})}
			b.ReportAllocs()
			b.ResetTimer()
			k := startKeepalive(context.Background(), o, o.Logger, r, time.Now(), o.RenewInterval, newObserving(bc.obs, "r", "a", "test"))
			<-r.done
			b.StopTimer()
			k.stop()
		})
	}
}
