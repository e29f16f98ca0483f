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

// register makes this claim's registration, once, after the key was
// found held by another session: the leader hands the key over to the
// first registered candidate when it releases. A registration that fails is
// tried again at the next refusal, except for a lack of rights, which is
// logged once: the candidate then only waits, as without Handoff.
func (c *claim) register(ctx context.Context) {
	c.mu.Lock()
	skip := c.registered || c.registerDenied
	c.mu.Unlock()
	if skip {
		return
	}
	k := candidateKey(c.key, c.l.info.ID)
	ok, _, err := c.l.b.client.KV().Acquire(&api.KVPair{Key: k, Value: c.value(), Session: c.l.info.ID}, c.l.b.writeOptions(ctx))
	switch {
	case err != nil && isPermissionDenied(err):
		c.mu.Lock()
		c.registerDenied = true
		c.mu.Unlock()
		c.l.b.log.Warn("cannot register for handoff; this candidate will only wait for releases (the token needs key:write on the candidates folder; key_prefix on the key covers it)",
			"key", k, "err", err)
	case err != nil:
		c.l.b.log.Debug("could not register for handoff", "key", k, "err", err)
	case ok:
		c.mu.Lock()
		c.registered = true
		c.mu.Unlock()
	}
}

// handOff releases the key held by this session and, in the same
// transaction, locks it for the first registered candidate, with the record
// that candidate registered. It reports whether the key was handed over.
//
// The candidates are those of the last recursive read, which may be older
// than a registration or the end of a candidate's session. When Consul
// refuses the transaction because the candidate's registration is gone,
// the registrations are read again, consistently, and the first live one
// is tried once more: a candidate that crashed, or a view from before
// Consul lost its data, costs one read and one transaction, not the
// handover. Otherwise a refused transaction changes nothing and the caller
// releases the key.
func (c *claim) handOff(ctx context.Context) bool {
	cands, _ := c.l.b.keys.candidates(c.key)
	next, ok := nextCandidate(cands, c.l.info.ID)
	if !ok {
		return false
	}
	done, gone := c.handOffTo(ctx, next)
	if done || !gone {
		return done
	}
	if _, err := c.l.b.readList(ctx, c.key, c.l.b.queryOptions(ctx)); err != nil {
		c.l.b.log.Debug("cannot read the registrations again; releasing", "key", c.key, "err", err)
		return false
	}
	cands, _ = c.l.b.keys.candidates(c.key)
	again, ok := nextCandidate(cands, c.l.info.ID)
	if !ok || again.session == next.session {
		return false
	}
	done, _ = c.handOffTo(ctx, again)
	return done
}

// handOffTo sends the handoff transaction of handOff for candidate next. It
// reports whether the key was handed over, and else whether Consul refused
// because next's registration no longer holds its session.
func (c *claim) handOffTo(ctx context.Context, next candidate) (done, gone bool) {
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: next.key, Session: next.session}},
		{KV: &api.KVTxnOp{Verb: api.KVUnlock, Key: c.key, Value: c.value(), Flags: api.LockFlagValue, Session: c.l.info.ID}},
		{KV: &api.KVTxnOp{Verb: api.KVLock, Key: c.key, Value: next.value, Flags: api.LockFlagValue, Session: next.session}},
	}
	ops, unregisters := c.withUnregister(ops)
	ok, resp, _, err := c.l.b.client.Txn().Txn(ops, c.l.b.requestOptions(ctx))
	switch {
	case err != nil:
		c.l.b.log.Debug("handoff failed; releasing", "key", c.key, "candidate", next.session, "err", err)
		return false, false
	case !ok:
		c.l.b.log.Debug("handoff refused", "key", c.key, "candidate", next.session, "err", txnError(resp.Errors))
		gone = len(resp.Errors) > 0 && resp.Errors[0].OpIndex == 0
		return false, gone
	}
	if unregisters {
		c.unregistered()
	}
	c.l.b.log.Debug("handed the key over", "key", c.key, "session", c.l.info.ID, "candidate", next.session)
	return true, false
}

// withUnregister adds to ops, the operations of a transaction that makes
// or ends this session's term, the deletion of its registration, if any,
// and reports whether it did: a leader needs no registration, and one fewer
// write spares the followers a read. Once such a transaction succeeded,
// call unregistered.
func (c *claim) withUnregister(ops api.TxnOps) (api.TxnOps, bool) {
	c.mu.Lock()
	registered := c.registered
	c.mu.Unlock()
	if !registered {
		return ops, false
	}
	return append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVDelete, Key: candidateKey(c.key, c.l.info.ID)}}), true
}

// unregistered notes that the registration was deleted.
func (c *claim) unregistered() {
	c.mu.Lock()
	c.registered = false
	c.mu.Unlock()
}

// unregister deletes this claim's registration and then, unless the
// session released the key already, releases the key, which a leader may
// have handed over to it just before: a session that ends while holding the
// key would make Consul apply its lock-delay.
func (c *claim) unregister(ctx context.Context, released bool) error {
	var errs []error
	if _, err := c.l.b.client.KV().Delete(candidateKey(c.key, c.l.info.ID), c.l.b.writeOptions(ctx)); err != nil {
		errs = append(errs, wrap("delete handoff registration", err))
	}
	if released {
		return errors.Join(errs...)
	}
	pair := &api.KVPair{Key: c.key, Value: c.value(), Flags: api.LockFlagValue, Session: c.l.info.ID}
	if _, _, err := c.l.b.client.KV().Release(pair, c.l.b.writeOptions(ctx)); err != nil {
		errs = append(errs, wrap(fmt.Sprintf("release %q", c.key), err))
	}
	return errors.Join(errs...)
}

// cleanStale deletes, as a leader, the registrations of candidates whose
// sessions ended without unregistering (a crash), so that they do not pile
// up. Each delete is checked against the index it was seen at. A cleanup
// that Consul refused is tried again once a read showed the registrations
// changed; one that failed on the way, at the next renewal.
func (c *claim) cleanStale(ctx context.Context) {
	cands, index := c.l.b.keys.candidates(c.key)
	c.mu.Lock()
	tried := c.cleanedAt == index
	c.cleanedAt = index
	c.mu.Unlock()
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
	ok, _, _, err := c.l.b.client.Txn().Txn(ops, c.l.b.requestOptions(ctx))
	if err != nil || !ok {
		c.l.b.log.Debug("could not delete stale handoff registrations", "key", c.key, "count", len(ops), "err", err)
	}
	if err != nil && !isPermissionDenied(err) {
		// Failed on the way: try again at the next renewal.
		c.mu.Lock()
		c.cleanedAt = 0
		c.mu.Unlock()
	}
}
