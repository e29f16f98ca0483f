package election

import (
	"context"
	"time"
)

// watchTurn is watch, by the candidate of claim s: through its WatchTurn
// when the backend wakes its candidates in turn (TurnWatcher).
func (e *engine) watchTurn(ctx context.Context, s Claim, after uint64, wait time.Duration) (Record, error) {
	w, ok := s.(TurnWatcher)
	if !ok {
		return e.watch(ctx, after, wait)
	}
	rctx, cancel := context.WithTimeout(ctx, wait+e.opts.RequestTimeout)
	defer cancel()
	return w.WatchTurn(rctx, after, wait)
}
