//go:build go1.25

package election_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// closingBackend is a memory connection that counts its Close calls, as a
// backend holding connections (Consul's HTTP client, etcd's gRPC client)
// must be closed.
type closingBackend struct {
	*memory.Conn
	mu     sync.Mutex
	closes int
}

func (c *closingBackend) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closes++
	return nil
}

func (c *closingBackend) closed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closes
}

// stubbornLeader is a handler whose first leader call ignores its context
// until unblock is closed; it reports the call's start on leading.
func stubbornLeader(leading chan<- struct{}, unblock <-chan struct{}) election.Handler {
	return func(ctx context.Context, l election.Leadership) error {
		if l.IsLeader {
			select {
			case leading <- struct{}{}:
			default:
			}
			<-unblock
		}
		return nil
	}
}

func newStubborn(t *testing.T) (*election.Elector, *closingBackend, chan struct{}) {
	t.Helper()
	b := &closingBackend{Conn: memory.NewStore().Connect("a")}
	el, err := election.NewOwning(b, election.Options{Resource: "r", ID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	leading, unblock := make(chan struct{}, 1), make(chan struct{})
	if err := el.Start(context.Background(), stubbornLeader(leading, unblock)); err != nil {
		t.Fatal(err)
	}
	<-leading
	return el, b, unblock
}

// TestCloseAfterTimeoutFinishes: a Close that gave up on a slow handler
// leaves the job to the campaign: once the handler returns, the backend is
// closed although nobody calls Close again.
func TestCloseAfterTimeoutFinishes(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		el, b, unblock := newStubborn(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := el.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close with a stuck handler = %v, want DeadlineExceeded", err)
		}
		if n := b.closed(); n != 0 {
			t.Fatalf("backend closed %d times while the handler still runs", n)
		}
		close(unblock)
		synctest.Wait()
		if n := b.closed(); n != 1 {
			t.Errorf("backend closed %d times after the handler returned, want 1", n)
		}
	})
}

// TestCloseAgainAfterTimeoutWaits: a second Close, after one that gave up,
// waits again for the campaign to end and closes the backend.
func TestCloseAgainAfterTimeoutWaits(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		el, b, unblock := newStubborn(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := el.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close with a stuck handler = %v, want DeadlineExceeded", err)
		}
		second := make(chan error, 1)
		go func() { second <- el.Close(context.Background()) }()
		time.Sleep(time.Minute)
		synctest.Wait()
		select {
		case err := <-second:
			t.Fatalf("second Close returned %v while the handler still runs", err)
		default:
		}
		close(unblock)
		if err := <-second; err != nil {
			t.Errorf("second Close = %v", err)
		}
		if n := b.closed(); n != 1 {
			t.Errorf("backend closed %d times when the second Close returned, want 1", n)
		}
		if err := el.Close(context.Background()); err != nil {
			t.Errorf("third Close = %v", err)
		}
		if n := b.closed(); n != 1 {
			t.Errorf("backend closed %d times after a third Close, want 1", n)
		}
	})
}

// TestConcurrentClosesBothWait: of two concurrent Close calls, neither
// returns while the handler runs; both return once the elector is gone.
func TestConcurrentClosesBothWait(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		el, b, unblock := newStubborn(t)
		results := make(chan error, 2)
		for range 2 {
			go func() { results <- el.Close(context.Background()) }()
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := len(results); n != 0 {
			t.Fatalf("%d Close calls returned while the handler still runs", n)
		}
		close(unblock)
		for range 2 {
			if err := <-results; err != nil {
				t.Errorf("Close = %v", err)
			}
			if n := b.closed(); n != 1 {
				t.Errorf("a Close returned with the backend closed %d times, want 1", n)
			}
		}
	})
}

// TestCloseFromHandlerFails: Close called from within the handler, which it
// would wait for, fails at once with ErrCloseFromHandler, on leader and
// follower calls, with the handler's context or another; the elector then
// closes normally, and Release from the handler still works.
func TestCloseFromHandlerFails(t *testing.T) {
	cases := []struct {
		name   string
		leader bool
		call   func(hctx context.Context, el *election.Elector) error
	}{
		{"leader/background", true, func(_ context.Context, el *election.Elector) error { return el.Close(context.Background()) }},
		{"leader/handler-ctx", true, func(ctx context.Context, el *election.Elector) error { return el.Close(ctx) }},
		{"leader/awaited-goroutine", true, func(ctx context.Context, el *election.Elector) error {
			ch := make(chan error)
			go func() { ch <- el.Close(ctx) }()
			return <-ch
		}},
		{"follower/background", false, func(_ context.Context, el *election.Elector) error { return el.Close(context.Background()) }},
		{"follower/handler-ctx", false, func(ctx context.Context, el *election.Elector) error { return el.Close(ctx) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			synctest.Test(t, func(t *testing.T) {
				store := memory.NewStore()
				if !tc.leader {
					startElector(t, store, election.Options{Resource: "r", ID: "other"}, blockingLeader(make(chan election.Leadership, 10), nil))
					synctest.Wait()
				}
				b := &closingBackend{Conn: store.Connect("a")}
				el, err := election.NewOwning(b, election.Options{Resource: "r", ID: "a"})
				if err != nil {
					t.Fatal(err)
				}
				got := make(chan error, 1)
				var once sync.Once
				err = el.Start(context.Background(), func(ctx context.Context, l election.Leadership) error {
					if l.IsLeader == tc.leader && (l.IsLeader || l.LeaderID == "other") {
						once.Do(func() {
							got <- tc.call(ctx, el)
							if tc.leader {
								if err := el.Release(ctx); err != nil {
									t.Errorf("Release from the handler after the failed Close: %v", err)
								}
							}
						})
					}
					if l.IsLeader {
						<-ctx.Done()
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if err := <-got; !errors.Is(err, election.ErrCloseFromHandler) {
					t.Errorf("Close from the handler = %v, want ErrCloseFromHandler", err)
				}
				if tc.leader {
					synctest.Wait()
					if id, _ := store.Leader("r"); id != "" {
						t.Errorf("Release from the handler did not release: %q leads", id)
					}
				}
				if n := b.closed(); n != 0 {
					t.Errorf("the failed Close closed the backend (%d times)", n)
				}
				if err := el.Close(context.Background()); err != nil {
					t.Errorf("Close from outside afterwards = %v", err)
				}
				if n := b.closed(); n != 1 {
					t.Errorf("backend closed %d times, want 1", n)
				}
			})
		})
	}
}

// TestCloseUnstarted: an elector never started closes the backend it owns
// at once.
func TestCloseUnstarted(t *testing.T) {
	defer goleak.VerifyNone(t)
	b := &closingBackend{Conn: memory.NewStore().Connect("a")}
	el, err := election.NewOwning(b, election.Options{Resource: "r", ID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := el.Close(context.Background()); err != nil {
			t.Errorf("Close = %v", err)
		}
	}
	if n := b.closed(); n != 1 {
		t.Errorf("backend closed %d times, want 1", n)
	}
	if err := el.Start(context.Background(), func(context.Context, election.Leadership) error { return nil }); !errors.Is(err, election.ErrClosed) {
		t.Errorf("Start after Close = %v, want ErrClosed", err)
	}
}

// TestNewLeavesBackendOpen: an elector made by New leaves its backend open,
// for the other electors on it; NewOwning refuses a shared session.
func TestNewLeavesBackendOpen(t *testing.T) {
	defer goleak.VerifyNone(t)
	b := &closingBackend{Conn: memory.NewStore().Connect("a")}
	for _, id := range []string{"a", "b"} {
		el, err := election.New(b, election.Options{Resource: "r", ID: id})
		if err != nil {
			t.Fatal(err)
		}
		if err := el.Start(context.Background(), func(context.Context, election.Leadership) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if err := el.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.closed(); n != 0 {
		t.Errorf("electors made by New closed their backend %d times, want 0", n)
	}
	sess, err := election.NewSharedSession(b, election.SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := election.NewOwning(b, election.Options{Resource: "r", Session: sess}); !errors.Is(err, election.ErrInvalidOptions) {
		t.Errorf("NewOwning on a shared session = %v, want ErrInvalidOptions", err)
	}
}
