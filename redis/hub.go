package redis

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/internal/turn"
)

const (
	// healthInterval is how long the subscription may stay silent before it
	// is pinged; a ping unanswered for as long replaces the connection.
	healthInterval = 30 * time.Second
	// receiveSlice bounds every request of the receive loop, connecting
	// included: go-redis honours a context's deadline but not its
	// cancellation, so this is how long close may wait for the loop.
	receiveSlice = time.Second
	// maxBackoff bounds the pause between reconnection attempts.
	maxBackoff = 2 * time.Second
	// refusalRetry is how long a refused release-notice channel is left
	// alone before a Watch asks for it again, in case the user's rights
	// were extended.
	refusalRetry = time.Minute
)

// hub is a backend's one pub/sub connection. It subscribes, per watched
// resource, to the release-notice channel and to the leader key's
// keyspace-notification channel, and wakes the Watch calls of a resource
// whenever something may have changed: a notice, a (re)subscription, a lost
// connection. A Watch always reads the record after waking, so a spurious
// wake-up costs one read and a lost notice at most a timer's delay. The
// same wake-ups have the record read for the resource's WatchRecord calls,
// by the hub's readers (recordwatch.go).
type hub struct {
	client goredis.UniversalClient
	log    *slog.Logger
	ctx    context.Context // ends at close
	cancel context.CancelFunc
	done   chan struct{} // closed when the receive loop returned

	sendMu sync.Mutex // orders SUBSCRIBE writes with pending

	mu      sync.Mutex
	ps      *goredis.PubSub // nil until the first subscription
	closed  bool
	topics  map[string]*topic // by resource
	byChan  map[string]*topic // by channel
	pending []string          // channels whose SUBSCRIBE awaits its reply, in sending order

	// The reads of the records that WatchRecord calls watch (see
	// recordwatch.go).
	read       func(ctx context.Context, t *topic, changed chan struct{}) (election.Record, error)
	maxReaders int            // bounds readers
	queue      []*topic       // topics whose record watches await a read, in order
	readers    int            // reader goroutines running; guarded by mu
	readersWG  sync.WaitGroup // the reader goroutines, which close waits for
}

// topic is the subscription state of one resource.
type topic struct {
	resource string
	events   string
	keyspace string

	// Guarded by hub.mu.
	active   bool            // the events channel is subscribed
	refused  time.Time       // when the server refused the events channel (ACL); zero if it did not
	noKeys   bool            // the server refused the keyspace channel (ACL)
	warned   bool            // the refusal of the events channel was logged as a warning
	inflight bool            // a SUBSCRIBE was sent and awaits its reply
	ready    chan struct{}   // closed once active or refused
	wake     chan struct{}   // closed, and replaced, on every possible change
	line     turn.Line       // the candidates waiting through WatchTurn
	held     []chan struct{} // wake channels held back while a turn is on
	last     lastRead        // the latest read of the record

	hub     *hub
	records []*recordWatch // the WatchRecord calls of the resource not ended
	queued  bool           // the record watches await a read (in hub.queue unless reading)
	reading bool           // a reader reads the record for the record watches
}

// lastRead is a read of a resource's record, and the wake channel that was
// current when it was sent: while that channel is still current, no notice
// arrived since.
type lastRead struct {
	rec  election.Record
	pttl time.Duration
	at   time.Time
	wake chan struct{}
}

func newHub(client goredis.UniversalClient, log *slog.Logger) *hub {
	ctx, cancel := context.WithCancel(context.Background())
	return &hub{
		client: client,
		log:    log,
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
		topics: map[string]*topic{},
		byChan: map[string]*topic{},
	}
}

// topic returns the subscription state of resource, subscribing on first
// use (a request bounded by budget), and waits up to limit for the
// subscription to become active. It returns nil once the hub is closed.
func (h *hub) topic(ctx context.Context, resource string, k keys, budget, limit time.Duration) *topic {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	t := h.topicLocked(resource, k)
	send := !t.active && !t.inflight && (t.refused.IsZero() || time.Since(t.refused) > refusalRetry)
	if send {
		t.inflight = true
	}
	ps, ready := h.ps, t.ready
	h.mu.Unlock()

	if send {
		sctx, cancel := context.WithTimeout(ctx, budget)
		h.subscribe(sctx, ps, t)
		cancel()
	}
	select {
	case <-ready:
	default:
		timer := time.NewTimer(limit)
		defer timer.Stop()
		select {
		case <-ready:
		case <-timer.C:
		case <-ctx.Done():
		}
	}
	return t
}

// topicLocked returns the subscription state of resource, made on first
// use, and starts the subscription's connection and receive loop on the
// first use of the hub. The caller holds h.mu, and the hub is not closed.
func (h *hub) topicLocked(resource string, k keys) *topic {
	t := h.topics[resource]
	if t == nil {
		t = &topic{resource: resource, events: k.events, keyspace: k.keyspace, ready: make(chan struct{}), wake: make(chan struct{}), hub: h}
		h.topics[resource] = t
		h.byChan[k.events] = t
		h.byChan[k.keyspace] = t
	}
	if h.ps == nil {
		h.ps = h.client.Subscribe(h.ctx)
		go h.loop()
	}
	return t
}

// subscribe sends SUBSCRIBE for a topic's two channels, one command each, so
// that a refusal of one (an ACL without the keyspace channel) spares the
// other.
func (h *hub) subscribe(ctx context.Context, ps *goredis.PubSub, t *topic) {
	h.sendMu.Lock()
	defer h.sendMu.Unlock()
	chans := []string{t.events, t.keyspace}
	h.mu.Lock()
	if t.noKeys {
		chans = chans[:1]
	}
	h.mu.Unlock()
	for _, ch := range chans {
		h.mu.Lock()
		h.pending = append(h.pending, ch)
		h.mu.Unlock()
		if err := ps.Subscribe(ctx, ch); err != nil {
			h.log.Debug("subscribe failed; will retry", "channel", ch, "err", err)
			h.mu.Lock()
			h.pending = remove(h.pending, ch)
			t.inflight = false
			if len(t.records) > 0 {
				h.queueLocked(t) // they waited for the subscription to read
			}
			h.mu.Unlock()
			return
		}
	}
}

// changed returns a channel closed at the next possible change of t's
// resource; nil (never ready) without a topic.
func (h *hub) changed(t *topic) chan struct{} {
	if t == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return t.wake
}

// remember records a read sent while wake was t's current wake channel.
func (h *hub) remember(t *topic, wake chan struct{}, rec election.Record, pttl time.Duration, at time.Time) {
	if t == nil {
		return
	}
	h.mu.Lock()
	t.last = lastRead{rec: rec, pttl: pttl, at: at, wake: wake}
	h.mu.Unlock()
}

// sinceNotice returns the latest read of t's record if it was sent while
// wake, still t's current wake channel, was current: no notice arrived
// since it was sent, so it shows what a read now would, but for an expiry,
// which its remaining TTL accounts for. The watchers that one notice wakes
// take turns this way: the first reads, the others reuse its read. It
// reports false when t is not subscribed, as notices then do not arrive.
func (h *hub) sinceNotice(t *topic, wake chan struct{}) (election.Record, time.Duration, bool) {
	if t == nil {
		return election.Record{}, 0, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	last := t.last
	if !t.active || last.wake != wake || wake != t.wake || last.at.IsZero() {
		return election.Record{}, 0, false
	}
	pttl := last.pttl
	if pttl > 0 {
		age := time.Since(last.at)
		if pttl <= age {
			return election.Record{}, 0, false
		}
		pttl -= age
	}
	rec := last.rec
	rec.Value = bytes.Clone(rec.Value)
	return rec, pttl, true
}

// recall returns the latest read of t's record if it shows revision after,
// was sent less than maxAge ago, and no notice arrived since: a Watch that
// follows another at once need not read again what the previous one read as
// it returned. A record held through a live lease of the backend (lasting)
// is recalled at any age: it changes only with a notice, a wake-up by the
// lease's renewal, or the loss of the lease.
func (h *hub) recall(t *topic, after uint64, maxAge time.Duration, lasting func(session string) bool) (election.Record, time.Duration, bool) {
	if t == nil {
		return election.Record{}, 0, false
	}
	h.mu.Lock()
	last := t.last
	ok := t.active && last.wake == t.wake && last.rec.Revision == after && !last.rec.Free()
	h.mu.Unlock()
	if ok && lasting(last.rec.Session) {
		return last.rec, 0, true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	last = t.last
	age := time.Since(last.at)
	if !t.active || last.wake != t.wake || last.rec.Revision != after || age >= maxAge || (last.pttl > 0 && last.pttl <= age) {
		return election.Record{}, 0, false
	}
	pttl := last.pttl
	if pttl > 0 {
		pttl -= age
	}
	return last.rec, pttl, true
}

// close ends the subscription and every WatchRecord call, and waits for
// the receive loop and the readers of records.
func (h *hub) close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	ps := h.ps
	var ended []*recordWatch
	for _, t := range h.topics {
		ended = append(ended, t.records...)
		t.records = nil
		t.wakeUp()
	}
	h.queue = nil
	h.mu.Unlock()
	for _, w := range ended {
		w.deliver(election.Record{}, errClosed())
	}
	h.cancel()
	if ps != nil {
		_ = ps.Close()
		<-h.done
	}
	h.readersWG.Wait()
}

// poke wakes the Watch calls of resource, if it is watched, to read its
// record again: something other than a notice told of a change.
func (h *hub) poke(resource string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t := h.topics[resource]; t != nil && !h.closed {
		t.wakeUp()
	}
}

func (h *hub) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// wakeUp wakes every Watch of t's resource, and its WatchRecord calls,
// and ends the turn if one is on. The caller holds hub.mu.
func (t *topic) wakeUp() {
	if len(t.records) > 0 {
		t.hub.queueLocked(t)
	}
	t.line.End()
	for _, c := range t.held {
		close(c)
	}
	t.held = nil
	close(t.wake)
	t.wake = make(chan struct{})
}

func closeOnce(c chan struct{}) {
	select {
	case <-c:
	default:
		close(c)
	}
}

func remove(list []string, s string) []string {
	for i, v := range list {
		if v == s {
			return append(list[:i], list[i+1:]...)
		}
	}
	return list
}

// sleepCtx waits for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
