package election

import (
	"bytes"
	"context"
	"runtime"
	"strconv"
)

// Handler calls run on two goroutines of an elector: a leader call's own
// (one per term) and the dispatcher's (follower calls). Close, which waits for both,
// would wait forever if called on either, so it recognises them: by the
// goroutine it runs on, and by a value in every context the engine hands a
// handler (which covers a goroutine the handler waits for, when it passes
// its context on).

// handlerCtxKey keys the engine in the contexts of its handler calls.
type handlerCtxKey struct{}

// fromHandler reports whether a Close with ctx, on the calling goroutine,
// was made from within one of e's handler calls.
func (e *engine) fromHandler(ctx context.Context) bool {
	if owner, _ := ctx.Value(handlerCtxKey{}).(*engine); owner == e {
		return true
	}
	id := goroutineID()
	if id == 0 {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return id == e.runGoroutine || id == e.dispatchGoroutine
}

// goroutineID returns the calling goroutine's ID, as the runtime prints it
// at the head of a stack trace ("goroutine 42 [running]:"), or 0 if it
// cannot be read.
func goroutineID() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b, ok := bytes.CutPrefix(b, []byte("goroutine "))
	if !ok {
		return 0
	}
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0
	}
	return id
}
