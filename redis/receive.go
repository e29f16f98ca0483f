package redis

import (
	"context"
	"errors"
	"net"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// loop receives subscription replies and notices until the hub is closed.
func (h *hub) loop() {
	defer close(h.done)
	var backoff time.Duration
	pinged, heard := false, time.Now()
	for {
		h.mu.Lock()
		ps, closed := h.ps, h.closed
		h.mu.Unlock()
		if closed {
			return
		}
		rctx, cancel := context.WithTimeout(h.ctx, receiveSlice)
		msg, err := ps.ReceiveTimeout(rctx, receiveSlice)
		cancel()
		if h.isClosed() {
			return
		}
		if err != nil {
			var nerr net.Error
			switch {
			case errors.As(err, &nerr) && nerr.Timeout():
				if time.Since(heard) < healthInterval {
					break
				}
				if pinged {
					h.log.Warn("release-notice subscription unresponsive; reconnecting")
					h.replace(ps)
					pinged, heard = false, time.Now()
					break
				}
				pctx, cancel := context.WithTimeout(h.ctx, receiveSlice)
				if ps.Ping(pctx) == nil {
					pinged, heard = true, time.Now()
				}
				cancel()
			case goredis.IsPermissionError(err):
				h.refused(ps, err)
			default:
				h.lost(err)
				backoff = min(2*backoff+50*time.Millisecond, maxBackoff)
				sleepCtx(h.ctx, backoff)
			}
			continue
		}
		backoff, pinged, heard = 0, false, time.Now()
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				h.confirmed(m.Channel)
			}
		case *goredis.Message:
			h.notice(m.Channel, m.Payload)
		}
	}
}

// confirmed records an active subscription and wakes its resource: after a
// reconnection, notices sent while it was down were lost.
func (h *hub) confirmed(ch string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pending = remove(h.pending, ch)
	t := h.byChan[ch]
	if t == nil {
		return
	}
	if ch == t.events {
		t.inflight = false
		t.refused = time.Time{}
		if !t.active {
			t.active = true
			closeOnce(t.ready)
		}
	}
	t.wakeUp()
}

// notice wakes the resource a message is about. Keyspace events for a TTL
// change ("expire", sent on every renewal when enabled) change nothing.
func (h *hub) notice(ch, payload string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.byChan[ch]
	if t == nil || (ch == t.keyspace && payload == "expire") {
		return
	}
	// A leader's watch of its record is not held back by a turn, which
	// only orders the candidates that follow.
	if len(t.records) > 0 {
		h.queueLocked(t)
	}
	if h.giveTurn(t, ch, payload) {
		return
	}
	t.wakeUp()
}

// refused handles an error reply on the subscription: the server refused the
// oldest pending SUBSCRIBE, typically for lack of channel rights. The
// channel is dropped so that reconnections do not ask for it again; a
// resource without its events channel is watched by timers alone.
func (h *hub) refused(ps *goredis.PubSub, err error) {
	h.mu.Lock()
	if len(h.pending) == 0 {
		h.mu.Unlock()
		h.log.Warn("release-notice subscription error", "err", err)
		return
	}
	ch := h.pending[0]
	h.pending = h.pending[1:]
	t := h.byChan[ch]
	warn := false
	switch {
	case t != nil && ch == t.events:
		t.inflight = false
		t.refused = time.Now()
		warn, t.warned = !t.warned, true
		closeOnce(t.ready)
		if len(t.records) > 0 {
			h.queueLocked(t) // they waited for the subscription to read
		}
	case t != nil:
		t.noKeys = true
	}
	h.mu.Unlock()
	if warn {
		h.log.Warn("the server refused the release-notice channel; followers will learn of releases only by polling (grant the channel in the user's ACL)",
			"resource", t.resource, "channel", ch, "err", err)
	} else {
		h.log.Debug("channel refused", "channel", ch, "err", err)
	}
	ctx, cancel := context.WithTimeout(h.ctx, receiveSlice)
	defer cancel()
	_ = ps.Unsubscribe(ctx, ch)
}

// lost handles a broken connection: go-redis reconnects and resubscribes on
// the next receive; meanwhile every resource is woken, since notices may
// have been lost.
func (h *hub) lost(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log.Debug("release-notice subscription lost; reconnecting", "err", err)
	h.pending = nil
	for _, t := range h.topics {
		t.inflight = false
		t.wakeUp()
	}
}

// replace swaps an unresponsive connection for a new one subscribed to
// every channel the old one had.
func (h *hub) replace(old *goredis.PubSub) {
	h.mu.Lock()
	if h.closed || h.ps != old {
		h.mu.Unlock()
		return
	}
	var chans []string
	for _, t := range h.topics {
		if t.active {
			chans = append(chans, t.events)
		}
		if t.active && !t.noKeys {
			chans = append(chans, t.keyspace)
		}
		t.inflight = false
		t.wakeUp()
	}
	h.ps = h.client.Subscribe(h.ctx)
	h.pending = nil
	ps := h.ps
	h.mu.Unlock()
	_ = old.Close()
	if len(chans) > 0 {
		ctx, cancel := context.WithTimeout(h.ctx, receiveSlice)
		defer cancel()
		if err := ps.Subscribe(ctx, chans...); err != nil {
			h.log.Debug("resubscribe failed; will retry", "err", err)
		}
	}
}
