package election

import (
	"math/rand/v2"
	"sync"
	"time"
)

// RetryJitter is the spread of every retry delay: each wait after a failure
// is drawn uniformly from ±20 % around its nominal length, so that the
// candidates of a resource do not retry in lockstep after an outage.
const RetryJitter = 0.2

// maxRetryCap bounds MaxRetryDelay for long TTLs.
const maxRetryCap = 30 * time.Second

// MaxRetryDelay returns the nominal wait, before jitter, after many
// consecutive failures: half the TTL, at most 30 s, and never less than
// RetryInterval (7.5 s with the defaults). A candidate that keeps failing
// retries at least about twice per TTL, so that after an outage it is back
// within about half a TTL of its store, sooner than a failover takes.
func MaxRetryDelay(o Options) time.Duration {
	o = o.WithDefaults()
	return max(o.RetryInterval, min(o.TTL/2, maxRetryCap))
}

// RetryDelay returns the nominal wait, before jitter, after the n-th
// consecutive failure (n >= 1) of the store or of the leader's handler:
// RetryInterval for the first, doubled for each further one, at most
// MaxRetryDelay. The elector waits RetryDelay ± RetryJitter.
func RetryDelay(o Options, n int) time.Duration {
	o = o.WithDefaults()
	limit := MaxRetryDelay(o)
	d := o.RetryInterval
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// backoff counts consecutive failures of one kind and draws the jittered
// wait before the next attempt.
type backoff struct {
	opts  *Options // shared with the elector's other backoffs
	rng   *jitter
	fails int
}

// failed counts a failure and returns how long to wait before retrying.
func (b *backoff) failed() time.Duration {
	b.fails++
	return b.rng.spread(RetryDelay(*b.opts, b.fails))
}

// reset forgets the failures after a success.
func (b *backoff) reset() { b.fails = 0 }

// jitter is an elector's own random source for retry delays.
type jitter struct {
	mu  sync.Mutex
	rng *rand.Rand
}

func newJitter() *jitter {
	return &jitter{rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
}

// firstRenewal returns how long after its creation a session of o is
// renewed first: at a random point in the second half of RenewInterval.
// Sessions created together, which would otherwise renew together for as
// long as they live, spread their renewals over half an interval. Sooner
// is safe: it only leaves more room than the options require for a renewal
// before the step-down deadline.
func (j *jitter) firstRenewal(o Options) time.Duration {
	if o.fixedRenewals {
		return o.RenewInterval
	}
	j.mu.Lock()
	f := j.rng.Float64()
	j.mu.Unlock()
	return o.RenewInterval - time.Duration(f*float64(o.RenewInterval/2))
}

// spread returns d moved by a uniform random amount within ±RetryJitter.
func (j *jitter) spread(d time.Duration) time.Duration {
	j.mu.Lock()
	f := j.rng.Float64()
	j.mu.Unlock()
	return time.Duration(float64(d) * (1 - RetryJitter + 2*RetryJitter*f))
}
