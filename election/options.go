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
	// MaxValueSize is the largest Options.Value, in bytes.
	MaxValueSize = 64 << 10
	// MaxResourceLength and MaxIDLength bound Options.Resource and Options.ID.
	MaxResourceLength = 128
	// MaxIDLength bounds Options.ID.
	MaxIDLength = 256
)

// LeaderWait returns how long a leader's blocking read of its own record
// waits: ten TTLs, at least WaitTime and at most five minutes. A blocking read
// returns at once when the record changes, so a leader learns of a loss as
// fast as with a short wait, and sends fewer requests while nothing happens;
// a lost session is also caught by the next renewal.
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
	// starting or ending with /. Each backend derives its keys from it.
	Resource string

	// ID identifies this candidate to the others; it is published as
	// Leadership.LeaderID. Default: "<hostname>-<pid>-<random hex>".
	ID string

	// Value is published with the leadership, for example the leader's
	// address. At most MaxValueSize bytes. Default: empty.
	Value []byte

	// TTL is the lifetime of the candidate's session in the store: a
	// leader that dies is replaced about TTL after its last renewal.
	// Default: DefaultTTL (15 s). Stores have their own bounds (Consul: 10 s
	// to 24 h).
	TTL time.Duration

	// RenewInterval is how often the session is renewed. Default: TTL/3. It
	// must leave room for one renewal attempt before the step-down
	// deadline: RenewInterval + RequestTimeout < TTL - StepDownMargin(TTL).
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
	// change before it is sent again. Default: DefaultWaitTime (5 s).
	WaitTime time.Duration

	// RequestTimeout bounds every store request other than blocking reads,
	// which get WaitTime + RequestTimeout. Default: TTL/5, at most
	// MaxRequestTimeout (10 s).
	RequestTimeout time.Duration

	// Logger receives the elector's logs. Default: logs are discarded.
	Logger *slog.Logger
}

// WithDefaults returns o with every zero field set to its default. It does
// not validate.
func (o Options) WithDefaults() Options {
	if o.ID == "" {
		o.ID = defaultID()
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
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Validate reports the first invalid option, with defaults applied, as an
// *OptionError that names the field and the rule it breaks.
func (o Options) Validate() error {
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
	case o.TTL < MinTTL:
		return &OptionError{Field: "TTL", Rule: fmt.Sprintf("must be at least %v", MinTTL), Value: o.TTL.String()}
	case o.RenewInterval < 0:
		return &OptionError{Field: "RenewInterval", Rule: "must not be negative", Value: o.RenewInterval.String()}
	case o.RetryInterval < 0:
		return &OptionError{Field: "RetryInterval", Rule: "must not be negative", Value: o.RetryInterval.String()}
	case o.WaitTime < 0:
		return &OptionError{Field: "WaitTime", Rule: "must not be negative", Value: o.WaitTime.String()}
	case o.RequestTimeout < 0:
		return &OptionError{Field: "RequestTimeout", Rule: "must not be negative", Value: o.RequestTimeout.String()}
	}
	if limit := o.TTL - StepDownMargin(o.TTL); o.RenewInterval+o.RequestTimeout >= limit {
		return &OptionError{
			Field: "RenewInterval",
			Rule:  fmt.Sprintf("RenewInterval + RequestTimeout must be less than TTL - StepDownMargin(TTL) = %v, so that a renewal can complete before the leader must step down", limit),
			Value: fmt.Sprintf("%v + %v", o.RenewInterval, o.RequestTimeout),
		}
	}
	return nil
}

// ValidateResource reports whether name is a valid Options.Resource.
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
