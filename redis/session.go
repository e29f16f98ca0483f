package redis

import (
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
	if err := election.ValidateResource(p.Resource); err != nil {
		return nil, err
	}
	if p.TTL < time.Millisecond {
		return nil, &election.OptionError{Field: "TTL", Rule: "must be at least 1ms for Redis", Value: p.TTL.String()}
	}
	token, err := newToken()
	if err != nil {
		return nil, fmt.Errorf("redis: new session token: %w", err)
	}
	k := b.keys(p.Resource)
	s := &session{
		b:        b,
		resource: p.Resource,
		keys:     k,
		token:    token,
		ttlMS:    strconv.FormatInt(int64((p.TTL+time.Millisecond-1)/time.Millisecond), 10),
		payload:  payload(p.ID, p.Value),
		info: election.SessionInfo{
			Backend: BackendName,
			ID:      token,
			TTL:     p.TTL,
			Fields:  map[string]string{"key": k.leader},
		},
	}
	return s, nil
}

// session is one candidate's ownership token. It holds the leadership while
// the leader key's value starts with the token.
type session struct {
	b        *Backend
	resource string
	keys     keys
	token    string
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
// atomic step, or a TTL restart when the token already holds the key.
func (s *session) Acquire(ctx context.Context) (election.Acquisition, error) {
	s.mu.Lock()
	s.attempted = true
	s.mu.Unlock()
	floor := s.b.floor(s.resource)
	res, err := acquireScript.Run(ctx, s.b.client, []string{s.keys.leader, s.keys.term},
		s.token, s.ttlMS, s.payload, strconv.FormatUint(floor, 10), s.keys.events).Slice()
	if err != nil {
		return election.Acquisition{}, wrap("acquire", s.keys.leader, err)
	}
	won, raw, ok := acquireReply(res)
	if !ok {
		return election.Acquisition{}, fmt.Errorf("redis: acquire %s: unexpected reply %v", s.keys.leader, res)
	}
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
	s.b.own(s.token, true)
	return election.Acquisition{Record: rec, Renewed: true}, nil
}

func acquireReply(res []any) (won bool, raw string, ok bool) {
	if len(res) != 2 {
		return false, "", false
	}
	flag, ok1 := res[0].(int64)
	raw, ok2 := res[1].(string)
	return flag == 1, raw, ok1 && ok2
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
	n, err := renewScript.Run(ctx, s.b.client, []string{s.keys.leader}, s.token+"\n", s.ttlMS).Int64()
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
// finds the key gone (removed from outside) announces that too. A session that never tried
// to acquire sends nothing.
func (s *session) Close(ctx context.Context) error {
	s.mu.Lock()
	attempted, led := s.attempted, s.led
	s.leading = false
	s.mu.Unlock()
	s.b.own(s.token, false)
	if !attempted {
		return nil
	}
	flag := "0"
	if led {
		flag = "1"
	}
	if err := releaseScript.Run(ctx, s.b.client, []string{s.keys.leader}, s.token+"\n", s.keys.events, flag).Err(); err != nil {
		return wrap("release", s.keys.leader, err)
	}
	return nil
}
