// Package turn lets a backend wake the candidates of one process for one
// resource in turn: when the leadership changes, it wakes the one candidate
// that is to act on the change (the next in line), and the others only once
// that candidate has acted, or has gone back to waiting, or after a bound.
// The next leader then runs alone instead of among every follower of the
// process woken at the same moment.
package turn

import "time"

// Line is the candidates of one resource waiting in one process, in the
// order they began to wait, and the turn given to one of them. It is not
// safe for concurrent use: its owner guards it with its own lock, which the
// function passed to Give must take. Its zero value is ready to use.
type Line struct {
	waiting []*Waiter
	holder  *Waiter     // the waiter given the turn; nil when no turn is on
	timer   *time.Timer // ends the turn on its bound
}

// Waiter is one candidate waiting in a Line.
type Waiter struct {
	id   string
	turn chan struct{} // closed when the waiter is given the turn
}

// Turn returns a channel closed when the waiter is given the turn.
func (w *Waiter) Turn() <-chan struct{} { return w.turn }

// Join adds a waiter for the candidate id, at the end of the line.
func (l *Line) Join(id string) *Waiter {
	w := &Waiter{id: id, turn: make(chan struct{})}
	l.waiting = append(l.waiting, w)
	return w
}

// HeldBy reports whether the turn is held by a waiter of candidate id. A
// candidate given the turn that waits again, instead of acting, will not
// act on it: its owner then ends the turn, or gives it to another.
func (l *Line) HeldBy(id string) bool { return l.holder != nil && l.holder.id == id }

// Leave removes w, if it is still waiting.
func (l *Line) Leave(w *Waiter) {
	for i, v := range l.waiting {
		if v == w {
			l.waiting = append(l.waiting[:i], l.waiting[i+1:]...)
			return
		}
	}
}

// Give gives the turn to the waiter of candidate id, or to the one waiting
// longest when id is empty, and reports whether it did: not while a turn is
// on, nor when no such waiter waits. The waiter leaves the line, and its
// Turn channel is closed. Unless the turn ends first, expire is called
// after bound, on a goroutine of its own, to end it.
func (l *Line) Give(id string, bound time.Duration, expire func()) bool {
	if l.holder != nil {
		return false
	}
	for i, w := range l.waiting {
		if id == "" || w.id == id {
			l.waiting = append(l.waiting[:i], l.waiting[i+1:]...)
			l.holder = w
			close(w.turn)
			l.timer = time.AfterFunc(bound, expire)
			return true
		}
	}
	return false
}

// Holds reports whether w holds the turn.
func (l *Line) Holds(w *Waiter) bool { return w != nil && l.holder == w }

// On reports whether a turn is on.
func (l *Line) On() bool { return l.holder != nil }

// End ends the turn, and reports whether one was on.
func (l *Line) End() bool {
	if l.holder == nil {
		return false
	}
	l.timer.Stop()
	l.holder, l.timer = nil, nil
	return true
}
