package server

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zabkeeper/zabkeeper/engine"
	"github.com/zabkeeper/zabkeeper/proto"
)

// requestHeaderSize is the encoded size of a RequestHeader (xid, type).
const requestHeaderSize = 8

// defaultWriteTimeout is how long a client may take to accept one write of
// its replies before the connection is closed.
const defaultWriteTimeout = 30 * time.Second

// defaultSessionlessTimeout is how long a new connection may take to send
// its ConnectRequest, as ZooKeeper's zookeeper.nio.sessionlessCnxnTimeout
// (10 s): a connection that never starts a session is closed.
const defaultSessionlessTimeout = 10 * time.Second

// maxQueuedOutBytes bounds what may wait for a client that does not read
// its replies; past it the connection is closed rather than letting the
// server's memory grow without bound.
const maxQueuedOutBytes = 64 << 20

// clientConn is one client TCP connection: a reader goroutine that decodes
// frames and hands them to the event loop, and a writer goroutine that sends
// what the engine produced, in order.
type clientConn struct {
	id  engine.ConnID
	srv *Server
	// nc is the socket: deadlines are set and Close is called on it.
	nc net.Conn
	// rw is the stream read and written: nc, or the TLS connection over
	// it once secure (tls.go) ran, before the reader and writer start.
	rw net.Conn
	// mode is what the listener that accepted the connection speaks.
	mode connMode
	// transportIDs are the x509 ids of a TLS client certificate.
	transportIDs []proto.Id
	// handshakeSlot is set while the connection holds one of the
	// outstanding TLS handshakes (tlsguard.go); its goroutine only.
	handshakeSlot bool
	remote        string
	ip            string
	log           *slog.Logger

	// timeoutMs is the negotiated session timeout, the read deadline once
	// the session is established (0 before).
	timeoutMs atomic.Int64
	// sessionID is the session bound by the handshake, for the admin words.
	sessionID atomic.Int64

	mu        sync.Mutex
	out       [][]byte
	outBytes  int
	closing   bool // no more frames after out drains
	wake      chan struct{}
	closeOnce sync.Once
	// handshaken is closed once the session is established; closed once
	// the socket is.
	handshaken    chan struct{}
	handshakeOnce sync.Once
	closed        chan struct{}

	received atomic.Int64
	sent     atomic.Int64
	started  time.Time
}

func newClientConn(s *Server, id engine.ConnID, nc net.Conn, mode connMode) *clientConn {
	remote := nc.RemoteAddr().String()
	ip := remote
	if host, _, err := net.SplitHostPort(remote); err == nil {
		ip = host
	}
	return &clientConn{
		id: id, srv: s, nc: nc, rw: nc, mode: mode, remote: remote, ip: ip,
		log:        s.log.With("conn", uint64(id), "remote", remote),
		wake:       make(chan struct{}, 1),
		handshaken: make(chan struct{}),
		closed:     make(chan struct{}),
		started:    time.Now(),
	}
}

// run serves the connection until it ends.
func (c *clientConn) run() {
	if err := c.secure(); err != nil {
		c.secureFailed(err) // tlsguard.go: counted, and logged at a bounded rate
		c.shutdown()
		return
	}
	go c.writeLoop()
	err := c.readLoop()
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		c.log.Debug("connection closed")
	default:
		c.log.Info("closing connection", "err", err)
	}
	c.shutdown()
	c.srv.post(event{kind: evDisconnect, conn: c.id})
}

// readLoop reads the handshake, then request frames, and posts them to the
// event loop. It returns when the peer closes, a frame is bad, or the server
// closes the socket.
func (c *clientConn) readLoop() error {
	br := bufio.NewReaderSize(c.rw, 64<<10)
	maxBuf := c.srv.cfg.JuteMaxBuffer
	// A connection has the sessionless timeout to send its ConnectRequest
	// (or four-letter word), as in ZooKeeper; then the session timeout it
	// asks for covers the handshake (awaitHandshake).
	_ = c.nc.SetReadDeadline(time.Now().Add(c.srv.sessionlessTimeout))
	first, err := br.Peek(4)
	if err != nil {
		return c.sessionless(err)
	}
	// A four-letter word comes instead of a length prefix; read as an int32
	// none is a plausible frame length.
	if cmd := string(first); isFourLetterWord(cmd) {
		return c.fourLetter(br, cmd)
	}
	body, err := proto.ReadFrame(br, nil, maxBuf)
	if err != nil {
		return fmt.Errorf("read handshake: %w", c.sessionless(err))
	}
	var cr proto.ConnectRequest
	if err := proto.Unmarshal(body, &cr); err != nil {
		return fmt.Errorf("decode handshake: %w", err)
	}
	c.received.Add(1)
	c.srv.stats.received.Add(1)
	c.srv.post(event{kind: evConnect, conn: c.id, connect: &engine.ConnectRequest{
		Conn: c.id, Req: &cr, ClientIP: c.ip, TransportIDs: c.transportIDs, Time: time.Now().UnixMilli(),
	}})
	if err := c.awaitHandshake(cr.TimeOut); err != nil {
		return err
	}
	var buf []byte
	for {
		if t := c.timeoutMs.Load(); t > 0 {
			_ = c.nc.SetReadDeadline(time.Now().Add(time.Duration(t) * time.Millisecond))
		}
		body, err := proto.ReadFrame(br, buf, maxBuf)
		if err != nil {
			var tooLarge *proto.FrameTooLargeError
			if errors.As(err, &tooLarge) {
				c.log.Warn("closing connection: frame exceeds jute.maxbuffer", "len", tooLarge.Len, "max", tooLarge.Max)
			}
			return err
		}
		c.received.Add(1)
		c.srv.stats.received.Add(1)
		hdr, rec, err := proto.DecodeRequestFrame(body)
		switch {
		case err == nil:
		case len(body) < requestHeaderSize:
			return fmt.Errorf("decode request header: %w", err)
		case errors.Is(err, proto.ErrUnimplemented):
			// Unknown opcode: the engine answers Unimplemented and closes.
			rec = &proto.EmptyRecord{}
		default:
			// A body that does not decode: the engine answers
			// MarshallingError in turn (nil body) and the session goes on.
			c.log.Debug("malformed request body", "op", hdr.Type, "err", err)
			rec = nil
		}
		var verified *engine.VerifiedAuth
		if hdr.Type == proto.OpAuth {
			verified = c.verifyAuth(rec) // oidc.go: tokens are checked here, off the loop
		}
		c.srv.post(event{kind: evRequest, conn: c.id, req: &engine.Request{
			Conn: c.id, Xid: hdr.Xid, Op: hdr.Type, Body: rec, Time: time.Now().UnixMilli(), Verified: verified,
		}})
	}
}

// sessionless explains a read timeout before the ConnectRequest arrived.
func (c *clientConn) sessionless(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("no ConnectRequest within %v of connecting: %w", c.srv.sessionlessTimeout, err)
	}
	return err
}

// awaitHandshake waits until the session the ConnectRequest asked for is
// established, reading nothing more meanwhile. Clients may write requests
// right behind their ConnectRequest: the Java client's Netty socket does,
// SetWatches included on a reconnect (its NIO socket, the C client, kazoo
// and go-zk wait for the ConnectResponse); like ZooKeeper, which
// stops reading a connection from its ConnectRequest until the session is set
// up, they wait in the socket, so a client flooding before its handshake
// costs no memory, and are read and served in order once the session is up.
// A refused handshake gets its ConnectResponse and the connection closes
// with whatever was behind it unread, as in ZooKeeper. A handshake not
// settled within the session timeout the client asked for (clamped to the
// configured bounds) closes the connection.
func (c *clientConn) awaitHandshake(requestedMs int32) error {
	ms := min(max(int(requestedMs), c.srv.cfg.MinSessionTimeout), c.srv.cfg.MaxSessionTimeout)
	wait := time.Duration(ms) * time.Millisecond
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-c.handshaken:
		return nil
	case <-c.closed:
		return net.ErrClosed
	case <-c.srv.done:
		return net.ErrClosed
	case <-timer.C:
		return fmt.Errorf("session not established within %v of the handshake", wait)
	}
}

// fourLetter answers an admin command and ends the connection. stmk is
// followed by the new trace mask, an 8-byte big-endian long, read only when
// the word is enabled (as ZooKeeper does); a short argument closes the
// connection without a reply.
func (c *clientConn) fourLetter(br *bufio.Reader, cmd string) error {
	ev := event{kind: evFourLetter, word: cmd, reply: make(chan string, 1)}
	if cmd == "stmk" && c.srv.cfg.FourLetterWords[cmd] {
		var arg [4 + 8]byte
		if _, err := io.ReadFull(br, arg[:]); err != nil {
			return fmt.Errorf("read stmk trace mask: %w", err)
		}
		ev.mask = int64(binary.BigEndian.Uint64(arg[4:]))
	}
	reply := ev.reply
	if !c.srv.post(ev) {
		return nil
	}
	select {
	case text := <-reply:
		_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err := io.WriteString(c.rw, text)
		return err
	case <-c.srv.done:
		return nil
	}
}

// established records the session the handshake bound and arms the read
// deadline at once: the reader may already be blocked in its next read, and
// a deadline set on a net.Conn applies to a read in progress.
func (c *clientConn) established(session int64, timeoutMs int32) {
	c.sessionID.Store(session)
	c.timeoutMs.Store(int64(timeoutMs))
	_ = c.nc.SetReadDeadline(time.Now().Add(time.Duration(timeoutMs) * time.Millisecond))
	c.handshakeOnce.Do(func() { close(c.handshaken) })
}

// enqueue queues a frame for the writer; close ends the connection once the
// frame and everything before it are written.
func (c *clientConn) enqueue(frame []byte, close bool) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	if frame != nil {
		c.out = append(c.out, frame)
		c.outBytes += len(frame)
	}
	if close {
		c.closing = true
	}
	over := c.outBytes > c.srv.maxQueuedOut()
	c.mu.Unlock()
	if over {
		c.log.Warn("closing connection: client is not reading its replies", "queued_bytes", c.outBytes)
		c.shutdown()
		return
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// writeLoop writes queued frames in order, flushing when the queue empties.
//
// Any bufio Write may reach the socket (a frame larger than the buffer goes
// straight through, a full buffer is flushed), so the write deadline is armed
// before each write that may, never only before Flush: a connection quiet for
// longer than the timeout would otherwise meet its next large reply or burst
// of events with the old, expired deadline and die without a word.
func (c *clientConn) writeLoop() {
	bw := bufio.NewWriterSize(c.rw, 64<<10)
	arm := func() { _ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.writeTimeout)) }
	fail := func(err error) {
		if errors.Is(err, net.ErrClosed) {
			c.log.Debug("connection closed while writing")
		} else {
			c.log.Info("closing connection: write failed", "err", err, "timeout", c.srv.writeTimeout)
		}
		c.shutdown()
	}
	for {
		c.mu.Lock()
		batch := c.out
		c.out = nil
		c.outBytes = 0
		closing := c.closing
		c.mu.Unlock()
		if len(batch) > 0 {
			arm()
		}
		for _, f := range batch {
			if len(f) > bw.Available() {
				// This write reaches the socket: give it a full timeout,
				// so a large batch to a slow but live reader goes on.
				arm()
			}
			if _, err := bw.Write(f); err != nil {
				fail(err)
				return
			}
			c.sent.Add(1)
			c.srv.stats.sent.Add(1)
		}
		if len(batch) > 0 {
			arm()
			if err := bw.Flush(); err != nil {
				fail(err)
				return
			}
		}
		if closing && len(batch) == 0 {
			c.shutdown()
			return
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-c.wake:
		case <-c.srv.done:
			c.shutdown()
			return
		}
	}
}

// shutdown closes the socket; the reader then ends and reports it.
func (c *clientConn) shutdown() {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closing = true
		c.mu.Unlock()
		_ = c.nc.Close()
		close(c.closed)
		select {
		case c.wake <- struct{}{}:
		default:
		}
	})
}
