package backends

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/internal/urlparam"
	"github.com/consul-leader/consul-leader/memory"
)

// EnvVar is the environment variable FromEnv reads.
const EnvVar = "ELECTION_BACKEND"

// URLForms lists the URL forms Open accepts, for error messages.
const URLForms = "consul://host:port, etcd://host:port[,host:port...], redis://host:port, " +
	"rediss://host:port, migrate://?from=URL&to=URL, or memory://NAME (in-process, with an Opener)"

var (
	// ErrBadURL is wrapped by every error about a backend URL.
	ErrBadURL = errors.New("backends: bad backend URL")
	// ErrNoBackend is wrapped by the error of FromEnv when EnvVar is unset
	// or empty: there is no default store, as electors that silently ran on
	// separate in-process stores would all lead.
	ErrNoBackend = errors.New("backends: no backend URL")
)

// Opener opens electors from URLs. Its zero value is ready to use. Electors
// it opens with memory:// URLs of the same name share one in-process store,
// which lives as long as the Opener: to run several electors of one process
// on one memory store, open them all with one Opener.
//
// Electors an Opener opens on one store share one backend, and so one
// client: one HTTP connection pool for Consul, one gRPC connection for
// etcd, one connection pool for Redis, however many electors are opened.
// Two URLs name one store when they differ only in the election parameters
// (resource, id, ttl, ...), in the order of their parameters, or in the
// case of their scheme and host; any other difference (address, token,
// datacenter, TLS files, database, ...) makes two backends. consul's key and
// etcd's prefix parameters name the key of one resource, so electors of
// other resources get a backend of their own for them. A backend takes its
// logger, and etcd's its watch timeouts, from the first elector opened on
// it. The backends belong to the Opener: an elector that closes leaves
// them open, and Opener.Close closes them.
type Opener struct {
	mu     sync.Mutex
	stores map[string]*memory.Store
	// private refuses memory:// URLs and shares nothing: each elector owns
	// its backend, for the package-level Open.
	private  bool
	closed   bool
	backends map[string]*shared                 // by store key
	owned    []election.Backend                 // the backends to close, in creation order
	sessions map[string]*election.SharedSession // by store key
	created  int                                // backends created, for tests
	// schemes, when set, opens URLs of its schemes instead, for tests.
	schemes map[string]openFunc
}

// Open opens an elector for rawURL, as Opener.Open does, except that it
// refuses memory:// URLs with an error wrapping ErrBadURL: an in-process
// store is shared only by the electors of one Opener, so two calls of Open
// with the same memory:// URL would reach two different stores, and both
// electors would lead. Open electors on a memory store with one Opener.
//
// There is deliberately no process-wide registry of memory stores: it would
// keep every store alive for the life of the process and couple unrelated
// code (and tests) of one binary that happen to use the same name.
func Open(ctx context.Context, rawURL string, opts election.Options) (*election.Elector, error) {
	return (&Opener{private: true}).Open(ctx, rawURL, opts)
}

// FromEnv opens an elector, as Open does, for the URL in the environment
// variable ELECTION_BACKEND (EnvVar). When the variable is unset or empty
// it fails with an error wrapping ErrNoBackend that names the variable and
// the accepted URL forms: there is no default store.
func FromEnv(ctx context.Context, opts election.Options) (*election.Elector, error) {
	return (&Opener{private: true}).FromEnv(ctx, opts)
}

// FromEnv opens an elector for the URL in the environment variable
// ELECTION_BACKEND (EnvVar), as Open does. When the variable is unset or
// empty it fails with an error wrapping ErrNoBackend that names the
// variable and the accepted URL forms.
func (o *Opener) FromEnv(ctx context.Context, opts election.Options) (*election.Elector, error) {
	u := os.Getenv(EnvVar)
	if u == "" {
		return nil, fmt.Errorf("%w: the environment variable %s is not set; set it to the URL of the store: %s", ErrNoBackend, EnvVar, URLForms)
	}
	return o.Open(ctx, u, opts)
}

// Open opens an elector for rawURL. Parameters of the URL override opts.
// The elector shares the backend of its store with the other electors of
// the Opener, and campaigns on the Opener's shared session of the store
// with the parameter session=shared or with opts.Session set to it (see
// Session). The backend and the session belong to the Opener, which closes
// them in Close.
func (o *Opener) Open(ctx context.Context, rawURL string, opts election.Options) (*election.Elector, error) {
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
	if opts.ID == "" {
		opts.ID = opts.WithDefaults().ID // named before a backend needs it
	}
	shareSession, err := takeSession(rest)
	if err != nil {
		return nil, err
	}
	u.RawQuery = rest.Encode()
	opts = urlDefaults(u, opts)
	if err := withoutSession(opts).Validate(); err != nil {
		return nil, err // before any client is created
	}
	var b election.Backend
	switch {
	case shareSession && o.private:
		return nil, fmt.Errorf("%w: session=shared needs an Opener, whose electors share the session; "+
			"open them with one backends.Opener (var o backends.Opener; o.Open(ctx, url, opts))", ErrBadURL)
	case (shareSession || opts.Session != nil) && !o.private:
		b, opts.Session, err = o.sessionOf(ctx, u, opts)
	default:
		b, err = o.backend(ctx, u, opts)
	}
	if err != nil {
		return nil, err
	}
	el, err := election.New(b, opts)
	if err != nil {
		if o.private {
			closeBackend(b)
		}
		return nil, err
	}
	return el, nil
}

// backend returns the backend of u, whose common parameters were applied
// to opts already: a new one for a private Opener, else the store's shared
// one.
func (o *Opener) backend(ctx context.Context, u *url.URL, opts election.Options) (election.Backend, error) {
	b, _, err := o.resolve(ctx, u, opts, false)
	return b, err
}

// resolve returns the backend of u for an elector of opts, or for the
// store's shared session, and the key it is shared under ("" when it is
// not shared).
func (o *Opener) resolve(ctx context.Context, u *url.URL, opts election.Options, session bool) (election.Backend, string, error) {
	if strings.EqualFold(u.Scheme, "migrate") {
		return o.migration(ctx, u, opts, session)
	}
	open, err := o.scheme(u)
	if err != nil {
		return nil, "", err
	}
	if o.private {
		b, err := open(ctx, o, u, opts)
		return b, "", err
	}
	key := storeKey(u)
	if k, param := perElector(u, opts); k != "" {
		if session {
			if param != "id" {
				return nil, "", fmt.Errorf("%w: session=shared: the parameter %s names the key of one resource, "+
					"and the electors of a shared session share one backend; leave it out to use the default keys", ErrBadURL, param)
			}
			opts.ID = MemorySessionConn
			k = "id=" + MemorySessionConn
		}
		key += "#" + k
	}
	b, err := o.sharedBackend(ctx, key, func() (election.Backend, error) { return open(ctx, o, u, opts) })
	return b, key, err
}

// scheme returns the function that opens u's backend.
func (o *Opener) scheme(u *url.URL) (openFunc, error) {
	s := strings.ToLower(u.Scheme)
	if open, ok := o.schemes[s]; ok {
		return open, nil
	}
	if open, ok := scheme(s); ok {
		return open, nil
	}
	return nil, fmt.Errorf("%w: unknown scheme %q; use memory://, consul://, etcd://, redis://, rediss:// or migrate://", ErrBadURL, u.Scheme)
}

// migration opens migrate://?from=URL&to=URL, on the shared backends of
// both stores unless the Opener is private. The migration backend itself
// holds no client: each elector gets its own, except those of a shared
// session, which share the session's.
func (o *Opener) migration(ctx context.Context, u *url.URL, opts election.Options, session bool) (election.Backend, string, error) {
	q := u.Query()
	from, to := q.Get("from"), q.Get("to")
	q.Del("from")
	q.Del("to")
	if len(q) > 0 || u.Host != "" || (u.Path != "" && u.Path != "/") {
		return nil, "", fmt.Errorf("%w: migrate:// takes only the parameters from and to (and the common ones), got %q", ErrBadURL, u.String())
	}
	if from == "" || to == "" {
		return nil, "", fmt.Errorf("%w: migrate:// needs both from=URL and to=URL", ErrBadURL)
	}
	var bs [2]election.Backend
	var keys [2]string
	for i, raw := range []string{from, to} {
		inner, err := url.Parse(raw)
		if err != nil {
			return nil, "", fmt.Errorf("%w: migrate %s: %v", ErrBadURL, []string{"from", "to"}[i], err)
		}
		if strings.EqualFold(inner.Scheme, "migrate") {
			return nil, "", fmt.Errorf("%w: migrate:// cannot nest migrate://", ErrBadURL)
		}
		_, rest, err := ParseOptions(inner.Query(), opts)
		if err != nil {
			return nil, "", err
		}
		if len(rest) != len(inner.Query()) {
			return nil, "", fmt.Errorf("%w: migrate:// takes the election parameters on its own URL, not on from= or to=", ErrBadURL)
		}
		b, key, err := o.resolve(ctx, inner, opts, session)
		if err != nil {
			if i == 1 && o.private {
				closeBackend(bs[0])
			}
			return nil, "", err
		}
		bs[i], keys[i] = b, key
	}
	build := func() (election.Backend, error) {
		m, err := Migration(bs[0], bs[1])
		if err != nil && o.private {
			closeBackend(bs[0])
			closeBackend(bs[1])
		}
		return m, err
	}
	if !session || o.private {
		m, err := build()
		return m, "", err
	}
	key := "migrate://?" + url.Values{"from": {keys[0]}, "to": {keys[1]}}.Encode()
	m, err := o.sharedBackend(ctx, key, build)
	return m, key, err
}

func closeBackend(b election.Backend) {
	if c, ok := b.(interface{ Close() error }); ok {
		_ = c.Close()
	}
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

// openFunc opens the backend of a URL whose common parameters were removed.
type openFunc func(ctx context.Context, o *Opener, u *url.URL, opts election.Options) (election.Backend, error)

func openMemory(_ context.Context, o *Opener, u *url.URL, opts election.Options) (election.Backend, error) {
	if err := NoParams(u); err != nil {
		return nil, err
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("%w: memory://NAME takes no path, got %q", ErrBadURL, u.Path)
	}
	if opts.ID == "" {
		return nil, fmt.Errorf("%w: memory:// needs the elector's ID to name its connection", ErrBadURL)
	}
	if o.private {
		return nil, fmt.Errorf("%w: %s://%s is an in-process store, shared only by the electors of one Opener; "+
			"open every elector of it with one backends.Opener (var o backends.Opener; o.Open(ctx, url, opts))", ErrBadURL, u.Scheme, u.Host)
	}
	return o.MemoryStore(u.Host).Connect(opts.ID), nil
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
	opts, rest, err := urlparam.Common(q, opts)
	if err != nil {
		return opts, nil, fmt.Errorf("%w: %w", ErrBadURL, err)
	}
	return opts, rest, nil
}

// ParseDuration parses a URL parameter that is a Go duration ("1500ms",
// "15s") or a plain number of seconds ("15", "0.5"). A value that is
// neither, or is out of the range of a time.Duration (NaN, Inf, 1e300), is
// an error that wraps ErrBadURL and an *election.OptionError naming the
// parameter.
func ParseDuration(name, v string) (time.Duration, error) {
	d, err := urlparam.DurationOrSeconds(name, v)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrBadURL, err)
	}
	return d, nil
}
