package zktcp

import (
	"bufio"
	"net"
	"sync"
	"time"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/netstub"
	"github.com/zabkeeper/zabkeeper/netstub/zklink"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// elPeer is the election link to one peer: at most one connection, the one
// initiated by the larger id.
//
// A peer outside the peer set (a server about to join, a removed one) has
// one too while it is connected, as ZooKeeper's QuorumCnxManager keeps a
// connection from any id: the engine answers its notifications, and it
// decides. Such a link lives as long as its connection (dropStranger);
// SetPeers or AddPeers naming the id make it a peer's.
type elPeer struct {
	id   int64
	wake chan struct{}
	quit chan struct{}
	once sync.Once

	mu      sync.Mutex
	pending []byte // the notification to write next (newest wins)
	// dialBack is set when the smaller peer knocked: connect to it even
	// with nothing to send, as ZooKeeper's connectOne does.
	dialBack bool
	// knockAddr is the election address the initial message of the
	// peer's last knock carried: where a peer outside the peer set, which
	// has no configured address, is connected back to.
	knockAddr string
	last      []byte   // the last one written, re-sent on a new connection
	conn      net.Conn // the surviving connection, nil if none
	// stopped: stop ran; no connection is installed any more.
	stopped bool
}

func newElPeer(id int64) *elPeer {
	return &elPeer{id: id, wake: make(chan struct{}, 1), quit: make(chan struct{})}
}

func (p *elPeer) queue(b []byte) {
	p.mu.Lock()
	p.pending = b
	p.mu.Unlock()
	signal(p.wake)
}

func (p *elPeer) stop() {
	p.once.Do(func() { close(p.quit) })
	p.mu.Lock()
	p.stopped = true
	c := p.conn
	p.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

// install makes c the peer's connection, closing the one it replaces; a
// new connection starts with the last notification sent (ZooKeeper's
// SendWorker does the same). false: the link was stopped, c is not
// installed (the caller closes it or tries another link).
func (p *elPeer) install(c net.Conn) bool {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return false
	}
	old := p.conn
	p.conn = c
	if p.pending == nil {
		p.pending = p.last
	}
	p.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	signal(p.wake)
	return true
}

// knocked records a knock of the smaller peer: connect back, to addr when
// the peer is outside the peer set.
func (p *elPeer) knocked(addr string) {
	p.mu.Lock()
	p.dialBack = true
	if addr != "" {
		p.knockAddr = addr
	}
	p.mu.Unlock()
	signal(p.wake)
}

// takeKnock returns the address of a knock not yet answered and forgets
// the knock; "" if there is none.
func (p *elPeer) takeKnock() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.dialBack {
		return ""
	}
	p.dialBack = false
	return p.knockAddr
}

// retireIfIdle stops the link if it has no connection and no knock to
// answer, and reports whether it did (or it was stopped already).
func (p *elPeer) retireIfIdle() bool {
	p.mu.Lock()
	if !p.stopped && (p.conn != nil || p.dialBack) {
		p.mu.Unlock()
		return false
	}
	p.stopped = true
	p.mu.Unlock()
	p.once.Do(func() { close(p.quit) })
	return true
}

// strangerLocked returns the election link of id, a server outside the
// peer set that connected, starting one unless it has one; nil when the
// transport is closed. t.mu is held.
func (t *Transport) strangerLocked(id int64) *elPeer {
	if t.closed {
		return nil
	}
	t.startElPeerLocked(id)
	return t.el[id]
}

// dropStranger forgets p, the election link of a server outside the peer
// set, once it has no connection and no knock to answer: such a link
// lives as long as its connection, so servers that came and went leave no
// goroutine or entry behind. It reports whether p is stopped (dropped now,
// or before).
func (t *Transport) dropStranger(p *elPeer) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.el[p.id] != p {
		p.stop() // SetPeers or Close stopped it already
		return true
	}
	if _, known := t.peers[p.id]; known || !p.retireIfIdle() {
		return false
	}
	delete(t.el, p.id)
	t.forgetStrangerKindLocked(p.id)
	t.log.Debug("election link of a server outside the config dropped", "peer", p.id)
	t.hook(hookStrangerDropped, p.id)
	return true
}

// detach forgets c if it is still the connection; false if replaced.
func (p *elPeer) detach(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != c {
		return false
	}
	p.conn = nil
	return true
}

func (t *Transport) initialMessage() []byte {
	m := quorum.InitialMessage{Protocol: quorum.ProtocolV1, Sid: t.id, Addrs: []string{t.cfg.ElectionAddr}}
	b, err := m.Encode()
	if err != nil {
		// The address comes from our own config, which the server
		// validated; an error here is a bug worth seeing.
		t.log.Error("cannot encode the election initial message", "addr", t.cfg.ElectionAddr, "err", err)
	}
	return b
}

// runElection writes p's notifications. Toward a smaller id it dials and
// keeps the connection; toward a larger id it sends its initial message and
// closes (ZooKeeper: "Have smaller server identifier, so dropping the
// connection"), and the peer connects back.
func (t *Transport) runElection(p *elPeer) {
	defer t.wg.Done()
	log := t.log.With("peer", p.id, "port", "election")
	var backoff netstub.Backoff
	for {
		select {
		case <-p.wake:
		case <-p.quit:
			return
		case <-t.done:
			return
		}
		for {
			p.mu.Lock()
			c, b, back := p.conn, p.pending, p.dialBack
			if c != nil {
				p.pending, p.dialBack = nil, false
			}
			p.mu.Unlock()
			if b == nil && (c != nil || !back) {
				break
			}
			if c == nil {
				t.mu.Lock()
				peer, known := t.peers[p.id]
				t.mu.Unlock()
				if !known {
					// Outside the peer set: connect back once to the
					// address its knock carried (ZooKeeper's
					// connectOne(sid, electionAddr)), else the link ends.
					if addr := p.takeKnock(); addr != "" {
						if err := t.connectElection(p, addr); err != nil {
							log.Debug("election connect back failed", "addr", addr, "err", err)
						}
						if p.current() != nil {
							continue
						}
					}
					if t.dropStranger(p) {
						return
					}
					continue
				}
				addr := peer.ElectionAddr
				if err := t.connectElection(p, addr); err != nil {
					log.Debug("election connect failed", "addr", addr, "err", err)
				}
				if p.current() != nil {
					backoff.Reset()
					continue
				}
				// Wait for the peer to connect back, or retry.
				timer := time.NewTimer(backoff.Next())
				select {
				case <-timer.C:
				case <-p.wake:
				case <-p.quit:
					timer.Stop()
					return
				case <-t.done:
					timer.Stop()
					return
				}
				timer.Stop()
				continue
			}
			if b == nil {
				continue
			}
			_ = c.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := quorum.WriteFrame(c, b); err != nil {
				t.electionDown(p, c, err)
				p.mu.Lock()
				if p.pending == nil {
					p.pending = b // the next connection starts with it
				}
				p.mu.Unlock()
				continue
			}
			p.mu.Lock()
			p.last = b
			p.mu.Unlock()
		}
	}
}

// connectElection dials p: a kept connection when our id is larger, a
// knock (initial message, close) when it is smaller.
func (t *Transport) connectElection(p *elPeer, addr string) error {
	c, err := t.dial(p.id, addr)
	if err != nil {
		return err
	}
	_ = c.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := c.Write(t.initialMessage()); err != nil {
		_ = c.Close()
		return err
	}
	if !quorum.Survives(t.id, p.id) {
		_ = c.Close()
		return nil
	}
	if !t.track(c) {
		return nil
	}
	if !p.install(c) {
		t.untrack(c)
		_ = c.Close()
		return nil
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		defer t.untrack(c)
		t.readElection(p, c)
	}()
	return nil
}

// serveElection handles an accepted election connection. One from a
// server outside the peer set is served as ZooKeeper's handleConnection
// serves any: kept when its id is larger, answered by connecting back to
// the election address its initial message carries when smaller.
func (t *Transport) serveElection(c net.Conn) {
	remote := c.RemoteAddr().String()
	stream, verify, err := t.accept(c)
	if err != nil {
		t.log.Warn("refused election connection", "remote", remote, "err", err)
		return
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Duration(t.cfg.SyncLimit) * t.cfg.TickTime))
	br := bufio.NewReaderSize(stream, bufSize)
	im, err := quorum.ReadInitialMessage(br)
	if err != nil {
		t.log.Warn("closing election connection", "remote", remote, "reason", reason(err), "err", err)
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	if im.Sid == t.id {
		t.claimedOwnID("election", remote, 0)
		return
	}
	if err := verify(im.Sid); err != nil {
		t.log.Warn("refused election connection", "peer", im.Sid, "remote", remote, "err", err)
		return
	}
	if !quorum.Survives(im.Sid, t.id) {
		// The smaller id knocked: connect back.
		addr := ""
		if len(im.Addrs) > 0 {
			addr = im.Addrs[0]
		}
		t.mu.Lock()
		p := t.el[im.Sid]
		_, known := t.peers[im.Sid]
		if p == nil && addr != "" {
			p = t.strangerLocked(im.Sid)
		}
		t.mu.Unlock()
		switch {
		case p == nil && addr == "":
			t.log.Warn("election connection from a server not in the config, without an address to connect back to", "peer", im.Sid, "remote", remote)
		case p != nil:
			if !known {
				t.log.Debug("election connection from a server not in the config: connecting back", "peer", im.Sid, "addr", addr)
			}
			p.knocked(addr)
		}
		return
	}
	bc := &bufConn{Conn: stream, r: br}
	for {
		t.mu.Lock()
		p := t.el[im.Sid]
		_, known := t.peers[im.Sid]
		if p == nil {
			p = t.strangerLocked(im.Sid)
		}
		t.mu.Unlock()
		if p == nil {
			return // closing
		}
		if !known {
			t.log.Debug("election connection from a server not in the config kept", "peer", im.Sid, "remote", remote)
		}
		if p.install(bc) {
			t.readElection(p, bc)
			return
		}
		// p was stopped between the lookup and install (a stranger's
		// link dropped, a peer removed): look again.
		select {
		case <-t.done:
			return
		default:
		}
	}
}

func (p *elPeer) current() net.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conn
}

// bufConn reads through the reader that already took the initial message.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// readElection delivers c's notifications until it breaks.
func (t *Transport) readElection(p *elPeer, c net.Conn) {
	log := t.log.With("peer", p.id, "port", "election")
	log.Info("election link up", "remote", c.RemoteAddr().String())
	var err error
	for {
		var b []byte
		if b, err = quorum.ReadFrame(c); err != nil {
			break
		}
		var m zab.Message
		if m, err = zklink.DecodeNotification(p.id, t.id, b); err != nil {
			break
		}
		t.learnConfig(m, b)
		if !t.deliver(m) {
			break
		}
	}
	t.electionDown(p, c, err)
}

// electionDown closes c; the first to call it for the peer's current
// connection logs it and, while Looking, tells the engine.
func (t *Transport) electionDown(p *elPeer, c net.Conn, err error) {
	_ = c.Close()
	if !p.detach(c) || t.stopping() {
		return
	}
	t.log.Info("election link down", "peer", p.id, "reason", reason(err), "err", err)
	t.mu.Lock()
	looking := t.zk.Role() == zab.Looking
	t.mu.Unlock()
	if looking {
		t.deliver(zab.Message{Type: zab.MsgLinkDown, From: p.id, To: t.id})
	}
	t.dropStranger(p) // a no-op for a peer of the config
}
