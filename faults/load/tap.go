package load

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"time"
)

// ZooKeeper opcodes of requests go-zk sends on its own: they never answer
// a worker's call.
const (
	opSetAuth    = 100
	opSetWatches = 101
	opClose      = -11
)

// Tap sits under one go-zk client as its dialer (pass Tap.Dial to
// zk.WithDialer). go-zk does not expose the ReplyHeader.zxid of a reply,
// and linearizability.CheckReads needs it (monotonic reads,
// read-your-writes, each read equal to the tree at its zxid). The tap
// parses the frames that go by (without changing them) and keeps the
// header of the reply to the last request sent; a session with one
// request in flight at a time (Session.Do) so learns the answer to the
// call it just made. It also counts the connections dialed (a change means
// the client reconnected), can drop the current one, and sees the reply to
// closeSession even after go-zk stopped waiting for it. Its methods are
// safe for concurrent use.
type Tap struct {
	mu      sync.Mutex
	dials   int   // connections opened (a change means the client reconnected)
	wantXid int32 // xid of the last request sent by the client's caller
	got     bool
	zxid    int64
	gen     int      // generation of the connection the reply came on
	code    int32    // error code of the reply
	at      int64    // when the reply arrived (Unix ns)
	cur     net.Conn // the connection of the last dial
	sent    int      // requests of the caller written so far
	// The closeSession request, once sent (closeXid >= 0), and its reply.
	closeXid  int32
	closeDone bool
	closeErr  int32
	closeZxid int64
	closeAt   int64 // when the reply arrived (Unix ns)
	// lastIn is when bytes last arrived from the server on the current
	// connection (its dial time before any).
	lastIn time.Time
	// hold: the client is cut off (Hold): nothing it writes reaches the
	// server, and it cannot dial.
	hold bool
}

// errHeld is what Dial returns while the tap holds the client.
var errHeld = errors.New("tap: client held (cut off by the test)")

// NewTap returns a tap that has dialed nothing yet.
func NewTap() *Tap { return &Tap{closeXid: -1} }

// Dial is a zk.Dialer.
func (t *Tap) Dial(network, addr string, timeout time.Duration) (net.Conn, error) {
	t.mu.Lock()
	held := t.hold
	t.mu.Unlock()
	if held {
		return nil, errHeld
	}
	nc, err := net.DialTimeout(network, addr, timeout)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.dials++
	gen := t.dials
	t.cur = nc
	t.lastIn = time.Now()
	t.mu.Unlock()
	return &tapConn{Conn: nc, tap: t, gen: gen, in: frameParser{hdrLen: 16}, out: frameParser{hdrLen: 8}}, nil
}

// Drop closes the client's current connection under it, as a network blip
// would: the client reconnects (to the next server of its list) and keeps
// its session.
func (t *Tap) Drop() {
	t.mu.Lock()
	nc := t.cur
	t.mu.Unlock()
	if nc != nil {
		_ = nc.Close()
	}
}

// Hold cuts the client off until Release: nothing it writes from now on
// reaches the server (a write reports success), and it cannot dial. With
// closeConn the current connection is also closed (the server sees the
// client go away); without, it stays open and silent (the server sees a
// client that stopped sending, like a paused process). Either way the
// server hears nothing of the session, which expires after its timeout.
func (t *Tap) Hold(closeConn bool) {
	t.mu.Lock()
	t.hold = true
	nc := t.cur
	t.mu.Unlock()
	if closeConn && nc != nil {
		_ = nc.Close()
	}
}

// Release ends a Hold: the client writes and dials again.
func (t *Tap) Release() {
	t.mu.Lock()
	t.hold = false
	t.mu.Unlock()
}

// Quiet returns how long the server has sent nothing on the current
// connection (since it was dialed, if nothing came), and the connection's
// generation (0: none dialed yet).
func (t *Tap) Quiet() (time.Duration, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dials == 0 {
		return 0, 0
	}
	return time.Since(t.lastIn), t.dials
}

// ReplyHeader returns the header of the reply to the request sent since
// begin, seen on the wire even if the client gave up waiting for it: its
// error code, zxid and arrival time.
func (t *Tap) ReplyHeader() (code int32, zxid, at int64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.code, t.zxid, t.at, t.got
}

// RequestsSent is the number of the caller's requests written so far.
func (t *Tap) RequestsSent() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sent
}

// CloseReply returns the reply to the client's closeSession request: its
// error code, zxid and arrival time; ok is false if none arrived.
func (t *Tap) CloseReply() (code int32, zxid, at int64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closeErr, t.closeZxid, t.closeAt, t.closeDone
}

// Generation is the number of connections dialed so far.
func (t *Tap) Generation() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dials
}

// Begin forgets the previous reply; call it before each request.
func (t *Tap) Begin() {
	t.mu.Lock()
	t.wantXid, t.got = -1, false
	t.mu.Unlock()
}

// Reply returns the zxid of the reply to the request sent since Begin and
// the generation of the connection it came on.
func (t *Tap) Reply() (zxid int64, gen int, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.zxid, t.gen, t.got
}

func (t *Tap) onRequest(hdr []byte) {
	xid := int32(binary.BigEndian.Uint32(hdr[0:4]))
	op := int32(binary.BigEndian.Uint32(hdr[4:8]))
	if op == opClose && xid >= 0 {
		t.mu.Lock()
		t.closeXid, t.closeDone = xid, false
		t.mu.Unlock()
		return
	}
	if xid < 0 || op == opSetAuth || op == opSetWatches || op == opClose {
		return
	}
	t.mu.Lock()
	t.wantXid, t.got = xid, false
	t.sent++
	t.mu.Unlock()
}

func (t *Tap) onReply(gen int, hdr []byte) {
	xid := int32(binary.BigEndian.Uint32(hdr[0:4]))
	t.mu.Lock()
	if xid >= 0 && xid == t.wantXid {
		t.got, t.gen, t.at = true, gen, time.Now().UnixNano()
		t.zxid = int64(binary.BigEndian.Uint64(hdr[4:12]))
		t.code = int32(binary.BigEndian.Uint32(hdr[12:16]))
	}
	if xid >= 0 && xid == t.closeXid && !t.closeDone {
		t.closeDone, t.closeAt = true, time.Now().UnixNano()
		t.closeZxid = int64(binary.BigEndian.Uint64(hdr[4:12]))
		t.closeErr = int32(binary.BigEndian.Uint32(hdr[12:16]))
	}
	t.mu.Unlock()
}

// tapConn feeds what is written to the server and read from it to the
// tap. go-zk writes from one goroutine and reads from another, so each
// parser has a single user.
type tapConn struct {
	net.Conn
	tap     *Tap
	gen     int
	in, out frameParser
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.tap.mu.Lock()
		if c.tap.dials == c.gen {
			c.tap.lastIn = time.Now()
		}
		c.tap.mu.Unlock()
	}
	c.in.feed(p[:n], func(hdr []byte) { c.tap.onReply(c.gen, hdr) })
	return n, err
}

// Write parses before writing: the reply may be read before Write returns.
// While the tap holds the client, what it writes is dropped.
func (c *tapConn) Write(p []byte) (int, error) {
	c.tap.mu.Lock()
	held := c.tap.hold
	c.tap.mu.Unlock()
	if held {
		return len(p), nil
	}
	c.out.feed(p, c.tap.onRequest)
	return c.Conn.Write(p)
}

// frameParser splits a stream of length-prefixed ZooKeeper frames and calls
// on with the first hdrLen bytes of each (request header: xid, opcode;
// reply header: xid, zxid, err). The first frame of a connection (connect
// request or response) has no such header and is skipped.
type frameParser struct {
	hdrLen  int
	started bool // the first frame's length was read
	inFrame bool
	lenBuf  [4]byte
	nLen    int
	hdr     [16]byte
	want    int // header bytes to collect in this frame
	nHdr    int
	skip    int // body bytes left in this frame
}

func (f *frameParser) feed(b []byte, on func(hdr []byte)) {
	for len(b) > 0 {
		if !f.inFrame {
			k := copy(f.lenBuf[f.nLen:], b)
			f.nLen += k
			b = b[k:]
			if f.nLen < 4 {
				return
			}
			size := int(binary.BigEndian.Uint32(f.lenBuf[:]))
			f.nLen, f.nHdr, f.want = 0, 0, 0
			if f.started {
				f.want = min(size, f.hdrLen)
			}
			f.started = true
			f.skip = size - f.want
			f.inFrame = f.want > 0 || f.skip > 0
			continue
		}
		if f.nHdr < f.want {
			k := copy(f.hdr[f.nHdr:f.want], b)
			f.nHdr += k
			b = b[k:]
			if f.nHdr == f.want {
				if f.want == f.hdrLen {
					on(f.hdr[:f.want])
				}
				f.inFrame = f.skip > 0
			}
			continue
		}
		k := min(f.skip, len(b))
		f.skip -= k
		b = b[k:]
		f.inFrame = f.skip > 0
	}
}
