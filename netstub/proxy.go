package netstub

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
)

// Direction names one direction of the byte streams a Proxy forwards.
type Direction int

const (
	// ToTarget is the direction from the accepted (dialing) side to the
	// target.
	ToTarget Direction = iota
	// FromTarget is the direction from the target back to the dialer.
	FromTarget
)

// String names the direction.
func (d Direction) String() string {
	if d == ToTarget {
		return "to-target"
	}
	return "from-target"
}

// proxyChunk is the largest number of bytes forwarded in one step.
const proxyChunk = 32 << 10

// Proxy is a TCP forwarder with fault injection, for tests of real processes
// talking over a network: every connection accepted on its listening address
// is forwarded to a target address, and the link can be cut (both ways or one
// way), slowed down, and restored.
//
// A one-way cut keeps both sockets open and holds back the bytes of that
// direction: they are delivered, in order, when the link is restored, unless
// a peer gives up on the connection first. A full cut closes every forwarded
// connection and refuses (accepts and immediately closes) new ones.
//
// A connection is accepted before the target is dialed, so a target that
// refuses (nothing listens yet) looks to the dialer like a connection that
// opens and then closes, where without the proxy its connect would fail and
// it could retry: SetDialRetry restores that retry for ports whose clients
// count on it.
type Proxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	cut     bool
	oneWay  [2]bool
	delay   [2]time.Duration // by Direction
	changed chan struct{}    // closed and replaced on every state change
	conns   map[*proxyConn]struct{}
	closed  bool

	// dialRetry is how long a refused target is dialed again (SetDialRetry).
	dialRetry time.Duration

	done   chan struct{} // closed by Close
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// proxyConn is one forwarded connection: the accepted side and the side
// dialed to the target.
type proxyConn struct {
	client, server net.Conn
	once           sync.Once
	dead           chan struct{}
}

func (c *proxyConn) close() {
	c.once.Do(func() {
		close(c.dead)
		_ = c.client.Close()
		_ = c.server.Close()
	})
}

// NewProxy listens on listen ("127.0.0.1:0" picks a free port, see Addr)
// and forwards every accepted connection to target.
func NewProxy(listen, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		ln:      ln,
		target:  target,
		changed: make(chan struct{}),
		conns:   map[*proxyConn]struct{}{},
		done:    make(chan struct{}),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target is the address connections are forwarded to.
func (p *Proxy) Target() string { return p.target }

// notifyLocked wakes every goroutine waiting on a state change.
func (p *Proxy) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// Cut closes every forwarded connection and refuses new ones until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.cut = true
	conns := p.takeConnsLocked()
	p.notifyLocked()
	p.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
}

// CutOneWay stops forwarding bytes in direction dir, keeping the sockets
// open; the held bytes flow again after Restore.
func (p *Proxy) CutOneWay(dir Direction) {
	p.mu.Lock()
	p.oneWay[dir] = true
	p.notifyLocked()
	p.mu.Unlock()
}

// Restore undoes Cut and CutOneWay (the delay set by SetDelay stays).
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.oneWay = [2]bool{}
	p.notifyLocked()
	p.mu.Unlock()
}

// SetDelay makes every forwarded chunk wait d before it is written, both
// ways; 0 turns the delay off.
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = [2]time.Duration{d, d}
	p.notifyLocked()
	p.mu.Unlock()
}

// SetDelayOneWay is SetDelay for direction dir only (a peer protocol whose
// connections carry both peers' messages, as ZooKeeper's, slows one
// sender by the direction of each connection).
func (p *Proxy) SetDelayOneWay(dir Direction, d time.Duration) {
	p.mu.Lock()
	p.delay[dir] = d
	p.notifyLocked()
	p.mu.Unlock()
}

// SetDialRetry makes the proxy dial a target that refuses again, every
// dialRetryEvery, for up to d, holding the accepted connection meanwhile
// (0: close it at the first refusal). It is for a client that would itself
// retry a refused connect that long, as a ZooKeeper learner dialing a
// leader that has not opened its quorum port yet (initLimit·tickTime): a
// learner that decides on the leader before the leader listens would
// otherwise see an opened-then-closed connection, which it takes for a
// failed leader.
func (p *Proxy) SetDialRetry(d time.Duration) {
	p.mu.Lock()
	p.dialRetry = d
	p.mu.Unlock()
}

// dialRetryEvery is the pause between dials of a refusing target.
const dialRetryEvery = 50 * time.Millisecond

// Conns is the number of connections currently forwarded.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Close stops listening, closes every connection and waits for all of the
// proxy's goroutines to end. It may be called more than once.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	p.closed = true
	close(p.done)
	p.cancel()
	conns := p.takeConnsLocked()
	p.notifyLocked()
	p.mu.Unlock()
	err := p.ln.Close()
	for _, c := range conns {
		c.close()
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) takeConnsLocked() []*proxyConn {
	out := make([]*proxyConn, 0, len(p.conns))
	for c := range p.conns {
		out = append(out, c)
	}
	clear(p.conns)
	return out
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		nc, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-p.done:
				return
			case <-time.After(10 * time.Millisecond): // transient (EMFILE...)
			}
			continue
		}
		p.mu.Lock()
		refuse := p.cut || p.closed
		p.mu.Unlock()
		if refuse {
			_ = nc.Close()
			continue
		}
		p.wg.Add(1)
		go p.connect(nc)
	}
}

// connect dials the target for an accepted connection and starts the two
// pumps.
func (p *Proxy) connect(client net.Conn) {
	defer p.wg.Done()
	p.mu.Lock()
	deadline := time.Now().Add(p.dialRetry)
	p.mu.Unlock()
	d := net.Dialer{Timeout: 3 * time.Second}
	var server net.Conn
	for {
		var err error
		if server, err = d.DialContext(p.ctx, "tcp", p.target); err == nil {
			break
		}
		if !errors.Is(err, syscall.ECONNREFUSED) || !time.Now().Before(deadline) {
			_ = client.Close()
			return
		}
		select {
		case <-p.done:
			_ = client.Close()
			return
		case <-time.After(dialRetryEvery):
		}
	}
	c := &proxyConn{client: client, server: server, dead: make(chan struct{})}
	p.mu.Lock()
	if p.cut || p.closed {
		p.mu.Unlock()
		c.close()
		return
	}
	p.conns[c] = struct{}{}
	p.wg.Add(2)
	p.mu.Unlock()
	go p.pump(c, ToTarget, client, server)
	go p.pump(c, FromTarget, server, client)
}

// pump copies src to dst, honouring one-way cuts and the delay. Any error
// ends the whole forwarded connection.
func (p *Proxy) pump(c *proxyConn, dir Direction, src, dst net.Conn) {
	defer p.wg.Done()
	defer func() {
		c.close()
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	buf := make([]byte, proxyChunk)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.waitForward(c, dir) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// waitForward blocks while direction dir is cut one way and then sleeps the
// configured delay. It reports false if the connection died meanwhile.
func (p *Proxy) waitForward(c *proxyConn, dir Direction) bool {
	for {
		p.mu.Lock()
		blocked, delay, changed := p.oneWay[dir], p.delay[dir], p.changed
		p.mu.Unlock()
		if !blocked {
			if delay <= 0 {
				return true
			}
			t := time.NewTimer(delay)
			select {
			case <-t.C:
				return true
			case <-c.dead:
				t.Stop()
				return false
			}
		}
		select {
		case <-changed:
		case <-c.dead:
			return false
		}
	}
}
