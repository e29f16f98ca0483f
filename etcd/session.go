package etcd

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/consul-leader/consul-leader/election"
)

// session is one lease, and the candidate's key bound to it.
type session struct {
	b        *Backend
	resource string
	prefix   string
	lease    clientv3.LeaseID
	id       string // lease ID in hex, the key's last segment
	key      string // prefix + "/" + id
	value    string // encodeValue(ID, Value)
	info     election.SessionInfo

	mu      sync.Mutex
	queued  bool  // the key was put (or its put may have been applied)
	heldAt  int64 // etcd revision at which the key was seen first; 0 if never
	created int64 // the key's create revision, once seen first
}

// NewSession grants a lease of p.TTL, a whole number of seconds. The
// candidate's key is put by Acquire, not here, so that a candidate holding
// back after a Release does not queue.
func (b *Backend) NewSession(ctx context.Context, p election.SessionParams) (election.Session, error) {
	prefix, err := b.Prefix(p.Resource)
	if err != nil {
		return nil, err
	}
	if err := validateTTL(p.TTL); err != nil {
		return nil, err
	}
	sent := time.Now()
	resp, err := b.client.Grant(ctx, int64(p.TTL/time.Second))
	if err != nil {
		return nil, storeError("grant lease", err)
	}
	if resp.ResponseHeader != nil {
		// A revision below the one known tells of a loss of etcd's data
		// before this session acquires anything.
		b.noteRevision(p.Resource, resp.ResponseHeader.Revision, sent)
	}
	granted := time.Duration(resp.TTL) * time.Second
	if granted != p.TTL {
		b.log.Warn("etcd granted a lease TTL other than the election TTL; the store frees a dead leader's election after the granted TTL",
			"resource", p.Resource, "ttl", p.TTL, "granted", granted)
	}
	id := leaseID(int64(resp.ID))
	key := prefix + "/" + id
	return &session{
		b:        b,
		resource: p.Resource,
		prefix:   prefix,
		lease:    resp.ID,
		id:       id,
		key:      key,
		value:    encodeValue(p.ID, p.Value),
		info: election.SessionInfo{
			Backend: BackendName,
			ID:      id,
			TTL:     granted,
			Fields: map[string]string{
				"lease":  id,
				"key":    key,
				"prefix": prefix,
			},
		},
	}, nil
}

// Info describes the session. Fields holds "lease" (the lease ID in hex),
// "prefix" (the election's key prefix), "key" (the candidate's key, which is
// the leader key while it leads) and, once it leads, "createRevision": the
// key's create revision, which guards writes to etcd (see the package
// documentation) and equals Term unless a term floor was raised.
func (s *session) Info() election.SessionInfo {
	s.mu.Lock()
	created := s.created
	s.mu.Unlock()
	info := s.info
	info.Fields = maps.Clone(s.info.Fields)
	if created != 0 {
		info.Fields["createRevision"] = strconv.FormatInt(created, 10)
	}
	return info
}

// Renew sends one lease keepalive. A lease the store no longer has, or a
// key that was first and has since been seen deleted, is ErrSessionLost.
func (s *session) Renew(ctx context.Context) error {
	if _, err := s.b.client.KeepAliveOnce(ctx, s.lease); err != nil {
		return storeError("renew lease "+s.id, err)
	}
	s.mu.Lock()
	heldAt := s.heldAt
	s.mu.Unlock()
	if heldAt != 0 {
		// A key that was first stays first until it is deleted, so a later
		// state showing anything else means the leadership is gone.
		if st, ok := s.b.latest(s.resource); ok && st.asOf > heldAt && st.rec.Session != s.id {
			return fmt.Errorf("etcd: %w: key %s no longer leads %s", election.ErrSessionLost, s.key, s.prefix)
		}
	}
	return nil
}

// Acquire queues the candidate's key and reports the first key.
//
// A candidate joins the queue by putting its key, bound to its lease, unless
// it exists: one transaction that also reads the first key. It leads when
// that key is its own. Once queued, it becomes first when every key created
// before it is gone, which Backend.Watch learns from its watch of the
// prefix; Acquire then reports that state without another request, as
// concurrency.Election's Campaign returns once its predecessors are gone. A
// deletion of the key after that state reaches the same watch, and ends the
// term.
func (s *session) Acquire(ctx context.Context) (election.Acquisition, error) {
	s.mu.Lock()
	queued := s.queued
	s.mu.Unlock()
	if queued {
		if st, ok := s.b.latest(s.resource); ok && st.rec.Session == s.id {
			s.held(st)
			return election.Acquisition{Record: st.rec}, nil
		}
	}
	if floor := s.b.lossFloor(s.resource); floor > 0 {
		// etcd lost its data, and the term offset with it: raise the
		// floor first, so that even this acquisition's term, which
		// followers may see before the elector checks it, is above every
		// term seen before.
		s.b.log.Warn("etcd's revisions went back, as after a loss of its data; raising the term floor before acquiring",
			"prefix", s.prefix, "floor", floor)
		if err := s.b.RaiseTermFloor(ctx, s.resource, floor); err != nil {
			return election.Acquisition{}, err
		}
		s.b.floorRaised(s.resource, floor)
	}
	s.mu.Lock()
	s.queued = true
	s.mu.Unlock()
	off := clientv3.OpGet(offsetKey(s.prefix))
	sent := time.Now()
	resp, err := s.b.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(s.key), "=", 0)).
		Then(clientv3.OpPut(s.key, s.value, clientv3.WithLease(s.lease)), firstKey(s.prefix), off).
		Else(firstKey(s.prefix), off).
		Commit()
	if err != nil {
		return election.Acquisition{}, storeError("queue key "+s.key, err)
	}
	st, err := stateFrom(s.prefix, resp)
	if err != nil {
		return election.Acquisition{}, err
	}
	st.sent = sent
	st = s.b.remember(s.resource, s.prefix, st)
	if st.rec.Session == s.id {
		s.held(st)
	}
	return election.Acquisition{Record: st.rec}, nil
}

// held records that st shows the session's key first.
func (s *session) held(st state) {
	s.mu.Lock()
	if s.heldAt == 0 || st.asOf < s.heldAt {
		s.heldAt = st.asOf
	}
	s.created = st.created
	s.mu.Unlock()
}

// Close deletes the candidate's key, if it is still bound to this lease, so
// that the next candidate leads at once, and then revokes the lease.
func (s *session) Close(ctx context.Context) error {
	var errs []error
	s.mu.Lock()
	queued := s.queued
	s.mu.Unlock()
	if queued {
		_, err := s.b.client.Txn(ctx).
			If(clientv3.Compare(clientv3.LeaseValue(s.key), "=", s.lease)).
			Then(clientv3.OpDelete(s.key)).
			Commit()
		if err != nil {
			errs = append(errs, storeError("delete key "+s.key, err))
		}
	}
	if _, err := s.b.client.Revoke(ctx, s.lease); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		errs = append(errs, storeError("revoke lease "+s.id, err))
	}
	return errors.Join(errs...)
}
