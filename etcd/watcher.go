package etcd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// watcher runs the watch of a key range in a goroutine of its own, for a
// hub (one election's prefix) or for the group (the prefix root): it keeps
// one watch at a time, creates it anew when it must be, retries it after
// failures, and stops when no Watch call has waited for hubIdle. What is
// watched, and what is done with what the watch delivers, is its
// follower's.
type watcher struct {
	b     *Backend
	count *waits // the calls waiting on the watch

	// Guarded by b.mu.
	stop    context.CancelFunc
	done    chan struct{}      // closed when the running goroutine returns; nil if none
	rewatch context.CancelFunc // ends the current watch, which is created anew; nil if none
}

// waits counts the Watch and WatchRecord calls waiting on a watch. It is
// guarded by b.mu.
type waits struct {
	waiting int       // Watch and WatchRecord calls waiting on the watch
	idle    time.Time // when waiting last dropped to zero
}

// follower is what differs between the watch of one election's prefix and
// that of the prefix root: the range watched, and the state each maintains
// from its watch.
type follower interface {
	// span returns the range watched, from key to end, and how logs name
	// it: attr, the log attribute, and name.
	span() (attr, name, key, end string)
	// created loads the state, once the watch was created. again reports
	// that the watch must be created anew.
	created(ctx context.Context) (again bool, err error)
	// apply applies a batch of watched events to the state.
	apply(events []*clientv3.Event) error
	// forgetLocked drops the state, which the next watch loads anew. b.mu
	// is held.
	forgetLocked()
	// failed records why the watch failed, and reports whether it is to
	// be retried after RetryInterval.
	failed(err error) (retry bool)
	// stoppedLocked is called when the goroutine stops. b.mu is held.
	stoppedLocked()
}

// launchLocked starts the goroutine that runs the watch for f, unless it
// runs. b.mu is held.
func (w *watcher) launchLocked(f follower) {
	if w.done != nil {
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	w.stop, w.done = stop, done
	go w.run(ctx, done, f)
}

// halt stops the watch, if it runs, and waits for it.
func (w *watcher) halt() {
	w.b.mu.Lock()
	stop, done := w.stop, w.done
	w.b.mu.Unlock()
	if done != nil {
		stop()
		<-done
	}
}

// leaveLocked unregisters a waiting Watch call. b.mu is held.
func (c *waits) leaveLocked() {
	if c.waiting--; c.waiting == 0 {
		c.idle = time.Now()
	}
}

// idleNow reports whether no Watch call has waited for hubIdle.
func (w *watcher) idleNow() bool {
	w.b.mu.Lock()
	defer w.b.mu.Unlock()
	return w.count.waiting == 0 && time.Since(w.count.idle) >= hubIdle
}

// rewatchLocked ends the current watch, if any, which is created anew.
// b.mu is held.
func (w *watcher) rewatchLocked() {
	if w.rewatch != nil {
		w.rewatch()
	}
}

// run watches until ctx ends, the watch is idle, or f gives up on an
// error, retrying after the other failures.
func (w *watcher) run(ctx context.Context, done chan struct{}, f follower) {
	for {
		again, err := w.follow(ctx, f)
		if again {
			continue
		}
		gaveUp := false
		if err != nil && ctx.Err() == nil {
			if gaveUp = !f.failed(err); !gaveUp {
				t := time.NewTimer(w.b.retry)
				select {
				case <-ctx.Done():
				case <-t.C:
				}
				t.Stop()
				if !w.idleNow() {
					continue
				}
			}
		}
		// Stopped, idle, or given up: return unless a Watch call came
		// meanwhile.
		w.b.mu.Lock()
		if ctx.Err() == nil && w.count.waiting > 0 && !gaveUp {
			w.b.mu.Unlock()
			continue
		}
		w.stop()
		w.stop, w.done = nil, nil
		f.stoppedLocked()
		close(done)
		w.b.mu.Unlock()
		return
	}
}

// follow runs one watch. It returns again when the watch must be created
// anew (ended by rewatchLocked, or the revisions it had to replay after a
// reconnection were compacted), or an error; neither when it stops.
func (w *watcher) follow(ctx context.Context, f follower) (again bool, err error) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	w.b.mu.Lock()
	w.rewatch = cancel
	w.b.mu.Unlock()
	defer func() {
		w.b.mu.Lock()
		w.rewatch = nil
		w.b.mu.Unlock()
	}()
	attr, name, key, end := f.span()
	wch := w.b.client.Watch(wctx, key, clientv3.WithRange(end), clientv3.WithCreatedNotify())
	tick := time.NewTicker(hubIdle / 4)
	defer tick.Stop()
	for {
		var (
			wr   clientv3.WatchResponse
			open bool
		)
		select {
		case <-ctx.Done():
			return false, nil
		case <-tick.C:
			if w.idleNow() {
				return false, nil
			}
			continue
		case wr, open = <-wch:
		}
		switch {
		case !open && ctx.Err() != nil:
			return false, nil
		case !open && wctx.Err() != nil:
			return true, nil // ended by rewatchLocked
		case !open:
			return false, fmt.Errorf("etcd: watch %s: the watch ended without a reason (client closed?)", name)
		case errors.Is(wr.Err(), rpctypes.ErrCompacted):
			w.b.log.Debug("watch resumed from a compacted revision; watching afresh",
				attr, name, "compacted", wr.CompactRevision)
			w.b.mu.Lock()
			f.forgetLocked()
			w.b.mu.Unlock()
			return true, nil
		case wr.Err() != nil:
			return false, watchError("watch "+name, wr)
		case wr.Created:
			if again, err := f.created(ctx); again || err != nil {
				return again, err
			}
			continue
		}
		if err := f.apply(wr.Events); err != nil {
			return false, err
		}
	}
}
