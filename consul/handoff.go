package consul

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/consul/api"
)

// CandidatesSuffix is appended to the leadership key to name the folder in
// which, with Options.Handoff, waiting candidates register:
// "service/<resource>/leader.candidates/<session>" by default.
const CandidatesSuffix = ".candidates/"

// maxStaleCleanup bounds the registrations of ended sessions a leader
// deletes in one renewal.
const maxStaleCleanup = 64

// candidate is the registration of a waiting candidate: a key in the
// candidates folder, locked by the candidate's session, whose value is the
// record the candidate would write into the leadership key.
type candidate struct {
	key         string
	session     string // empty once the candidate's session ended
	value       []byte
	createIndex uint64
	modifyIndex uint64
}

func candidatesFolder(key string) string { return key + CandidatesSuffix }

func candidateKey(key, session string) string { return candidatesFolder(key) + session }

// splitList sorts the pairs of a recursive read of key into the key itself,
// its term offset and the candidates' registrations, whose keys are the
// folder and a session ID, without a slash. Other keys that share the
// prefix are ignored: among them the keys of other resources, as the key of
// resource "R/leader.candidates/x" lies in the folder of resource R.
func splitList(key string, pairs api.KVPairs) (pair, offset *api.KVPair, cands []candidate) {
	folder := candidatesFolder(key)
	for _, p := range pairs {
		switch {
		case p.Key == key:
			pair = p
		case p.Key == key+OffsetKeySuffix:
			offset = p
		case strings.HasPrefix(p.Key, folder) && !strings.Contains(p.Key[len(folder):], "/"):
			cands = append(cands, candidate{key: p.Key, session: p.Session, value: p.Value, createIndex: p.CreateIndex, modifyIndex: p.ModifyIndex})
		}
	}
	return pair, offset, cands
}

// nextCandidate returns the registration a leader of session own hands key
// over to: the one registered first whose session is live, other than own,
// among those that hold a record of this package.
func nextCandidate(cands []candidate, own string) (candidate, bool) {
	var live []candidate
	for _, c := range cands {
		if _, ok := decodeRecord(c.value); ok && c.session != "" && c.session != own {
			live = append(live, c)
		}
	}
	if len(live) == 0 {
		return candidate{}, false
	}
	return slices.MinFunc(live, func(a, b candidate) int { return cmp.Compare(a.createIndex, b.createIndex) }), true
}

// register makes this session's registration, once, after the key was
// found held by another session: the leader hands the key over to the
// first registered candidate when it releases. A registration that fails is
// tried again at the next refusal, except for a lack of rights, which is
// logged once: the candidate then only waits, as without Handoff.
func (s *session) register(ctx context.Context) {
	s.mu.Lock()
	skip := s.registered || s.registerDenied
	s.mu.Unlock()
	if skip {
		return
	}
	k := candidateKey(s.key, s.info.ID)
	ok, _, err := s.b.client.KV().Acquire(&api.KVPair{Key: k, Value: s.value, Session: s.info.ID}, s.b.writeOptions(ctx))
	switch {
	case err != nil && isPermissionDenied(err):
		s.mu.Lock()
		s.registerDenied = true
		s.mu.Unlock()
		s.b.log.Warn("cannot register for handoff; this candidate will only wait for releases (the token needs key:write on the candidates folder; key_prefix on the key covers it)",
			"key", k, "err", err)
	case err != nil:
		s.b.log.Debug("could not register for handoff", "key", k, "err", err)
	case ok:
		s.mu.Lock()
		s.registered = true
		s.mu.Unlock()
	}
}

// handOff releases the key held by this session and, in the same
// transaction, locks it for the first registered candidate, with the record
// that candidate registered. It reports whether the key was handed over;
// when the candidate's session ended in the meantime, the transaction
// changes nothing and the caller releases the key.
func (s *session) handOff(ctx context.Context) bool {
	cands, _ := s.b.keys.candidates(s.key)
	c, ok := nextCandidate(cands, s.info.ID)
	if !ok {
		return false
	}
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: c.key, Session: c.session}},
		{KV: &api.KVTxnOp{Verb: api.KVUnlock, Key: s.key, Value: s.value, Flags: api.LockFlagValue, Session: s.info.ID}},
		{KV: &api.KVTxnOp{Verb: api.KVLock, Key: s.key, Value: c.value, Flags: api.LockFlagValue, Session: c.session}},
	}
	ops, unregisters := s.withUnregister(ops)
	ok, resp, _, err := s.b.client.Txn().Txn(ops, s.b.requestOptions(ctx))
	switch {
	case err != nil:
		s.b.log.Debug("handoff failed; releasing", "key", s.key, "candidate", c.session, "err", err)
		return false
	case !ok:
		s.b.log.Debug("handoff refused; releasing", "key", s.key, "candidate", c.session, "err", txnError(resp.Errors))
		return false
	}
	if unregisters {
		s.unregistered()
	}
	s.b.log.Debug("handed the key over", "key", s.key, "session", s.info.ID, "candidate", c.session)
	return true
}

// withUnregister adds to ops, the operations of a transaction that makes
// or ends this session's term, the deletion of its registration, if any,
// and reports whether it did: a leader needs no registration, and one fewer
// write spares the followers a read. Once such a transaction succeeded,
// call unregistered.
func (s *session) withUnregister(ops api.TxnOps) (api.TxnOps, bool) {
	s.mu.Lock()
	registered := s.registered
	s.mu.Unlock()
	if !registered {
		return ops, false
	}
	return append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVDelete, Key: candidateKey(s.key, s.info.ID)}}), true
}

// unregistered notes that the registration was deleted.
func (s *session) unregistered() {
	s.mu.Lock()
	s.registered = false
	s.mu.Unlock()
}

// unregister deletes this session's registration and then, unless the
// session released the key already, releases the key, which a leader may
// have handed over to it just before: a session that ends while holding the
// key would make Consul apply its lock-delay.
func (s *session) unregister(ctx context.Context, released bool) error {
	var errs []error
	if _, err := s.b.client.KV().Delete(candidateKey(s.key, s.info.ID), s.b.writeOptions(ctx)); err != nil {
		errs = append(errs, wrap("delete handoff registration", err))
	}
	if released {
		return errors.Join(errs...)
	}
	pair := &api.KVPair{Key: s.key, Value: s.value, Flags: api.LockFlagValue, Session: s.info.ID}
	if _, _, err := s.b.client.KV().Release(pair, s.b.writeOptions(ctx)); err != nil {
		errs = append(errs, wrap(fmt.Sprintf("release %q", s.key), err))
	}
	return errors.Join(errs...)
}

// cleanStale deletes, as a leader, the registrations of candidates whose
// sessions ended without unregistering (a crash), so that they do not pile
// up. Each delete is checked against the index it was seen at. A cleanup
// that Consul refused is tried again once a read showed the registrations
// changed; one that failed on the way, at the next renewal.
func (s *session) cleanStale(ctx context.Context) {
	cands, index := s.b.keys.candidates(s.key)
	s.mu.Lock()
	tried := s.cleanedAt == index
	s.cleanedAt = index
	s.mu.Unlock()
	if tried {
		return
	}
	var ops api.TxnOps
	for _, c := range cands {
		if c.session == "" && len(ops) < maxStaleCleanup {
			ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVDeleteCAS, Key: c.key, Index: c.modifyIndex}})
		}
	}
	if len(ops) == 0 {
		return
	}
	ok, _, _, err := s.b.client.Txn().Txn(ops, s.b.requestOptions(ctx))
	if err != nil || !ok {
		s.b.log.Debug("could not delete stale handoff registrations", "key", s.key, "count", len(ops), "err", err)
	}
	if err != nil && !isPermissionDenied(err) {
		// Failed on the way: try again at the next renewal.
		s.mu.Lock()
		s.cleanedAt = 0
		s.mu.Unlock()
	}
}
