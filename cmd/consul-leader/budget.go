//go:build linux

package main

import (
	"fmt"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

// budget is the timing of a child's stop, derived from the election TTL.
//
// A leader's term ends at its step-down deadline D, while the store keeps
// its session, and so its leadership, at least until D + margin, where
// margin is election.StepDownMargin(TTL). Everything the runner does to
// stop the child must be over within that margin:
//
//   - killBy: each time the runner finds its term still running at a
//     moment t, with left before D, it tells the watchdog that the child
//     must be dead by t + min(left, horizon) + margin - slack, no later than
//     D + margin - slack. The watchdog sends SIGTERM at killBy - grace and
//     SIGKILL at killBy, on its own clock, without the runner: a runner
//     that stalls (SIGSTOP, a long pause) stops telling it. The horizon
//     lets a runner starved for a moment keep its command, while bounding
//     how long a stalled runner's command runs blind: a stalled runner
//     does not see a term ended from outside (a session destroyed, a key
//     deleted).
//   - At the end of a term the runner tells the watchdog at once: SIGTERM
//     then, SIGKILL grace later (and no later than killBy).
//
// slack absorbs the watchdog's own timer and scheduling delays; the
// heartbeat must come several times before killBy - grace draws near, so
// grace is at most half the margin.
type budget struct {
	ttl       time.Duration // the election TTL
	margin    time.Duration // election.StepDownMargin(ttl)
	grace     time.Duration // SIGTERM to SIGKILL
	slack     time.Duration // kept free at the end of the margin
	heartbeat time.Duration // how often the runner checks its term and tells the watchdog
	horizon   time.Duration // how far past a heartbeat the runner vouches for its term, at most
}

// newBudget returns the budget for ttl and, when graceSet, the grace asked
// for; else the default grace, a quarter of the margin. A grace that does
// not fit is an error naming --grace.
func newBudget(ttl, grace time.Duration, graceSet bool) (budget, error) {
	margin := election.StepDownMargin(ttl)
	b := budget{
		ttl:       ttl,
		margin:    margin,
		grace:     margin / 4,
		slack:     margin / 10,
		heartbeat: max(margin/20, time.Millisecond),
		horizon:   ttl / 4,
	}
	if !graceSet {
		return b, nil
	}
	switch maxGrace := b.maxGrace(); {
	case grace < 0:
		return b, fmt.Errorf("--grace must not be negative, got %v", grace)
	case grace > maxGrace:
		return b, fmt.Errorf("--grace %v does not fit: the command must be dead before the store can elect another runner, "+
			"within the step-down margin TTL/10 = %v of the TTL %v; the grace may be at most half of it, TTL/20 = %v: "+
			"lower --grace, or raise the TTL to at least %v", grace, margin, ttl, maxGrace, 20*grace)
	}
	b.grace = grace
	return b, nil
}

// maxGrace is the longest grace that fits: half the step-down margin.
func (b budget) maxGrace() time.Duration { return b.margin / 2 }

// killBy returns when the child must be dead at the latest, given that the
// term was found running at t (on the monotonic clock), with left before
// its step-down deadline, as read after t.
func (b budget) killBy(t monoTime, left time.Duration) monoTime {
	return t.add(min(max(left, 0), b.horizon) + b.margin - b.slack)
}
