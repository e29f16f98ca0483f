package redis

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

// NewSession creates a session: a random ownership token. It keeps no state
// on the server until it acquires, so it cannot expire while following.
func (b *Backend) NewSession(ctx context.Context, p election.SessionParams) (election.Session, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("redis: new session: %w", err)
	}
	token, err := newToken()
	if err != nil {
		return nil, fmt.Errorf("redis: new session token: %w", err)
	}
	return b.newSession(p, token, nil)
}

// newSession returns the handle through which candidate p acquires its
// resource with token: a private session when l is nil, else a claim of
// lease l, whose token it is.
func (b *Backend) newSession(p election.SessionParams, token string, l *lease) (*session, error) {
	if err := election.ValidateResource(p.Resource); err != nil {
		return nil, err
	}
	if p.TTL < time.Millisecond {
		return nil, &election.OptionError{Field: "TTL", Rule: "must be at least 1ms for Redis", Value: p.TTL.String()}
	}
	k := b.keys(p.Resource)
	s := &session{
		b:        b,
		resource: p.Resource,
		keys:     k,
		token:    token,
		lease:    l,
		ttlMS:    millis(p.TTL),
		payload:  payload(p.ID, p.Value),
		info: election.SessionInfo{
			Backend: BackendName,
			ID:      token,
			TTL:     p.TTL,
			Fields:  map[string]string{"key": k.leader},
		},
	}
	if l != nil {
		s.info.Fields["lease"] = l.key
	}
	return s, nil
}

// millis returns d in whole milliseconds, rounded up, as a decimal string.
func millis(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Millisecond-1)/time.Millisecond), 10)
}

// session is one candidate's ownership token. It holds the leadership while
// the leader key's value starts with the token. A claim of a lease is a
// session with the lease's token: its record expires with the lease, which
// renews it, and it has no Renew of its own.
type session struct {
	b        *Backend
	resource string
	keys     keys
	token    string
	lease    *lease // nil for a private session
	ttlMS    string // the TTL in whole milliseconds, rounded up
	payload  string
	info     election.SessionInfo

	mu        sync.Mutex
	attempted bool // Acquire was called: the key may hold the token
	leading   bool // the last Acquire returned the leadership
	led       bool // an Acquire returned the leadership
}

func (s *session) Info() election.SessionInfo { return s.info }

// Acquire runs the acquire script: SET NX PX and the term increment in one
// atomic step, or a TTL restart when the token already holds the key. The
// candidates of this process for the key take turns: while one's script is
// in flight, the others wait for its outcome, which is theirs too (the key
// won, or held, by another token), so that a release costs one script per
// process rather than one per candidate.
func (s *session) Acquire(ctx context.Context) (election.Acquisition, error) {
	s.mu.Lock()
	leading := s.leading
	s.mu.Unlock()
	if leading {
		return s.acquire(ctx)
	}
	acq, shared, err := s.b.acquiring.Do(ctx, s.keys.leader, func() (election.Acquisition, error) { return s.acquire(ctx) })
	if !shared {
		return acq, err
	}
	if acq.Session == s.token {
		return s.acquire(ctx) // not another candidate's outcome after all
	}
	rec := acq.Record
	rec.Value = bytes.Clone(rec.Value)
	return election.Acquisition{Record: rec}, nil
}

// acquire runs the acquire script for this session.
func (s *session) acquire(ctx context.Context) (election.Acquisition, error) {
	s.mu.Lock()
	s.attempted = true
	s.mu.Unlock()
	floor := s.b.floor(s.resource)
	keys := []string{s.keys.leader, s.keys.term}
	if s.lease != nil {
		keys = append(keys, s.lease.key)
	}
	res, err := acquireScript.Run(ctx, s.b.run, keys,
		s.token, s.ttlMS, s.payload, strconv.FormatUint(floor, 10), s.keys.events).Slice()
	if err != nil {
		return election.Acquisition{}, wrap("acquire", s.keys.leader, err)
	}
	flag, raw, ok := acquireReply(res)
	if !ok {
		return election.Acquisition{}, fmt.Errorf("redis: acquire %s: unexpected reply %v", s.keys.leader, res)
	}
	if flag < 0 {
		return election.Acquisition{}, fmt.Errorf("redis: acquire %s: the lease key %s is gone (expired, deleted or flushed): %w", s.keys.leader, s.lease.key, election.ErrSessionLost)
	}
	won := flag == 1
	rec := parseHeld(raw)
	s.b.observe(s.resource, rec.Term)
	if !won {
		return election.Acquisition{Record: rec}, nil
	}
	if rec.Session != s.token {
		return election.Acquisition{}, fmt.Errorf("redis: acquire %s: the script reported success with another record", s.keys.leader)
	}
	s.mu.Lock()
	s.leading, s.led = true, true
	s.mu.Unlock()
	if s.lease == nil {
		s.b.own(s.token, true) // a lease's token is owned while the lease lives
	}
	// A private session's acquisition restarts its TTL; a claim's expires
	// with its lease, which it does not extend.
	return election.Acquisition{Record: rec, Renewed: s.lease == nil}, nil
}

// acquireReply decodes the acquire script's reply: its flag is 1 when the
// caller holds the leadership, 0 when another does, -1 when the lease is
// gone.
func acquireReply(res []any) (flag int64, raw string, ok bool) {
	if len(res) != 2 {
		return 0, "", false
	}
	flag, ok1 := res[0].(int64)
	raw, ok2 := res[1].(string)
	return flag, raw, ok1 && ok2
}

// Renew does nothing while the session follows: it has no server state.
// While it leads, it restarts the leader key's TTL if the key still holds
// the token, and reports ErrSessionLost if it does not.
func (s *session) Renew(ctx context.Context) error {
	s.mu.Lock()
	leading := s.leading
	s.mu.Unlock()
	if !leading {
		return ctx.Err()
	}
	n, err := renewScript.Run(ctx, s.b.run, []string{s.keys.leader}, s.token+"\n", s.ttlMS).Int64()
	if err != nil {
		return wrap("renew", s.keys.leader, err)
	}
	if n != 1 {
		s.mu.Lock()
		s.leading = false
		s.mu.Unlock()
		s.b.own(s.token, false)
		return fmt.Errorf("redis: renew %s: the key no longer holds this session's token (expired, deleted or overwritten): %w", s.keys.leader, election.ErrSessionLost)
	}
	return nil
}

// Close deletes the leader key if it still holds the token, and announces
// the release so that followers acquire at once; a session that led and
// finds the key gone (removed from outside) announces that too. A session
// that never tried to acquire sends nothing. A claim of a lease also takes
// the key out of the lease's set, and leaves the lease as it is.
func (s *session) Close(ctx context.Context) error {
	s.mu.Lock()
	attempted, led := s.attempted, s.led
	s.leading = false
	s.mu.Unlock()
	keys := []string{s.keys.leader}
	if s.lease == nil {
		s.b.own(s.token, false)
	} else {
		defer s.lease.forget(s.resource)
		keys = append(keys, s.lease.key)
	}
	if !attempted {
		return nil
	}
	flag := "0"
	if led {
		flag = "1"
	}
	if err := releaseScript.Run(ctx, s.b.run, keys, s.token+"\n", s.keys.events, flag).Err(); err != nil {
		return wrap("release", s.keys.leader, err)
	}
	return nil
}
