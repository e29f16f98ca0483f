package consul

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/consul-leader/consul-leader/election"
)

// DefaultSharedSessionName ends the default name of a shared session's
// Consul sessions, after DefaultSessionNamePrefix, when neither
// election.SessionOptions.Name nor Options.SessionName is set.
const DefaultSharedSessionName = "shared"

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

// lease is one Consul session: the session-level half of both a private
// election.Session and an election.Lease shared by many claims.
type lease struct {
	b         *Backend
	info      election.SessionInfo // without the key, which is a claim's
	lockDelay time.Duration
	check     *ttlCheck     // nil unless Options.CheckTTL
	ttl       time.Duration // the Consul session's TTL
	checkTTL  time.Duration // the check's TTL, with check
	createIdx uint64        // Consul's create index; 0 if it could not be read
	sent      time.Time     // when the creation was sent

	mu             sync.Mutex
	lost           error             // why the session is lost, once it is
	gone           bool              // Consul no longer has the session
	sessionRenewed time.Time         // start of the last renewal of the Consul session
	claims         map[string]*claim // the open claims of a shared lease, by key
	closed         bool              // a shared lease's Close began
}

var _ election.Lease = (*lease)(nil)

var (
	_ election.SessionSharer  = (*Backend)(nil)
	_ election.AcquireLimiter = (*Backend)(nil)
)

// MaxAcquiring returns half of OwnedMaxConns when the backend's client is
// one it created with that bound: the acquisitions a shared session has in
// flight at a time, leaving the other connections to its renewals and its
// electors' reads. A client passed in, or one made for Handoff, sets no
// bound (0).
func (b *Backend) MaxAcquiring() int {
	if b.owned == nil || b.owned.MaxConnsPerHost <= 0 {
		return 0
	}
	return b.owned.MaxConnsPerHost / 2
}

// NewLease creates one Consul session for the electors of an
// election.SharedSession: behaviour release, the TTL of p (or, with
// Options.CheckTTL, a TTL check of its own and a backstop TTL), the
// configured lock-delay and checks, and no others. Its name is p.Name, else
// Options.SessionName, else DefaultSessionNamePrefix +
// DefaultSharedSessionName. Every claim on it locks its resource's key
// with this one session. It fails with an *election.OptionError naming
// Handoff when Options.Handoff is set, which shared sessions do not
// support.
func (b *Backend) NewLease(ctx context.Context, p election.LeaseParams) (election.Lease, error) {
	if err := b.sharedSupported(); err != nil {
		return nil, err
	}
	if err := b.opts.validateTTL(p.TTL); err != nil {
		return nil, err
	}
	name := p.Name
	if name == "" {
		name = b.opts.SessionName
	}
	if name == "" {
		name = DefaultSessionNamePrefix + DefaultSharedSessionName
	}
	cf := checkFor{name: "leader election shared session " + p.Name, meta: map[string]string{"shared_session": name}}
	if p.Name == "" {
		cf.name = "" // the check's own ID names it
	}
	l, err := b.createLease(ctx, name, p.TTL, cf)
	if err != nil {
		return nil, err
	}
	l.claims = make(map[string]*claim)
	return l, nil
}

// sharedSupported fails with an *election.OptionError when the options ask
// for what a shared session cannot do.
func (b *Backend) sharedSupported() error {
	if b.opts.Handoff {
		return &election.OptionError{Field: "Handoff", Rule: "is not supported with a shared session (NewSharedSession, election.Options.Session): a key handed over to the session after its elector stopped would stay held until the whole session ends"}
	}
	return nil
}

// checkFor describes the TTL check of a new session: its name and the
// metadata of its service. An empty name gets the check's own ID.
type checkFor struct {
	name string
	meta map[string]string
}

// createLease creates a Consul session named name, with the Consul options
// of b and a TTL of ttl, bound to a check of its own with Options.CheckTTL.
func (b *Backend) createLease(ctx context.Context, name string, ttl time.Duration, cf checkFor) (*lease, error) {
	start := time.Now()
	lockDelay := b.opts.lockDelay()
	l := &lease{b: b, lockDelay: lockDelay, ttl: ttl}
	body := sessionCreate{
		Name:       name,
		LockDelay:  strconv.FormatInt(lockDelay.Milliseconds(), 10) + "ms",
		Behavior:   api.SessionBehaviorRelease,
		NodeChecks: append([]string{}, b.opts.Checks...),
	}
	body.ServiceChecks = append(body.ServiceChecks, b.opts.ServiceChecks...)
	if b.opts.CheckTTL > 0 {
		l.checkTTL = max(b.opts.CheckTTL, ttl)
		l.ttl = max(ttl, MinSessionTTL)
		c, err := b.registerCheck(ctx, cf, l.checkTTL)
		if err != nil {
			return nil, err
		}
		l.check = c
		body.ServiceChecks = []api.ServiceCheck{{ID: c.checkID}}
	}
	body.TTL = l.ttl.String()

	var out struct{ ID string }
	l.sent = time.Now()
	if _, err := b.client.Raw().Write("/v1/session/create", body, &out, b.writeOptions(ctx)); err != nil {
		if l.check != nil {
			// If this fails too, the check turns critical and Consul
			// removes the service a minute later.
			_ = b.deregisterCheck(ctx, l.check)
		}
		return nil, wrap("create session", err)
	}
	l.sessionRenewed = start
	l.info = election.SessionInfo{
		Backend: BackendName,
		ID:      out.ID,
		TTL:     ttl,
		Fields: map[string]string{
			"session_ttl": l.ttl.String(),
			"lock_delay":  lockDelay.String(),
			"behavior":    api.SessionBehaviorRelease,
			"name":        body.Name,
		},
	}
	if b.opts.Datacenter != "" {
		l.info.Fields["datacenter"] = b.opts.Datacenter
	}
	if l.check != nil {
		l.info.Fields["check"] = l.check.checkID
		l.info.Fields["check_ttl"] = l.checkTTL.String()
	}
	// The node and the create index are Consul's; they only describe the
	// session, so a failure to read them is not one to create it. A create
	// index below the revision of a record seen before tells that Consul
	// lost its data, before a claim acquires anything.
	if e, _, err := b.client.Session().Info(out.ID, b.requestOptions(ctx)); err == nil && e != nil {
		l.createIdx = e.CreateIndex
		l.info.Fields["node"] = e.Node
		l.info.Fields["create_index"] = strconv.FormatUint(e.CreateIndex, 10)
	} else if err != nil {
		b.log.Debug("could not read the new session", "session", out.ID, "err", err)
	}
	return l, nil
}

// Info describes the Consul session. Fields is a copy, which a handler may
// keep or change.
func (l *lease) Info() election.SessionInfo {
	info := l.info
	info.Fields = maps.Clone(l.info.Fields)
	return info
}

// Renew renews the Consul session; with a check-bound session it passes
// the check, and renews the session itself only as often as its backstop
// TTL needs. One renewal serves every claim: a key taken from one of them
// is not an error of the lease.
func (l *lease) Renew(ctx context.Context) error {
	if err := l.lostErr(); err != nil {
		return err
	}
	start := time.Now()
	if l.check != nil {
		if err := l.b.passCheck(ctx, l.check); err != nil {
			if isNotFound(err) {
				return l.markGone(fmt.Errorf("consul: check %q of session %s is gone: %w: %w", l.check.checkID, l.info.ID, election.ErrSessionLost, err))
			}
			return wrap(fmt.Sprintf("pass check %q", l.check.checkID), err)
		}
	}
	if l.sessionRenewDue(start) {
		var out []*api.SessionEntry
		if _, err := l.b.client.Raw().Write("/v1/session/renew/"+l.info.ID, nil, &out, l.b.writeOptions(ctx)); err != nil {
			if isNotFound(err) {
				return l.markGone(fmt.Errorf("consul: session %s: %w: %w", l.info.ID, election.ErrSessionLost, err))
			}
			return wrap("renew session "+l.info.ID, err)
		}
		l.mu.Lock()
		l.sessionRenewed = start
		l.mu.Unlock()
	}
	return nil
}

// sessionRenewDue reports whether a renewal starting at now must renew the
// Consul session. Without a check, always. With one, the session's TTL must
// outlast the check's: for every renewal that passes the check at now, the
// session must live until now + checkTTL, which holds while
// now < renewed + ttl - checkTTL; renewing from half of that keeps a margin.
func (l *lease) sessionRenewDue(now time.Time) bool {
	if l.check == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return now.Sub(l.sessionRenewed) >= (l.ttl-l.checkTTL)/2
}

// Claim returns the claim of p.Resource's key on this Consul session. It
// sends no request. It fails when the lease has an open claim for the
// resource, after Close, and once the session is lost.
func (l *lease) Claim(p election.SessionParams) (election.Claim, error) {
	if err := l.b.sharedSupported(); err != nil {
		return nil, err
	}
	if err := election.ValidateResource(p.Resource); err != nil {
		return nil, err
	}
	key := l.b.Key(p.Resource)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return nil, fmt.Errorf("consul: claim %q on session %s: the session was closed", p.Resource, l.info.ID)
	case l.lost != nil:
		return nil, l.lost
	case l.claims[key] != nil:
		return nil, fmt.Errorf("consul: claim %q on session %s: the session has an open claim of key %q already", p.Resource, l.info.ID, key)
	}
	c := l.newClaim(key, p)
	l.claims[key] = c
	if l.createIdx != 0 {
		l.b.keys.noteIndex(key, l.createIdx, l.sent)
	}
	return (*sharedClaim)(c), nil
}

// forget removes a closed claim from the lease.
func (l *lease) forget(c *claim) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.claims[c.key] == c {
		delete(l.claims, c.key)
	}
}

// Close releases the key of every claim still open, so that no lock-delay
// applies to them, then destroys the Consul session and deregisters its
// check.
func (l *lease) Close(ctx context.Context) error {
	l.mu.Lock()
	l.closed = true
	open := make([]*claim, 0, len(l.claims))
	for _, c := range l.claims {
		open = append(open, c)
	}
	clear(l.claims)
	l.mu.Unlock()
	var errs []error
	for _, c := range open {
		if err := c.release(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := l.end(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// end destroys the Consul session, unless Consul no longer has it, and
// deregisters its check.
func (l *lease) end(ctx context.Context) error {
	var errs []error
	if !l.isGone() {
		if _, err := l.b.client.Session().Destroy(l.info.ID, l.b.writeOptions(ctx)); err != nil && !isNotFound(err) {
			errs = append(errs, wrap("destroy session "+l.info.ID, err))
		}
	}
	if l.check != nil {
		if err := l.b.deregisterCheck(ctx, l.check); err != nil && !isNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (l *lease) lostErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

func (l *lease) isGone() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gone
}

// markGone records that Consul no longer has the session; it returns err.
func (l *lease) markGone(err error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost == nil {
		l.lost = err
	}
	l.gone = true
	return err
}
