package backends

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// closingBackend is a memory connection that closes like a backend owning
// a client: after Close every request fails, as an etcd backend's does
// once its client is closed.
type closingBackend struct {
	*memory.Conn
	closed *atomic.Int32
}

var errClientClosed = errors.New("client closed")

func (b *closingBackend) Close() error {
	b.closed.Add(1)
	return nil
}

func (b *closingBackend) NewSession(ctx context.Context, p election.SessionParams) (election.Session, error) {
	if b.closed.Load() > 0 {
		return nil, errClientClosed
	}
	return b.Conn.NewSession(ctx, p)
}

func (b *closingBackend) Watch(ctx context.Context, resource string, after uint64, wait time.Duration) (election.Record, error) {
	if b.closed.Load() > 0 {
		return election.Record{}, errClientClosed
	}
	return b.Conn.Watch(ctx, resource, after, wait)
}

// closingOpener returns an Opener whose fake:// URLs open closingBackends
// on one memory store; closed counts their Close calls.
func closingOpener() (o *Opener, store *memory.Store, closed *atomic.Int32) {
	store, closed = memory.NewStore(), new(atomic.Int32)
	o = &Opener{schemes: map[string]openFunc{"fake": func(_ context.Context, _ *Opener, u *url.URL, _ election.Options) (election.Backend, error) {
		return &closingBackend{Conn: store.Connect(u.Host), closed: closed}, nil
	}}}
	return o, store, closed
}

func created(o *Opener) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.created
}

// 1,000 electors of one store, opened at once, share one backend, whatever
// their election parameters; parameter order and the case of the scheme
// and host do not make another store, the address or the token do. No
// server is needed: a Consul backend connects on its first request.
func TestOpenerSharesOneBackendPerStore(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx := context.Background()
	var o Opener
	var wg sync.WaitGroup
	els := make([]*election.Elector, 1000)
	errs := make([]error, len(els))
	for i := range els {
		wg.Go(func() {
			u := fmt.Sprintf("consul://127.0.0.1:1?token=a&datacenter=dc1&id=n%d&ttl=%ds", i, 10+i%5)
			els[i], errs[i] = o.Open(ctx, u, election.Options{Resource: fmt.Sprint("r", i)})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
	}
	if n := created(&o); n != 1 {
		t.Errorf("1,000 Opens of one store created %d backends, want 1", n)
	}
	same := []string{"CONSUL://127.0.0.1:1?datacenter=dc1&token=a", "consul://127.0.0.1:1/?token=a&datacenter=dc1&resource=x"}
	other := []string{"consul://127.0.0.1:1?token=b&datacenter=dc1", "consul://127.0.0.2:1?token=a&datacenter=dc1", "consul://127.0.0.1:1?token=a&datacenter=dc2"}
	for i, u := range append(same, other...) {
		el, err := o.Open(ctx, u, election.Options{Resource: "other"})
		if err != nil {
			t.Fatalf("Open(%s): %v", u, err)
		}
		els = append(els, el)
		want := 1 + max(0, i+1-len(same))
		if n := created(&o); n != want {
			t.Errorf("after Open(%s): %d backends, want %d", u, n, want)
		}
	}
	// The key parameter names the key of one resource: another resource
	// must not get a backend that maps it.
	for _, r := range []string{"k1", "k1", "k2"} {
		el, err := o.Open(ctx, "consul://127.0.0.1:1?token=a&datacenter=dc1&key=jobs/leader", election.Options{Resource: r})
		if err != nil {
			t.Fatal(err)
		}
		els = append(els, el)
	}
	if n := created(&o); n != 6 {
		t.Errorf("key= for two resources: %d backends in all, want 6", n)
	}
	for _, u := range []string{"consul://localhost:1", "consul://LocalHost:1/"} {
		el, err := o.Open(ctx, u, election.Options{Resource: "r"})
		if err != nil {
			t.Fatal(err)
		}
		els = append(els, el)
	}
	if n := created(&o); n != 7 {
		t.Errorf("a host in two cases: %d backends in all, want 7", n)
	}
	for _, el := range els {
		if err := el.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// The package-level Open keeps its behaviour: each elector owns a backend
// of its own, and closes it in Close.
func TestPackageOpenOwnsItsBackend(t *testing.T) {
	ctx := context.Background()
	o, _, closed := closingOpener()
	o.private = true
	var opened atomic.Int32
	open := o.schemes["fake"]
	o.schemes["fake"] = func(ctx context.Context, o *Opener, u *url.URL, opts election.Options) (election.Backend, error) {
		opened.Add(1)
		return open(ctx, o, u, opts)
	}
	for i := range 3 {
		el, err := o.Open(ctx, fmt.Sprint("fake://s?id=n", i), election.Options{Resource: "r"})
		if err != nil {
			t.Fatal(err)
		}
		if err := el.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if opened.Load() != 3 || closed.Load() != 3 {
		t.Errorf("3 Opens of the package-level kind opened %d backends and their electors closed %d; want 3 and 3", opened.Load(), closed.Load())
	}
	if len(o.backends) != 0 || len(o.owned) != 0 {
		t.Errorf("a private Opener kept %d backends", len(o.owned))
	}
}

// An elector that closes leaves the shared backend open for the others;
// Opener.Close closes it, once, and later Opens fail.
func TestElectorCloseLeavesSharedBackend(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx := context.Background()
	o, store, closed := closingOpener()
	leading := make(chan string, 4)
	start := func(id string) *election.Elector {
		el, err := o.Open(ctx, "fake://s?id="+id+"&ttl=2s", election.Options{Resource: "r", RetryInterval: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if err := el.Start(ctx, func(ctx context.Context, l election.Leadership) error {
			if l.IsLeader {
				leading <- id
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return el
	}
	a, b := start("a"), start("b")
	first := <-leading
	for _, el := range []*election.Elector{a, b} {
		if err := el.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := closed.Load(); n != 0 {
		t.Fatalf("closing electors closed the shared backend %d times", n)
	}
	c := start("c")
	// b may have led between a's Close and its own: skip to c.
	for led := false; !led; {
		select {
		case id := <-leading:
			led = id == "c"
		case <-time.After(5 * time.Second):
			_ = c.Close(ctx)
			t.Fatalf("an elector opened after others (%s first) closed never led: the shared backend was closed", first)
		}
	}
	if id, _ := store.Leader("r"); id != "c" {
		t.Fatalf("store leader %q, want c", id)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := created(o); n != 1 {
		t.Errorf("%d backends, want 1", n)
	}
	if err := o.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := closed.Load(); n != 1 {
		t.Errorf("Opener.Close closed the backend %d times, want 1", n)
	}
	if err := o.Close(ctx); err != nil || closed.Load() != 1 {
		t.Errorf("a second Close: %v, %d closes", err, closed.Load())
	}
	if _, err := o.Open(ctx, "fake://s?id=d", election.Options{Resource: "r"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Open after Close: %v, want ErrClosed", err)
	}
	if _, err := o.Session(ctx, "fake://s", election.SessionOptions{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Session after Close: %v, want ErrClosed", err)
	}
}

// A backend whose creation fails is not kept: the next Open tries again.
func TestSharedBackendFailureNotCached(t *testing.T) {
	var o Opener
	fail := true
	o.schemes = map[string]openFunc{"flaky": func(context.Context, *Opener, *url.URL, election.Options) (election.Backend, error) {
		if fail {
			return nil, errors.New("unreachable")
		}
		return memory.NewStore().Connect("x"), nil
	}}
	if _, err := o.Open(context.Background(), "flaky://s?id=a", election.Options{Resource: "r"}); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("Open = %v, want the creation's error", err)
	}
	fail = false
	el, err := o.Open(context.Background(), "flaky://s?id=a", election.Options{Resource: "r"})
	if err != nil {
		t.Fatalf("Open after a failed creation: %v", err)
	}
	_ = el.Close(context.Background())
	_ = o.Close(context.Background())
}

// Opens that come while the store's backend is being created (an etcd
// client dialling) wait for it rather than create their own.
func TestConcurrentOpensCreateOneBackend(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx := context.Background()
	store := memory.NewStore()
	var opens atomic.Int32
	o := &Opener{schemes: map[string]openFunc{"slow": func(context.Context, *Opener, *url.URL, election.Options) (election.Backend, error) {
		opens.Add(1)
		time.Sleep(50 * time.Millisecond)
		return store.Connect("x"), nil
	}}}
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			el, err := o.Open(ctx, fmt.Sprintf("slow://s?id=n%d", i), election.Options{Resource: fmt.Sprint("r", i)})
			if err != nil {
				t.Error(err)
				return
			}
			_ = el.Close(ctx)
		})
	}
	wg.Wait()
	if n := opens.Load(); n != 1 || created(o) != 1 {
		t.Errorf("100 concurrent Opens created %d backends (counted %d), want 1", n, created(o))
	}
	_ = o.Close(ctx)
}

// An Open waiting for a creation whose context was cancelled tries again
// rather than fail with another caller's context.
func TestSharedBackendCancelledCreatorNotShared(t *testing.T) {
	store := memory.NewStore()
	started := make(chan struct{}, 1)
	var dials atomic.Int32
	o := &Opener{schemes: map[string]openFunc{"dial": func(ctx context.Context, _ *Opener, _ *url.URL, _ election.Options) (election.Backend, error) {
		if dials.Add(1) == 1 {
			started <- struct{}{}
			<-ctx.Done() // the first caller's dial, until it gives up
			return nil, fmt.Errorf("dial: %w", ctx.Err())
		}
		return store.Connect("x"), nil
	}}}
	cctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := o.Open(cctx, "dial://s?id=a", election.Options{Resource: "r"})
		first <- err
	}()
	<-started
	second := make(chan error, 1)
	go func() {
		el, err := o.Open(context.Background(), "dial://s?id=b", election.Options{Resource: "r"})
		if err == nil {
			_ = el.Close(context.Background())
		}
		second <- err
	}()
	time.Sleep(20 * time.Millisecond) // the second waits for the first's creation
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("first Open: %v, want its context's error", err)
	}
	if err := <-second; err != nil {
		t.Errorf("second Open failed with the first's cancelled creation: %v", err)
	}
	_ = o.Close(context.Background())
}
