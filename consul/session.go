package consul

import (
	"context"
	"errors"

	"github.com/consul-leader/consul-leader/election"
)

// session is a private election.Session: a lease, one Consul session, with
// the single claim of one resource's key. It is the same code as a shared
// lease and its claims; only its Renew checks the key too, and its Close
// ends the Consul session.
type session struct {
	l *lease
	c *claim
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
	key := b.Key(p.Resource)
	if err := b.checkOffsetReadable(ctx, key); err != nil {
		return nil, err
	}
	cf := checkFor{
		name: "leader election session of " + p.Resource,
		meta: map[string]string{"resource": p.Resource, "candidate": p.ID},
	}
	l, err := b.createLease(ctx, b.sessionName(p.Resource), p.TTL, cf)
	if err != nil {
		return nil, err
	}
	if l.createIdx != 0 {
		b.keys.noteIndex(key, l.createIdx, l.sent)
	}
	return &session{l: l, c: l.newClaim(key, p)}, nil
}

// Info describes the Consul session and its key. Fields is a copy, which a
// handler may keep or change.
func (s *session) Info() election.SessionInfo { return s.c.info() }

// Acquire locks the key with the session (see claim.acquire).
func (s *session) Acquire(ctx context.Context) (election.Acquisition, error) {
	return s.c.acquire(ctx)
}

// Renew renews the Consul session as a lease does, then checks the key: a
// session whose key a newer holder took is lost. With Options.Handoff a
// leader also deletes the registrations of candidates that crashed.
func (s *session) Renew(ctx context.Context) error {
	if err := s.c.lostErr(); err != nil {
		return err
	}
	if err := s.l.Renew(ctx); err != nil {
		return err
	}
	if err := s.c.checkHeld(); err != nil {
		return err
	}
	if s.l.b.opts.Handoff && s.c.isHeld() {
		s.c.cleanStale(ctx)
	}
	return nil
}

// Close releases the key if this session may hold it, so that no
// lock-delay applies, then destroys the session and deregisters its check.
func (s *session) Close(ctx context.Context) error {
	return errors.Join(s.c.release(ctx), s.l.end(ctx))
}
