//go:build go1.25

package election

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

type testKey struct{}

func expiredCause() error { return fmt.Errorf("%w: test deadline", ErrLeaseExpired) }

// endFunc is a function as a termEnder.
type endFunc func()

func (f endFunc) termEnded() { f() }

// newTermContext returns the context of a term on a session whose context
// is parent and whose step-down deadline is deadline, made as the engine
// makes it (keepalive.initTermContext), and its cancel function. cause
// gives the cause for a term that ends at its deadline; onEnd, when not
// nil, is called once the context has ended.
func newTermContext(parent context.Context, deadline *stepDown, cause func() error, onEnd func()) (*termContext, context.CancelCauseFunc) {
	k := &keepalive{ctx: parent, stepDown: deadline, expiredCause: cause}
	context.AfterFunc(parent, k.endTerms)
	if onEnd == nil {
		onEnd = func() {}
	}
	c := new(termContext)
	k.initTermContext(c, endFunc(onEnd))
	return c, c.cancel
}

// No timer enforces the deadlines below: a term context must report its end
// by itself, to the goroutine that asks, as after a process resumed from a
// stop whose timers have not run yet.

func TestTermContextErrReportsPassedDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sd := newStepDown(time.Now().Add(time.Second))
		tc, cancel := newTermContext(context.Background(), sd, expiredCause, nil)
		defer cancel(nil)
		child, stopChild := context.WithCancel(tc)
		defer stopChild()
		after := context.AfterFunc(tc, func() {})
		defer after()
		valued := context.WithValue(tc, testKey{}, 1)

		time.Sleep(time.Second - time.Nanosecond)
		if err := tc.Err(); err != nil {
			t.Fatalf("Err before the deadline = %v", err)
		}
		time.Sleep(time.Nanosecond)
		// Nothing else ran since the deadline passed.
		if err := valued.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Err of a value context at the deadline = %v, want context.Canceled", err)
		}
		if err := tc.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Err at the deadline = %v, want context.Canceled", err)
		}
		if cause := context.Cause(tc); !errors.Is(cause, ErrLeaseExpired) {
			t.Errorf("Cause = %v, want ErrLeaseExpired", cause)
		}
		select {
		case <-tc.Done():
		default:
			t.Error("Done not closed at the deadline")
		}
		// A context derived before the deadline ended with it, with its cause.
		if err := child.Err(); !errors.Is(err, context.Canceled) {
			t.Errorf("Err of a derived context = %v, want context.Canceled", err)
		}
		if cause := context.Cause(child); !errors.Is(cause, ErrLeaseExpired) {
			t.Errorf("Cause of a derived context = %v, want ErrLeaseExpired", cause)
		}
		if after() {
			t.Error("AfterFunc did not run at the end of the term")
		}
	})
}

func TestTermContextCauseAndDerivedAfterDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sd := newStepDown(time.Now().Add(time.Second))
		tc, cancel := newTermContext(context.Background(), sd, expiredCause, nil)
		defer cancel(nil)
		time.Sleep(time.Second)
		// Asked first for its cause, or for a derived context, a term
		// context past its deadline has ended.
		if cause := context.Cause(tc); !errors.Is(cause, ErrLeaseExpired) {
			t.Fatalf("Cause past the deadline = %v, want ErrLeaseExpired", cause)
		}
		tc2, cancel2 := newTermContext(context.Background(), sd, expiredCause, nil)
		defer cancel2(nil)
		child, stop := context.WithCancel(tc2)
		defer stop()
		if cause := context.Cause(child); !errors.Is(cause, ErrLeaseExpired) {
			t.Fatalf("Cause of a context derived past the deadline = %v, want ErrLeaseExpired", cause)
		}
		timed, stopTimed := context.WithTimeout(tc2, time.Hour)
		defer stopTimed()
		if err := timed.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Err of a timeout context derived past the deadline = %v", err)
		}
	})
}

func TestTermContextDeadlineMoves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		sd := newStepDown(start.Add(time.Second))
		tc, cancel := newTermContext(context.Background(), sd, expiredCause, nil)
		child, stop := context.WithCancel(tc)
		defer stop()
		sd.set(start.Add(3 * time.Second)) // a renewal succeeded
		time.Sleep(2 * time.Second)
		if err := tc.Err(); err != nil {
			t.Fatalf("Err before the moved deadline = %v", err)
		}
		select {
		case <-tc.Done():
			t.Fatal("Done closed before the moved deadline")
		default:
		}
		// Any other end is reported as it was given, to derived contexts too.
		cancel(ErrReleased)
		if cause := context.Cause(tc); !errors.Is(cause, ErrReleased) {
			t.Errorf("Cause after cancel = %v, want ErrReleased", cause)
		}
		if cause := context.Cause(child); !errors.Is(cause, ErrReleased) {
			t.Errorf("Cause of a derived context after cancel = %v, want ErrReleased", cause)
		}
		time.Sleep(2 * time.Second)
		if cause := context.Cause(tc); !errors.Is(cause, ErrReleased) {
			t.Errorf("Cause after the deadline of a cancelled term = %v, want ErrReleased", cause)
		}
	})
}

func TestTermContextEndsWithParent(t *testing.T) {
	parent, cancelParent := context.WithCancelCause(context.Background())
	sd := newStepDown(time.Now().Add(time.Hour))
	tc, cancel := newTermContext(parent, sd, expiredCause, nil)
	defer cancel(nil)
	cancelParent(ErrSessionLost)
	if cause := context.Cause(tc); !errors.Is(cause, ErrSessionLost) {
		t.Errorf("Cause after the parent ended = %v, want ErrSessionLost", cause)
	}
}

func BenchmarkTermContextErr(b *testing.B) {
	sd := newStepDown(time.Now().Add(time.Hour))
	tc, cancel := newTermContext(context.Background(), sd, expiredCause, nil)
	defer cancel(nil)
	for b.Loop() {
		if tc.Err() != nil {
			b.Fatal("ended")
		}
	}
}

// TestTermContextOnEndAfterItEnded: onEnd, which resumes the campaign to
// release the store, runs only once the term's context has ended, also when
// the session's context ends it: a release while the handler still sees
// its term would let another candidate lead beside it. The session's
// context has thousands of other children here, so that it takes long to
// end them all, and onEnd, on a function of that context's, would run
// before the term's own turn came.
func TestTermContextOnEndAfterItEnded(t *testing.T) {
	for range 10 {
		parent, cancelParent := context.WithCancelCause(context.Background())
		for range 10_000 {
			_, cancel := context.WithCancel(parent)
			defer cancel()
		}
		sd := newStepDown(time.Now().Add(time.Hour))
		seen := make(chan error, 1)
		var tc *termContext
		ready := make(chan struct{})
		tc, cancel := newTermContext(parent, sd, expiredCause, func() {
			<-ready
			seen <- tc.Err()
		})
		close(ready)
		defer cancel(nil)
		cancelParent(ErrSessionLost)
		if err := <-seen; err == nil {
			t.Fatal("onEnd ran while the term's context had not ended")
		}
	}
}
