package backends

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// EnvVar is the environment variable FromEnv reads.
const EnvVar = "ELECTION_BACKEND"

// DefaultURL is the store FromEnv uses when EnvVar is unset.
const DefaultURL = "memory://"

// ErrBadURL is wrapped by every error about a backend URL.
var ErrBadURL = errors.New("backends: bad backend URL")

// Opener opens electors from URLs. Its zero value is ready to use. Electors
// it opens with memory:// URLs of the same name share one in-process store.
type Opener struct {
	mu     sync.Mutex
	stores map[string]*memory.Store
}

// Open opens an elector for rawURL with a new Opener.
func Open(ctx context.Context, rawURL string, opts election.Options) (election.Elector, error) {
	return new(Opener).Open(ctx, rawURL, opts)
}

// FromEnv opens an elector for the URL in the ELECTION_BACKEND environment
// variable, or DefaultURL when it is unset, with a new Opener.
func FromEnv(ctx context.Context, opts election.Options) (election.Elector, error) {
	u := os.Getenv(EnvVar)
	if u == "" {
		u = DefaultURL
	}
	return Open(ctx, u, opts)
}

// Open opens an elector for rawURL. Parameters of the URL override opts. The
// elector owns any client it creates, and closes it in Close.
func (o *Opener) Open(ctx context.Context, rawURL string, opts election.Options) (election.Elector, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	if u.Scheme == "" {
		return nil, fmt.Errorf("%w: %q has no scheme; use memory://, consul://, etcd://, redis:// or rediss://", ErrBadURL, rawURL)
	}
	opts, rest, err := ParseOptions(u.Query(), opts)
	if err != nil {
		return nil, err
	}
	u.RawQuery = rest.Encode()
	open, ok := scheme(strings.ToLower(u.Scheme))
	if !ok {
		return nil, fmt.Errorf("%w: unknown scheme %q; use memory://, consul://, etcd://, redis:// or rediss://", ErrBadURL, u.Scheme)
	}
	return open(ctx, o, u, opts)
}

// MemoryStore returns the in-process store that memory://name URLs of this
// Opener use, creating it if needed; tests use it to inject faults.
func (o *Opener) MemoryStore(name string) *memory.Store {
	if name == "" {
		name = "default"
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.stores == nil {
		o.stores = map[string]*memory.Store{}
	}
	s := o.stores[name]
	if s == nil {
		s = memory.NewStore()
		o.stores[name] = s
	}
	return s
}

type openFunc func(ctx context.Context, o *Opener, u *url.URL, opts election.Options) (election.Elector, error)

func openMemory(_ context.Context, o *Opener, u *url.URL, opts election.Options) (election.Elector, error) {
	if err := NoParams(u); err != nil {
		return nil, err
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("%w: memory://NAME takes no path, got %q", ErrBadURL, u.Path)
	}
	return memory.New(o.MemoryStore(u.Host), opts)
}

// NoParams returns an error naming the parameters left in u's query, for a
// backend that takes none of its own.
func NoParams(u *url.URL) error {
	if q := u.Query(); len(q) > 0 {
		names := make([]string, 0, len(q))
		for k := range q {
			names = append(names, k)
		}
		return fmt.Errorf("%w: %s:// does not take the parameter(s) %s", ErrBadURL, u.Scheme, strings.Join(names, ", "))
	}
	return nil
}

// ParseOptions applies the common election parameters of q to opts, and
// returns the parameters it did not use.
func ParseOptions(q url.Values, opts election.Options) (election.Options, url.Values, error) {
	rest := url.Values{}
	for key, vals := range q {
		if len(vals) != 1 {
			return opts, nil, fmt.Errorf("%w: parameter %s given %d times", ErrBadURL, key, len(vals))
		}
		v := vals[0]
		var err error
		switch key {
		case "resource":
			opts.Resource = v
		case "id":
			opts.ID = v
		case "value":
			opts.Value = []byte(v)
		case "ttl":
			opts.TTL, err = ParseDuration(key, v)
		case "renewInterval":
			opts.RenewInterval, err = ParseDuration(key, v)
		case "retryInterval":
			opts.RetryInterval, err = ParseDuration(key, v)
		case "waitTime":
			opts.WaitTime, err = ParseDuration(key, v)
		case "requestTimeout":
			opts.RequestTimeout, err = ParseDuration(key, v)
		default:
			rest[key] = vals
		}
		if err != nil {
			return opts, nil, err
		}
	}
	return opts, rest, nil
}

// ParseDuration parses a URL parameter that is a Go duration ("1500ms",
// "15s") or a plain number of seconds ("15").
func ParseDuration(name, v string) (time.Duration, error) {
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Duration(secs * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%w: parameter %s=%q is not a duration (use 15s, 1500ms or a number of seconds)", ErrBadURL, name, v)
	}
	return d, nil
}
