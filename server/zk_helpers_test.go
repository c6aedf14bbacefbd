package server_test

// Shared helpers of the end-to-end tests: an in-process server, go-zk
// clients, a raw protocol client built on package proto, and a TCP proxy the
// tests can cut to simulate network failures.

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/internal/testserver"
	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/server"
)

const (
	// superDigest is the digest of super:admin.
	superDigest = "super:xQJmxLMiHGwaqBvst5y6rkB6HQs="
	// waitTimeout bounds every poll; generous because the suite runs with
	// -race on busy machines.
	waitTimeout = 10 * time.Second
	// clientSessionTimeout is what ordinary go-zk clients ask for.
	clientSessionTimeout = 10 * time.Second
)

// ---------------------------------------------------------------------------
// Logging into the test log, safely after the test has finished.

// testLog forwards lines to t.Logf until the test's cleanup runs (see
// testserver.LogWriter).
type testLog = testserver.LogWriter

func newTestLog(t testing.TB) *testLog { return testserver.NewLogWriter(t) }

// zkLogger is the go-zk logger: it prefixes the lines so they can be told
// apart from the server's.
type zkLogger struct{ l *testLog }

func (z zkLogger) Printf(format string, args ...any) { z.l.Printf("zk client: "+format, args...) }

func newServerLogger(t testing.TB) *slog.Logger { return testserver.Logger(t, slog.LevelInfo) }

// ---------------------------------------------------------------------------
// Server.

// testConfig is the configuration every test starts from: a private data
// directory, a free port on loopback, short ticks so expiry is fast, and
// long maximum timeouts so busy machines do not expire ordinary clients.
func testConfig(t testing.TB) server.Config {
	cfg := server.DefaultConfig()
	dir := t.TempDir()
	cfg.DataDir, cfg.DataLogDir = dir, dir
	cfg.ClientPort = 0
	cfg.ClientPortAddress = "127.0.0.1"
	cfg.TickTime = 100
	cfg.MinSessionTimeout = 200
	cfg.MaxSessionTimeout = 30000
	cfg.MaxClientCnxns = 0
	cfg.FourLetterWords = map[string]bool{"ruok": true, "srvr": true}
	cfg.SuperDigest = superDigest
	cfg.ExtendedTypes = true
	// The admin listener on a free loopback port, so parallel tests never
	// fight over 7181.
	cfg.AdminServerAddress, cfg.AdminServerPort = "127.0.0.1", 0
	return cfg
}

// startServer runs a server until the test ends (or stop is called) and
// returns its address. stop cancels Serve and waits for it to return.
func startServer(t testing.TB, mutate func(*server.Config)) (addr string, stop func()) {
	t.Helper()
	cfg := testConfig(t)
	if mutate != nil {
		mutate(&cfg)
	}
	return startServerCfg(t, cfg)
}

func startServerCfg(t testing.TB, cfg server.Config) (addr string, stop func()) {
	t.Helper()
	srv := testserver.StartLogged(t, cfg, newServerLogger(t))
	return srv.Addr, srv.Stop
}

// ---------------------------------------------------------------------------
// go-zk clients.

// connect opens a go-zk session to addr and waits until it has a session.
func connect(t testing.TB, addr string) *zk.Conn {
	t.Helper()
	c, _ := connectTimeout(t, addr, clientSessionTimeout)
	return c
}

// connectTimeout is connect with a chosen session timeout; it also returns
// the session event channel.
func connectTimeout(t testing.TB, addr string, timeout time.Duration) (*zk.Conn, <-chan zk.Event) {
	t.Helper()
	l := newTestLog(t)
	c, ev, err := zk.Connect([]string{addr}, timeout, zk.WithLogger(zkLogger{l}), zk.WithLogInfo(false))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	waitFor(t, "go-zk session established", func() bool { return c.State() == zk.StateHasSession })
	return c, ev
}

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", waitTimeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// recvEvent waits for one event on a go-zk watch channel.
func recvEvent(t testing.TB, ch <-chan zk.Event, what string) zk.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		require.True(t, ok, "%s: watch channel closed without an event", what)
		return ev
	case <-time.After(waitTimeout):
		t.Fatalf("%s: no watch event within %v", what, waitTimeout)
		return zk.Event{}
	}
}

// requireNoEvent asserts that nothing is (yet) on a go-zk watch channel.
func requireNoEvent(t testing.TB, ch <-chan zk.Event, what string) {
	t.Helper()
	select {
	case ev := <-ch:
		t.Fatalf("%s: unexpected event %+v", what, ev)
	default:
	}
}

// requireHealthy checks that a brand new client can use the server.
func requireHealthy(t testing.TB, addr string) {
	t.Helper()
	c := newSession(t, addr, 10000)
	var resp proto.GetChildrenResponse
	h := c.call(proto.OpGetChildren, &proto.GetChildrenRequest{Path: "/"}, &resp)
	require.Equal(t, proto.ErrOK, h.Err, "healthy client getChildren /")
	require.Contains(t, resp.Children, "zookeeper")
	c.close()
}

// ---------------------------------------------------------------------------
// Raw protocol client.

const rawMaxFrame = 16 << 20

// rawClient speaks the wire protocol directly, for what go-zk cannot send.
type rawClient struct {
	t         testing.TB
	nc        net.Conn
	xid       int32
	events    []proto.WatcherEvent // notifications read while waiting for replies
	sessionID int64
	passwd    []byte
	timeout   int32
	lastZxid  int64
}

// dialRaw opens a TCP connection without a handshake.
func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, waitTimeout)
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	return &rawClient{t: t, nc: nc}
}

// newSession dials and creates a new session with the given timeout (ms).
func newSession(t testing.TB, addr string, timeoutMs int32) *rawClient {
	t.Helper()
	c := dialRaw(t, addr)
	resp, _ := c.handshake(proto.ConnectRequest{TimeOut: timeoutMs, Passwd: make([]byte, 16)})
	require.NotZero(t, resp.SessionID, "new session refused")
	require.Positive(t, resp.TimeOut, "new session refused")
	return c
}

func (c *rawClient) close() { _ = c.nc.Close() }

// write sends raw bytes.
func (c *rawClient) write(b []byte) {
	c.t.Helper()
	_ = c.nc.SetWriteDeadline(time.Now().Add(waitTimeout))
	_, err := c.nc.Write(b)
	require.NoError(c.t, err)
}

// readFrame reads one frame within d.
func (c *rawClient) readFrame(d time.Duration) ([]byte, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(d))
	body, err := proto.ReadFrame(c.nc, nil, rawMaxFrame)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), body...), nil
}

// handshake sends req and decodes the ConnectResponse. It returns the
// response and the length of its frame body.
func (c *rawClient) handshake(req proto.ConnectRequest) (proto.ConnectResponse, int) {
	c.t.Helper()
	c.write(proto.AppendRecords(nil, &req))
	body, err := c.readFrame(waitTimeout)
	require.NoError(c.t, err, "reading ConnectResponse")
	var resp proto.ConnectResponse
	require.NoError(c.t, proto.Unmarshal(body, &resp))
	if resp.SessionID != 0 {
		c.sessionID, c.passwd, c.timeout = resp.SessionID, resp.Passwd, resp.TimeOut
	}
	return resp, len(body)
}

// send writes one request and returns its xid.
func (c *rawClient) send(op proto.OpCode, rec proto.Record) int32 {
	c.xid++
	c.sendXid(c.xid, op, rec)
	return c.xid
}

func (c *rawClient) sendXid(xid int32, op proto.OpCode, rec proto.Record) {
	c.t.Helper()
	c.write(proto.EncodeRequest(proto.RequestHeader{Xid: xid, Type: op}, rec))
}

// recvReply reads frames until the reply with xid arrives; notifications on
// the way are kept in c.events. resp is decoded when the reply has no error.
func (c *rawClient) recvReply(xid int32, resp proto.Record) proto.ReplyHeader {
	c.t.Helper()
	for {
		body, err := c.readFrame(waitTimeout)
		require.NoError(c.t, err, "waiting for reply to xid %d", xid)
		if c.takeNotification(body) {
			continue
		}
		var hdr proto.ReplyHeader
		require.NoError(c.t, proto.Unmarshal(body, &hdr))
		require.Equal(c.t, xid, hdr.Xid, "replies must come in request order")
		if hdr.Zxid > c.lastZxid {
			c.lastZxid = hdr.Zxid
		}
		if hdr.Err == proto.ErrOK && resp != nil {
			_, err := proto.DecodeReply(body, resp)
			require.NoError(c.t, err, "decoding reply body to xid %d", xid)
		}
		return hdr
	}
}

// takeNotification stores body in c.events if it is a notification.
func (c *rawClient) takeNotification(body []byte) bool {
	var hdr proto.ReplyHeader
	if proto.Unmarshal(body, &hdr) != nil || hdr.Xid != proto.XidNotification {
		return false
	}
	var ev proto.WatcherEvent
	_, err := proto.DecodeReply(body, &ev)
	require.NoError(c.t, err, "decoding notification")
	require.Equal(c.t, proto.StateSyncConnected, ev.State, "notification state")
	c.events = append(c.events, ev)
	return true
}

// call sends a request and waits for its reply.
func (c *rawClient) call(op proto.OpCode, rec, resp proto.Record) proto.ReplyHeader {
	c.t.Helper()
	return c.recvReply(c.send(op, rec), resp)
}

// ping sends a ping and returns the reply header.
func (c *rawClient) ping() proto.ReplyHeader {
	c.t.Helper()
	c.sendXid(proto.XidPing, proto.OpPing, nil)
	return c.recvReply(proto.XidPing, nil)
}

// nextEvent returns the oldest notification, reading frames for up to
// waitTimeout if none has arrived yet.
func (c *rawClient) nextEvent() proto.WatcherEvent {
	c.t.Helper()
	for len(c.events) == 0 {
		body, err := c.readFrame(waitTimeout)
		require.NoError(c.t, err, "waiting for a notification")
		require.True(c.t, c.takeNotification(body), "expected a notification, got another frame")
	}
	ev := c.events[0]
	c.events = c.events[1:]
	return ev
}

// takeEvents returns and clears the notifications read so far.
func (c *rawClient) takeEvents() []proto.WatcherEvent {
	evs := c.events
	c.events = nil
	return evs
}

// expectClosed reads until the server closes the connection and returns the
// frames it sent before closing. It fails if the connection stays open for
// waitTimeout.
func (c *rawClient) expectClosed() [][]byte {
	c.t.Helper()
	var frames [][]byte
	deadline := time.Now().Add(waitTimeout)
	for {
		_ = c.nc.SetReadDeadline(deadline)
		body, err := proto.ReadFrame(c.nc, nil, rawMaxFrame)
		if err == nil {
			frames = append(frames, append([]byte(nil), body...))
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.t.Fatalf("connection still open after %v (frames so far: %d)", waitTimeout, len(frames))
		}
		// EOF, unexpected EOF or a reset: the server closed it.
		return frames
	}
}

// ---------------------------------------------------------------------------
// A TCP proxy the tests can cut.

// proxy forwards connections to target. cut closes every live connection;
// while blocked, new connections are accepted and closed at once.
type proxy struct {
	t       testing.TB
	ln      net.Listener
	target  string
	mu      sync.Mutex
	blocked bool
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{t: t, ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.blocked {
			p.mu.Unlock()
			_ = in.Close()
			continue
		}
		out, err := net.DialTimeout("tcp", p.target, waitTimeout) // under mu: target may change
		if err != nil {
			p.mu.Unlock()
			_ = in.Close()
			continue
		}
		p.conns[in], p.conns[out] = struct{}{}, struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			_, _ = io.Copy(dst, src)
			_ = dst.Close()
			_ = src.Close()
		}
		go pipe(in, out)
		go pipe(out, in)
	}
}

// cut closes every forwarded connection and refuses new ones until restore.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = map[net.Conn]struct{}{}
}

// retarget sends new connections to another address.
func (p *proxy) retarget(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = target
}

// restore lets new connections through again.
func (p *proxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = false
}

func (p *proxy) close() {
	_ = p.ln.Close()
	p.cut()
	p.wg.Wait()
}

// ---------------------------------------------------------------------------
// Small utilities.

// fourLetter sends a four-letter word and returns the whole reply.
func fourLetter(t testing.TB, addr, word string) string {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, waitTimeout)
	require.NoError(t, err)
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(waitTimeout))
	_, err = io.WriteString(nc, word)
	require.NoError(t, err)
	out, err := io.ReadAll(nc)
	require.NoError(t, err, "reading the %s reply", word)
	return string(out)
}

// mustCreate creates a persistent node with the open ACL.
func mustCreate(t testing.TB, c *zk.Conn, path string, data []byte, flags int32) string {
	t.Helper()
	name, err := c.Create(path, data, flags, zk.WorldACL(zk.PermAll))
	require.NoError(t, err, "create %s", path)
	return name
}

func seqName(prefix string, n int) string { return fmt.Sprintf("%s%010d", prefix, n) }
