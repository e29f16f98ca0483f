package testserver

import (
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy forwards TCP connections from a loopback port to a target address,
// and can cut them: while cut, every byte in either direction is held back,
// so that requests hang instead of failing, as on a partitioned network.
// Heal lets traffic flow again on the same connections. DelayReplies makes
// the target's bytes arrive late, as on a slow network.
type Proxy struct {
	target string
	ln     net.Listener

	mu      sync.Mutex
	cut     bool
	delay   time.Duration // of the target's bytes
	cond    *sync.Cond
	conns   map[net.Conn]struct{}
	done    bool
	closing chan struct{} // closed by Close
	wg      sync.WaitGroup
}

// NewProxy listens on a free port of 127.0.0.1 and forwards to target. It
// closes when t ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testserver: proxy listen: %v", err)
	}
	p := &Proxy{target: target, ln: ln, conns: map[net.Conn]struct{}{}, closing: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr is the address clients dial instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut holds back all traffic, on open and new connections, until Heal.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.cut = true
	p.mu.Unlock()
}

// Heal lets traffic flow again.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.cut = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

// DelayReplies holds every byte the target sends back for d before the
// client gets it, on open and new connections, while the client's bytes
// reach the target at once: a request takes effect at once, and its reply
// arrives d late. Bytes that passed the proxy before a Cut are still
// delivered during it; bytes that arrive while it is cut are held until
// Heal, then delayed. DelayReplies(0) undoes it for bytes from then on.
func (p *Proxy) DelayReplies(d time.Duration) {
	p.mu.Lock()
	p.delay = max(d, 0)
	p.mu.Unlock()
}

// Reset closes every open connection, as a server restart would.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
}

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return
	}
	p.done = true
	p.cut = false
	close(p.closing)
	p.cond.Broadcast()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	_ = p.ln.Close()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c)
		}()
	}
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *Proxy) serve(client net.Conn) {
	defer p.untrack(client)
	if !p.wait() {
		return
	}
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	if !p.track(server) {
		return
	}
	defer p.untrack(server)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(server, client, false) }()
	go func() { defer wg.Done(); p.pipe(client, server, true) }()
	wg.Wait()
}

// chunk is data read from one side of a connection, due on the other side
// at a time.
type chunk struct {
	b   []byte
	due time.Time
}

// pipe copies src to dst, holding data back while the proxy is cut, and,
// for replies (data from the target), for the reply delay. Data is read on
// a goroutine of its own, so that delays do not add up.
func (p *Proxy) pipe(dst, src net.Conn, replies bool) {
	chunks := make(chan chunk, 64)
	stop := make(chan struct{})
	read := make(chan struct{})
	go func() {
		defer close(read)
		defer close(chunks)
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if !p.wait() {
					return
				}
				c := chunk{b: append([]byte(nil), buf[:n]...), due: time.Now()}
				if replies {
					c.due = c.due.Add(p.replyDelay())
				}
				select {
				case chunks <- c:
				case <-stop:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		close(stop)
		_ = dst.Close()
		_ = src.Close()
		<-read
	}()
	for c := range chunks {
		if !p.sleepUntil(c.due) {
			return
		}
		if _, err := dst.Write(c.b); err != nil {
			return
		}
	}
}

func (p *Proxy) replyDelay() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.delay
}

// sleepUntil waits until t; it reports false if the proxy closed first.
func (p *Proxy) sleepUntil(t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-p.closing:
		return false
	}
}

// wait blocks while the proxy is cut; it reports false once it is closed.
func (p *Proxy) wait() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.cut && !p.done {
		p.cond.Wait()
	}
	return !p.done
}
