package consul

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/hashicorp/consul/api"

	"github.com/consul-leader/consul-leader/election"
)

// Defaults and Consul's limits.
const (
	// DefaultKeyPrefix and DefaultKeySuffix frame the default key of a
	// resource: "service/<resource>/leader", as in Consul's leader election
	// guide.
	DefaultKeyPrefix = "service/"
	// DefaultKeySuffix ends the default key of a resource.
	DefaultKeySuffix = "/leader"

	// DefaultLockDelay is Consul's own default lock-delay, used when
	// Options.LockDelay is zero and CheckTTL is not set.
	DefaultLockDelay = 15 * time.Second
	// MaxLockDelay is the longest lock-delay Consul accepts.
	MaxLockDelay = 60 * time.Second
	// NoLockDelay, as Options.LockDelay, creates sessions without a
	// lock-delay.
	NoLockDelay = time.Duration(-1)

	// MinSessionTTL and MaxSessionTTL are Consul's bounds of a session TTL.
	MinSessionTTL = 10 * time.Second
	// MaxSessionTTL is the longest session TTL Consul accepts.
	MaxSessionTTL = 24 * time.Hour

	// MinCheckTTL is the shortest Options.CheckTTL.
	MinCheckTTL = time.Second

	// CheckServiceName is the name of the service that carries the TTL check
	// of a check-bound session (see Options.CheckTTL). An ACL token needs
	// service:write on it.
	CheckServiceName = "consul-leader"

	// DefaultSessionNamePrefix starts the default session name, which is
	// followed by the resource, or by DefaultSharedSessionName for a shared
	// session.
	DefaultSessionNamePrefix = "consul-leader: "
)

// Options configure a Consul elector or backend. The zero value of every
// field but Resource selects its documented default.
type Options struct {
	// Options are the election options, common to every backend. TTL is
	// the Consul session TTL, from MinSessionTTL (10 s) to MaxSessionTTL
	// (24 h), unless CheckTTL is set. Consul invalidates a session only
	// after twice its TTL without renewal, so a leader that dies is replaced
	// up to 2×TTL + LockDelay after its last renewal; set CheckTTL for a
	// fast failover.
	election.Options

	// Key is the KV key of Resource's leadership. Default:
	// DefaultKeyPrefix + Resource + DefaultKeySuffix, that is
	// "service/<Resource>/leader". A backend serving other resources too
	// uses the default key for them. The key must be given to the election
	// alone: its value and flags are overwritten. It must not start with /
	// nor have a segment that Consul's HTTP API cleans away ("", "." or
	// "..", as in a//b, a/./b or a/../b).
	Key string

	// LockDelay is how long Consul refuses to hand a key over after the
	// session holding it was invalidated (expired, destroyed, or its check
	// failed) rather than released. It protects a leader that has not yet
	// noticed it lost its session: one cut off from Consul still believes
	// it leads until its step-down deadline, up to TTL after its last
	// renewal. A LockDelay of at least TTL covers that case, at the price of
	// a slower failover after a crash; a graceful release never pays it.
	// Default: DefaultLockDelay (Consul's 15 s), or no lock-delay when
	// CheckTTL is set. NoLockDelay (any negative value) means none. At most
	// MaxLockDelay (60 s), with a millisecond resolution.
	LockDelay time.Duration

	// Checks are node health checks (for example "serfHealth") that
	// invalidate the session when they turn critical. Default: none, so that
	// only the TTL ends a session, which the elector's safety relies on. A
	// check may end the session at any moment, before its TTL, so with
	// Checks or ServiceChecks the LockDelay must be at least TTL: the leader
	// then steps down before another candidate can acquire.
	Checks []string

	// ServiceChecks are service health checks that invalidate the session,
	// like Checks, with the same LockDelay requirement. Default: none.
	ServiceChecks []api.ServiceCheck

	// CheckTTL, when set, binds every session to a TTL check of its own,
	// registered on the local agent under a service named CheckServiceName,
	// and kept passing by each renewal. A process that dies stops passing
	// it, the check turns critical CheckTTL after its last pass, and Consul
	// invalidates the session at once: failover takes about CheckTTL
	// instead of up to 2×TTL + LockDelay. TTL must then be at most
	// CheckTTL, may be shorter than MinSessionTTL, and defaults to CheckTTL
	// in New and OpenURL; the Consul session has a TTL of
	// max(TTL, MinSessionTTL) as a backstop. The client must talk to the
	// agent of the node sessions are created on (the local agent). At least
	// MinCheckTTL (1 s). Default: zero, sessions without checks.
	CheckTTL time.Duration

	// Handoff, when true, hands the leadership over at a graceful release
	// instead of only freeing it: candidates that wait register under the
	// key (in the folder key + CandidatesSuffix), and a leader that releases
	// unlocks the key and locks it for the candidate registered first, in
	// one transaction. That candidate learns it leads from the blocking read
	// it already has open, which spares the handover a round trip and a
	// Raft write: about a sixth of its time on loopback. A candidate whose
	// session ended is never chosen; if none is registered, or the
	// transaction is refused, the key is released as without Handoff.
	//
	// The price: a candidate whose process is frozen or dead while its
	// session still lives can be handed the key, and then nobody leads until
	// that session ends (up to 2×TTL plus LockDelay), where a plain release
	// lets any live candidate take the key at once. With CheckTTL that wait
	// is about CheckTTL, as for a crashed leader: the two make a good pair.
	//
	// Followers read the key's folder recursively, so their reads also
	// return on registrations, and on writes to any other key the key's name
	// is a prefix of. Every candidate writes its registration once per
	// session, and deletes it when it stops; a leader deletes those of
	// candidates that crashed. The token needs key:write on the folder
	// (key_prefix on the key covers it); without it a candidate only waits.
	// Electors with and without Handoff may contend for one key. A shared
	// session (NewSharedSession) does not support it. Default: false.
	Handoff bool

	// SessionName names the Consul sessions, for operators. Default:
	// DefaultSessionNamePrefix + the resource; for a shared session,
	// election.SessionOptions.Name, else this, else
	// DefaultSessionNamePrefix + DefaultSharedSessionName.
	SessionName string

	// Datacenter is the datacenter of the sessions and the key. Default: the
	// client's (its agent's) datacenter.
	Datacenter string

	// Token is the ACL token of every request. Default: the client's token.
	// It needs key:write on the key, session:write on the agent's node and,
	// with CheckTTL, service:write on CheckServiceName.
	Token string
}

// Validate reports the first invalid option as an *election.OptionError that
// names the field and the rule it breaks: the election options first, then
// the Consul ones, with defaults applied.
func (o Options) Validate() error {
	o = o.withDefaults()
	if err := o.Options.Validate(); err != nil {
		return err
	}
	if err := o.validateBackend(); err != nil {
		return err
	}
	return o.validateTTL(o.Options.WithDefaults().TTL)
}

// withDefaults applies the defaults that depend on other Consul options.
func (o Options) withDefaults() Options {
	if o.TTL == 0 && o.CheckTTL > 0 {
		o.TTL = o.CheckTTL
	}
	return o
}

// validateBackend checks the Consul options, not the election ones.
func (o Options) validateBackend() error {
	switch {
	case o.Key != "" && strings.HasPrefix(o.Key, "/"):
		return &election.OptionError{Field: "Key", Rule: "must not start with /", Value: fmt.Sprintf("%q", o.Key)}
	case o.Key != "" && strings.IndexFunc(o.Key, notPrintable) >= 0:
		return &election.OptionError{Field: "Key", Rule: "must be printable text", Value: fmt.Sprintf("%q", o.Key)}
	case o.Key != "" && cleanedInPath(o.Key):
		return &election.OptionError{Field: "Key", Rule: `must not have an empty path segment (//) nor a segment "." or "..": Consul's HTTP API would read another key`, Value: fmt.Sprintf("%q", o.Key)}
	case o.LockDelay > MaxLockDelay:
		return &election.OptionError{Field: "LockDelay", Rule: fmt.Sprintf("must be at most %v (Consul's limit)", MaxLockDelay), Value: o.LockDelay.String()}
	case o.LockDelay > 0 && o.LockDelay%time.Millisecond != 0:
		return &election.OptionError{Field: "LockDelay", Rule: "must be a whole number of milliseconds", Value: o.LockDelay.String()}
	case o.CheckTTL < 0:
		return &election.OptionError{Field: "CheckTTL", Rule: "must not be negative", Value: o.CheckTTL.String()}
	case o.CheckTTL > 0 && o.CheckTTL < MinCheckTTL:
		return &election.OptionError{Field: "CheckTTL", Rule: fmt.Sprintf("must be at least %v", MinCheckTTL), Value: o.CheckTTL.String()}
	case o.CheckTTL > MaxSessionTTL:
		return &election.OptionError{Field: "CheckTTL", Rule: fmt.Sprintf("must be at most %v", MaxSessionTTL), Value: o.CheckTTL.String()}
	case o.CheckTTL > 0 && (len(o.Checks) > 0 || len(o.ServiceChecks) > 0):
		return &election.OptionError{Field: "CheckTTL", Rule: "binds the session to its own check only; it cannot be combined with Checks or ServiceChecks"}
	case o.CheckTTL > 0 && o.Datacenter != "":
		return &election.OptionError{Field: "CheckTTL", Rule: "needs sessions in the local agent's datacenter; it cannot be combined with Datacenter", Value: o.Datacenter}
	case strings.IndexFunc(o.SessionName, notPrintable) >= 0:
		return &election.OptionError{Field: "SessionName", Rule: "must be printable text", Value: fmt.Sprintf("%q", o.SessionName)}
	}
	for _, c := range o.Checks {
		if c == "" {
			return &election.OptionError{Field: "Checks", Rule: "must not contain an empty check ID"}
		}
	}
	for _, c := range o.ServiceChecks {
		if c.ID == "" {
			return &election.OptionError{Field: "ServiceChecks", Rule: "must not contain an empty check ID"}
		}
	}
	return nil
}

// validateTTL checks an election TTL against Consul's bounds and against
// LockDelay when sessions have health checks.
func (o Options) validateTTL(ttl time.Duration) error {
	if o.CheckTTL > 0 {
		if ttl > o.CheckTTL {
			return &election.OptionError{
				Field: "TTL",
				Rule:  fmt.Sprintf("must be at most CheckTTL (%v): a session lives as long as its check, so a longer TTL would only slow failover", o.CheckTTL),
				Value: ttl.String(),
			}
		}
		return nil
	}
	if ttl < MinSessionTTL || ttl > MaxSessionTTL {
		return &election.OptionError{
			Field: "TTL",
			Rule:  fmt.Sprintf("must be from %v to %v (Consul's session TTL bounds), or shorter with CheckTTL", MinSessionTTL, MaxSessionTTL),
			Value: ttl.String(),
		}
	}
	if (len(o.Checks) > 0 || len(o.ServiceChecks) > 0) && o.lockDelay() < ttl {
		return &election.OptionError{
			Field: "LockDelay",
			Rule:  fmt.Sprintf("must be at least TTL (%v) with Checks or ServiceChecks, which may end a session before its TTL while its leader still leads", ttl),
			Value: o.lockDelay().String(),
		}
	}
	return nil
}

// lockDelay is the effective lock-delay of new sessions.
func (o Options) lockDelay() time.Duration {
	switch {
	case o.LockDelay < 0:
		return 0
	case o.LockDelay > 0:
		return o.LockDelay
	case o.CheckTTL > 0:
		return 0
	default:
		return DefaultLockDelay
	}
}

// DefaultKey returns the default key of resource: "service/<resource>/leader".
func DefaultKey(resource string) string { return DefaultKeyPrefix + resource + DefaultKeySuffix }

// cleanedInPath reports whether Consul's HTTP API, which carries a key in the
// URL path, would clean key into another: an empty, "." or ".." segment.
func cleanedInPath(key string) bool {
	segs := strings.Split(key, "/")
	for i, seg := range segs {
		if seg == "." || seg == ".." || seg == "" && i < len(segs)-1 {
			return true
		}
	}
	return false
}

func notPrintable(r rune) bool { return !unicode.IsPrint(r) }
