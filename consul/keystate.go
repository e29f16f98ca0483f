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
// Consul's lock-delay refuses.
type keyStates struct {
	mu   sync.Mutex
	keys map[string]*keyState
}

type keyState struct {
	// last is the record with the highest revision seen.
	last election.Record
	// freeRev is the revision of the key when it was last seen free, and
	// freeSeen when that revision was first seen.
	freeRev  uint64
	freeSeen time.Time
	// refused counts lock-delay refusals of freeRev past its expected end.
	refused int
	// With Options.Handoff, a recursive read of the key tells the
	// candidates' registrations (cands), and the read's index (listIndex)
	// when it showed the key at revision listRev: a blocking read of the
	// folder waits on that index, which registrations move past the key's.
	cands     []candidate
	listIndex uint64
	listRev   uint64
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
	s.cands, s.listIndex, s.listRev = cands, index, o.Revision
}

// waitIndex returns the index a blocking recursive read of key waits on
// to see a change from revision after.
func (k *keyStates) waitIndex(key string, after uint64) uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	if s := k.keys[key]; s != nil && s.listRev == after {
		return max(s.listIndex, after)
	}
	return after
}

// candidates returns the registrations the last recursive read of key
// showed, and the index of that read.
func (k *keyStates) candidates(key string) ([]candidate, uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if s := k.keys[key]; s != nil {
		return s.cands, s.listIndex
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
	now := time.Now()
	if k.keys == nil {
		k.keys = map[string]*keyState{}
	}
	s := k.keys[key]
	if s == nil {
		s = &keyState{}
		k.keys[key] = s
	}
	if o.Revision > s.last.Revision {
		s.last = o.Record
	}
	if o.Free() && o.Revision != s.freeRev {
		s.freeRev, s.freeSeen, s.refused = o.Revision, now, 0
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
	now := time.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.keys[key]
	if s == nil || s.freeRev != o.Revision {
		// Not noted: the caller notes every read before it asks.
		return refusedBackoff
	}
	if o.known {
		if left := s.freeSeen.Add(o.lockDelay).Sub(now); left > 0 {
			return left + lockDelayMargin
		}
	}
	wait := refusedBackoff << min(s.refused, 10)
	s.refused++
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
