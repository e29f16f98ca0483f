//go:build go1.25

package election_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// within reports whether gap is the nominal wait d moved by at most
// RetryJitter.
func within(gap, d time.Duration) bool {
	lo := time.Duration(float64(d) * (1 - election.RetryJitter))
	hi := time.Duration(float64(d) * (1 + election.RetryJitter))
	return gap >= lo && gap <= hi
}

// TestRetryDelay: the nominal waits double from RetryInterval up to the
// cap, half the TTL (at most 30 s, at least RetryInterval).
func TestRetryDelay(t *testing.T) {
	o := election.Options{Resource: "r"} // RetryInterval 1 s, TTL 15 s
	var got []time.Duration
	for n := 1; n <= 7; n++ {
		got = append(got, election.RetryDelay(o, n))
	}
	want := []time.Duration{1000, 2000, 4000, 7500, 7500, 7500, 7500}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if !slices.Equal(got, want) {
		t.Errorf("RetryDelay(1..7) = %v, want %v", got, want)
	}
	for _, tc := range []struct {
		o    election.Options
		want time.Duration
	}{
		{election.Options{TTL: time.Hour}, 30 * time.Second},
		{election.Options{TTL: 15 * time.Second, RetryInterval: time.Minute}, time.Minute},
		{election.Options{TTL: 100 * time.Millisecond, RetryInterval: time.Millisecond}, 50 * time.Millisecond},
	} {
		if got := election.MaxRetryDelay(tc.o); got != tc.want {
			t.Errorf("MaxRetryDelay(TTL %v, RetryInterval %v) = %v, want %v", tc.o.TTL, tc.o.RetryInterval, got, tc.want)
		}
		if got := election.RetryDelay(tc.o, 1000); got != tc.want {
			t.Errorf("RetryDelay(TTL %v, RetryInterval %v, 1000) = %v, want the cap %v", tc.o.TTL, tc.o.RetryInterval, got, tc.want)
		}
	}
}

// TestFailingHandlerBacksOff: a leader handler that keeps failing gets its
// terms at exponentially growing, jittered gaps, capped at MaxRetryDelay; a
// term that lasted starts the count again.
func TestFailingHandlerBacksOff(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		opts := election.Options{Resource: "r", ID: "a"}
		var mu sync.Mutex
		var starts []time.Time
		const lasting = 9 // the call that runs 20 s before it fails
		startElector(t, memory.NewStore(), opts, func(ctx context.Context, l election.Leadership) error {
			if !l.IsLeader {
				return nil
			}
			mu.Lock()
			starts = append(starts, time.Now())
			n := len(starts)
			mu.Unlock()
			if n == lasting {
				time.Sleep(20 * time.Second)
			}
			return errors.New("boom")
		})
		time.Sleep(time.Minute)
		synctest.Wait()
		mu.Lock()
		inFirstMinute := len(starts)
		mu.Unlock()
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		// Nominal gaps: 1 2 4 7.5 7.5 7.5 7.5 7.5 (lasting) 1 2 4 ...
		t.Logf("%d terms in the first minute, %d in three (1 s RetryInterval: 60 and 180 without backoff)", inFirstMinute, len(starts))
		if limit := mostAttempts(opts, time.Minute); inFirstMinute > limit {
			t.Errorf("%d terms in the first minute of a failing handler; want at most %d", inFirstMinute, limit)
		}
		if len(starts) < lasting+3 {
			t.Fatalf("only %d terms in three minutes", len(starts))
		}
		n := 0 // failures in a row before the gap
		for i := 1; i < len(starts); i++ {
			gap := starts[i].Sub(starts[i-1])
			n++
			want := election.RetryDelay(opts, n)
			if i == lasting {
				gap -= 20 * time.Second // the term itself
				n, want = 1, election.RetryDelay(opts, 1)
			}
			t.Logf("gap %d: %v (nominal %v)", i, gap.Round(time.Millisecond), want)
			if !within(gap, want) {
				t.Errorf("gap %d after %d failures in a row: %v, want %v ±20%%", i, n, gap, want)
			}
		}
	})
}

// flakyBackend fails every request of a candidate while its store is down,
// and records when each session was asked for.
type flakyBackend struct {
	*memory.Conn
	down     *flag
	mu       sync.Mutex
	attempts []time.Time
}

type flag struct {
	mu  sync.Mutex
	set bool
}

func (f *flag) get() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.set
}

func (f *flag) put(v bool) {
	f.mu.Lock()
	f.set = v
	f.mu.Unlock()
}

func (b *flakyBackend) NewSession(ctx context.Context, p election.SessionParams) (election.Session, error) {
	b.mu.Lock()
	b.attempts = append(b.attempts, time.Now())
	b.mu.Unlock()
	if b.down.get() {
		return nil, errors.New("store unavailable")
	}
	return b.Conn.NewSession(ctx, p)
}

func (b *flakyBackend) Watch(ctx context.Context, r string, after uint64, wait time.Duration) (election.Record, error) {
	if b.down.get() {
		return election.Record{}, errors.New("store unavailable")
	}
	return b.Conn.Watch(ctx, r, after, wait)
}

func (b *flakyBackend) times() []time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.attempts)
}

// TestFailingStoreBacksOff: an elector whose store keeps failing retries at
// exponentially growing, jittered gaps, capped at MaxRetryDelay; once a
// request succeeded, the next failure waits RetryInterval again.
func TestFailingStoreBacksOff(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		b := &flakyBackend{Conn: store.Connect("a"), down: &flag{set: true}}
		opts := election.Options{Resource: "r", ID: "a"}
		el, err := election.New(b, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer el.Close(context.Background())
		ch := make(chan election.Leadership, 100)
		if err := el.Start(context.Background(), blockingLeader(ch, nil)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		down := b.times()
		t.Logf("%d attempts in two minutes of a failing store (120 without backoff)", len(down))
		if limit := mostAttempts(opts, 2*time.Minute); len(down) > limit {
			t.Errorf("%d attempts in two minutes; want at most %d", len(down), limit)
		}
		for i := 1; i < len(down); i++ {
			gap, want := down[i].Sub(down[i-1]), election.RetryDelay(opts, i)
			t.Logf("gap %d: %v (nominal %v)", i, gap.Round(time.Millisecond), want)
			if !within(gap, want) {
				t.Errorf("gap %d: %v, want %v ±20%%", i, gap, want)
			}
		}
		// Up again: it leads within the capped wait.
		b.down.put(false)
		up := time.Now()
		l := waitLeader(t, ch)
		if got, limit := time.Since(up), time.Duration(float64(election.MaxRetryDelay(opts))*(1+election.RetryJitter)); got > limit {
			t.Errorf("led %v after the store came back; want within %v", got, limit)
		}
		// Down again, and the session lost: the count starts again.
		synctest.Wait()
		n := len(b.times())
		b.down.put(true)
		store.Expire("r")
		time.Sleep(30 * time.Second)
		synctest.Wait()
		again := b.times()[n:]
		if len(again) < 3 {
			t.Fatalf("%d attempts after the store failed again", len(again))
		}
		for i := 1; i < 3; i++ {
			gap, want := again[i].Sub(again[i-1]), election.RetryDelay(opts, i)
			if !within(gap, want) {
				t.Errorf("after term %d, gap %d: %v, want %v ±20%% (the count restarted)", l.Term, i, gap, want)
			}
		}
		b.down.put(false)
	})
}

// TestRetriesSpreadAfterOutage: the candidates of a resource do not retry
// in lockstep: after an outage, 100 electors' retries are spread over the
// jitter's window.
func TestRetriesSpreadAfterOutage(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		down := &flag{set: true}
		var bs []*flakyBackend
		for i := range 100 {
			id := fmt.Sprintf("c%d", i)
			b := &flakyBackend{Conn: store.Connect(id), down: down}
			bs = append(bs, b)
			el, err := election.New(b, election.Options{Resource: "r", ID: id})
			if err != nil {
				t.Fatal(err)
			}
			defer el.Close(context.Background())
			if err := el.Start(context.Background(), func(context.Context, election.Leadership) error { return nil }); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(2 * time.Minute)
		down.put(false)
		up := time.Now()
		time.Sleep(time.Minute)
		synctest.Wait()
		var first, after []time.Duration // first retry; first attempt after the outage
		for _, b := range bs {
			ts := b.times()
			first = append(first, ts[1].Sub(ts[0]))
			i := slices.IndexFunc(ts, func(at time.Time) bool { return !at.Before(up) })
			after = append(after, ts[i].Sub(up))
		}
		slices.Sort(first)
		slices.Sort(after)
		t.Logf("first retries from %v to %v; first attempts after the outage from +%v to +%v; at most %d of 100 within 100 ms, %d distinct instants",
			first[0], first[99], after[0].Round(time.Millisecond), after[99].Round(time.Millisecond), crowd(after, 100*time.Millisecond), len(slices.Compact(slices.Clone(after))))
		if spread := first[99] - first[0]; spread < 300*time.Millisecond {
			t.Errorf("first retries spread over %v; want most of the ±20%% window of 1 s", spread)
		}
		if n := len(slices.Compact(slices.Clone(first))); n < 95 {
			t.Errorf("first retries at %d distinct instants of 100", n)
		}
		if n := crowd(after, 100*time.Millisecond); n > 15 {
			t.Errorf("%d of 100 electors retried within the same 100 ms after the outage", n)
		}
	})
}

// mostAttempts returns how many attempts, the first at once, fit in d with
// the shortest waits the backoff allows.
func mostAttempts(o election.Options, d time.Duration) int {
	n, at := 1, time.Duration(0)
	for {
		at += time.Duration(float64(election.RetryDelay(o, n)) * (1 - election.RetryJitter))
		if at > d {
			return n
		}
		n++
	}
}

// crowd returns the largest number of the sorted ds within one window.
func crowd(ds []time.Duration, window time.Duration) int {
	most, j := 0, 0
	for i := range ds {
		for ds[i]-ds[j] >= window {
			j++
		}
		most = max(most, i-j+1)
	}
	return most
}
