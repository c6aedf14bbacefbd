package server

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/zabkeeper/zabkeeper/engine"
	"github.com/zabkeeper/zabkeeper/internal/batchio"
	"github.com/zabkeeper/zabkeeper/internal/nbwrite"
	"github.com/zabkeeper/zabkeeper/proto"
)

// requestHeaderSize is the encoded size of a RequestHeader (xid, type).
const requestHeaderSize = 8

// reuseFrameMax is the largest request buffer a connection keeps for the
// next frame; a larger one (a big setData) is left to the collector.
const reuseFrameMax = 16 << 10

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

	// inflight counts the requests handed to the loop whose replies are
	// not queued yet (fastread.go).
	inflight atomic.Int64

	// bw buffers the socket's writes. Whoever set writing (under mu) owns
	// bw, wdeadline and the socket's write side: the writer goroutine for
	// a batch of out, or the reader for a reply it writes itself
	// (fastread.go) when nothing was queued before it.
	bw        *bufio.Writer
	writing   bool
	wdeadline time.Time
	// raw is the plain TCP socket (nbwrite.Raw), for the event loop's
	// non-blocking writes of replies and watch events (send); nil over
	// TLS. Set under mu.
	raw syscall.RawConn
	// nbw writes on raw without a closure per write; the owner of the
	// write side uses it.
	nbw nbwrite.Writer
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
	// The write buffer wraps the stream secure settled on (TLS or plain).
	c.bw = bufio.NewWriterSize(c.rw, 64<<10)
	if c.rw == c.nc {
		raw := nbwrite.Raw(c.nc)
		c.mu.Lock()
		c.raw = raw
		c.mu.Unlock()
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
	if pl := c.srv.pollerFor(c); pl != nil {
		// Plain TCP: the connection's frames are read by a poller
		// shared by many connections from here on (poller_linux.go).
		return pl.serve(c, br)
	}
	var buf []byte
	var deadline time.Time // the read deadline last armed
	in := newIntake(c)
	for {
		if t := c.timeoutMs.Load(); t > 0 {
			// The connection may stay silent for the session timeout after
			// each frame. Re-arming the deadline costs a runtime call per
			// frame, so it is armed an eighth of the timeout further than
			// needed and re-armed only once it falls short: it never fires
			// earlier than the timeout after the last frame, and at most
			// an eighth later.
			timeout := time.Duration(t) * time.Millisecond
			now := time.Now()
			if deadline.Before(now.Add(timeout)) {
				deadline = now.Add(timeout + timeout/8)
				_ = c.nc.SetReadDeadline(deadline)
			}
		}
		body, err := proto.ReadFrame(br, buf, maxBuf)
		if err != nil {
			var tooLarge *proto.FrameTooLargeError
			if errors.As(err, &tooLarge) {
				c.log.Warn("closing connection: frame exceeds jute.maxbuffer", "len", tooLarge.Len, "max", tooLarge.Max)
			}
			return err
		}
		if cap(body) <= reuseFrameMax {
			// Decoding copies what it keeps, so the next frame may reuse
			// the buffer.
			buf = body[:0]
		}
		if err := in.frame(body, time.Now(), false); err != nil {
			return err
		}
	}
}

// intake turns a connection's request frames into replies it answers
// itself (fastread.go) or requests for the loop, in order; whoever reads
// the connection's frames (its reader goroutine or a poller) owns it.
type intake struct {
	c *clientConn
	// lastTouch is when the loop last heard of this session's activity.
	lastTouch  time.Time
	touchEvery time.Duration
	// dec decodes the frames, reusing the records of the reads fastRead
	// answers (a request posted to the loop gets its own: dec.Keep).
	dec proto.RequestDecoder
	// enc and reply encode the replies fastRead answers; reply is the
	// buffer of the last one, reused unless it was queued (nil then).
	enc   proto.ReplyEncoder
	reply []byte
	// batch, while a poller's turn handles the connection, gathers the
	// replies fastRead answers, for the poller to write together at the
	// end of its turn; nil otherwise (each written at once). batched is
	// the index in it of this connection's frame, -1 when it has none.
	batch   *sendBatch
	batched int
}

func newIntake(c *clientConn) *intake {
	return &intake{c: c, lastTouch: time.Now(), touchEvery: touchEvery(c.srv.cfg.TickTime), batched: -1}
}

// frame handles one request frame (RequestHeader and record) read at now;
// an error ends the connection. nonBlocking says the caller must never wait
// on the client's socket (a poller serving many connections).
func (in *intake) frame(body []byte, now time.Time, nonBlocking bool) error {
	c := in.c
	c.received.Add(1)
	c.srv.stats.received.Add(1)
	hdr, rec, err := in.dec.Decode(body)
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
	// req stays on the stack unless it goes to the loop.
	req := engine.Request{Conn: c.id, Xid: hdr.Xid, Op: hdr.Type, Body: rec, Time: now.UnixMilli()}
	if hdr.Type == proto.OpAuth {
		req.Verified = c.verifyAuth(rec) // oidc.go: tokens are checked here, off the loop
	}
	if in.fastRead(&req, now, nonBlocking) {
		if now.Sub(in.lastTouch) >= in.touchEvery {
			in.lastTouch = now
			c.srv.post(event{kind: evTouch, conn: c.id, at: req.Time})
		}
		return nil
	}
	in.lastTouch = now
	c.inflight.Add(1)
	posted := new(engine.Request)
	*posted = req
	posted.Body = in.dec.Keep(rec)
	c.srv.post(event{kind: evRequest, conn: c.id, req: posted})
	return nil
}

// nextFrame splits the frame at the front of b, a stream of length-prefixed
// frames as proto.ReadFrame reads them: its body and the bytes it takes
// (prefix included); n is 0 when b holds no whole frame yet, need then the
// frame's whole size once its prefix is in (else 0). A length over max or
// negative is a *proto.FrameTooLargeError.
func nextFrame(b []byte, max int) (body []byte, n, need int, err error) {
	if len(b) < 4 {
		return nil, 0, 0, nil
	}
	size := int64(int32(binary.BigEndian.Uint32(b)))
	if size < 0 || size > int64(max) {
		return nil, 0, 0, &proto.FrameTooLargeError{Len: size, Max: max}
	}
	if int64(len(b)-4) < size {
		return nil, 0, 4 + int(size), nil
	}
	return b[4 : 4+size], 4 + int(size), 0, nil
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

// send queues a frame (a reply or a watch event) like enqueue, but when
// nothing is queued or being written and the socket is plain TCP, the
// event loop (the only caller)
// takes the write side now, which keeps the frame's place in the
// connection's order, and writes it itself with one non-blocking write once
// its turn has released nodeMu (loopSends, flushLoopSends): the reply goes
// out without waking the writer goroutine, reads answered by connection
// goroutines are not held up by the loop's system calls, and the loop never
// waits on a slow client.
func (c *clientConn) send(frame []byte) {
	if !c.claimRawWrite() {
		c.enqueue(frame, false)
		return
	}
	c.srv.loopSends = append(c.srv.loopSends, batchSend{c: c, frame: frame})
}

// flushLoopSends writes the replies send claimed the write side for; the
// event loop calls it after each turn, nodeMu released.
//
// A large batch (a watch fan-out: one event to each of 1,000 watchers) is
// shared with helper goroutines, one per spare CPU, so that every core
// writes: on loopback a write also runs the receiving side's TCP work, some
// 5-20 µs a frame, and 1,000 of them on the loop alone leave the other
// cores idle. Each connection appears at most once in a batch (send claims
// its write side, so a second frame to it in the same turn is queued behind
// the first, and so is a later turn's frame until the claim is released),
// so who writes which, and when, does not change any connection's order.
// The loop does not wait for the helpers: a helper descheduled in the
// middle of its chunk would hold the loop up for an OS time slice. The
// batch's slice is then theirs, and the next turn starts a new one.
func (s *Server) flushLoopSends() {
	sends := s.loopSends
	if len(sends) == 0 {
		return
	}
	if s.loopBatch.b == nil {
		s.loopBatch.b = s.batchers.get() // given back when Serve ends
	}
	if helpers := min(runtime.GOMAXPROCS(0)-1, len(sends)/splitFlushChunk-1); helpers > 0 {
		b := &flushBatch{s: s, sends: sends}
		for range helpers {
			go b.work(nil)
		}
		b.work(s.loopBatch.b)
		s.loopBatch.sends = nil
		s.loopSends = nil
		return
	}
	s.loopBatch.sends = sends
	s.loopBatch.flush()
	s.loopSends = s.loopBatch.sends
}

// splitFlushChunk is how many frames a writer of a shared batch takes at a
// time (flushLoopSends), in one batchio call; a batch is shared only if it
// has at least two chunks. A chunk is a hundred µs or more of sends, more
// than a goroutine's start costs.
const splitFlushChunk = 32

// flushBatch is a batch of claimed frames written by the loop and helpers
// together: each takes the next chunk until none is left, so a helper that
// gets no CPU leaves its share to the others, and one that starts late
// finds nothing to do.
type flushBatch struct {
	s     *Server
	sends []batchSend
	next  atomic.Int64 // the first frame not taken yet
}

// work writes chunks of the batch until none is left to take, with bb, or
// with a Batcher of the server's pool when bb is nil (a helper).
func (b *flushBatch) work(bb *batchio.Batcher) {
	n := int64(len(b.sends))
	var ops []batchio.Op
	for {
		end := b.next.Add(splitFlushChunk)
		start := end - splitFlushChunk
		if start >= n {
			break
		}
		if bb == nil {
			bb = b.s.batchers.get()
			defer b.s.batchers.put(bb)
		}
		writeBatch(bb, b.sends[start:min(end, n)], &ops)
	}
}

// writeClaimedNow writes frame after claimWrite with non-blocking writes:
// what the socket does not take now is queued for the writer goroutine,
// ahead of anything queued meanwhile, as is the rest after an error (a
// write deadline the writer set long ago has passed, say): the writer
// re-arms its deadline and retries, or meets the error and ends the
// connection. It gives the write side back. queued says the rest of frame
// was queued: the caller must not reuse frame's bytes then.
func (c *clientConn) writeClaimedNow(frame []byte) (queued bool) {
	n, err := c.nbw.Write(c.raw, frame)
	return c.finishClaimedWrite(frame, n, err)
}

// finishClaimedWrite is writeClaimedNow after the write: n bytes of frame
// went out, err is why no more did (nil: the socket would block).
func (c *clientConn) finishClaimedWrite(frame []byte, n int, err error) (queued bool) {
	c.srv.loopWrites.Add(1)
	if err == nil && n == len(frame) {
		c.sent.Add(1)
		c.srv.stats.sent.Add(1)
		c.releaseWrite()
		return false
	}
	c.srv.loopWritesShort.Add(1)
	if err != nil {
		c.log.Debug("loop write failed; the writer retries", "err", err)
	}
	c.mu.Lock()
	rest := frame[n:] // frames are never changed once built
	c.out = append([][]byte{rest}, c.out...)
	c.outBytes += len(rest)
	c.mu.Unlock()
	c.releaseWrite()
	return true
}

// armWrite gives the next write at least the full write timeout. Re-arming
// costs a runtime call, so the deadline is set an eighth further than
// needed and re-armed only once it falls short. Only the owner of the write
// side calls it.
func (c *clientConn) armWrite() {
	timeout := c.srv.writeTimeout
	if now := time.Now(); c.wdeadline.Before(now.Add(timeout)) {
		c.wdeadline = now.Add(timeout + timeout/8)
		_ = c.nc.SetWriteDeadline(c.wdeadline)
	}
}

// writeFailed ends the connection after a failed write.
func (c *clientConn) writeFailed(err error) {
	if errors.Is(err, net.ErrClosed) {
		c.log.Debug("connection closed while writing")
	} else {
		c.log.Info("closing connection: write failed", "err", err, "timeout", c.srv.writeTimeout)
	}
	c.shutdown()
}

// releaseWrite gives the write side back and wakes the writer if frames
// queued up meanwhile.
func (c *clientConn) releaseWrite() {
	c.mu.Lock()
	c.writing = false
	more := len(c.out) > 0 || c.closing
	c.mu.Unlock()
	if more {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// nothingQueued tells whether a frame may still join one the caller holds
// the write side for: nothing queued behind it, the connection not closing.
func (c *clientConn) nothingQueued() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.closing && len(c.out) == 0
}

// claimWrite takes the write side for a frame the caller writes itself:
// only when nothing is queued or being written, so the frame keeps its
// place in the connection's order.
func (c *clientConn) claimWrite() bool { return c.claim(false) }

// claimRawWrite is claimWrite for a non-blocking write on the plain socket
// (send): false over TLS, where raw is nil.
func (c *clientConn) claimRawWrite() bool { return c.claim(true) }

func (c *clientConn) claim(raw bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if raw && c.raw == nil || c.closing || c.writing || len(c.out) > 0 {
		return false
	}
	c.writing = true
	return true
}

// writeClaimed writes one frame after claimWrite, then gives the write
// side back.
func (c *clientConn) writeClaimed(frame []byte) {
	c.armWrite()
	_, err := c.bw.Write(frame)
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		c.writeFailed(err)
		return // the write side stays taken: the connection is gone
	}
	c.sent.Add(1)
	c.srv.stats.sent.Add(1)
	c.releaseWrite()
}

// writeLoop writes queued frames in order, flushing when the queue empties.
//
// Any bufio Write may reach the socket (a frame larger than the buffer goes
// straight through, a full buffer is flushed), so the write deadline is armed
// before each write that may, never only before Flush: a connection quiet for
// longer than the timeout would otherwise meet its next large reply or burst
// of events with the old, expired deadline and die without a word.
func (c *clientConn) writeLoop() {
	bw := c.bw
	for {
		c.mu.Lock()
		if c.writing {
			// The reader is writing a reply of its own; it wakes us
			// when it is done if anything queued up.
			c.mu.Unlock()
			select {
			case <-c.wake:
			case <-c.srv.done:
				c.shutdown()
				return
			}
			continue
		}
		batch := c.out
		c.out = nil
		c.outBytes = 0
		closing := c.closing
		c.writing = len(batch) > 0
		c.mu.Unlock()
		if len(batch) > 0 {
			c.armWrite()
		}
		for _, f := range batch {
			if len(f) > bw.Available() {
				// This write reaches the socket: give it a full timeout,
				// so a large batch to a slow but live reader goes on.
				c.armWrite()
			}
			if _, err := bw.Write(f); err != nil {
				c.writeFailed(err)
				return
			}
			c.sent.Add(1)
			c.srv.stats.sent.Add(1)
		}
		if len(batch) > 0 {
			c.armWrite()
			if err := bw.Flush(); err != nil {
				c.writeFailed(err)
				return
			}
			c.mu.Lock()
			c.writing = false
			c.mu.Unlock()
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
