package election

import "context"

// Run campaigns until ctx ends, calling handler as Start does, and then
// closes the elector as Close does: it ends the current term, waits for the
// handler to return, releases leadership and closes the backend. It returns
// nil once ctx has ended and nothing of the elector is left, so that it fits
// an errgroup.Group, whose context ends on a shutdown or on another member's
// error: a shutdown signalled by ctx is not an error.
//
// Run fails at once, without campaigning, where Start fails: after Start or
// another Run (ErrAlreadyStarted), after Close (ErrClosed), for a nil handler
// (ErrInvalidOptions). A handler's error does not end Run: a leader's error
// gives its term up, and the elector campaigns again (see Handler). Run
// returns ErrClosed when a Close, from another goroutine, stopped the
// campaign before ctx ended; and the backend's Close error, if closing it
// fails.
//
// Run returns only once the handler has returned: a handler that ignores
// its context keeps Run waiting, as it keeps Close waiting. To bound the
// wait, call Start and then Close with a context that has a deadline.
func (el *Elector) Run(ctx context.Context, handler Handler) error {
	e, err := el.engine()
	if err != nil {
		return err
	}
	if err := e.Start(ctx, handler); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-e.closingChan():
	}
	// Not ctx itself, which has ended: Close would not wait. Its values are
	// kept.
	if err := e.Close(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	if ctx.Err() == nil {
		return ErrClosed
	}
	return nil
}

// LeaderOnly returns a Handler that calls fn for the leader calls only,
// with the term's context and fencing token (Leadership.Term); follower
// notifications are ignored. fn does the leader's work until ctx ends, or
// returns at once; an error it returns gives the term up, as a Handler's
// does. LeaderOnly(nil) returns a nil Handler, which Start and Run refuse.
func LeaderOnly(fn func(ctx context.Context, term uint64) error) Handler {
	if fn == nil {
		return nil
	}
	return func(ctx context.Context, l Leadership) error {
		if !l.IsLeader {
			return nil
		}
		return fn(ctx, l.Term)
	}
}
