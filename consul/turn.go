package consul

import (
	"context"
	"sync"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/internal/turn"
)

// turnBound is how long the candidate woken alone at a change of its key
// may take to acquire before the other waiting candidates are woken anyway.
const turnBound = 500 * time.Millisecond

// The candidates of a backend that follow one key wait in its line
// (WatchTurn). Their blocking reads are shared as for Watch; when one
// returns a change, the candidate that has waited longest (or, when the key
// shows a holder of this process, that holder) is given the turn, and the
// shared read answers it alone. The others are answered once the holder's
// Acquire has returned without the leadership, or, when it leads, once its
// leader call begins (TurnTaken) (or the holder waits again, or its watch
// fails, or turnBound passes), and return the newest record the backend
// knows of the key: until then their goroutines are not woken at all. A
// release among N candidates of one process then runs one candidate, not
// N, before the next leader's handler runs.

var (
	_ election.TurnWatcher = (*session)(nil)
	_ election.TurnWatcher = (*sharedClaim)(nil)
)

// WatchTurn is Backend.Watch of the session's resource, by its candidate,
// which waits in line: see the turn comment above.
func (s *session) WatchTurn(ctx context.Context, after uint64, wait time.Duration) (election.Record, error) {
	return s.c.watchTurn(ctx, after, wait)
}

// WatchTurn is Backend.Watch of the claim's resource, by its candidate,
// which waits in line: see the turn comment above.
func (s *sharedClaim) WatchTurn(ctx context.Context, after uint64, wait time.Duration) (election.Record, error) {
	return s.claim().watchTurn(ctx, after, wait)
}

// TurnTaken ends the candidate's turn (see election.TurnWatcher and
// claim.turnTaken).
func (s *session) TurnTaken() { s.c.turnTaken() }

// TurnTaken ends the candidate's turn (see election.TurnWatcher and
// claim.turnTaken).
func (s *sharedClaim) TurnTaken() { s.claim().turnTaken() }

// turnTaken ends the turn on the claim's key if the claim's candidate holds
// it, and wakes the candidates held back.
func (c *claim) turnTaken() { c.l.b.lines.taken(c.key, c.l.info.ID) }

// lines holds the line of each key followed through WatchTurn.
type lines struct {
	mu     sync.Mutex
	closed bool
	keys   map[string]*keyLine
	// released are the calls held back whose turn ended, answered at
	// unlock, on a goroutine of wg.
	released []heldCall
	wg       sync.WaitGroup
}

// keyLine is the line of one key.
type keyLine struct {
	line turn.Line
	// ended is closed when the turn on ends; a new one is made at each
	// turn given.
	ended chan struct{}
	users int // the WatchTurn calls of the key in progress
	// held are the calls in line that a shared read answered with a
	// change while another candidate held the turn: they are answered when
	// the turn ends, or when one of them is given the turn.
	held []heldCall
}

// place is a WatchTurn call's place in its key's line, which the shared
// reads answer through (see lines.answer).
type place struct {
	kl *keyLine
	w  *turn.Waiter
}

// heldCall is a call in line whose answer is held back; send answers it,
// released telling that the turn it was held back for ended.
type heldCall struct {
	w    *turn.Waiter
	send func(released bool)
}

// watchTurn is Backend.Watch of the claim's key, in the key's line.
func (c *claim) watchTurn(ctx context.Context, after uint64, wait time.Duration) (election.Record, error) {
	b := c.l.b
	if after == 0 || wait <= 0 {
		return b.readNow(ctx, c.key)
	}
	kl, w := b.lines.join(c.key, c.l.info.ID)
	if w == nil {
		rec, _, err := b.watches.watch(ctx, c.key, after, wait, nil)
		return rec, err
	}
	acted := false // returned the record it was given the turn for
	defer func() { b.lines.leave(c.key, kl, w, acted) }()
	rec, released, err := b.watches.watch(ctx, c.key, after, wait, &place{kl: kl, w: w})
	if err != nil || rec.Revision == after {
		return rec, err
	}
	if released {
		// The change was held back while another candidate had the turn,
		// which has ended.
		return b.newest(c.key, rec), nil
	}
	ended, mine := b.lines.changed(kl, w, rec)
	if mine || ended == nil {
		acted = mine
		return rec, nil
	}
	select {
	case <-w.Turn():
		acted = true
	case <-ended:
	case <-ctx.Done():
		return election.Record{}, ctxError(ctx, c.key)
	}
	return b.newest(c.key, rec), nil
}

// holdBack returns rec, a change of key that a Watch call outside the line
// saw, once the turn it gives, if any, has ended, or the newest record
// known of key then: the candidate given the turn acts before the other
// calls of this process learn of the change. It fails if ctx ends first.
func (b *Backend) holdBack(ctx context.Context, key string, rec election.Record) (election.Record, error) {
	ended := b.lines.changedOutside(key, rec)
	if ended == nil {
		return rec, nil
	}
	select {
	case <-ended:
		return b.newest(key, rec), nil
	case <-ctx.Done():
		return election.Record{}, ctxError(ctx, key)
	}
}

// newest returns the newest record known of key, rec or a newer one.
func (b *Backend) newest(key string, rec election.Record) election.Record {
	if r, ok := b.keys.latest(key); ok && r.Revision > rec.Revision {
		return r
	}
	return rec
}

// join adds candidate id to key's line; w is nil once the backend is
// closed. A candidate that was given the turn and waits again instead of
// acting (it holds off after a term of its own) passes the turn on.
func (l *lines) join(key, id string) (kl *keyLine, w *turn.Waiter) {
	l.mu.Lock()
	defer l.unlock()
	if l.closed {
		return nil, nil
	}
	if l.keys == nil {
		l.keys = map[string]*keyLine{}
	}
	kl = l.keys[key]
	if kl == nil {
		kl = &keyLine{}
		l.keys[key] = kl
	}
	if kl.line.HeldBy(id) {
		l.passLocked(kl)
	}
	kl.users++
	return kl, kl.line.Join(id)
}

// changed is called by a WatchTurn call whose watch returned rec, a change:
// it gives the turn, unless one is on, to the holder rec shows if it waits
// in line, or to the candidate waiting longest when rec shows none. mine
// reports whether w holds the turn; otherwise ended, if not nil, is closed
// when the turn on ends, and the call waits for it.
func (l *lines) changed(kl *keyLine, w *turn.Waiter, rec election.Record) (ended <-chan struct{}, mine bool) {
	l.mu.Lock()
	defer l.unlock()
	if !kl.line.On() {
		l.giveLocked(kl, rec.Session)
	}
	if kl.line.Holds(w) {
		return nil, true
	}
	if kl.line.On() {
		return kl.ended, false
	}
	return nil, false
}

// answer hands rec, a change of p's key that a shared read showed, to the
// call at p, by send: at once, unless another candidate is given the turn
// (or holds it already) — then once the turn ends, or passes to p's
// candidate. The candidate given the turn is answered by its own read, or,
// if that read answered it earlier and it is held back, here. send must not
// block.
func (l *lines) answer(p *place, rec election.Record, send func(released bool)) {
	l.mu.Lock()
	defer l.unlock()
	kl := p.kl
	if !kl.line.On() {
		l.giveLocked(kl, rec.Session)
	}
	if !kl.line.On() || kl.line.Holds(p.w) {
		send(false)
		return
	}
	kl.held = append(kl.held, heldCall{w: p.w, send: send})
}

// changedOutside is changed, for a Watch call outside the line: it gives
// the turn if key has a line, and returns the channel closed when the turn
// on ends, or nil when none is on.
func (l *lines) changedOutside(key string, rec election.Record) <-chan struct{} {
	l.mu.Lock()
	defer l.unlock()
	kl := l.keys[key]
	if kl == nil {
		return nil
	}
	if !kl.line.On() {
		l.giveLocked(kl, rec.Session)
	}
	if kl.line.On() {
		return kl.ended
	}
	return nil
}

// leave takes w out of kl's line. A call that held the turn and did not
// return the record it was given the turn for (acted false) passes the turn
// on.
func (l *lines) leave(key string, kl *keyLine, w *turn.Waiter, acted bool) {
	l.mu.Lock()
	defer l.unlock()
	kl.line.Leave(w)
	kl.users--
	for i, h := range kl.held {
		if h.w == w {
			kl.held = append(kl.held[:i], kl.held[i+1:]...)
			break
		}
	}
	if kl.line.Holds(w) && !acted {
		l.passLocked(kl)
	}
	l.dropLocked(key, kl)
}

// taken ends the turn on key, if candidate id holds it: its Acquire
// returned. An Acquire of another candidate (one that holds off after its
// own term, or retries) leaves the turn on.
func (l *lines) taken(key, id string) {
	l.mu.Lock()
	defer l.unlock()
	if kl := l.keys[key]; kl != nil && kl.line.HeldBy(id) {
		l.endLocked(kl)
		l.dropLocked(key, kl)
	}
}

// close ends every turn, and returns once every call held back was
// answered; WatchTurn calls from then on wait out of line.
func (l *lines) close() {
	l.mu.Lock()
	l.closed = true
	for key, kl := range l.keys {
		l.endLocked(kl)
		l.dropLocked(key, kl)
	}
	l.unlock()
	l.wg.Wait()
}

// giveLocked gives the turn to the waiter of holder, or to the one waiting
// longest if holder is empty, and reports whether it did. l.mu is held.
func (l *lines) giveLocked(kl *keyLine, holder string) bool {
	var ended chan struct{}
	expire := func() {
		l.mu.Lock()
		defer l.unlock()
		if kl.ended == ended {
			l.endLocked(kl)
		}
	}
	if l.closed || !kl.line.Give(holder, turnBound, expire) {
		return false
	}
	ended = make(chan struct{})
	kl.ended = ended
	// A candidate given the turn while its answer is held back is
	// answered now.
	for i, h := range kl.held {
		if kl.line.Holds(h.w) {
			kl.held = append(kl.held[:i], kl.held[i+1:]...)
			h.send(false)
			break
		}
	}
	return true
}

// passLocked gives the turn on, from a holder that does not act on it, to
// the candidate waiting longest, or ends it when none waits. The calls held
// back stay so while the next candidate holds the turn. l.mu is held.
func (l *lines) passLocked(kl *keyLine) {
	if kl.line.End() {
		close(kl.ended)
		kl.ended = nil
	}
	if !l.giveLocked(kl, "") {
		l.releaseLocked(kl)
	}
}

// endLocked ends kl's turn, if one is on, and wakes the calls waiting for
// its end, and those held back. l.mu is held.
func (l *lines) endLocked(kl *keyLine) {
	if kl.line.End() {
		close(kl.ended)
		kl.ended = nil
	}
	l.releaseLocked(kl)
}

// releaseLocked has the calls held back answered once l.mu is unlocked.
// l.mu is held.
func (l *lines) releaseLocked(kl *keyLine) {
	l.released = append(l.released, kl.held...)
	kl.held = nil
}

// unlock unlocks l.mu, and has the calls released meanwhile answered on a
// goroutine of its own: the caller, mostly the next leader's acquisition,
// goes on to its handler without waking them one by one first, and the
// goroutines woken do not queue on l.mu.
func (l *lines) unlock() {
	released := l.released
	l.released = nil
	if len(released) > 0 {
		l.wg.Add(1) // under l.mu: close waits for it
	}
	l.mu.Unlock()
	if len(released) == 0 {
		return
	}
	go func() {
		defer l.wg.Done()
		for _, h := range released {
			h.send(true)
		}
	}()
}

// dropLocked forgets kl once no call uses it and no turn is on. l.mu is
// held.
func (l *lines) dropLocked(key string, kl *keyLine) {
	if kl.users == 0 && !kl.line.On() && l.keys[key] == kl {
		delete(l.keys, key)
	}
}
