package election

import (
	"context"
	"log/slog"
	"os"
)

// DefaultLogger returns the logger of an elector whose Options.Logger is
// nil: it passes records of slog.LevelWarn and above to the handler of
// slog.Default() and drops the rest, so that warnings and errors are
// visible without any configuration.
//
// slog.Default() is looked up at each record, not when the logger is
// created: a program that calls slog.SetDefault after creating its electors
// (after reading its configuration, say) gets their warnings in its own
// handler. Should the default logger's handler be this logger's own (as
// after slog.SetDefault(DefaultLogger())), records go to standard error as
// text instead, never in a loop.
func DefaultLogger() *slog.Logger { return slog.New(&warnHandler{}) }

// warnHandler forwards records of slog.LevelWarn and above to the handler of
// slog.Default() at the time of each record, applying the attributes and
// groups it was given, in order.
type warnHandler struct {
	ops []handlerOp
}

// handlerOp is one WithAttrs (attrs) or WithGroup (group) call.
type handlerOp struct {
	attrs []slog.Attr
	group string
}

var _ slog.Handler = (*warnHandler)(nil)

// target returns the handler records go to now.
func (h *warnHandler) target() slog.Handler {
	t := slog.Default().Handler()
	if _, ours := t.(*warnHandler); ours {
		return slog.NewTextHandler(os.Stderr, nil)
	}
	return t
}

func (h *warnHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= slog.LevelWarn && h.target().Enabled(ctx, level)
}

func (h *warnHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return nil
	}
	t := h.target()
	for _, op := range h.ops {
		if op.attrs != nil {
			t = t.WithAttrs(op.attrs)
		} else {
			t = t.WithGroup(op.group)
		}
	}
	return t.Handle(ctx, r)
}

func (h *warnHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	return h.with(handlerOp{attrs: attrs})
}

func (h *warnHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.with(handlerOp{group: name})
}

func (h *warnHandler) with(op handlerOp) *warnHandler {
	ops := make([]handlerOp, len(h.ops), len(h.ops)+1)
	copy(ops, h.ops)
	return &warnHandler{ops: append(ops, op)}
}
