package consul

import (
	"sync"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

// Retrying during a lock-delay.
const (
	// lockDelayMargin is added to the expected end of a lock-delay before
	// trying again, for the scheduling of the request.
	lockDelayMargin = 2 * time.Millisecond
	// refusedBackoff is the first wait after a lock refused past the
	// expected end of its lock-delay, or one of unknown length; it doubles
	// with every further refusal up to maxRefusedBackoff.
	refusedBackoff    = 10 * time.Millisecond
	maxRefusedBackoff = time.Second
	// freedRetry is the wait after a lock refused because the key was held,
	// when the next read shows it free: it was released in between, so
	// acquire again at once.
	freedRetry = time.Millisecond
)

// keyStates remembers, per key, what a backend saw of it: the newest
// record, and since when the key is free, to time acquisitions that
// Consul's lock-delay refuses; the highest term it saw, and whether Consul
// has since lost its data, to raise the term floor before acquiring; and
// what the token was seen to be allowed to read.
type keyStates struct {
	mu   sync.Mutex
	keys map[string]*keyState
	// block is what is left of the last block of states allocated:
	// states are allocated keyStateBlock at a time. A state lives as long
	// as the backend, and is made as its key is first read, as often
	// among the garbage of many acquisitions at once: a state of its own,
	// of a size that garbage shares, would keep a span in use for each
	// few states.
	block []keyState
}

// keyStateBlock is how many keyStates are allocated at a time.
const keyStateBlock = 64

// keyState is kept for every key the backend reads, as long as the backend
// lives, so it is kept small: instants are monotonic readings (see mono),
// and what only Options.Handoff needs is apart.
type keyState struct {
	// last is the newest record seen: the one with the highest revision,
	// unless Consul lost its data since (see wentBack). lastNoted is when
	// it was noted.
	last      election.Record
	lastNoted int64
	// highest is the highest term of a holder seen. lost is set when
	// Consul's indexes were seen to go back, as after a loss of its data
	// (a dev agent restarted, a cluster rebuilt): its term offset may be
	// lost too, and the next acquisition must first raise the term floor
	// above highest.
	highest uint64
	// off is the term offset last seen, if offSeen. An acquisition checks
	// that an offset seen present is still there: after a loss of
	// Consul's data it is gone, and an acquisition without it would issue
	// a term below those seen.
	off termOffset
	// freeRev is the revision of the key when it was last seen free, and
	// freeSeen when that revision was first seen.
	freeRev  uint64
	freeSeen int64
	// list is what recursive reads of the key told, with Options.Handoff.
	list *listState
	// refused counts lock-delay refusals of freeRev past its expected end,
	// up to maxRefusals.
	refused uint8
	lost    bool
	offSeen bool
	// offReadable: the token was seen to be allowed to read the key's term
	// offset (see checkOffsetReadable).
	offReadable bool
	// listable: a recursive read was seen to show the key, or a read of the
	// key alone to be missing too; unlisted: a recursive read hides it from
	// the token (see listObservation).
	listable bool
	unlisted bool
}

// maxRefusals bounds keyState.refused, past the doublings of the backoff.
const maxRefusals = 16

// listState is what the last recursive read of a key told, with
// Options.Handoff: the candidates' registrations (cands), and the read's
// index (listIndex) when it showed the key at revision listRev: a blocking
// read of the folder waits on that index, which registrations move past
// the key's.
type listState struct {
	cands     []candidate
	listIndex uint64
	listRev   uint64
}

// monoBase is the origin of mono.
var monoBase = time.Now()

// mono returns the monotonic reading of t, in nanoseconds since monoBase;
// 0 for the zero time. t must carry a monotonic reading (time.Now's).
func mono(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return int64(t.Sub(monoBase))
}

// note records an observation of key.
func (k *keyStates) note(key string, o observation) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.noteLocked(key, o)
}

// noteList records an observation of key made by a recursive read at
// index, with the registrations it showed. The last read wins, also one at
// a lower index: an agent that lost its state counts its indexes again from
// the start, and registrations made since must be seen. (A read that ends
// after a newer one only makes the view a little older, which the handoff
// transaction checks anyway.)
func (k *keyStates) noteList(key string, o observation, index uint64, cands []candidate) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.noteLocked(key, o)
	if s.list == nil {
		s.list = &listState{}
	}
	s.list.cands, s.list.listIndex, s.list.listRev = cands, index, o.Revision
}

// waitIndex returns the index a blocking recursive read of key waits on
// to see a change from revision after.
func (k *keyStates) waitIndex(key string, after uint64) uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	if s := k.keys[key]; s != nil && s.list != nil && s.list.listRev == after {
		return max(s.list.listIndex, after)
	}
	return after
}

// candidates returns the registrations the last recursive read of key
// showed, and the index of that read.
func (k *keyStates) candidates(key string) ([]candidate, uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if s := k.keys[key]; s != nil && s.list != nil {
		return s.list.cands, s.list.listIndex
	}
	return nil, 0
}

// heldBy returns the newest record of key if it shows session as holder,
// with its term.
func (k *keyStates) heldBy(key, session string) (election.Record, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.keys[key]
	if s == nil || session == "" || s.last.Session != session {
		return election.Record{}, false
	}
	return s.last, true
}

func (k *keyStates) noteLocked(key string, o observation) *keyState {
	now := mono(time.Now())
	s := k.state(key)
	switch {
	case o.Revision > s.last.Revision:
		s.last, s.lastNoted = o.Record, now
	case s.wentBack(o.Revision, o.sent):
		// Consul lost its data: the old record is gone, and would
		// otherwise count as newer than every record until the new
		// indexes pass it.
		s.last, s.lastNoted = o.Record, now
	}
	if o.Session != "" {
		s.highest = max(s.highest, o.Term)
	}
	if o.Free() && o.Revision != s.freeRev {
		s.freeRev, s.freeSeen, s.refused = o.Revision, now, 0
	}
	return s
}

// wentBack reports whether index, a Raft index that Consul returned to a
// request sent at sent, shows that Consul lost its data, and notes it if
// so: the index is below the revision of the newest record, although the
// request was sent after that record was noted. Consul's reads are
// consistent and its writes get ever higher indexes, so a request sent
// after another returned sees an index at least as high, unless the
// indexes started again from the beginning. A zero sent proves nothing: a
// request that overlapped another may see an older state.
func (s *keyState) wentBack(index uint64, sent time.Time) bool {
	if sent.IsZero() || index >= s.last.Revision || mono(sent) <= s.lastNoted {
		return false
	}
	s.lost = s.highest > 0
	return true
}

// noteIndex records a Raft index that Consul returned to a request sent at
// sent, such as a new session's create index: one below the revision of
// the newest record of key shows that Consul lost its data, and with it
// that record.
func (k *keyStates) noteIndex(key string, index uint64, sent time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if s := k.keys[key]; s != nil && s.wentBack(index, sent) {
		s.last, s.lastNoted = election.Record{}, mono(time.Now())
	}
}

// noteOffset records the term offset of key as a consistent read showed
// it. An offset that was raised before and is now lower, or gone, shows
// that Consul lost its data: offsets only grow.
func (k *keyStates) noteOffset(key string, off termOffset) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.state(key)
	if s.offSeen && off.current < s.off.current {
		s.lost = s.highest > 0
	}
	s.off, s.offSeen = off, true
}

// offsetIndex returns the ModifyIndex of the term offset key of key as last
// seen; 0 if it was not seen, or seen absent.
func (k *keyStates) offsetIndex(key string) uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	if s := k.keys[key]; s != nil && s.offSeen {
		return s.off.index
	}
	return 0
}

// lossFloor returns the term floor an acquisition of key must raise first:
// the highest term seen, if Consul was seen to lose its data since the
// floor was last raised; 0 otherwise.
func (k *keyStates) lossFloor(key string) uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	if s := k.keys[key]; s != nil && s.lost {
		return s.highest
	}
	return 0
}

// floorRaised records that the term floor of key was raised to floor; the
// offset that took is read again by the next acquisition.
func (k *keyStates) floorRaised(key string, floor uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if s := k.keys[key]; s != nil {
		s.lost = s.lost && s.highest > floor
		s.offSeen = false
	}
}

// state returns the state of key, created if needed. The caller holds
// k.mu.
func (k *keyStates) state(key string) *keyState {
	if k.keys == nil {
		k.keys = map[string]*keyState{}
	}
	s := k.keys[key]
	if s == nil {
		if len(k.block) == 0 {
			k.block = make([]keyState, keyStateBlock)
		}
		s = &k.block[0]
		k.block = k.block[1:]
		k.keys[key] = s
	}
	return s
}

// newerHolder returns the newest record of key, if it is newer than held
// and shows another holder.
func (k *keyStates) newerHolder(key string, held election.Record) (election.Record, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.keys[key]
	if s == nil || s.last.Revision <= held.Revision || s.last.Session == held.Session {
		return election.Record{}, false
	}
	return s.last, true
}

// retryAfter returns how long to wait before locking key again, after
// Consul refused it for its lock-delay while it was free as in o.
//
// Consul does not say when a lock-delay ends. It starts when the holder's
// session is invalidated, which frees the key; the freed key was first seen
// here no earlier than that, so the lock-delay ends at the latest that long
// after. The length is the lock-delay of the last holder's session, which
// this package writes into the key's value. A key freed by a foreign lock,
// or still refused past the expected end, is tried again with a backoff.
func (k *keyStates) retryAfter(key string, o observation) time.Duration {
	now := mono(time.Now())
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.keys[key]
	if s == nil || s.freeRev != o.Revision {
		// Not noted: the caller notes every read before it asks.
		return refusedBackoff
	}
	if o.known {
		if left := time.Duration(s.freeSeen + int64(o.lockDelay) - now); left > 0 {
			return left + lockDelayMargin
		}
	}
	wait := refusedBackoff << min(s.refused, 10)
	s.refused = min(s.refused+1, maxRefusals)
	return min(wait, maxRefusedBackoff)
}

// termOf returns the term of the holder in r, a record read without its
// offset, if a record of the same holder at the same revision was noted: a
// revision is one write of the key, so its term never changes.
func (k *keyStates) termOf(key string, r election.Record) (uint64, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.keys[key]
	if s == nil || s.last.Revision != r.Revision || s.last.Session != r.Session || r.Session == "" {
		return 0, false
	}
	return s.last.Term, true
}

// latest returns the newest record noted of key.
func (k *keyStates) latest(key string) (election.Record, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.keys[key]
	if s == nil || s.last.Revision == 0 {
		return election.Record{}, false
	}
	return s.last, true
}

// offsetReadable reports whether the token was seen to be allowed to read
// the term offset of key.
func (k *keyStates) offsetReadable(key string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.keys[key]
	return s != nil && s.offReadable
}

// setOffsetReadable records that the token may read the term offset of
// key.
func (k *keyStates) setOffsetReadable(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.state(key).offReadable = true
}

// listable reports whether a recursive read was seen to show key, or a read
// of the key alone to be missing too.
func (k *keyStates) listable(key string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.keys[key]
	return s != nil && s.listable
}

// setListable records that a recursive read shows key; unlisted, that it
// hides it from the token.
func (k *keyStates) setListable(key string, unlisted bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.state(key)
	if unlisted {
		s.unlisted = true
	} else {
		s.listable = true
	}
}

// unlisted reports whether a recursive read was seen to hide key from the
// token.
func (k *keyStates) unlisted(key string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.keys[key]
	return s != nil && s.unlisted
}
