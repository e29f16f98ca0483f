package consul

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/consul-leader/consul-leader/election"
)

// claim is the key-level half of a campaign: the leadership key of one
// resource, locked with the Consul session of its lease. A private
// election.Session is a lease with a single claim; a shared lease has a
// claim per resource.
//
// A claim lives as long as its candidate campaigns, which may be for as long
// as the process runs, one per resource: it keeps only what it needs. The
// record written into the key is encoded again at each write, from id and
// userValue, which are the candidate's own (not copies); the term held is
// two numbers, its holder being the lease's session.
type claim struct {
	l         *lease
	key       string
	id        string // the candidate's ID, in the record
	userValue []byte // the candidate's value, in the record

	mu       sync.Mutex
	lost     error             // why the key is lost, once it is
	fields   map[string]string // Info's Fields of a shared claim, once asked for
	heldRev  uint64            // with held: the revision of the key at this claim's acquisition
	heldTerm uint64            // with held: the term of that acquisition
	// cleanedAt is the index of the registrations last cleaned up.
	cleanedAt      uint64
	held           bool // the claim acquired its key: heldRev and heldTerm are its term's
	mayHold        bool // a lock was sent and not refused
	registered     bool // registered for handoff (Options.Handoff)
	registerDenied bool // the token may not register for handoff
}

// newClaim returns the claim of key for the candidate p on l.
func (l *lease) newClaim(key string, p election.SessionParams) *claim {
	return &claim{l: l, key: key, id: p.ID, userValue: p.Value}
}

// value is the record written into the key: the candidate's ID and value,
// and the lease's lock-delay.
func (c *claim) value() []byte { return encodeRecord(c.id, c.userValue, c.l.lockDelay) }

// heldRecord returns the record of this claim's term, if it acquired its
// key.
func (c *claim) heldRecord() (election.Record, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.held {
		return election.Record{}, false
	}
	return election.Record{LeaderID: c.id, Value: c.userValue, Session: c.l.info.ID, Term: c.heldTerm, Revision: c.heldRev}, true
}

// setHeld records that the claim acquired its key as rec shows it.
func (c *claim) setHeld(rec election.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held, c.heldRev, c.heldTerm = true, rec.Revision, rec.Term
}

// sharedClaim is a claim on a shared lease, as election.Claim: closing it
// releases its key and leaves the Consul session as it is. It is the claim
// itself, under another method set, so that it costs no allocation of its
// own.
type sharedClaim claim

var _ election.Claim = (*sharedClaim)(nil)

// claim returns s as the claim it is.
func (s *sharedClaim) claim() *claim { return (*claim)(s) }

// Info describes the Consul session, with the claim's key. Fields is the
// claim's own map, built at the first call and returned by every later one:
// the elector keeps it for the campaign and its term, as
// Leadership.Session.Fields, which must not be modified.
func (s *sharedClaim) Info() election.SessionInfo {
	c := s.claim()
	c.mu.Lock()
	f := c.fields
	if f == nil {
		f = c.newFields()
		c.fields = f
	}
	c.mu.Unlock()
	info := c.l.info
	info.Fields = f
	return info
}

// Acquire locks the claim's key with the lease's session (see
// claim.acquire).
func (s *sharedClaim) Acquire(ctx context.Context) (election.Acquisition, error) {
	return s.claim().acquire(ctx)
}

// Close releases the key if the claim may hold it, so that no lock-delay
// applies, and leaves the Consul session to its other claims.
func (s *sharedClaim) Close(ctx context.Context) error {
	c := s.claim()
	defer c.l.forget(c)
	return c.release(ctx)
}

// info describes the Consul session, with the claim's key, in Fields of
// its own.
func (c *claim) info() election.SessionInfo {
	info := c.l.info
	info.Fields = c.newFields()
	return info
}

// newFields returns a new map of the lease's Fields and the claim's key.
func (c *claim) newFields() map[string]string {
	f := make(map[string]string, len(c.l.info.Fields)+1)
	maps.Copy(f, c.l.info.Fields)
	f["key"] = c.key
	return f
}

// acquire locks the key with the lease's session and reads its term offset
// in one transaction, so that the term, the key's ModifyIndex plus the
// offset, is that of this very acquisition. The lock verb's result is the
// key as locked, without its value, which is the record this claim wrote.
// With Options.Handoff, a key that a leader handed over to this session, as
// the last read showed, is taken as acquired without a request; and a
// refusal because another session holds the key registers this session as
// a candidate.
func (c *claim) acquire(ctx context.Context) (election.Acquisition, error) {
	if err := c.lostErr(); err != nil {
		return election.Acquisition{}, err
	}
	b, sid := c.l.b, c.l.info.ID
	if held, ok := c.heldRecord(); ok {
		return c.reacquire(ctx, held)
	}
	if err := b.checkOffsetReadable(ctx, c.key); err != nil {
		return election.Acquisition{}, err
	}
	if b.opts.Handoff {
		c.mu.Lock()
		c.mayHold = true
		c.mu.Unlock()
		// A leader may have handed the key over to this session: the
		// last read shows it held by this session, with its term.
		if rec, ok := b.keys.heldBy(c.key, sid); ok {
			c.setHeld(rec)
			return election.Acquisition{Record: rec}, nil
		}
		return c.lock(ctx)
	}
	// The candidates of this process for the key take turns: while one's
	// lock is in flight, the others wait for its outcome, which is theirs
	// too (a key locked, or refused, for one session is refused to the
	// others), so that a release costs one lock per process rather than
	// one per candidate.
	acq, shared, err := b.acquiring.Do(ctx, c.key, func() (election.Acquisition, error) { return c.lock(ctx) })
	if shared {
		acq.Value = bytes.Clone(acq.Value)
	}
	return acq, err
}

// lock sends the lock transaction of acquire, and reads the key when it is
// refused.
func (c *claim) lock(ctx context.Context) (election.Acquisition, error) {
	b, sid := c.l.b, c.l.info.ID
	c.mu.Lock()
	c.mayHold = true
	c.mu.Unlock()
	if floor := b.keys.lossFloor(c.key); floor > 0 {
		// Consul lost its data, and the term offset with it: raise the
		// floor first, so that even this acquisition's term, which
		// followers may read before the elector checks it, is above every
		// term seen before.
		b.log.Warn("Consul's indexes went back, as after a loss of its data; raising the term floor before acquiring", "key", c.key, "floor", floor)
		if err := b.raiseKeyFloor(ctx, c.key, floor); err != nil {
			return election.Acquisition{}, err
		}
	}
	offKey := c.key + OffsetKeySuffix
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVLock, Key: c.key, Value: c.value(), Flags: api.LockFlagValue, Session: sid}},
		{KV: &api.KVTxnOp{Verb: api.KVGetTree, Key: offKey}},
	}
	// An offset seen before must still be there: if Consul lost it with
	// its data, the lock is not taken, and the next acquisition raises
	// the floor first.
	offIndex := b.keys.offsetIndex(c.key)
	if offIndex != 0 {
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCheckIndex, Key: offKey, Index: offIndex}})
	}
	ops, unregisters := c.withUnregister(ops)
	sent := time.Now()
	ok, resp, _, err := b.client.Txn().Txn(ops, b.requestOptions(ctx))
	if err != nil {
		// The lock may have been applied: mayHold stays set, so that Close
		// releases the key.
		return election.Acquisition{}, wrap(fmt.Sprintf("acquire %q", c.key), err)
	}
	if ok {
		return c.locked(resp, offKey, unregisters, sent)
	}
	// Consul rolled the transaction back: the key was not locked.
	c.mu.Lock()
	c.mayHold = false
	c.mu.Unlock()
	terr := txnError(resp.Errors)
	offsetChanged := offIndex != 0 && slices.ContainsFunc(resp.Errors, func(e *api.TxnError) bool { return e.OpIndex == 2 })
	switch {
	case errors.Is(terr, election.ErrSessionLost):
		return election.Acquisition{}, c.l.markGone(fmt.Errorf("consul: acquire %q: %w", c.key, terr))
	case offsetChanged:
		// Raised by another candidate, or lost with Consul's data: the
		// read below tells, and a loss makes the next acquisition raise
		// the floor first.
		b.log.Debug("the term offset changed since it was last read", "key", c.key, "err", terr)
	case errors.Is(terr, errLockDelay), errors.Is(terr, errLockHeld):
	default:
		return election.Acquisition{}, fmt.Errorf("consul: acquire %q: %w", c.key, terr)
	}
	// The key was refused: mostly to a holder not seen yet, whose term
	// needs the offset too.
	o, err := b.readWithOffset(ctx, c.key, 0)
	if err != nil {
		return election.Acquisition{}, err
	}
	acq := election.Acquisition{Record: o.Record}
	if b.opts.Handoff && !o.Free() && o.Session != sid {
		c.register(ctx)
	}
	if o.Free() {
		if errors.Is(terr, errLockDelay) {
			acq.RetryAfter = b.keys.retryAfter(c.key, o)
			b.log.Debug("lock-delay refused the key", "key", c.key, "retry_after", acq.RetryAfter)
		} else {
			acq.RetryAfter = freedRetry
		}
	}
	return acq, nil
}

// locked reads the outcome of a lock transaction that Consul applied: the
// record held, with the term of this acquisition.
func (c *claim) locked(resp *api.TxnResponse, offKey string, unregisters bool, sent time.Time) (election.Acquisition, error) {
	b, sid := c.l.b, c.l.info.ID
	if len(resp.Results) < 1 || resp.Results[0].KV == nil || resp.Results[0].KV.Key != c.key {
		return election.Acquisition{}, fmt.Errorf("consul: acquire %q: the transaction returned no lock result", c.key)
	}
	// The get's result comes before the check's, which has no value.
	var offPair *api.KVPair
	for _, r := range resp.Results[1:] {
		if r.KV != nil && r.KV.Key == offKey {
			offPair = r.KV
			break
		}
	}
	off, err := parseOffset(offPair)
	if err != nil {
		// The lock was applied: mayHold stays set, so that Close
		// releases the key.
		return election.Acquisition{}, err
	}
	b.keys.noteOffset(c.key, off)
	if unregisters {
		c.unregistered()
	}
	lk := resp.Results[0].KV
	if lk.Session != sid {
		return election.Acquisition{}, fmt.Errorf("consul: acquire %q: the key shows session %q after the lock", c.key, lk.Session)
	}
	o := observation{Record: election.Record{
		LeaderID: c.id, Value: c.userValue, Session: sid,
		Term: lk.ModifyIndex + off.at(lk.ModifyIndex), Revision: lk.ModifyIndex,
	}, lockDelay: c.l.lockDelay, known: true, sent: sent}
	b.keys.note(c.key, o)
	c.setHeld(o.Record)
	return election.Acquisition{Record: o.Record}, nil
}

// reacquire answers an Acquire of a claim that acquired already: the
// record it holds, with the term of its acquisition, if it still holds it.
func (c *claim) reacquire(ctx context.Context, held election.Record) (election.Acquisition, error) {
	o, err := c.l.b.read(ctx, c.key, c.l.b.queryOptions(ctx))
	if err != nil {
		return election.Acquisition{}, err
	}
	if o.Session != c.l.info.ID {
		return election.Acquisition{}, c.markLost(fmt.Errorf("consul: key %q of session %s: %w: %s", c.key, c.l.info.ID, election.ErrSessionLost, describe(o.Record)))
	}
	rec := o.Record
	rec.Term = held.Term
	return election.Acquisition{Record: rec}, nil
}

// checkHeld fails with an error wrapping election.ErrSessionLost when the
// last read of the key showed a newer holder than this claim's term.
func (c *claim) checkHeld() error {
	held, ok := c.heldRecord()
	if !ok {
		return nil
	}
	if rec, ok := c.l.b.keys.newerHolder(c.key, held); ok {
		return c.markLost(fmt.Errorf("consul: key %q of session %s: %w: %s", c.key, c.l.info.ID, election.ErrSessionLost, describe(rec)))
	}
	return nil
}

// isHeld reports whether the claim acquired its key.
func (c *claim) isHeld() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held
}

// release releases the key if this claim may hold it, so that no
// lock-delay applies, or with Options.Handoff hands it over, and deletes
// its handoff registration. It leaves the Consul session as it is. Once
// Consul no longer has the session, the key is free already.
func (c *claim) release(ctx context.Context) error {
	b, gone := c.l.b, c.l.isGone()
	c.mu.Lock()
	release := c.mayHold && !gone
	c.mayHold = false
	registered := c.registered
	c.mu.Unlock()
	var errs []error
	if release && !(b.opts.Handoff && c.handOff(ctx)) {
		pair := &api.KVPair{Key: c.key, Value: c.value(), Flags: api.LockFlagValue, Session: c.l.info.ID}
		if _, _, err := b.client.KV().Release(pair, b.writeOptions(ctx)); err != nil {
			errs = append(errs, wrap(fmt.Sprintf("release %q", c.key), err))
		}
	}
	if registered && !gone {
		if err := c.unregister(ctx, release); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// lostErr returns why the claim is lost: its key, or its session.
func (c *claim) lostErr() error {
	c.mu.Lock()
	lost := c.lost
	c.mu.Unlock()
	if lost != nil {
		return lost
	}
	return c.l.lostErr()
}

// markLost records that the claim lost its key; it returns err.
func (c *claim) markLost(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lost == nil {
		c.lost = err
	}
	return err
}

func describe(r election.Record) string {
	if r.Free() {
		return "the key has no holder"
	}
	return fmt.Sprintf("the key is held by %q (session %s, term %d)", r.LeaderID, r.Session, r.Term)
}
