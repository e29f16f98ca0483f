package etcd

import (
	"context"
	"maps"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
)

// rpcCounter counts the requests a client sends, per gRPC method: unary
// calls, streams opened, and messages sent on streams.
type rpcCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

func newRPCCounter() *rpcCounter { return &rpcCounter{counts: map[string]int{}} }

// install adds the counter to a client configuration.
func (c *rpcCounter) install(cfg *clientv3.Config) {
	cfg.DialOptions = append(cfg.DialOptions,
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			c.add(method)
			return invoker(ctx, method, req, reply, cc, opts...)
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			c.add(method + " open")
			s, err := streamer(ctx, desc, cc, method, opts...)
			if err != nil {
				return nil, err
			}
			return &countingStream{ClientStream: s, c: c, method: method}, nil
		}),
	)
}

func (c *rpcCounter) add(key string) {
	c.mu.Lock()
	c.counts[key]++
	c.mu.Unlock()
}

// counts are requests per method.
type counts map[string]int

// reads returns the number of reads: ranges and transactions (which read
// the leader with its term offset).
func (c counts) reads() int { return c["/etcdserverpb.KV/Range"] + c["/etcdserverpb.KV/Txn"] }

// snapshot returns the counts so far.
func (c *rpcCounter) snapshot() counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.counts)
}

// since returns the counts added after before was taken, without zeros.
func (c *rpcCounter) since(before counts) counts {
	d := c.snapshot()
	for k, v := range before {
		if d[k] -= v; d[k] == 0 {
			delete(d, k)
		}
	}
	return d
}

type countingStream struct {
	grpc.ClientStream
	c      *rpcCounter
	method string
}

func (s *countingStream) SendMsg(m any) error {
	s.c.add(s.method + " send")
	return s.ClientStream.SendMsg(m)
}
