package election

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"
	"unicode"
)

// Defaults and limits of Options.
const (
	// DefaultTTL is the session TTL when Options.TTL is zero.
	DefaultTTL = 15 * time.Second
	// DefaultRetryInterval is Options.RetryInterval when zero.
	DefaultRetryInterval = time.Second
	// DefaultWaitTime is Options.WaitTime when zero.
	DefaultWaitTime = 5 * time.Second
	// MaxRequestTimeout caps the default Options.RequestTimeout.
	MaxRequestTimeout = 10 * time.Second
	// MinTTL is the shortest TTL the engine accepts; stores have their own,
	// larger minimums.
	MinTTL = 10 * time.Millisecond
	// MaxTTL is the longest TTL the engine accepts, Consul's own bound. It
	// keeps the engine's arithmetic on TTLs (sums, multiples) far from
	// overflow.
	MaxTTL = 24 * time.Hour
	// MinRenewInterval is the shortest Options.RenewInterval: a session
	// renewed more often only loads the store.
	MinRenewInterval = time.Millisecond
	// MinRetryInterval is the shortest Options.RetryInterval: below it a
	// handler that keeps failing, or a store that keeps refusing, would
	// start thousands of campaigns a second.
	MinRetryInterval = time.Millisecond
	// MaxRetryInterval is the longest Options.RetryInterval.
	MaxRetryInterval = 24 * time.Hour
	// MinWaitTime is the shortest Options.WaitTime: a blocking read that
	// waits less is a busy loop of reads.
	MinWaitTime = time.Millisecond
	// MaxWaitTime is the longest Options.WaitTime. Stores may wait less per
	// read (Consul at most 10 minutes); the read is then sent again.
	MaxWaitTime = 24 * time.Hour
	// MinRequestTimeout is the shortest Options.RequestTimeout: no store
	// answers sooner, so every request would fail.
	MinRequestTimeout = time.Millisecond
	// MaxValueSize is the largest Options.Value, in bytes.
	MaxValueSize = 64 << 10
	// MaxResourceLength and MaxIDLength bound Options.Resource and Options.ID.
	MaxResourceLength = 128
	// MaxIDLength bounds Options.ID.
	MaxIDLength = 256
)

// LeaderWait returns how long a leader's blocking read of its own record
// waits, on a backend without RecordWatcher: ten TTLs, at least WaitTime
// and at most five minutes. A blocking read returns at once when the
// record changes, so a leader learns of a loss as fast as with a short
// wait, and sends fewer requests while nothing happens; a lost session is
// also caught by the next renewal.
func LeaderWait(o Options) time.Duration {
	o = o.WithDefaults()
	return min(max(o.WaitTime, 10*o.TTL), 5*time.Minute)
}

// StepDownMargin returns how long before its TTL a leader that cannot renew
// steps down: a tenth of the TTL. A leader's term context is cancelled at
// (start of its last successful renewal) + TTL - StepDownMargin(TTL), while
// the store keeps the session at least until (that same moment) + TTL. The
// margin absorbs timer and scheduling delays and clock-rate drift between
// this process and the store.
func StepDownMargin(ttl time.Duration) time.Duration { return ttl / 10 }

// Options configure an elector. The zero value of every field but Resource
// selects its documented default.
type Options struct {
	// Resource names what is being led, for example "billing-cron". It is
	// required: 1 to 128 letters, digits and the characters . _ - : /, not
	// starting or ending with /, without an empty path segment (//) nor a
	// segment "." or "..". Each backend derives its keys from it, and every
	// store keeps such a name byte for byte (see ValidateResource).
	Resource string

	// ID identifies this candidate to the others; it is published as
	// Leadership.LeaderID. Default: "<hostname>-<pid>-<random hex>".
	ID string

	// Value is published with the leadership, for example the leader's
	// address. At most MaxValueSize bytes. Default: empty.
	Value []byte

	// TTL is the lifetime of the candidate's session in the store: a
	// leader that dies is replaced about TTL after its last renewal.
	// Default: DefaultTTL (15 s). From MinTTL (10 ms) to MaxTTL (24 h);
	// stores have their own bounds (Consul: 10 s to 24 h).
	TTL time.Duration

	// RenewInterval is how often the session is renewed. Default: TTL/3. At
	// least MinRenewInterval (1 ms), and it must leave room for one renewal
	// attempt before the step-down deadline: RenewInterval + RequestTimeout
	// < TTL - StepDownMargin(TTL). The first renewal of a session comes
	// sooner, at a random point in the second half of RenewInterval after
	// its creation: sessions created together, by a process that starts
	// many electors or a fleet restarted at once, then do not renew
	// together for as long as they live.
	RenewInterval time.Duration

	// RetryInterval is how long the elector waits after a failed store
	// request, a handler error or a Release before it campaigns again.
	// Repeated failures back off: each failure in a row doubles the wait,
	// up to MaxRetryDelay (half the TTL, at most 30 s); a success starts again
	// from RetryInterval. Every wait after a failure is jittered by
	// ±RetryJitter (20 %); the wait after a Release is exact. See
	// RetryDelay. Default: DefaultRetryInterval (1 s).
	RetryInterval time.Duration

	// WaitTime is how long a blocking read of the leadership waits for a
	// change before it is sent again. Default: DefaultWaitTime (5 s). From
	// MinWaitTime (1 ms) to MaxWaitTime (24 h).
	WaitTime time.Duration

	// RequestTimeout bounds every store request other than blocking reads,
	// which get WaitTime + RequestTimeout. Default: TTL/5, at most
	// MaxRequestTimeout (10 s). At least MinRequestTimeout (1 ms), and
	// below TTL - StepDownMargin(TTL) together with RenewInterval.
	RequestTimeout time.Duration

	// Session, when set, is the shared session the elector campaigns on,
	// with the electors of other resources: one store session, renewed
	// once for all of them (see SharedSession). The elector must be made
	// on the session's backend, for a resource no other open elector on
	// the session campaigns for. TTL and RenewInterval are the session's:
	// leave them zero, or set them to the session's. Default: nil, a
	// private session for each campaign of this elector.
	Session *SharedSession

	// Observers receive the elector's events (see Observer), in order.
	// None may be nil. Default: none, at no cost.
	Observers []*Observer

	// Logger receives the elector's logs. Default: DefaultLogger(), which
	// passes warnings and errors (slog.LevelWarn and above) to the handler
	// of slog.Default() and drops the rest. To discard every log, set
	// slog.New(slog.DiscardHandler).
	Logger *slog.Logger

	// fixedRenewals renews first at RenewInterval, as every renewal after;
	// set only by this package's tests, to time renewals exactly.
	fixedRenewals bool
}

// WithDefaults returns o with every zero field set to its default. It does
// not validate.
func (o Options) WithDefaults() Options {
	if o.ID == "" {
		o.ID = defaultID()
	}
	if o.Session != nil {
		so := o.Session.Options()
		if o.TTL == 0 {
			o.TTL = so.TTL
		}
		if o.RenewInterval == 0 {
			o.RenewInterval = so.RenewInterval
		}
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.RenewInterval == 0 {
		o.RenewInterval = o.TTL / 3
	}
	if o.RetryInterval == 0 {
		o.RetryInterval = DefaultRetryInterval
	}
	if o.WaitTime == 0 {
		o.WaitTime = DefaultWaitTime
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = min(o.TTL/5, MaxRequestTimeout)
	}
	if o.Logger == nil {
		o.Logger = DefaultLogger()
	}
	return o
}

// Validate reports the first invalid option, with defaults applied, as an
// *OptionError that names the field and the rule it breaks.
func (o Options) Validate() error {
	explicit := o
	o = o.WithDefaults()
	if err := ValidateResource(o.Resource); err != nil {
		return err
	}
	switch {
	case len(o.ID) > MaxIDLength:
		return &OptionError{Field: "ID", Rule: fmt.Sprintf("must be at most %d bytes", MaxIDLength), Value: fmt.Sprintf("%d bytes", len(o.ID))}
	case strings.IndexFunc(o.ID, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return &OptionError{Field: "ID", Rule: "must be printable text", Value: fmt.Sprintf("%q", o.ID)}
	case len(o.Value) > MaxValueSize:
		return &OptionError{Field: "Value", Rule: fmt.Sprintf("must be at most %d bytes", MaxValueSize), Value: fmt.Sprintf("%d bytes", len(o.Value))}
	}
	if err := o.validateDurations(); err != nil {
		return err
	}
	if err := validateObservers(o.Observers); err != nil {
		return err
	}
	if o.Session != nil {
		so := o.Session.Options()
		if o.TTL != so.TTL {
			return &OptionError{Field: "TTL", Rule: fmt.Sprintf("must be zero or the session's TTL, %v", so.TTL), Value: o.TTL.String()}
		}
		if o.RenewInterval != so.RenewInterval {
			return &OptionError{Field: "RenewInterval", Rule: fmt.Sprintf("must be zero or the session's RenewInterval, %v", so.RenewInterval), Value: o.RenewInterval.String()}
		}
	}
	return o.validateRenewal(explicit)
}

// validateDurations checks each duration against its own bounds.
func (o Options) validateDurations() error {
	type bound struct {
		field    string
		v        time.Duration
		min, max time.Duration
	}
	for _, b := range []bound{
		{"TTL", o.TTL, MinTTL, MaxTTL},
		{"RenewInterval", o.RenewInterval, MinRenewInterval, MaxTTL},
		{"RetryInterval", o.RetryInterval, MinRetryInterval, MaxRetryInterval},
		{"WaitTime", o.WaitTime, MinWaitTime, MaxWaitTime},
		{"RequestTimeout", o.RequestTimeout, MinRequestTimeout, MaxTTL},
	} {
		switch {
		case b.v < 0:
			return &OptionError{Field: b.field, Rule: fmt.Sprintf("must not be negative (at least %v)", b.min), Value: b.v.String()}
		case b.v < b.min:
			return &OptionError{Field: b.field, Rule: fmt.Sprintf("must be at least %v", b.min), Value: b.v.String()}
		case b.v > b.max:
			return &OptionError{Field: b.field, Rule: fmt.Sprintf("must be at most %v", b.max), Value: b.v.String()}
		}
	}
	return nil
}

// validateRenewal checks that a renewal fits before the step-down deadline,
// naming the field at fault: the one that alone leaves no room, else the
// one set explicitly (the other being its default), else RenewInterval.
func (o Options) validateRenewal(explicit Options) error {
	limit := o.TTL - StepDownMargin(o.TTL)
	why := fmt.Sprintf("so that a renewal can complete before the leader must step down at TTL - StepDownMargin(TTL) = %v", limit)
	switch {
	case o.RequestTimeout >= limit:
		return &OptionError{Field: "RequestTimeout", Rule: "must be less than TTL - StepDownMargin(TTL), " + why, Value: o.RequestTimeout.String()}
	case o.RenewInterval >= limit:
		return &OptionError{Field: "RenewInterval", Rule: "must be less than TTL - StepDownMargin(TTL), " + why, Value: o.RenewInterval.String()}
	case o.RenewInterval+o.RequestTimeout >= limit:
		field := "RenewInterval"
		if explicit.RenewInterval == 0 && explicit.RequestTimeout != 0 {
			field = "RequestTimeout"
		}
		return &OptionError{
			Field: field,
			Rule:  "RenewInterval + RequestTimeout must be less than TTL - StepDownMargin(TTL); shorten either, " + why,
			Value: fmt.Sprintf("RenewInterval %v + RequestTimeout %v", o.RenewInterval, o.RequestTimeout),
		}
	}
	return nil
}

// ValidateResource reports whether name is a valid Options.Resource: 1 to
// MaxResourceLength letters, digits and . _ - : /, whose path segments (the
// parts between slashes) are neither empty nor "." nor "..".
//
// The rules keep every name byte for byte in every store, so that the key
// an elector writes is the key every other elector reads. Consul's HTTP API
// carries keys in the URL path, where "." and ".." segments and empty ones
// are cleaned away (x/../y would read y); etcd keys take the name with "/"
// written as "%2F" (unambiguous, as "%" is not allowed); Redis keys put it
// in a hash tag {name}, which "{" or "}" would end early; and a name of
// other characters could need escaping in a URL or a key pattern.
func ValidateResource(name string) error {
	switch {
	case name == "":
		return &OptionError{Field: "Resource", Rule: "is required"}
	case len(name) > MaxResourceLength:
		return &OptionError{Field: "Resource", Rule: fmt.Sprintf("must be at most %d bytes", MaxResourceLength), Value: fmt.Sprintf("%d bytes", len(name))}
	case strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.Contains(name, "//"):
		return &OptionError{Field: "Resource", Rule: "must not start or end with / nor contain //", Value: fmt.Sprintf("%q", name)}
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-:/", r)) {
			return &OptionError{Field: "Resource", Rule: "may contain only letters, digits and . _ - : /", Value: fmt.Sprintf("%q", name)}
		}
	}
	for seg := range strings.SplitSeq(name, "/") {
		if seg == "." || seg == ".." {
			return &OptionError{Field: "Resource", Rule: `must not have a path segment "." or "..", which stores that take keys in URL paths (Consul) clean away`, Value: fmt.Sprintf("%q", name)}
		}
	}
	return nil
}

func defaultID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "host"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}
