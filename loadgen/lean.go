package loadgen

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/zabkeeper/zabkeeper/proto"
)

// Client names the client library a run's sessions use for their requests.
type Client string

// The clients.
const (
	// GoZK is go-zookeeper/zk: a send and a receive goroutine per session
	// and a channel hand-off per request, pings, watches, reconnects.
	GoZK Client = "go-zk"
	// Lean is this package's minimal client over the same wire protocol,
	// with no allocation per request, for the create, set, get, mixed and
	// watch workloads (the others use go-zk whatever the choice). On Linux
	// over plain TCP, event loops run its sessions (one per two Ps, the
	// watch workload on one; leanloop_linux.go): one epoll wait for many
	// sessions, each turn's sends and reads in one batch
	// (internal/batchio). Elsewhere a session's own goroutine writes each
	// request frame and reads its reply (in watch, a watcher's goroutine
	// reads its notification off the socket).
	Lean Client = "lean"
)

// ParseClient checks a client name.
func ParseClient(s string) (Client, error) {
	switch Client(s) {
	case GoZK, Lean:
		return Client(s), nil
	}
	return "", fmt.Errorf("unknown client %q (want %s or %s)", s, GoZK, Lean)
}

// leanServes reports whether the lean client runs workload w.
func leanServes(w Workload) bool {
	switch w {
	case Create, Set, Get, Mixed, WatchFanout:
		return true
	}
	return false
}

// leanMaxFrame bounds a reply frame the lean client accepts.
const leanMaxFrame = 4 << 20

// errLeanXid is a reply whose xid is not the request's.
var errLeanXid = errors.New("loadgen: lean client: reply xid does not match the request's")

// leanConn is one session of the lean client: one request outstanding at a
// time, written and answered on the caller's goroutine. It sends no pings,
// so it must not idle for a third of its session timeout (a closed-loop
// worker never does, nor a watcher of the watch workload, notified every
// round). A frame with the notification xid (-1) is a watch event: read
// while a reply is awaited it is kept for nextEvent; any other frame is the
// reply to the request outstanding.
type leanConn struct {
	nc   net.Conn
	br   *bufio.Reader
	xid  int32
	out  []byte // the request frame being built
	in   []byte // the reply frame's buffer
	zxid int64  // the last zxid a reply carried
	// events are the notifications read while awaiting a reply, oldest
	// first, not yet taken by nextEvent.
	events []proto.WatcherEvent
}

// dialLean opens a session on addr and waits for the server to grant it.
func dialLean(ctx context.Context, addr string, timeout time.Duration, tlsCfg *tls.Config) (*leanConn, error) {
	d := net.Dialer{Timeout: timeout}
	var nc net.Conn
	var err error
	if tlsCfg != nil {
		td := tls.Dialer{NetDialer: &d, Config: tlsCfg}
		nc, err = td.DialContext(ctx, "tcp", addr)
	} else {
		nc, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("loadgen: lean client: dial %s: %w", addr, err)
	}
	c := &leanConn{nc: nc, br: newReader(nc), out: make([]byte, 0, 512), in: make([]byte, 0, 512)}
	if err := c.handshake(ctx, timeout); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("loadgen: lean client: session on %s: %w", addr, err)
	}
	return c, nil
}

// newReader buffers a lean session's replies: one read syscall takes a
// whole small reply frame.
func newReader(nc net.Conn) *bufio.Reader { return bufio.NewReaderSize(nc, 4096) }

// handshake sends the ConnectRequest and reads the ConnectResponse.
func (c *leanConn) handshake(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.nc.SetDeadline(deadline)
	defer func() { _ = c.nc.SetDeadline(time.Time{}) }()
	req := proto.ConnectRequest{TimeOut: int32(timeout / time.Millisecond), Passwd: make([]byte, 16), HasReadOnly: true}
	if _, err := c.nc.Write(proto.AppendRecords(nil, &req)); err != nil {
		return fmt.Errorf("write ConnectRequest: %w", err)
	}
	body, err := proto.ReadFrame(c.br, nil, leanMaxFrame)
	if err != nil {
		return fmt.Errorf("read ConnectResponse: %w", err)
	}
	var resp proto.ConnectResponse
	if err := proto.Unmarshal(body, &resp); err != nil {
		return fmt.Errorf("decode ConnectResponse: %w", err)
	}
	if resp.TimeOut <= 0 || resp.SessionID == 0 {
		return errors.New("the server refused the session")
	}
	return nil
}

// Close ends the session (closeSession first, so it does not linger until
// its timeout) and the connection.
func (c *leanConn) Close() {
	_ = c.nc.SetDeadline(time.Now().Add(2 * time.Second))
	_, _ = c.call(proto.OpCloseSession, nil)
	_ = c.nc.Close()
}

// begin starts a request frame: the length (patched by send) and the
// header.
func (c *leanConn) begin(op proto.OpCode) *proto.Encoder {
	c.xid++
	e := proto.NewEncoder(append(c.out[:0], 0, 0, 0, 0))
	e.WriteInt(c.xid)
	e.WriteInt(int32(op))
	return e
}

// call sends the frame e holds (nil: a request without a body) and returns
// the reply's body, valid until the next call.
func (c *leanConn) call(op proto.OpCode, e *proto.Encoder) ([]byte, error) {
	if e == nil {
		e = c.begin(op)
	}
	frame := finishFrame(e)
	c.out = frame[:0]
	if _, err := c.nc.Write(frame); err != nil {
		return nil, fmt.Errorf("loadgen: lean client: write: %w", err)
	}
	var body []byte
	var xid int32
	for {
		var err error
		if body, xid, err = c.readFrame(); err != nil {
			return nil, err
		}
		if xid != proto.XidNotification {
			break
		}
		ev, err := decodeEvent(body)
		if err != nil {
			return nil, err
		}
		c.events = append(c.events, ev)
	}
	return c.reply(body, xid)
}

// finishFrame patches the length of the request frame e holds and returns
// the frame.
func finishFrame(e *proto.Encoder) []byte {
	frame := e.Bytes()
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	return frame
}

// reply checks a reply frame's header (body, of at least 16 bytes, and its
// xid) against the request outstanding and returns what follows the header:
// a server's error code is returned as a proto.ErrCode.
func (c *leanConn) reply(body []byte, xid int32) ([]byte, error) {
	zxid := int64(binary.BigEndian.Uint64(body[4:]))
	code := proto.ErrCode(int32(binary.BigEndian.Uint32(body[12:])))
	if xid != c.xid {
		return nil, fmt.Errorf("%w (%d, want %d)", errLeanXid, xid, c.xid)
	}
	if zxid > c.zxid {
		c.zxid = zxid
	}
	if code != proto.ErrOK {
		return nil, code
	}
	return body[16:], nil
}

// readFrame reads the next frame from the server and returns its body
// (header included, valid until the next read) and its xid.
func (c *leanConn) readFrame() ([]byte, int32, error) {
	body, err := proto.ReadFrame(c.br, c.in, leanMaxFrame)
	if err != nil {
		return nil, 0, fmt.Errorf("loadgen: lean client: read: %w", err)
	}
	if cap(body) <= 64<<10 {
		c.in = body[:0]
	}
	return replyXid(body)
}

// replyXid returns a reply frame's xid, or an error if the frame is
// shorter than a reply header.
func replyXid(body []byte) ([]byte, int32, error) {
	if len(body) < 16 {
		return nil, 0, fmt.Errorf("loadgen: lean client: reply of %d bytes, shorter than its header", len(body))
	}
	return body, int32(binary.BigEndian.Uint32(body)), nil
}

// decodeEvent reads a notification frame's WatcherEvent; the frame's
// error code must be ok.
func decodeEvent(body []byte) (proto.WatcherEvent, error) {
	var ev proto.WatcherEvent
	if code := proto.ErrCode(int32(binary.BigEndian.Uint32(body[12:]))); code != proto.ErrOK {
		return ev, fmt.Errorf("loadgen: lean client: notification with error %w", code)
	}
	d := proto.NewDecoder(body[16:])
	if err := ev.Decode(d); err != nil {
		return ev, fmt.Errorf("loadgen: lean client: notification: %w", err)
	}
	if d.Remaining() != 0 {
		return ev, fmt.Errorf("loadgen: lean client: notification with %d bytes after its WatcherEvent", d.Remaining())
	}
	return ev, nil
}

// nextEvent returns the oldest watch notification not taken yet, reading
// the socket until one comes. With no request outstanding, any frame but a
// notification is an error.
func (c *leanConn) nextEvent() (proto.WatcherEvent, error) {
	if len(c.events) > 0 {
		ev := c.events[0]
		c.events = c.events[1:]
		if len(c.events) == 0 {
			c.events = nil
		}
		return ev, nil
	}
	body, xid, err := c.readFrame()
	if err != nil {
		return proto.WatcherEvent{}, err
	}
	if xid != proto.XidNotification {
		return proto.WatcherEvent{}, fmt.Errorf("%w (%d with no request outstanding)", errLeanXid, xid)
	}
	return decodeEvent(body)
}

// create makes a persistent znode.
func (c *leanConn) create(path string, data []byte) error {
	e := c.begin(proto.OpCreate)
	e.WriteString(path)
	appendCreateTail(e, data)
	body, err := c.call(proto.OpCreate, e)
	if err != nil {
		return err
	}
	return checkCreated(path, body)
}

// appendCreateTail writes a create request's fields after its path.
func appendCreateTail(e *proto.Encoder, data []byte) {
	e.WriteBuffer(data)
	proto.WriteACLs(e, proto.OpenACLUnsafe) // what the go-zk runs create with
	e.WriteInt(0)
}

// checkCreated checks a create reply's body (after the header): the path
// created, path.
func checkCreated[S string | []byte](path S, body []byte) error {
	if len(body) == 4+len(path) && int(binary.BigEndian.Uint32(body)) == len(path) && string(body[4:]) == string(path) {
		return nil // the common case, without the decoder's string
	}
	d := proto.NewDecoder(body)
	if got := d.ReadString(); d.Err() != nil || got != string(path) {
		return fmt.Errorf("loadgen: lean client: create %s answered %q (%v)", path, got, d.Err())
	}
	return nil
}

// set overwrites a znode's data, any version.
func (c *leanConn) set(path string, data []byte) error {
	e := c.begin(proto.OpSetData)
	e.WriteString(path)
	appendSetTail(e, data)
	body, err := c.call(proto.OpSetData, e)
	if err != nil {
		return err
	}
	return checkSet(body)
}

// appendSetTail writes a setData request's fields after its path.
func appendSetTail(e *proto.Encoder, data []byte) {
	e.WriteBuffer(data)
	e.WriteInt(-1)
}

// checkSet checks a setData reply's body: a Stat.
func checkSet(body []byte) error {
	if len(body) != statSize {
		return fmt.Errorf("loadgen: lean client: setData answered %d bytes, want a Stat (%d)", len(body), statSize)
	}
	return nil
}

// get reads a znode's data without a watch and checks its length.
func (c *leanConn) get(path string, want int) error { return c.getData(path, want, false) }

// getW is get setting a data watch on the znode.
func (c *leanConn) getW(path string, want int) error { return c.getData(path, want, true) }

func (c *leanConn) getData(path string, want int, watch bool) error {
	e := c.begin(proto.OpGetData)
	e.WriteString(path)
	e.WriteBool(watch)
	body, err := c.call(proto.OpGetData, e)
	if err != nil {
		return err
	}
	return checkGot(body, want)
}

// checkGot checks a getData reply's body: want bytes of data and a Stat.
func checkGot(body []byte, want int) error {
	d := proto.NewDecoder(body)
	n := int(d.ReadInt())
	if d.Err() != nil || n != want || len(body) != 4+max(n, 0)+statSize {
		return fmt.Errorf("loadgen: lean client: getData answered %d bytes of data in %d, want %d", n, len(body), want)
	}
	return nil
}

// statSize is the encoded size of a Stat.
const statSize = 68
