package netstub

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/zabkeeper/zabkeeper/engine/zab"
)

// TCPConfig configures a TCP transport.
type TCPConfig struct {
	// ID is this server's id (myid).
	ID int64
	// ListenAddr is the host:port peers connect to (the quorum port);
	// "127.0.0.1:0" picks a free port, see TCP.Addr.
	ListenAddr string
	// Peers maps the id of every other server (not this one) to its
	// host:port. Messages to and connections from other ids are refused.
	Peers map[int64]string
	// MaxFrame is the largest frame accepted or sent, in bytes; 0 means
	// DefaultMaxFrame. Snapshots are streamed in small chunks, so only a
	// single txn or forwarded request must fit. Every server should use the
	// same value: a message too large for the sender breaks its link (both
	// ends see MsgLinkDown).
	MaxFrame int
	// SpoolDir is where snapshots received from a leader are kept until the
	// receiver is done with them (see SpooledSnapshot); "" means the
	// system's temporary directory.
	SpoolDir string
	// MaxSnapshot bounds the size of a received snapshot, in bytes; 0
	// means DefaultMaxSnapshot.
	MaxSnapshot int64
	// Logger receives connection events; nil discards them.
	Logger *slog.Logger
	// Listener, if set, is the quorum listener already bound (the server
	// binds it itself to retry while its own name does not resolve yet);
	// ListenAddr is then ignored. Close closes it.
	Listener net.Listener
	// Resolver looks up the host names of Peers' addresses; nil means
	// net.DefaultResolver. Every dial looks the name up again, so a peer
	// that comes back with a new IP (a restarted Kubernetes pod) is
	// reached; tests inject a resolver whose answers change.
	Resolver Resolver
	// TLS, if set, makes every link mutual TLS (tcp_tls.go).
	TLS *PeerTLS
}

// Resolver is the part of *net.Resolver the transport uses.
type Resolver interface {
	// LookupHost returns the addresses of host.
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// DefaultMaxFrame is the MaxFrame used when TCPConfig leaves it zero.
const DefaultMaxFrame = 256 << 20

// DefaultMaxSnapshot is the MaxSnapshot used when TCPConfig leaves it zero.
const DefaultMaxSnapshot = 64 << 30

// Tunables of the TCP transport.
const (
	// recvBuffer is the capacity of the Recv channel. When it is full, the
	// connection readers stop reading (backpressure on the peers).
	recvBuffer = 4096
	// downQueueLimit bounds each queue of a peer while no connection to it
	// is up; the oldest messages are dropped beyond it.
	downQueueLimit = 1024
	backoffMin     = 50 * time.Millisecond
	backoffMax     = 2 * time.Second
	dialTimeout    = 3 * time.Second
	// handshakeTimeout bounds the wait for a dialer's header.
	handshakeTimeout = 5 * time.Second
	// writeTimeout bounds one frame write, plus one second per MiB of the
	// frame so that a large message on a slow link is not cut short.
	writeTimeout = 10 * time.Second
	// snapChunk is the snapshot bytes per chunk frame: small enough that
	// a heartbeat waits for at most one chunk, and that chunks are read
	// into the reader's reused buffer.
	snapChunk = 32 << 10
	// smallFrame is the size up to which a reader decodes out of a reused
	// buffer (copying); larger frames get a buffer of their own.
	smallFrame  = 64 << 10
	writeBuffer = 64 << 10
)

// Handshake header the dialer sends: magic, version, its id, the id it
// expects to reach, its nonce (see tcp_handshake.go).
var handshakeMagic = [4]byte{'Z', 'B', 'K', 'P'}

const (
	handshakeVersion = 2
	handshakeLen     = 4 + 1 + 8 + 8 + 8
	frameHeaderLen   = 8 // u32 payload length, u32 CRC-32C of the payload
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// TCP is the peer Transport over real TCP connections.
//
// Each server dials one connection to every peer and sends all of its
// messages to that peer over it, so each direction of a pair is one FIFO
// stream (as with ZooKeeper's per-pair sockets); connections a peer dialed
// carry that peer's messages here. Frames are a uint32 length, a uint32
// CRC-32C of the payload and the payload (AppendMessage encoding).
//
// When a link breaks, in either direction, MsgLinkDown{From: peer} is
// delivered on Recv; messages still queued for a broken outbound link are
// dropped and the link is redialed in the background with exponential
// backoff. Within one direction, the messages delivered after a
// MsgLinkDown were all sent after the ones delivered before it.
//
// MsgNotification (election traffic, which ZooKeeper carries on a socket
// of its own) and MsgPing (heartbeats, which carry nothing the order of
// the stream matters for) are urgent: they may overtake other messages
// queued for the same peer. All other types keep their order, because sync
// depends on it (a SNAP must precede the proposals and NEWLEADER that
// follow it).
//
// A SNAP's snapshot is streamed: a header frame, the snapshot's bytes in
// chunk frames of snapChunk bytes, serialized as they are sent (the
// leader's state is never copied into one buffer), and an end frame with
// the total length. Urgent messages go out between chunks, so heartbeats
// and votes are never stuck behind a large snapshot; the receiver spools
// the chunks to a file in SpoolDir and delivers the SNAP once the last one
// arrived, with a *SpooledSnapshot as its Snapshot.
//
// The handshake carries a random nonce per transport instance, from which
// an acceptor tells two live processes configured with the same id from a
// restart (tcp_dupid.go); refused dialers get a reason they log
// (tcp_handshake.go).
//
// All methods are safe for concurrent use.
type TCP struct {
	id       int64
	nonce    uint64 // this instance's random id, sent in every handshake
	maxFrame int
	spoolDir string
	maxSnap  int64
	log      *slog.Logger
	ln       net.Listener
	resolver Resolver
	tls      *PeerTLS // nil: plain TCP
	recv     chan zab.Message
	done     chan struct{}
	cancel   context.CancelFunc
	ctx      context.Context
	wg       sync.WaitGroup
	once     sync.Once

	mu      sync.Mutex
	closed  bool
	peers   map[int64]*tcpPeer
	inbound map[int64]*inConn
	conns   map[net.Conn]struct{} // accepted connections, for Close
	// dup tells two live servers configured with one id from one server
	// restarting; see tcp_dupid.go.
	dup dupDetector
	// refusals remembers when a peer's refusal was last logged at Error.
	refusals map[int64]refusalLogged
}

var _ Transport = (*TCP)(nil)

// tcpPeer is the outbound side of the link to one peer.
type tcpPeer struct {
	id   int64
	wake chan struct{} // a message was queued, or the link must be checked
	kick chan struct{} // the address changed: stop backing off
	stop chan struct{} // the peer was removed

	mu       sync.Mutex
	addr     string
	urgent   []zab.Message // see isUrgent: may overtake stream
	stream   []zab.Message // everything else, in order
	conn     net.Conn      // nil while not connected
	removed  bool
	stopOnce sync.Once
}

// inConn is an accepted connection from a peer.
type inConn struct {
	conn net.Conn
	done chan struct{} // closed once its reader delivered everything
}

// NewTCP starts listening on cfg.ListenAddr and dialing every peer.
func NewTCP(cfg TCPConfig) (*TCP, error) {
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = DefaultMaxFrame
	}
	if cfg.MaxSnapshot <= 0 {
		cfg.MaxSnapshot = DefaultMaxSnapshot
	}
	if cfg.SpoolDir == "" {
		cfg.SpoolDir = os.TempDir()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.ListenAddr); err != nil {
			return nil, fmt.Errorf("netstub: listen %s: %w", cfg.ListenAddr, err)
		}
	}
	var resolver Resolver = net.DefaultResolver
	if cfg.Resolver != nil {
		resolver = cfg.Resolver
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &TCP{
		id:       cfg.ID,
		nonce:    newNonce(),
		maxFrame: cfg.MaxFrame,
		spoolDir: cfg.SpoolDir,
		maxSnap:  cfg.MaxSnapshot,
		log:      log.With("id", cfg.ID),
		ln:       ln,
		resolver: resolver,
		tls:      cfg.TLS,
		recv:     make(chan zab.Message, recvBuffer),
		done:     make(chan struct{}),
		ctx:      ctx,
		cancel:   cancel,
		peers:    map[int64]*tcpPeer{},
		inbound:  map[int64]*inConn{},
		conns:    map[net.Conn]struct{}{},
	}
	t.wg.Add(1)
	go t.acceptLoop()
	t.SetPeers(cfg.Peers)
	return t, nil
}

// Addr returns the address the transport listens on.
func (t *TCP) Addr() net.Addr { return t.ln.Addr() }

// SetPeers replaces the peer set. A peer whose address changed is redialed
// at once (its current link breaks); a peer no longer listed loses both
// links; new peers are dialed. This server's own id is ignored.
func (t *TCP) SetPeers(peers map[int64]string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	for id, p := range t.peers {
		if _, ok := peers[id]; ok {
			continue
		}
		delete(t.peers, id)
		p.remove()
		if in := t.inbound[id]; in != nil {
			_ = in.conn.Close()
		}
	}
	for id, addr := range peers {
		if id == t.id {
			continue
		}
		if p := t.peers[id]; p != nil {
			p.setAddr(addr)
			continue
		}
		p := &tcpPeer{
			id: id, addr: addr,
			wake: make(chan struct{}, 1), kick: make(chan struct{}, 1), stop: make(chan struct{}),
		}
		t.peers[id] = p
		t.wg.Add(1)
		go t.runPeer(p)
	}
}

// Send queues m for m.To with From set to this server. It never blocks.
// Messages to unknown peers, MsgLinkDown and anything after Close are
// dropped.
func (t *TCP) Send(m zab.Message) {
	t.mu.Lock()
	p := t.peers[m.To]
	closed := t.closed
	t.mu.Unlock()
	switch {
	case closed:
		return
	case p == nil:
		t.log.Debug("dropping message to unknown peer", "to", m.To, "type", m.Type)
		return
	case m.Type == zab.MsgLinkDown:
		t.log.Debug("dropping MsgLinkDown: it is local only", "to", m.To)
		return
	}
	m.From = t.id
	p.enqueue(m)
}

// Recv returns the channel of messages from peers, MsgLinkDown included.
// It is closed by Close after every goroutine of the transport stopped.
func (t *TCP) Recv() <-chan zab.Message { return t.recv }

// Close closes the listener and every connection, waits for every
// goroutine the transport started, then closes the Recv channel. Later
// Sends are dropped. It is idempotent and always returns nil.
func (t *TCP) Close() error {
	t.once.Do(func() {
		t.mu.Lock()
		t.closed = true
		peers := t.peers
		conns := make([]net.Conn, 0, len(t.conns))
		for c := range t.conns {
			conns = append(conns, c)
		}
		t.mu.Unlock()
		close(t.done)
		t.cancel()
		_ = t.ln.Close()
		for _, p := range peers {
			p.remove()
		}
		for _, c := range conns {
			_ = c.Close()
		}
		t.wg.Wait()
		close(t.recv)
	})
	return nil
}

// deliver hands m to Recv, blocking while it is full; false if closing.
func (t *TCP) deliver(m zab.Message) bool {
	select {
	case t.recv <- m:
		return true
	case <-t.done:
		return false
	}
}

func (t *TCP) linkDown(peer int64) {
	t.deliver(zab.Message{Type: zab.MsgLinkDown, From: peer, To: t.id})
}

// ---- outbound ----

func (p *tcpPeer) enqueue(m zab.Message) {
	p.mu.Lock()
	q := &p.stream
	if isUrgent(m.Type) {
		q = &p.urgent
	}
	if p.conn == nil && len(*q) >= downQueueLimit {
		// Dropping the oldest while no connection is up only removes
		// messages the peer could not have received yet: no gap opens
		// inside what it sees after the next MsgLinkDown or first connect.
		(*q)[0] = zab.Message{}
		*q = (*q)[1:]
	}
	*q = append(*q, m)
	p.mu.Unlock()
	signal(p.wake)
}

// isUrgent tells the messages that may overtake the ordered stream.
//
// MsgTimeoutNow is urgent too: it must not fall behind the departing
// leader's Looking notification that follows it.
func isUrgent(t zab.MsgType) bool {
	return t == zab.MsgNotification || t == zab.MsgPing || t == zab.MsgTimeoutNow
}

// next pops the next message to write, urgent ones first.
func (p *tcpPeer) next() (zab.Message, bool) { return p.pop(true) }

// nextUrgent pops the next urgent message only.
func (p *tcpPeer) nextUrgent() (zab.Message, bool) { return p.pop(false) }

func (p *tcpPeer) pop(stream bool) (zab.Message, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	qs := []*[]zab.Message{&p.urgent}
	if stream {
		qs = append(qs, &p.stream)
	}
	for _, q := range qs {
		if len(*q) > 0 {
			m := (*q)[0]
			(*q)[0] = zab.Message{}
			*q = (*q)[1:]
			if len(*q) == 0 {
				*q = nil
			}
			return m, true
		}
	}
	return zab.Message{}, false
}

func (p *tcpPeer) setAddr(addr string) {
	p.mu.Lock()
	changed := p.addr != addr
	p.addr = addr
	c := p.conn
	p.mu.Unlock()
	if changed {
		if c != nil {
			_ = c.Close()
		}
		signal(p.kick)
	}
}

func (p *tcpPeer) remove() {
	p.mu.Lock()
	p.removed = true
	c := p.conn
	p.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
	p.stopOnce.Do(func() { close(p.stop) })
}

// attach records c as the live connection; false (c closed) if removed.
func (p *tcpPeer) attach(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.removed {
		_ = c.Close()
		return false
	}
	p.conn = c
	return true
}

// detach forgets the connection and drops what was queued for it.
func (p *tcpPeer) detach() (dropped int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conn = nil
	dropped = len(p.urgent) + len(p.stream)
	p.urgent, p.stream = nil, nil
	return dropped
}

func (p *tcpPeer) connected() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conn != nil
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// runPeer dials p, writes its queue, and redials after failures until the
// transport closes or p is removed.
func (t *TCP) runPeer(p *tcpPeer) {
	defer t.wg.Done()
	log := t.log.With("peer", p.id)
	var backoff Backoff
	// pause waits about backoff, then doubles it; false if stopping.
	pause := func() bool {
		timer := time.NewTimer(backoff.Next())
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-p.kick:
			backoff.Reset()
		case <-p.stop:
		case <-t.done:
		}
		return !t.stopping(p)
	}
	for {
		p.mu.Lock()
		addr := p.addr
		p.mu.Unlock()
		conn, err := t.dial(addr, p.id)
		if err != nil {
			log.Debug("dial failed", "addr", addr, "err", err)
			if !pause() {
				return
			}
			continue
		}
		if !p.attach(conn) {
			return
		}
		log.Info("outbound link up", "addr", addr, "remote", conn.RemoteAddr().String())
		start := time.Now()
		err = t.writeLoop(p, conn)
		_ = conn.Close()
		dropped := p.detach()
		if t.stopping(p) {
			return
		}
		log.Warn("outbound link down", "addr", addr, "err", err, "dropped", dropped)
		t.linkDown(p.id)
		// A link that the peer closes at once (it refuses us) must not
		// turn into a busy loop: reset the backoff only after a link that
		// lasted.
		if time.Since(start) > backoffMax {
			backoff.Reset()
		}
		if !pause() {
			return
		}
	}
}

func (t *TCP) stopping(p *tcpPeer) bool {
	select {
	case <-t.done:
		return true
	case <-p.stop:
		return true
	default:
		return false
	}
}

// dial connects to addr and sends the handshake. A host name in addr is
// looked up on every dial, never cached: a peer whose name now points at
// another IP is reached at the new one.
func (t *TCP) dial(addr string, peer int64) (net.Conn, error) {
	conn, host, err := DialPeer(t.ctx, t.resolver, addr, dialTimeout)
	if err != nil {
		return nil, err
	}
	if t.tls != nil {
		if conn, err = t.clientTLS(conn, peer, host); err != nil {
			return nil, err
		}
	}
	h := appendHandshake(make([]byte, 0, handshakeLen), t.id, peer, t.nonce)
	_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := conn.Write(h); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return conn, nil
}

// errPeerSpoke reports bytes arriving on an outbound connection, which
// only carries our messages.
var errPeerSpoke = errors.New("peer wrote on our outbound connection")

// writeLoop writes p's queue to conn until an error, a break noticed by
// the watcher, or Close.
func (t *TCP) writeLoop(p *tcpPeer, conn net.Conn) error {
	// The peer never writes on this connection: a read returning means it
	// closed or reset it, which a write might not notice for a long time.
	broken := make(chan error, 1)
	var watcher sync.WaitGroup
	watcher.Add(1)
	go func() {
		defer watcher.Done()
		broken <- t.watchOutbound(conn, p.id)
		_ = conn.Close()
	}()
	defer watcher.Wait()
	defer conn.Close()

	bw := bufio.NewWriterSize(conn, writeBuffer)
	var frame []byte
	for {
		m, ok := p.next()
		if !ok {
			if bw.Buffered() > 0 {
				_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
				if err := bw.Flush(); err != nil {
					return err
				}
				continue // more may have been queued meanwhile
			}
			select {
			case <-p.wake:
				continue
			case err := <-broken:
				return err
			case <-p.stop:
				return nil
			case <-t.done:
				return nil
			}
		}
		if m.Type == zab.MsgSnap && m.Snapshot != nil {
			if err := t.streamSnapshot(p, conn, bw, m); err != nil {
				return err
			}
			continue
		}
		n := EncodedLen(m)
		if n > t.maxFrame {
			// Dropping it silently would open a gap in the stream: end the
			// stream before it instead.
			_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			_ = bw.Flush()
			return fmt.Errorf("%v message of %d bytes exceeds MaxFrame %d", m.Type, n, t.maxFrame)
		}
		frame = appendFrame(frame[:0], m)
		if err := writeFrame(conn, bw, frame); err != nil {
			return err
		}
		if cap(frame) > smallFrame {
			frame = nil // do not pin a large buffer
		}
	}
}

// writeFrame writes one encoded frame through bw, with a deadline that
// grows with its size.
func writeFrame(conn net.Conn, bw *bufio.Writer, frame []byte) error {
	_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout + time.Duration(len(frame)>>20)*time.Second))
	_, err := bw.Write(frame)
	return err
}

// appendFrame appends m as one frame: length, CRC-32C, payload.
func appendFrame(dst []byte, m zab.Message) []byte {
	return appendFramed(dst, func(b []byte) []byte { return AppendMessage(b, m) })
}

// appendFramed appends one frame whose payload body appends.
func appendFramed(dst []byte, body func([]byte) []byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, frameHeaderLen)...)
	dst = body(dst)
	payload := dst[start+frameHeaderLen:]
	binary.BigEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.BigEndian.PutUint32(dst[start+4:], crc32.Checksum(payload, castagnoli))
	return dst
}

// ---- inbound ----

func (t *TCP) acceptLoop() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			select {
			case <-t.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// Out of descriptors and the like: retry shortly.
			t.log.Error("accept failed", "err", err)
			select {
			case <-time.After(backoffMin):
				continue
			case <-t.done:
				return
			}
		}
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			_ = c.Close()
			return
		}
		t.conns[c] = struct{}{}
		t.wg.Add(1)
		t.mu.Unlock()
		go t.serveInbound(c)
	}
}

// serveInbound checks the handshake on c, then delivers its frames.
func (t *TCP) serveInbound(c net.Conn) {
	defer t.wg.Done()
	raw := c
	defer func() {
		_ = raw.Close()
		t.mu.Lock()
		delete(t.conns, raw)
		t.mu.Unlock()
	}()
	remote := c.RemoteAddr().String()
	var tc *tls.Conn
	if t.tls != nil {
		stream, conn, err := t.tls.AcceptTLS(t.ctx, c)
		if err != nil {
			t.log.Warn("refused connection", "remote", remote, "err", err)
			return
		}
		tc = conn
		c = stream // the raw socket stays in t.conns for Close
	}
	peer, nonce, err := t.handshake(c)
	if err == nil {
		err = t.verifyPeerTLS(tc, peer)
	}
	if err != nil {
		t.refuse(c, remote, err)
		return
	}
	log := t.log.With("peer", peer, "remote", remote)

	// One inbound connection per peer: a newer one replaces the older, and
	// starts delivering only after the older delivered its last message and
	// its MsgLinkDown, so the peer's stream stays in order.
	me := &inConn{conn: c, done: make(chan struct{})}
	defer close(me.done)
	prev, err := t.admit(peer, nonce, remote, me)
	if err != nil {
		t.refuse(c, remote, err)
		return
	}
	if prev != nil {
		_ = prev.conn.Close()
		select {
		case <-prev.done:
		case <-t.done:
			return
		}
	}
	log.Info("inbound link up")
	err = t.readFrames(c, peer)
	t.mu.Lock()
	if t.inbound[peer] == me {
		delete(t.inbound, peer)
	}
	t.mu.Unlock()
	select {
	case <-t.done:
		return
	default:
	}
	if errors.Is(err, io.EOF) {
		log.Info("inbound link closed by peer")
	} else {
		log.Warn("inbound link down", "err", err)
	}
	t.linkDown(peer)
}

// readFrames delivers c's messages until an error; it closes nothing.
func (t *TCP) readFrames(c net.Conn, peer int64) error {
	br := bufio.NewReaderSize(c, writeBuffer)
	var hdr [frameHeaderLen]byte
	small := make([]byte, smallFrame)
	in := &snapshotReceiver{dir: t.spoolDir, max: t.maxSnap}
	defer in.abort()
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return err
		}
		n := binary.BigEndian.Uint32(hdr[:4])
		sum := binary.BigEndian.Uint32(hdr[4:])
		if uint64(n) > uint64(t.maxFrame) {
			return fmt.Errorf("frame of %d bytes exceeds MaxFrame %d", n, t.maxFrame)
		}
		var payload []byte
		alias := n > smallFrame
		if alias {
			var err error
			if payload, err = readGrowing(br, int(n)); err != nil {
				return err
			}
		} else {
			payload = small[:n]
			if _, err := io.ReadFull(br, payload); err != nil {
				return err
			}
		}
		if got := crc32.Checksum(payload, castagnoli); got != sum {
			return fmt.Errorf("frame crc mismatch: got %#08x, header says %#08x", got, sum)
		}
		if len(payload) > 0 && (payload[0] == tagChunk || payload[0] == tagEnd) {
			if err := in.chunk(payload); err != nil {
				return err
			}
			if in.done() {
				m := in.finish()
				if !t.deliver(m) {
					_ = m.Snapshot.(*SpooledSnapshot).Close()
					return errors.New("closing")
				}
			}
			continue
		}
		m, streamed, err := decodeMessage(payload, t.maxFrame, alias)
		if err != nil {
			return err
		}
		m.From, m.To = peer, t.id // the handshake, not the payload, says who
		if streamed {
			if err := in.begin(m); err != nil {
				return err
			}
			continue
		}
		if in.active() && !isUrgent(m.Type) {
			return fmt.Errorf("%v inside the stream of snapshot 0x%x", m.Type, in.hdr.Zxid)
		}
		if !t.deliver(m) {
			return errors.New("closing")
		}
	}
}

// readGrowing reads n bytes, growing the buffer as data arrives so that a
// lying length costs no more memory than the bytes actually sent.
func readGrowing(r io.Reader, n int) ([]byte, error) {
	const chunk = 1 << 20
	buf := make([]byte, 0, min(n, chunk))
	for len(buf) < n {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, min(cap(buf), n-len(buf)))...)[:len(buf)]
		}
		k, err := r.Read(buf[len(buf):min(cap(buf), n)])
		buf = buf[:len(buf)+k]
		if err != nil && len(buf) < n {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}
