package election

import "context"

// status is what the handler was last given: a handler call's Leadership,
// and for a leader call, the term's context. The dispatcher stores a new
// one as each call begins; IsLeader and State read it without a lock.
type status struct {
	l    Leadership
	term context.Context // the term's context for a leader call; nil otherwise
}

// leading reports whether s is a leader call whose term has not ended.
// The term's context checks the step-down deadline on Done (as on Err)
// itself, so that a term is over here the moment its deadline passes, even
// before the timer that enforces it has run. Done, unlike Err before Go
// 1.26, reads a done channel without a lock once it exists.
func (s *status) leading() bool {
	if s == nil || !s.l.IsLeader || s.term == nil {
		return false
	}
	select {
	case <-s.term.Done():
		return false
	default:
		return true
	}
}

// IsLeader reports whether this elector leads now: true from the moment its
// handler's leader call begins until the term's context ends (leadership
// lost or released, the step-down deadline passed, the elector closed).
// It reads no store and takes no lock, and may be called as often as
// needed, from any goroutine, also from within the handler. It is false
// before Start and after Close. A leader that writes to another system
// still checks its term's context and passes the term with each write (see
// Handler): IsLeader is the same answer for code that has no such context.
func (el *Elector) IsLeader() bool {
	if el == nil || el.e == nil {
		return false
	}
	return el.e.state.Load().leading()
}

// State returns the Leadership the handler was last given, or is being
// given: its latest call's, once that call has begun. Once the term of a
// leader call has ended (as IsLeader reports it), even before the handler
// is told so, State returns what that notification tells: IsLeader false,
// no LeaderID, Value or Term, the term's Session. It reads no store and
// takes no lock. It returns the zero Leadership before the first handler
// call. Value and Session.Fields are shared with the handler's call, and
// must not be modified.
func (el *Elector) State() Leadership {
	if el == nil || el.e == nil {
		return Leadership{}
	}
	s := el.e.state.Load()
	if s == nil {
		return Leadership{}
	}
	if s.l.IsLeader && !s.leading() {
		return Leadership{Resource: s.l.Resource, Session: s.l.Session}
	}
	return s.l
}
