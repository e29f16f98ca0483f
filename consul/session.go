package consul

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/consul-leader/consul-leader/election"
)

// sessionCreate is the body of a session creation. It is sent as is rather
// than through api.Session.Create, which can neither send a lock-delay of
// zero (it sends nothing, and Consul applies 15 s) nor service checks
// without the default serfHealth node check.
type sessionCreate struct {
	Name          string
	LockDelay     string
	Behavior      string
	TTL           string
	NodeChecks    []string           // never nil: an empty list means no node check
	ServiceChecks []api.ServiceCheck `json:",omitempty"`
}

// session is one Consul session, campaigning for one resource.
type session struct {
	b     *Backend
	key   string
	value []byte // the record written into the key
	id    string // the candidate's ID, in the record
	// userValue is the candidate's value, in the record.
	userValue []byte
	lockDelay time.Duration
	info      election.SessionInfo
	check     *ttlCheck     // nil unless Options.CheckTTL
	ttl       time.Duration // the Consul session's TTL
	checkTTL  time.Duration // the check's TTL, with check

	mu             sync.Mutex
	held           *election.Record // the record of this session's term
	mayHold        bool             // a lock was sent and not refused
	lost           error            // why the session is lost, once it is
	gone           bool             // Consul no longer has the session
	sessionRenewed time.Time        // start of the last renewal of the Consul session
	registered     bool             // registered for handoff (Options.Handoff)
	registerDenied bool             // the token may not register for handoff
	cleanedAt      uint64           // the index of the registrations last cleaned up
}

var _ election.Session = (*session)(nil)

// NewSession creates a Consul session with behaviour release, the TTL of p
// (or, with Options.CheckTTL, a TTL check of its own and a backstop TTL),
// the configured lock-delay and checks, and no others.
func (b *Backend) NewSession(ctx context.Context, p election.SessionParams) (election.Session, error) {
	if err := election.ValidateResource(p.Resource); err != nil {
		return nil, err
	}
	if err := b.opts.validateTTL(p.TTL); err != nil {
		return nil, err
	}
	if err := b.checkOffsetReadable(ctx, b.Key(p.Resource)); err != nil {
		return nil, err
	}
	start := time.Now()
	lockDelay := b.opts.lockDelay()
	s := &session{
		b:         b,
		key:       b.Key(p.Resource),
		value:     encodeRecord(p.ID, p.Value, lockDelay),
		id:        p.ID,
		userValue: p.Value,
		lockDelay: lockDelay,
		ttl:       p.TTL,
	}
	body := sessionCreate{
		Name:       b.sessionName(p.Resource),
		LockDelay:  strconv.FormatInt(lockDelay.Milliseconds(), 10) + "ms",
		Behavior:   api.SessionBehaviorRelease,
		NodeChecks: append([]string{}, b.opts.Checks...),
	}
	body.ServiceChecks = append(body.ServiceChecks, b.opts.ServiceChecks...)
	if b.opts.CheckTTL > 0 {
		s.checkTTL = max(b.opts.CheckTTL, p.TTL)
		s.ttl = max(p.TTL, MinSessionTTL)
		c, err := b.registerCheck(ctx, p, s.checkTTL)
		if err != nil {
			return nil, err
		}
		s.check = c
		body.ServiceChecks = []api.ServiceCheck{{ID: c.checkID}}
	}
	body.TTL = s.ttl.String()

	var out struct{ ID string }
	sent := time.Now()
	if _, err := b.client.Raw().Write("/v1/session/create", body, &out, b.writeOptions(ctx)); err != nil {
		if s.check != nil {
			// If this fails too, the check turns critical and Consul
			// removes the service a minute later.
			_ = b.deregisterCheck(ctx, s.check)
		}
		return nil, wrap("create session", err)
	}
	s.sessionRenewed = start
	s.info = election.SessionInfo{
		Backend: BackendName,
		ID:      out.ID,
		TTL:     p.TTL,
		Fields: map[string]string{
			"key":         s.key,
			"session_ttl": s.ttl.String(),
			"lock_delay":  lockDelay.String(),
			"behavior":    api.SessionBehaviorRelease,
			"name":        body.Name,
		},
	}
	if b.opts.Datacenter != "" {
		s.info.Fields["datacenter"] = b.opts.Datacenter
	}
	if s.check != nil {
		s.info.Fields["check"] = s.check.checkID
		s.info.Fields["check_ttl"] = s.checkTTL.String()
	}
	// The node and the create index are Consul's; they only describe the
	// session, so a failure to read them is not one to create it. A create
	// index below the revision of a record seen before tells that Consul
	// lost its data, before this session acquires anything.
	if e, _, err := b.client.Session().Info(out.ID, b.requestOptions(ctx)); err == nil && e != nil {
		b.keys.noteIndex(s.key, e.CreateIndex, sent)
		s.info.Fields["node"] = e.Node
		s.info.Fields["create_index"] = strconv.FormatUint(e.CreateIndex, 10)
	} else if err != nil {
		b.log.Debug("could not read the new session", "session", out.ID, "err", err)
	}
	return s, nil
}

// Info describes the Consul session. Fields is a copy, which a handler may
// keep or change.
func (s *session) Info() election.SessionInfo {
	info := s.info
	info.Fields = maps.Clone(s.info.Fields)
	return info
}

// Renew renews the Consul session; with a check-bound session it passes
// the check, and renews the session itself only as often as its backstop
// TTL needs.
func (s *session) Renew(ctx context.Context) error {
	if err := s.lostErr(); err != nil {
		return err
	}
	start := time.Now()
	if s.check != nil {
		if err := s.b.passCheck(ctx, s.check); err != nil {
			if isNotFound(err) {
				return s.markLost(true, fmt.Errorf("consul: check %q of session %s is gone: %w: %w", s.check.checkID, s.info.ID, election.ErrSessionLost, err))
			}
			return wrap(fmt.Sprintf("pass check %q", s.check.checkID), err)
		}
	}
	if s.sessionRenewDue(start) {
		var out []*api.SessionEntry
		if _, err := s.b.client.Raw().Write("/v1/session/renew/"+s.info.ID, nil, &out, s.b.writeOptions(ctx)); err != nil {
			if isNotFound(err) {
				return s.markLost(true, fmt.Errorf("consul: session %s: %w: %w", s.info.ID, election.ErrSessionLost, err))
			}
			return wrap("renew session "+s.info.ID, err)
		}
		s.mu.Lock()
		s.sessionRenewed = start
		s.mu.Unlock()
	}
	s.mu.Lock()
	held := s.held
	s.mu.Unlock()
	if held != nil {
		if rec, ok := s.b.keys.newerHolder(s.key, *held); ok {
			return s.markLost(false, fmt.Errorf("consul: key %q of session %s: %w: %s", s.key, s.info.ID, election.ErrSessionLost, describe(rec)))
		}
		if s.b.opts.Handoff {
			s.cleanStale(ctx)
		}
	}
	return nil
}

// sessionRenewDue reports whether a renewal starting at now must renew the
// Consul session. Without a check, always. With one, the session's TTL must
// outlast the check's: for every renewal that passes the check at now, the
// session must live until now + checkTTL, which holds while
// now < renewed + ttl - checkTTL; renewing from half of that keeps a margin.
func (s *session) sessionRenewDue(now time.Time) bool {
	if s.check == nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return now.Sub(s.sessionRenewed) >= (s.ttl-s.checkTTL)/2
}

// Acquire locks the key with this session and reads its term offset in one
// transaction, so that the term, the key's ModifyIndex plus the offset, is
// that of this very acquisition. The lock verb's result is the key as
// locked, without its value, which is the record this session wrote. With
// Options.Handoff, a key that a leader handed over to this session, as the
// last read showed, is taken as acquired without a request; and a refusal
// because another session holds the key registers this session as a
// candidate.
func (s *session) Acquire(ctx context.Context) (election.Acquisition, error) {
	if err := s.lostErr(); err != nil {
		return election.Acquisition{}, err
	}
	s.mu.Lock()
	held := s.held
	s.mayHold = true
	s.mu.Unlock()
	if held != nil {
		return s.reacquire(ctx, *held)
	}
	if s.b.opts.Handoff {
		// A leader may have handed the key over to this session: the
		// last read shows it held by this session, with its term.
		if rec, ok := s.b.keys.heldBy(s.key, s.info.ID); ok {
			s.mu.Lock()
			s.held = &rec
			s.mu.Unlock()
			return election.Acquisition{Record: rec}, nil
		}
	}
	if floor := s.b.keys.lossFloor(s.key); floor > 0 {
		// Consul lost its data, and the term offset with it: raise the
		// floor first, so that even this acquisition's term, which
		// followers may read before the elector checks it, is above every
		// term seen before.
		s.b.log.Warn("Consul's indexes went back, as after a loss of its data; raising the term floor before acquiring", "key", s.key, "floor", floor)
		if err := s.b.raiseKeyFloor(ctx, s.key, floor); err != nil {
			return election.Acquisition{}, err
		}
	}
	offKey := s.key + OffsetKeySuffix
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVLock, Key: s.key, Value: s.value, Flags: api.LockFlagValue, Session: s.info.ID}},
		{KV: &api.KVTxnOp{Verb: api.KVGetTree, Key: offKey}},
	}
	// An offset seen before must still be there: if Consul lost it with
	// its data, the lock is not taken, and the next acquisition raises
	// the floor first.
	offIndex := s.b.keys.offsetIndex(s.key)
	if offIndex != 0 {
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCheckIndex, Key: offKey, Index: offIndex}})
	}
	ops, unregisters := s.withUnregister(ops)
	sent := time.Now()
	ok, resp, _, err := s.b.client.Txn().Txn(ops, s.b.requestOptions(ctx))
	if err != nil {
		// The lock may have been applied: mayHold stays set, so that Close
		// releases the key.
		return election.Acquisition{}, wrap(fmt.Sprintf("acquire %q", s.key), err)
	}
	if ok {
		if len(resp.Results) < 1 || resp.Results[0].KV == nil || resp.Results[0].KV.Key != s.key {
			return election.Acquisition{}, fmt.Errorf("consul: acquire %q: the transaction returned no lock result", s.key)
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
		s.b.keys.noteOffset(s.key, off)
		if unregisters {
			s.unregistered()
		}
		locked := resp.Results[0].KV
		if locked.Session != s.info.ID {
			return election.Acquisition{}, fmt.Errorf("consul: acquire %q: the key shows session %q after the lock", s.key, locked.Session)
		}
		o := observation{Record: election.Record{
			LeaderID: s.id, Value: s.userValue, Session: s.info.ID,
			Term: locked.ModifyIndex + off.at(locked.ModifyIndex), Revision: locked.ModifyIndex,
		}, lockDelay: s.lockDelay, known: true, sent: sent}
		s.b.keys.note(s.key, o)
		s.mu.Lock()
		s.held = &o.Record
		s.mu.Unlock()
		return election.Acquisition{Record: o.Record}, nil
	}
	// Consul rolled the transaction back: the key was not locked.
	s.mu.Lock()
	s.mayHold = false
	s.mu.Unlock()
	terr := txnError(resp.Errors)
	offsetChanged := offIndex != 0 && slices.ContainsFunc(resp.Errors, func(e *api.TxnError) bool { return e.OpIndex == 2 })
	switch {
	case errors.Is(terr, election.ErrSessionLost):
		return election.Acquisition{}, s.markLost(true, fmt.Errorf("consul: acquire %q: %w", s.key, terr))
	case offsetChanged:
		// Raised by another candidate, or lost with Consul's data: the
		// read below tells, and a loss makes the next acquisition raise
		// the floor first.
		s.b.log.Debug("the term offset changed since it was last read", "key", s.key, "err", terr)
	case errors.Is(terr, errLockDelay), errors.Is(terr, errLockHeld):
	default:
		return election.Acquisition{}, fmt.Errorf("consul: acquire %q: %w", s.key, terr)
	}
	// The key was refused: mostly to a holder not seen yet, whose term
	// needs the offset too.
	o, err := s.b.readWithOffset(ctx, s.key, 0)
	if err != nil {
		return election.Acquisition{}, err
	}
	acq := election.Acquisition{Record: o.Record}
	if s.b.opts.Handoff && !o.Free() && o.Session != s.info.ID {
		s.register(ctx)
	}
	if o.Free() {
		if errors.Is(terr, errLockDelay) {
			acq.RetryAfter = s.b.keys.retryAfter(s.key, o)
			s.b.log.Debug("lock-delay refused the key", "key", s.key, "retry_after", acq.RetryAfter)
		} else {
			acq.RetryAfter = freedRetry
		}
	}
	return acq, nil
}

// reacquire answers an Acquire of a session that acquired already: the
// record it holds, with the term of its acquisition, if it still holds it.
func (s *session) reacquire(ctx context.Context, held election.Record) (election.Acquisition, error) {
	o, err := s.b.read(ctx, s.key, s.b.queryOptions(ctx))
	if err != nil {
		return election.Acquisition{}, err
	}
	if o.Session != s.info.ID {
		return election.Acquisition{}, s.markLost(false, fmt.Errorf("consul: key %q of session %s: %w: %s", s.key, s.info.ID, election.ErrSessionLost, describe(o.Record)))
	}
	rec := o.Record
	rec.Term = held.Term
	return election.Acquisition{Record: rec}, nil
}

// Close releases the key if this session may hold it, so that no
// lock-delay applies, then destroys the session and deregisters its check.
func (s *session) Close(ctx context.Context) error {
	s.mu.Lock()
	release, gone := s.mayHold && !s.gone, s.gone
	s.mu.Unlock()
	var errs []error
	if release && !(s.b.opts.Handoff && s.handOff(ctx)) {
		pair := &api.KVPair{Key: s.key, Value: s.value, Flags: api.LockFlagValue, Session: s.info.ID}
		if _, _, err := s.b.client.KV().Release(pair, s.b.writeOptions(ctx)); err != nil {
			errs = append(errs, wrap(fmt.Sprintf("release %q", s.key), err))
		}
	}
	s.mu.Lock()
	registered := s.registered
	s.mu.Unlock()
	if registered && !gone {
		if err := s.unregister(ctx, release); err != nil {
			errs = append(errs, err)
		}
	}
	if !gone {
		if _, err := s.b.client.Session().Destroy(s.info.ID, s.b.writeOptions(ctx)); err != nil && !isNotFound(err) {
			errs = append(errs, wrap("destroy session "+s.info.ID, err))
		}
	}
	if s.check != nil {
		if err := s.b.deregisterCheck(ctx, s.check); err != nil && !isNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *session) lostErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lost
}

// markLost records that the session is lost, and gone when Consul no
// longer has it; it returns err.
func (s *session) markLost(gone bool, err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lost == nil {
		s.lost = err
	}
	s.gone = s.gone || gone
	return err
}

func describe(r election.Record) string {
	if r.Free() {
		return "the key has no holder"
	}
	return fmt.Sprintf("the key is held by %q (session %s, term %d)", r.LeaderID, r.Session, r.Term)
}
