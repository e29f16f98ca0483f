package election_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// captureHandler records the records it handles, with their attributes.
type captureHandler struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
	h   slog.Handler
}

func newCapture() *captureHandler {
	c := &captureHandler{mu: &sync.Mutex{}, buf: &bytes.Buffer{}}
	c.h = slog.NewTextHandler(lockedWriter{c}, &slog.HandlerOptions{Level: slog.LevelDebug})
	return c
}

type lockedWriter struct{ c *captureHandler }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	return w.c.buf.Write(p)
}

func (c *captureHandler) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// setDefault makes h the handler of slog.Default() until t ends.
func setDefault(t *testing.T, h slog.Handler) {
	old := slog.Default()
	slog.SetDefault(slog.New(h))
	t.Cleanup(func() { slog.SetDefault(old) })
}

func TestDefaultLoggerForwardsWarnings(t *testing.T) {
	log := election.DefaultLogger().With("a", 1).WithGroup("g").With("b", 2)
	c := newCapture()
	setDefault(t, c.h) // after the logger was made: it is looked up per record
	log.Info("quiet")
	log.Debug("quieter")
	log.Warn("loud", "k", "v")
	log.Error("louder")
	out := c.String()
	if strings.Contains(out, "quiet") {
		t.Errorf("records below Warn were forwarded:\n%s", out)
	}
	for _, want := range []string{"level=WARN msg=loud a=1 g.b=2 g.k=v", "level=ERROR msg=louder a=1 g.b=2"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if log.Enabled(context.Background(), slog.LevelInfo) || !log.Enabled(context.Background(), slog.LevelWarn) {
		t.Error("Enabled does not follow the Warn floor")
	}

	// A default handler that filters more strictly is obeyed.
	setDefault(t, slog.NewTextHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelError}))
	if log.Enabled(context.Background(), slog.LevelWarn) {
		t.Error("Enabled(Warn) is true though the default handler drops Warn")
	}

	// The default logger set to the default logger itself does not loop.
	setDefault(t, election.DefaultLogger().Handler())
	log.Warn("no loop")
}

// An elector without a Logger reports a panicking handler through
// slog.Default(), and keeps its Info records to itself.
func TestNilLoggerWarnsThroughSlogDefault(t *testing.T) {
	c := newCapture()
	el, err := memory.New(memory.NewStore(), election.Options{Resource: "r", ID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	setDefault(t, c.h) // after New
	ctx := context.Background()
	defer el.Close(ctx)
	panicked := make(chan struct{})
	var once sync.Once
	if err := el.Start(ctx, func(ctx context.Context, l election.Leadership) error {
		if l.IsLeader {
			once.Do(func() { close(panicked) })
			panic("boom")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	<-panicked
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(c.String(), "handler panicked") {
		if time.Now().After(deadline) {
			t.Fatalf("no error record in slog.Default(); got:\n%s", c.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if out := c.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "resource=r") || strings.Contains(out, "became leader") {
		t.Errorf("records:\n%s\nwant the ERROR with the elector's attributes, and no INFO", out)
	}
}
