// Package election elects one leader among many processes, on a pluggable
// coordination store, so that exactly one of them acts on a shared resource
// (a cron, a queue consumer, a shard) at any moment.
//
// An Elector campaigns for one resource on behalf of one candidate. Every
// backend (consul, etcd, redis, memory) returns the same Elector, built by New
// on the one engine of this package; a backend supplies only its store's
// primitives (see Backend).
//
// Run is the whole life of a candidate in one blocking call: it campaigns
// until its context ends, then ends the term, waits for the handler,
// releases, and returns nil, so that it fits an errgroup. Start is the
// background form, ended by Close. LeaderOnly adapts a function that only
// does the leader's work. IsLeader and State answer whether this elector
// leads, and what its handler was last told, without a store request or a
// lock; Leader reads the store.
//
// # What a handler sees
//
// Start runs a campaign in the background and calls the Handler, one call at
// a time and in order, for every change the elector observes: it became
// leader (IsLeader true, with the term's context); it lost or released
// leadership (IsLeader false, LeaderID empty); another candidate leads
// (IsLeader false, that candidate's LeaderID and Value); there is no leader;
// the store cannot be reached or refuses the elector (Err set). A leader's
// release that this elector takes over at once is not announced as a time
// with no leader: the outcome of its acquisition is. A handler still busy
// when several changes happen is then told the latest state only (see
// Retries).
//
// A leader's handler may return at once or run the leader's work until its
// context ends. The term ends, and its context is cancelled, when the store
// takes the leadership away, when renewals fail until the step-down deadline,
// on Release, Close or cancellation of Start's context, or when the handler
// returns an error (or panics). The elector releases the store only after the
// handler's leader call has returned, and never campaigns again while it is
// still running.
//
// # Safety: stepping down before anyone else can lead
//
// A leader's term context is cancelled at
//
//	(start of the last successful renewal) + TTL − StepDownMargin(TTL)
//
// where StepDownMargin is a tenth of the TTL, while the store keeps the
// session at least until (that same start) + TTL. The deadline counts from
// the renewal's start, not from its reply, which may arrive late: the store
// may have renewed at any moment in between. So a leader whose store
// connection fails, or hangs, stops before the store can grant the
// leadership to anyone else. Every store request carries a deadline
// (RequestTimeout, shorter than that window), so a hung connection cannot
// hold the elector either.
//
// # Writing as a leader
//
// Check ctx.Err() right before each write, and pass Term:
//
//	for job := range jobs {
//		if ctx.Err() != nil {
//			return nil // the term ended
//		}
//		if err := db.Write(ctx, job, l.Term); err != nil {
//			return err
//		}
//	}
//
// The term's context reads the clock itself: its Err reports the end of the
// term as soon as the step-down deadline has passed, in the goroutine that
// asks, even in a process that has just resumed from a stop (a long GC pause,
// a frozen VM, SIGSTOP) and has not yet run the timer that enforces the
// deadline. A context derived from it (WithCancel, WithTimeout) is cancelled
// with it, with the same cause (context.Cause), but sees a passed deadline
// only once the term's own context was asked or its timer ran: check the
// term's own context. A select on Done that has another case ready picks
// either, so a select alone is not that check. TermDeadline reads the
// deadline itself, as the renewals move it: what a leader hands work to
// outside the process (a child process, a lease of its own) may act until
// that deadline plus StepDownMargin(TTL) at most.
//
// # The fencing token
//
// No lease survives every failure: a process can stall (a long GC pause, a
// frozen VM) between that check and its write, or its write can be delayed
// on the way, past its deadline. Every term therefore carries
// Leadership.Term, a number that grows with every new term of a resource on
// every backend. Pass it with each write the leader makes, and let the
// written system refuse a token lower than the highest it has seen: the
// stalled leader's late writes are then refused.
//
// A store that loses its data issues terms from the start again. No handler
// is ever given a lower term than one its elector announced before, on any
// backend: a notification that names a leader, follower or leader call,
// carries a Term at least as high as every Term given to that handler
// before. The engine keeps this promise with the highest term each elector
// has seen:
//
//   - An elector that acquires a term not above it gives the acquisition up.
//     The first time, it raises the store's term floor (TermFloorRaiser)
//     above that term and campaigns again at once, so that its next term is
//     above. A backend that cannot raise its floor, or whose terms stay low,
//     is reported to the handler (Err) and retried with backoff: the elector
//     does not lead with a lower term.
//   - A follower that sees another candidate lead with a term below it (one
//     that never saw the higher term) does not announce that leader: its
//     handler is told that there is no leader (LeaderID empty, Term 0) until
//     a leader with a higher term appears. It logs a warning, once for each
//     highest term, and raises the store's term floor above that term, so
//     that the next term is above it.
//
// # Retries
//
// After a failed store request, or a term its handler gave up (an error or
// a panic), an elector waits before it tries again: RetryInterval after the
// first failure in a row, doubled after each further one, at most
// MaxRetryDelay (half the TTL, at most 30 s, at least RetryInterval); see
// RetryDelay. Every such wait is moved at random by up to ±RetryJitter
// (20 %), so that many candidates do not retry in lockstep after an outage,
// and a candidate cut off from its store is back within about half a TTL of
// the store's return.
// The count starts again after a successful read or acquisition from the
// store, and, for the handler, after a term that lasted at least
// MaxRetryDelay or ended for another cause. A Release is not a failure: the
// elector campaigns again exactly RetryInterval later.
//
// A slow handler is told the latest state, not every state in between: a
// follower notification still waiting for the handler when a newer one
// arrives is replaced by it. Leader calls are never dropped or reordered,
// nor is the notification that a term ended.
//
// # Observing
//
// An Observer, attached by Options.Observers (and SessionOptions.Observers
// for a shared session's renewals), receives the engine's events as they
// happen: a term started or ended, and why (EndCause), each renewal with
// its latency and the margin it left before the step-down deadline, each
// failed store request by operation (Op), and a handler still running
// after its term ended. An elector without observers pays nothing for
// them. Package election/health builds a liveness check and a leader-only
// readiness handler on them. Every log record names the elector, term,
// session, backend, cause and error with the attributes resource, id,
// term, session, backend, cause and err.
package election
