package etcd

import (
	"context"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/consul-leader/consul-leader/conformance"
)

// inFlight tracks the transactions a client has in flight, each held for
// delay before it is sent, and the most it had at once.
type inFlight struct {
	mu       sync.Mutex
	delay    time.Duration
	now, top int
}

func (f *inFlight) install(cfg *clientv3.Config) {
	cfg.DialOptions = append(cfg.DialOptions,
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			if method != "/etcdserverpb.KV/Txn" {
				return invoker(ctx, method, req, reply, cc, opts...)
			}
			f.mu.Lock()
			f.now++
			f.top = max(f.top, f.now)
			delay := f.delay
			f.mu.Unlock()
			defer func() {
				f.mu.Lock()
				f.now--
				f.mu.Unlock()
			}()
			time.Sleep(delay)
			return invoker(ctx, method, req, reply, cc, opts...)
		}),
	)
}

// most returns the most transactions in flight at once so far, and sends
// the later ones without delay.
func (f *inFlight) most() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delay = 0
	return f.top
}

// TestSharedSessionBurstBounded: electors of many resources started at
// once on one shared session have at most MaxAcquiring acquisitions (one
// transaction each) in flight, and all of them lead, none told of an
// error. Each transaction is held 50 ms, so that the burst overlaps.
func TestSharedSessionBurstBounded(t *testing.T) {
	const n = 3 * maxAcquiring
	srv := startEtcd(t)
	f := &inFlight{delay: 50 * time.Millisecond}
	client := newClient(t, srv.Endpoint(), f.install)
	if got := newBackend(t, client).MaxAcquiring(); got != maxAcquiring {
		t.Fatalf("MaxAcquiring() = %d, want %d", got, maxAcquiring)
	}
	log := &conformance.TermLog{}
	rs := resourceNames(n)
	since := time.Now()
	startGroup(t, client, "a", rs, log)
	waitLeaders(t, log, "a", rs, since, time.Minute)
	top := f.most()
	t.Logf("%d resources led, %d transactions in flight at the most", n, top)
	if top > maxAcquiring {
		t.Errorf("%d transactions in flight at once; want at most MaxAcquiring, %d", top, maxAcquiring)
	}
	for _, c := range log.Calls() {
		if c.L.Err != nil {
			t.Errorf("%s told: %v", c.ID, c.L.Err)
		}
	}
}
