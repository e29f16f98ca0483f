package memory

import (
	"context"
	"fmt"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

// Conn is a named connection to a Store; it implements election.Backend.
type Conn struct {
	store *Store
	name  string
}

var (
	_ election.Backend         = (*Conn)(nil)
	_ election.TermFloorRaiser = (*Conn)(nil)
	_ election.RecordWatcher   = (*Conn)(nil)
)

// Name returns "memory".
func (c *Conn) Name() string { return BackendName }

// NewSession creates a session that expires p.TTL after its last renewal.
func (c *Conn) NewSession(ctx context.Context, p election.SessionParams) (election.Session, error) {
	id, err := c.newSession(ctx, p.TTL)
	if err != nil {
		return nil, err
	}
	return &memSession{conn: c, id: id, resource: p.Resource, leaderID: p.ID, value: append([]byte(nil), p.Value...), ttl: p.TTL}, nil
}

// newSession creates a session that expires ttl after its last renewal,
// and returns its ID.
func (c *Conn) newSession(ctx context.Context, ttl time.Duration) (string, error) {
	if err := c.store.reach(ctx, c.name); err != nil {
		return "", err
	}
	if ttl <= 0 {
		return "", fmt.Errorf("memory: session TTL must be positive, got %v", ttl)
	}
	c.store.mu.Lock()
	ss := c.store.newSession(c.name, ttl)
	c.store.mu.Unlock()
	if err := c.store.reply(ctx, c.name); err != nil {
		return "", err
	}
	return ss.id, nil
}

// Watch returns the record of resource once its revision differs from
// after, or after wait.
func (c *Conn) Watch(ctx context.Context, resource string, after uint64, wait time.Duration) (election.Record, error) {
	var timeout <-chan time.Time
	if after != 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	for {
		if err := c.store.reach(ctx, c.name); err != nil {
			return election.Record{}, err
		}
		c.store.mu.Lock()
		rec, changed := c.store.recordOf(resource), c.store.changedOf(resource)
		c.store.mu.Unlock()
		if after == 0 || rec.Revision != after {
			return c.replyWith(ctx, rec)
		}
		select {
		case <-ctx.Done():
			return election.Record{}, ctx.Err()
		case <-timeout:
			return c.replyWith(ctx, rec)
		case <-changed:
		}
	}
}

// WatchRecord calls changed with the record of resource whenever its
// revision changes from after, as Watch would return it to this
// connection: not while the connection is cut, and late by its delay. It
// calls changed with the store's lock held, and before it returns if the
// record has changed already. The memory store's watch never fails.
func (c *Conn) WatchRecord(resource string, after uint64, changed func(election.Record, error)) (stop func()) {
	s := c.store
	w := &recordWatch{conn: c.name, resource: resource, after: after, changed: changed}
	s.mu.Lock()
	s.watches[resource] = append(s.watches[resource], w)
	s.tell(w)
	s.mu.Unlock()
	return func() { s.unwatch(w) }
}

// replyWith returns rec once the connection's reply delay passed.
func (c *Conn) replyWith(ctx context.Context, rec election.Record) (election.Record, error) {
	if err := c.store.reply(ctx, c.name); err != nil {
		return election.Record{}, err
	}
	return rec, nil
}

// memSession is a private session, for one resource.
type memSession struct {
	conn     *Conn
	id       string
	resource string
	leaderID string
	value    []byte
	ttl      time.Duration
}

func (m *memSession) Info() election.SessionInfo {
	return election.SessionInfo{Backend: BackendName, ID: m.id, TTL: m.ttl}
}

func (m *memSession) Renew(ctx context.Context) error { return m.conn.renew(ctx, m.id) }

func (m *memSession) Acquire(ctx context.Context) (election.Acquisition, error) {
	return m.conn.acquire(ctx, m.id, m.resource, m.leaderID, m.value)
}

// renew extends session id by its TTL.
func (c *Conn) renew(ctx context.Context, id string) error {
	s := c.store
	if err := s.reach(ctx, c.name); err != nil {
		return err
	}
	s.mu.Lock()
	var err error
	if ss := s.sessions[id]; ss == nil {
		err = fmt.Errorf("memory: session %s: %w", id, election.ErrSessionLost)
	} else {
		ss.expires = time.Now().Add(ss.ttl)
	}
	s.mu.Unlock()
	if rerr := s.reply(ctx, c.name); rerr != nil {
		return rerr
	}
	return err
}

// acquire makes session id the leader of resource if it is free.
func (c *Conn) acquire(ctx context.Context, id, resource, leaderID string, value []byte) (election.Acquisition, error) {
	s := c.store
	if err := s.reach(ctx, c.name); err != nil {
		return election.Acquisition{}, err
	}
	s.mu.Lock()
	var (
		acq election.Acquisition
		err error
	)
	if ss := s.sessions[id]; ss == nil {
		err = fmt.Errorf("memory: session %s: %w", id, election.ErrSessionLost)
	} else {
		acq.Record = s.acquire(ss, resource, leaderID, value)
	}
	s.mu.Unlock()
	if rerr := s.reply(ctx, c.name); rerr != nil {
		return election.Acquisition{}, rerr
	}
	return acq, err
}

func (m *memSession) Close(ctx context.Context) error {
	s := m.conn.store
	if err := s.reach(ctx, m.conn.name); err != nil {
		return err
	}
	s.mu.Lock()
	s.endSession(s.sessions[m.id])
	s.mu.Unlock()
	return s.reply(ctx, m.conn.name)
}

// RaiseTermFloor makes every term issued from now on greater than floor.
// The memory store takes terms from one store-wide revision, so it moves
// that revision up.
func (c *Conn) RaiseTermFloor(ctx context.Context, resource string, floor uint64) error {
	if err := c.store.reach(ctx, c.name); err != nil {
		return err
	}
	c.store.mu.Lock()
	if c.store.rev < floor {
		c.store.rev = floor
	}
	c.store.mu.Unlock()
	return c.store.reply(ctx, c.name)
}
