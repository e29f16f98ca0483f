package consul

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/consul-leader/consul-leader/election"
	acqflight "github.com/consul-leader/consul-leader/internal/flight"
)

// BackendName is the name of the backend, in Leadership.Session and logs.
const BackendName = "consul"

// OwnedMaxConns bounds the connections to Consul of a client a backend
// creates itself (New or NewBackend with a nil client, OpenURL,
// OpenBackend, and so backends.Open), unless
// Options.Handoff is set: a request beyond it waits for a connection
// instead of opening one more, well below the 200 connections per client
// address a Consul agent accepts by default (http_max_conns_per_client),
// beyond which it refuses requests with HTTP 429. The blocking reads of
// Watch are shared (see Backend.Watch), so at most about ListThreshold of
// them, plus one per root, hold a connection for long, and the rest stay
// free for sessions and acquisitions. With Handoff each watched key keeps
// its own blocking read, which must not wait behind the others: no bound is
// set then. A client passed to New or NewBackend is used as it is.
const OwnedMaxConns = 32

// Backend is the Consul election.Backend: sessions are Consul sessions, the
// leadership of a resource is a KV key acquired with a session. It is safe
// for concurrent use and may serve any number of resources and electors.
type Backend struct {
	client *api.Client
	owned  *http.Transport // the transport of a client the backend created; nil otherwise
	opts   Options
	log    *slog.Logger

	// keys is what the backend saw of each key, including what the token
	// may read of it.
	keys keyStates

	watches *watches

	// acquiring has the lock in flight of each key, which the other
	// candidates of this process for the key wait for (see claim.acquire).
	acquiring acqflight.Group[election.Acquisition]

	// lines has the candidates of this process waiting through WatchTurn,
	// per key (see turn.go).
	lines lines
}

var _ election.Backend = (*Backend)(nil)

// New returns an elector for opts on client: a Backend for opts, and the
// election engine on it. It fails with an *election.OptionError if opts is
// invalid. A nil client is created from the environment as
// api.DefaultConfig does (CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN,
// CONSUL_CACERT and the other CONSUL_* variables); the elector owns it and
// closes it in Close. A client passed in stays the caller's.
//
// With opts.Options.Session set, the elector is built on the session's
// backend instead, which must be a *Backend (see NewSharedSession): its
// client and Consul options apply, and client must be nil or that
// backend's client.
func New(client *api.Client, opts Options) (*election.Elector, error) {
	if opts.Session != nil {
		return newOnSession(client, opts)
	}
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	b, err := NewBackend(client, opts)
	if err != nil {
		return nil, err
	}
	el, err := election.NewOwning(b, opts.Options)
	if err != nil {
		_ = b.Close()
		return nil, err
	}
	return el, nil
}

// NewBackend returns the Consul backend for opts on client, to build electors
// with election.New. It validates the Consul options of opts, and its TTL when
// set; opts.Resource may be empty, as a backend serves any resource. A nil
// client is created from the environment, as in New, and the backend closes
// its connections in Close; a client passed in stays the caller's.
func NewBackend(client *api.Client, opts Options) (*Backend, error) {
	if err := opts.validateBackend(); err != nil {
		return nil, err
	}
	if opts.TTL != 0 {
		if err := opts.validateTTL(opts.TTL); err != nil {
			return nil, err
		}
	}
	if client != nil {
		return newBackend(opts, client, nil), nil
	}
	cfg := api.DefaultConfig()
	boundConns(cfg, opts)
	client, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("consul: client from the environment: %w", err)
	}
	return newBackend(opts, client, cfg.Transport), nil
}

// boundConns bounds the connections of cfg's transport, for a client the
// backend of opts creates itself (see OwnedMaxConns).
func boundConns(cfg *api.Config, opts Options) {
	if !opts.Handoff {
		cfg.Transport.MaxConnsPerHost = OwnedMaxConns
	}
}

func newBackend(o Options, client *api.Client, owned *http.Transport) *Backend {
	log := o.Logger
	if log == nil {
		log = election.DefaultLogger()
	}
	b := &Backend{client: client, owned: owned, opts: o, log: log.With("backend", BackendName)}
	b.watches = newWatches(b)
	return b
}

// Name returns "consul".
func (b *Backend) Name() string { return BackendName }

// Client returns the Consul client the backend uses.
func (b *Backend) Client() *api.Client { return b.client }

// Key returns the KV key of resource's leadership.
func (b *Backend) Key(resource string) string {
	if b.opts.Key != "" && resource == b.opts.Resource {
		return b.opts.Key
	}
	return DefaultKey(resource)
}

// Close stops the blocking reads that Watch calls share, and closes the
// idle connections of a client the backend created; it does nothing else to
// a client passed to New or NewBackend. Electors made by election.New leave
// the backend open: close it once they are closed (an elector of New or
// OpenURL owns its backend, and closes it). Watch calls after Close, or
// waiting during it, each send their own blocking read; WatchRecord calls
// served by a recursive read end with an error, and later ones loop on
// their own reads.
func (b *Backend) Close() error {
	b.lines.close()
	b.watches.close()
	if b.owned != nil {
		b.owned.CloseIdleConnections()
	}
	return nil
}

// Watch reads the leadership record of resource from its key. With after ==
// 0 it is a consistent read; otherwise it is a blocking query on the key's
// index, also consistent, that Consul answers when the key changes or after
// wait, plus the random jitter of up to wait/16 Consul adds, as for api.Lock
// (see serverWait). A holder not seen before costs one more read, a
// transaction of the key and its term offset, for its term. With
// Options.Handoff it reads the key recursively instead (see readList),
// which tells the term at once.
//
// Concurrent blocking reads are shared. Calls for the same key and revision
// wait for one query, which the first call starts and which is cancelled
// only when no call waits for it any more. When more than ListThreshold
// distinct keys of one root (their first path segment: "service/" for the
// default keys) are watched at once, without Handoff, they are read
// together by one recursive blocking query of their common prefix, and a
// change of any key under that prefix answers it: a listing, whose index
// the next query waits on. A caller whose key did not change keeps waiting;
// one whose own wait passes first returns the newest record seen of its
// key. Either way each call still returns when its ctx ends, and about at
// its wait (plus Consul's jitter) when nothing changes. While a candidate of
// this backend that waits in line for the key (WatchTurn) has the turn to
// act on a change, a call that sees the change returns once that
// candidate's acquisition has returned, or after turnBound (see turn.go).
func (b *Backend) Watch(ctx context.Context, resource string, after uint64, wait time.Duration) (election.Record, error) {
	if err := election.ValidateResource(resource); err != nil {
		return election.Record{}, err
	}
	key := b.Key(resource)
	if after != 0 && wait > 0 {
		rec, _, err := b.watches.watch(ctx, key, after, wait, nil)
		if err != nil || rec.Revision == after {
			return rec, err
		}
		return b.holdBack(ctx, key, rec)
	}
	return b.readNow(ctx, key)
}

// readNow is Watch for after == 0 or wait <= 0: a consistent read of key.
// It is not inlined, so that its frame is not part of Watch's, which a
// waiting elector keeps on its stack.
//
//go:noinline
func (b *Backend) readNow(ctx context.Context, key string) (election.Record, error) {
	q := b.queryOptions(ctx)
	if b.opts.Handoff {
		o, err := b.readList(ctx, key, q)
		return o.Record, err
	}
	o, err := b.read(ctx, key, q)
	if err != nil {
		return election.Record{}, err
	}
	return o.Record, nil
}

// serverWait is the wait to ask of Consul for a blocking read that may wait
// for wait under ctx. Consul answers after the wait plus a random jitter of
// up to a sixteenth of it. That is asked as is, as api.Lock does, so that
// followers send no more requests than api.Lock's do, unless the jitter could
// take more than half of the time ctx's deadline leaves beyond the wait: the
// wait asked is then shortened, so that the answer still comes in time.
// (The elector's deadline leaves RequestTimeout beyond the wait, so this
// happens only for a WaitTime longer than 8×RequestTimeout.)
func serverWait(ctx context.Context, wait time.Duration) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return wait
	}
	room := time.Until(dl)
	allowed := room / 2 // a deadline sooner than the wait: half of what is left
	if room > wait {
		allowed = wait + (room-wait)/2
	}
	if wait+wait/16 <= allowed {
		return wait
	}
	return max(allowed*16/17, time.Millisecond)
}

// read reads key with q, which may be a blocking query, and notes what it
// saw. A held key's term needs the key's offset as of the same state: unless
// this holder's term is known already, the key and its offset are read
// again, together, in one transaction.
func (b *Backend) read(ctx context.Context, key string, q *api.QueryOptions) (observation, error) {
	sent := time.Now()
	pair, meta, err := b.client.KV().Get(key, q)
	if err != nil {
		return observation{}, wrap(fmt.Sprintf("read %q", key), err)
	}
	o := observe(pair, meta.LastIndex)
	o.sent = sent
	if !o.Free() {
		term, ok := b.keys.termOf(key, o.Record)
		if !ok {
			return b.readWithOffset(ctx, key, meta.LastIndex)
		}
		o.Term = term
	}
	b.keys.note(key, o)
	return o, nil
}

// readList reads, with Options.Handoff, key and everything under it in one
// recursive read, which may be a blocking query: the key, its term offset,
// and the candidates' registrations, all as of one index. The term of a
// holder is known without another read, and a leader knows whom to hand the
// key over to.
func (b *Backend) readList(ctx context.Context, key string, q *api.QueryOptions) (observation, error) {
	sent := time.Now()
	pairs, meta, err := b.client.KV().List(key, q)
	if err != nil {
		return observation{}, wrap(fmt.Sprintf("read %q", key), err)
	}
	pair, offPair, cands := splitList(key, pairs)
	off, err := parseOffset(offPair)
	if err != nil {
		return observation{}, err
	}
	o := observeAt(pair, meta.LastIndex, off)
	o.sent = sent
	b.keys.noteOffset(key, off)
	b.keys.noteList(key, o, meta.LastIndex, cands)
	return o, nil
}

// readWithOffset reads key and its term offset in one consistent
// transaction, and notes what it saw. A transaction tells no index: a
// missing key gets the revision index, the index of an earlier read, or 1.
func (b *Backend) readWithOffset(ctx context.Context, key string, index uint64) (observation, error) {
	sent := time.Now()
	s, err := b.readBoth(ctx, key)
	if err != nil {
		return observation{}, err
	}
	off, err := parseOffset(s.offset)
	if err != nil {
		return observation{}, err
	}
	o := observeAt(s.pair, max(s.index, index), off)
	b.keys.noteOffset(key, off)
	if s.pair != nil {
		o.sent = sent // the key's ModifyIndex; a missing key's index is a guess
	}
	b.keys.note(key, o)
	return o, nil
}

// queryOptions are the options of a read that decides leadership: a
// consistent read, in the configured datacenter, with the configured token.
func (b *Backend) queryOptions(ctx context.Context) *api.QueryOptions {
	q := &api.QueryOptions{Datacenter: b.opts.Datacenter, Token: b.opts.Token, RequireConsistent: true}
	return q.WithContext(ctx)
}

// requestOptions are the options of a transaction, or of a read that need
// not be consistent, in the configured datacenter, with the configured
// token.
func (b *Backend) requestOptions(ctx context.Context) *api.QueryOptions {
	q := &api.QueryOptions{Datacenter: b.opts.Datacenter, Token: b.opts.Token}
	return q.WithContext(ctx)
}

func (b *Backend) writeOptions(ctx context.Context) *api.WriteOptions {
	w := &api.WriteOptions{Datacenter: b.opts.Datacenter, Token: b.opts.Token}
	return w.WithContext(ctx)
}

func (b *Backend) sessionName(resource string) string {
	if b.opts.SessionName != "" {
		return b.opts.SessionName
	}
	return DefaultSessionNamePrefix + resource
}

// ValidateOptions checks the election options against Consul's bounds (the
// TTL of 10 s to 24 h, and the check TTL when set), and an elector on a
// shared session against the backend's options (Options.Handoff is not
// supported there), so that election.New reports a mistake at once.
func (b *Backend) ValidateOptions(o election.Options) error {
	if o.Session != nil {
		if err := b.sharedSupported(); err != nil {
			return err
		}
	}
	return b.opts.validateTTL(o.TTL)
}
