package backends

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

// Migration returns a backend that campaigns on two stores at once, for a
// live move of a deployment from store from to store to. A candidate leads
// only while it holds both: it acquires from first, then to, and releases in
// the reverse order; its term ends as soon as either store's does.
//
// Terms keep growing across the move. Before acquiring on to, the candidate
// raises to's term floor to its term on from; after, it raises from's floor
// to its new term. So the term it leads with, its term on to, is above every
// term from issued before, and every later term of either store is above it,
// whatever mix of old, migrating and new processes runs. Both backends must
// implement election.TermFloorRaiser.
//
// When both backends implement election.SessionSharer, so does the
// migration backend, for an election.SharedSession: a migrating process
// then holds one session on each store. Its lease is a lease on each store,
// renewed together (a renewal succeeds when both do, and the loss of either
// loses it); its claims are a claim on each store, acquired and released as
// above.
//
// The procedure: (1) every process campaigns on from; (2) roll out processes
// on Migration(from, to); (3) once no process runs on from alone, and a TTL
// has passed since the last one stopped (so that one cut off from its store
// has stepped down), roll out processes on to alone. At every moment of every
// step there is at most one leader: a migrating process leads only when it
// holds the lock of both stores, so it excludes the old processes through
// from and the new ones through to. Old and new processes share no store, so
// they must never run at once: that is what the wait before step 3 ensures.
func Migration(from, to election.Backend) (election.Backend, error) {
	if from == nil || to == nil {
		return nil, fmt.Errorf("%w: migration needs two backends", election.ErrInvalidOptions)
	}
	ff, ok1 := from.(election.TermFloorRaiser)
	tf, ok2 := to.(election.TermFloorRaiser)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("%w: migration from %s to %s: both backends must raise term floors (election.TermFloorRaiser)",
			election.ErrInvalidOptions, from.Name(), to.Name())
	}
	m := &migration{from: from, to: to, fromFloor: ff, toFloor: tf, revs: map[uint64][2]uint64{}, local: map[string]bool{}}
	fs, ok1 := from.(election.SessionSharer)
	ts, ok2 := to.(election.SessionSharer)
	if ok1 && ok2 {
		return &leasingMigration{migration: m, from: fs, to: ts}, nil
	}
	return m, nil
}

type migration struct {
	from, to           election.Backend
	fromFloor, toFloor election.TermFloorRaiser

	mu    sync.Mutex
	revs  map[uint64][2]uint64 // combined revision -> (from's, to's)
	local map[string]bool      // from's session IDs of this backend's live pairs
}

func (m *migration) Name() string { return "migrate(" + m.from.Name() + "→" + m.to.Name() + ")" }

// Close closes both backends, if they close.
func (m *migration) Close() error {
	var errs []error
	for _, b := range []election.Backend{m.to, m.from} {
		if c, ok := b.(interface{ Close() error }); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

func (m *migration) NewSession(ctx context.Context, p election.SessionParams) (election.Session, error) {
	s1, err := m.from.NewSession(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("migrate: %s: %w", m.from.Name(), err)
	}
	s2, err := m.to.NewSession(ctx, p)
	if err != nil {
		_ = s1.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("migrate: %s: %w", m.to.Name(), err)
	}
	m.mu.Lock()
	m.local[s1.Info().ID] = true
	m.mu.Unlock()
	return &pairSession{pairClaim: pairClaim{m: m, from: s1, to: s2, resource: p.Resource, ttl: p.TTL}, fromS: s1, toS: s2}, nil
}

// Watch returns the combined record once either store's record changed.
func (m *migration) Watch(ctx context.Context, resource string, after uint64, wait time.Duration) (election.Record, error) {
	var prev [2]uint64
	if after != 0 {
		m.mu.Lock()
		prev = m.revs[after]
		m.mu.Unlock()
	}
	if after == 0 || prev == ([2]uint64{}) {
		return m.read(ctx, resource, nil, nil)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		i   int
		rec election.Record
		err error
	}
	results := make(chan result, 2)
	for i, b := range []election.Backend{m.from, m.to} {
		go func() {
			rec, err := b.Watch(wctx, resource, prev[i], wait)
			results <- result{i, rec, err}
		}()
	}
	first := <-results
	cancel()
	<-results
	if first.err != nil {
		return election.Record{}, first.err
	}
	if first.i == 0 {
		return m.read(ctx, resource, &first.rec, nil)
	}
	return m.read(ctx, resource, nil, &first.rec)
}

// read combines the records of both stores, reading at once those not given.
func (m *migration) read(ctx context.Context, resource string, from, to *election.Record) (election.Record, error) {
	recs := [2]*election.Record{from, to}
	for i, b := range []election.Backend{m.from, m.to} {
		if recs[i] != nil {
			continue
		}
		rec, err := b.Watch(ctx, resource, 0, 0)
		if err != nil {
			return election.Record{}, fmt.Errorf("migrate: %s: %w", b.Name(), err)
		}
		recs[i] = &rec
	}
	return m.combine(*recs[0], *recs[1]), nil
}

// combine is the record of a pair: the leader of to when to has one (it is
// the term that counts), else the leader of from. Its Session names both
// holders, so that it equals a pair session's ID exactly when that pair
// holds both stores. When one of this backend's own pairs holds from and to
// is free, the record is shown free, so that the pair goes on to acquire to.
func (m *migration) combine(from, to election.Record) election.Record {
	m.mu.Lock()
	ownFrom := m.local[from.Session]
	m.mu.Unlock()
	r := to
	switch {
	case to.Free() && ownFrom:
		r = election.Record{}
	case to.Free():
		r = from
	}
	if !r.Free() {
		r.Session = pairID(from.Session, to.Session)
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%d", from.Revision, to.Revision)
	r.Revision = h.Sum64() | 1
	m.mu.Lock()
	if len(m.revs) > 1024 {
		clear(m.revs)
	}
	m.revs[r.Revision] = [2]uint64{from.Revision, to.Revision}
	m.mu.Unlock()
	return r
}

func pairID(from, to string) string { return from + "+" + to }

// pairClaim is a candidate's claim on both stores: of a session on each
// (pairSession), or of a lease on each (pairLease).
type pairClaim struct {
	m        *migration
	from, to election.Claim
	resource string
	ttl      time.Duration
}

func (s *pairClaim) Info() election.SessionInfo {
	return pairInfo(s.m, s.from.Info(), s.to.Info(), s.ttl)
}

// pairInfo describes the pair of sessions fi and ti.
func pairInfo(m *migration, fi, ti election.SessionInfo, ttl time.Duration) election.SessionInfo {
	fields := map[string]string{"from.backend": fi.Backend, "from.session": fi.ID, "to.backend": ti.Backend, "to.session": ti.ID}
	for k, v := range fi.Fields {
		fields["from."+k] = v
	}
	for k, v := range ti.Fields {
		fields["to."+k] = v
	}
	return election.SessionInfo{Backend: m.Name(), ID: pairID(fi.ID, ti.ID), TTL: ttl, Fields: fields}
}

// Acquire takes from, then to, and moves the term floors so that terms keep
// growing across both stores.
func (s *pairClaim) Acquire(ctx context.Context) (election.Acquisition, error) {
	a1, err := s.from.Acquire(ctx)
	if err != nil {
		return election.Acquisition{}, fmt.Errorf("migrate: %s: %w", s.m.from.Name(), err)
	}
	if a1.Session != s.from.Info().ID {
		// Someone else holds from: follow it (and whoever holds to).
		rec, err := s.readTo(ctx)
		if err != nil {
			return election.Acquisition{}, err
		}
		return election.Acquisition{Record: s.m.combine(a1.Record, rec), RetryAfter: a1.RetryAfter}, nil
	}
	if err := s.m.toFloor.RaiseTermFloor(ctx, s.resource, a1.Term); err != nil {
		return election.Acquisition{}, fmt.Errorf("migrate: raise the term floor of %s: %w", s.m.to.Name(), err)
	}
	a2, err := s.to.Acquire(ctx)
	if err != nil {
		return election.Acquisition{}, fmt.Errorf("migrate: %s: %w", s.m.to.Name(), err)
	}
	if a2.Session == s.to.Info().ID {
		if err := s.m.fromFloor.RaiseTermFloor(ctx, s.resource, a2.Term); err != nil {
			return election.Acquisition{}, fmt.Errorf("migrate: raise the term floor of %s: %w", s.m.from.Name(), err)
		}
	}
	return election.Acquisition{
		Record:     s.m.combine(a1.Record, a2.Record),
		Renewed:    a1.Renewed && a2.Renewed,
		RetryAfter: a2.RetryAfter,
	}, nil
}

func (s *pairClaim) readTo(ctx context.Context) (election.Record, error) {
	rec, err := s.m.to.Watch(ctx, s.resource, 0, 0)
	if err != nil {
		return election.Record{}, fmt.Errorf("migrate: %s: %w", s.m.to.Name(), err)
	}
	return rec, nil
}

// Close releases to, then from.
func (s *pairClaim) Close(ctx context.Context) error {
	err2 := s.to.Close(ctx)
	err1 := s.from.Close(ctx)
	if err2 != nil || err1 != nil {
		return fmt.Errorf("migrate: close: %w", errors.Join(err2, err1))
	}
	return nil
}

// pairSession is a candidate's session on both stores.
type pairSession struct {
	pairClaim
	fromS, toS election.Session
}

// Renew renews both sessions; losing either loses the pair.
func (s *pairSession) Renew(ctx context.Context) error {
	if err := s.fromS.Renew(ctx); err != nil {
		return fmt.Errorf("migrate: %s: %w", s.m.from.Name(), err)
	}
	if err := s.toS.Renew(ctx); err != nil {
		return fmt.Errorf("migrate: %s: %w", s.m.to.Name(), err)
	}
	return nil
}

// Close releases to, then from, and ends both sessions.
func (s *pairSession) Close(ctx context.Context) error {
	err := s.pairClaim.Close(ctx)
	s.m.mu.Lock()
	delete(s.m.local, s.fromS.Info().ID)
	s.m.mu.Unlock()
	return err
}
