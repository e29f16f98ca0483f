package etcd

import (
	"context"
	"errors"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

var (
	// errStreamClosed fails the renewals waiting on a keepalive stream
	// that the backend's Close ended.
	errStreamClosed = errors.New("lease keepalive stream closed")
	// errStreamStuck fails the renewals waiting on a keepalive stream
	// that left a renewal unanswered past its deadline.
	errStreamStuck = errors.New("lease keepalive stream closed: a renewal on it ran out of time")
)

// keepAlive is a backend's one LeaseKeepAlive stream, shared by the
// renewals of all its leases: each renewal sends one request on it and
// waits, within its own deadline, for the next response with its lease ID
// (etcd answers the requests of a stream in order). The first renewal
// opens the stream; a broken stream fails the renewals waiting on it, and
// the next renewal opens another. etcd's own Lease.KeepAlive shares a
// stream too, but renews on its own schedule, not the engine's.
type keepAlive struct {
	remote pb.LeaseClient
	gate   chan struct{} // held to open the stream and to send on it

	mu  sync.Mutex
	cur *kaStream // nil until a renewal opens one, and once it breaks
	wg  sync.WaitGroup
}

// kaStream is one LeaseKeepAlive stream and the renewals waiting on it.
// Its fields but stream and cancel are guarded by keepAlive.mu.
type kaStream struct {
	stream  pb.Lease_LeaseKeepAliveClient
	cancel  context.CancelFunc
	waiting map[int64][]chan kaResult // by lease ID, in the order sent
	err     error                     // why the stream ended
}

type kaResult struct {
	resp *pb.LeaseKeepAliveResponse
	err  error
}

func newKeepAlive(client *clientv3.Client) *keepAlive {
	return &keepAlive{remote: clientv3.RetryLeaseClient(client), gate: make(chan struct{}, 1)}
}

// renew sends one keepalive of id and returns its response, or the error of
// the stream or of ctx. A response with TTL <= 0 tells of a lease etcd no
// longer has.
func (k *keepAlive) renew(ctx context.Context, id clientv3.LeaseID) (*pb.LeaseKeepAliveResponse, error) {
	select {
	case k.gate <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s, ch, err := k.send(ctx, id)
	<-k.gate
	if err != nil {
		return nil, clientv3.ContextError(ctx, err)
	}
	select {
	case r := <-ch:
		return r.resp, clientv3.ContextError(ctx, r.err)
	case <-ctx.Done():
		// The response, if it comes, goes to ch and is dropped: the
		// next renewal of id waits for its own. A stream that kept a
		// request unanswered past its deadline is stuck (etcd
		// answers in order): the next renewal opens another.
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			k.breakStream(s, errStreamStuck)
		}
		return nil, ctx.Err()
	}
}

// send queues a waiter for id's response and sends the request, on the
// stream open or on one it opens. The caller holds the gate.
func (k *keepAlive) send(ctx context.Context, id clientv3.LeaseID) (*kaStream, chan kaResult, error) {
	s, err := k.stream(ctx)
	if err != nil {
		return nil, nil, err
	}
	ch := make(chan kaResult, 1)
	k.mu.Lock()
	if s.err != nil {
		k.mu.Unlock()
		return nil, nil, s.err
	}
	s.waiting[int64(id)] = append(s.waiting[int64(id)], ch)
	k.mu.Unlock()
	// A send blocked past the caller's deadline breaks the stream.
	stop := context.AfterFunc(ctx, func() { k.breakStream(s, errStreamStuck) })
	err = s.stream.Send(&pb.LeaseKeepAliveRequest{ID: int64(id)})
	stop()
	if err != nil {
		// The receive loop fails ch with the stream's own error.
		s.cancel()
	}
	return s, ch, nil
}

// stream returns the open stream, or opens one. The caller holds the gate.
func (k *keepAlive) stream(ctx context.Context) (*kaStream, error) {
	k.mu.Lock()
	s := k.cur
	k.mu.Unlock()
	if s != nil {
		return s, nil
	}
	// The stream outlives the renewal that opens it: its context is the
	// backend's, ended by Close or when the stream breaks.
	sctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, cancel)
	stream, err := k.remote.LeaseKeepAlive(sctx)
	if !stop() {
		err = ctx.Err()
	}
	if err != nil {
		cancel()
		return nil, err
	}
	s = &kaStream{stream: stream, cancel: cancel, waiting: map[int64][]chan kaResult{}}
	k.mu.Lock()
	k.cur = s
	k.wg.Add(1)
	k.mu.Unlock()
	go k.recv(s)
	return s, nil
}

// recv hands each response to the first renewal waiting for its lease ID
// until the stream ends, and then fails the renewals still waiting.
func (k *keepAlive) recv(s *kaStream) {
	defer k.wg.Done()
	defer s.cancel()
	for {
		resp, err := s.stream.Recv()
		k.mu.Lock()
		if err != nil {
			if s.err == nil {
				s.err = err
			}
			for _, q := range s.waiting {
				for _, ch := range q {
					ch <- kaResult{err: s.err}
				}
			}
			s.waiting = nil
			if k.cur == s {
				k.cur = nil
			}
			k.mu.Unlock()
			return
		}
		if q := s.waiting[resp.ID]; len(q) > 0 {
			q[0] <- kaResult{resp: resp}
			if len(q) == 1 {
				delete(s.waiting, resp.ID)
			} else {
				s.waiting[resp.ID] = q[1:]
			}
		}
		k.mu.Unlock()
	}
}

// breakStream ends s, failing the renewals waiting on it with why.
func (k *keepAlive) breakStream(s *kaStream, why error) {
	k.mu.Lock()
	if s.err == nil {
		s.err = why
	}
	if k.cur == s {
		k.cur = nil
	}
	k.mu.Unlock()
	s.cancel()
}

// close ends the stream, failing the renewals waiting on it, and waits for
// its receive loop. A later renewal opens another stream.
func (k *keepAlive) close() {
	k.mu.Lock()
	s := k.cur
	k.mu.Unlock()
	if s != nil {
		k.breakStream(s, errStreamClosed)
	}
	k.wg.Wait()
}
