package sim

import (
	"fmt"

	"github.com/zabkeeper/zabkeeper/proto"
)

// conn is one client connection to one server incarnation. Packets travel
// each way in order, with latency, as over TCP.
type conn struct {
	id     uint64
	cl     *client
	srv    *server
	srvGen uint64
	// open is cleared when either side closes it; later packets are lost.
	open bool
	// atServer is set once the server registered the connection.
	atServer             bool
	toSrvLast, toCliLast int64
	// watches are the connection's unfired watches (watch.go).
	watches map[watchKey]*watchReg
	// roServer is set once the server answered the handshake as a
	// read-only server; roClient once that answer reached the client
	// (readonly.go).
	roServer, roClient bool
}

type pktKind uint8

const (
	pktConnect pktKind = iota + 1 // client → server: handshake
	pktRequest                    // client → server: request
	pktFin                        // client → server: the client closed
	pktOutput                     // server → client: an Output
	pktReset                      // server → client: the connection died
)

// packet is one thing on a client connection.
type packet struct {
	kind pktKind
	req  *proto.ConnectRequest
	xid  int32
	op   proto.OpCode
	body proto.Record
	out  *Output
	why  string
}

// client is one ZooKeeper client as a goroutine-free state machine: it
// connects to a random server, runs a random workload, pings, times out and
// moves to another server, and starts a new session when its session
// expires.
type client struct {
	id int
	// addr is the client's address as servers see it (address).
	addr       string
	sess       int64
	passwd     []byte
	wantTO     int32 // requested session timeout, ms
	timeout    int32 // negotiated, ms
	cn         *conn
	connecting bool
	connStart  int64
	lastZxid   int64
	xid        int32
	pending    []*pend
	lastSend   int64
	lastRecv   int64
	pausedTill int64
	maxOut     int
	seq        int
	rec        *sessionRecord
	versions   map[string]int32
	// liveness phase: the first op issued in it and whether one succeeded.
	liveDone bool
	// replyZxid is the newest reply zxid of the session, for the
	// monotonicity check.
	replyZxid int64
	scheduled int64 // time of the pending evClientRun, or -1
	// wakeSeq numbers wake-ups; only the newest scheduled one runs.
	wakeSeq uint64
	// closing is set once closeSession is sent: nothing follows it.
	closing bool
	// ro marks a read-only client (readonly.go): it allows read-only
	// access, starts a new session on every connection and stays out of
	// the linearizability history.
	ro bool
}

// pend is a request awaiting its reply.
type pend struct {
	xid  int32
	op   proto.OpCode
	rec  *opRecord // nil for pings and read-only clients' requests
	live bool      // issued in the liveness phase
	// body is a read-only client's request, for the checks of its reply.
	body proto.Record
}

const pingXid = -2

var (
	keys       = []string{"/a", "/b", "/c", "/a/x", "/a/y", "/b/x"}
	seqParents = []string{"/a/s-", "/b/s-", "/s-"}
)

// address is the client's IP address, formatted once.
func (c *client) address() string {
	if c.addr == "" {
		c.addr = fmt.Sprintf("10.0.0.%d", c.id)
	}
	return c.addr
}

func (sm *Sim) newClient(id int) *client {
	return &client{
		id:        id,
		wantTO:    int32(1000 + sm.rng.IntN(3001)),
		maxOut:    1 + sm.rng.IntN(3),
		versions:  map[string]int32{},
		scheduled: -1,
	}
}

// wake schedules the client to run at t unless it runs earlier already.
func (sm *Sim) wake(c *client, t int64) {
	if c.scheduled >= 0 && c.scheduled <= t {
		return
	}
	c.scheduled = t
	c.wakeSeq++
	sm.schedule(&event{at: t, kind: evClientRun, cl: c, gen: c.wakeSeq})
}

func (c *client) readTimeout() int64 {
	to := c.timeout
	if to == 0 {
		to = c.wantTO
	}
	return int64(to) * 1000 * 2 / 3
}

// run is the client's main step.
func (sm *Sim) runClient(c *client) {
	c.scheduled = -1
	now := sm.now
	if now < c.pausedTill {
		sm.wake(c, c.pausedTill)
		return
	}
	switch {
	case c.cn == nil:
		sm.clientConnect(c)
	case c.connecting:
		if now-c.connStart >= c.readTimeout()/2 {
			sm.clientDrop(c, "handshake timed out")
		}
	default:
		if now-c.lastRecv >= c.readTimeout() {
			sm.clientDrop(c, "read timed out")
			break
		}
		if c.closing && !sm.opts.pipelineAfterClose {
			break
		}
		if len(c.pending) < c.maxOut && sm.wantsOp(c) {
			if c.ro {
				sm.issueReadOnly(c)
			} else {
				sm.issue(c)
			}
		} else if now-c.lastSend >= int64(c.timeout)*1000/3 && len(c.pending) < 16 {
			sm.send(c, &pend{xid: pingXid, op: proto.OpPing}, &proto.EmptyRecord{})
		}
	}
	next := now + 1000 + sm.rng.Int64N(sm.prof.think)
	if c.cn == nil {
		next = now + 10_000 + sm.rng.Int64N(90_000) // reconnect backoff
	}
	sm.wake(c, next)
}

// wantsOp reports whether the client issues a workload op now.
func (sm *Sim) wantsOp(c *client) bool {
	if sm.phase == phaseLiveness {
		return !c.liveDone
	}
	return sm.phase == phaseFaults
}

// clientConnect opens a connection to a random server.
func (sm *Sim) clientConnect(c *client) {
	s := sm.servers[sm.rng.IntN(len(sm.servers))]
	sm.connSeq++
	cn := &conn{id: sm.connSeq, cl: c, srv: s, srvGen: s.gen, open: true}
	c.cn, c.connecting, c.connStart = cn, true, sm.now
	c.pending = nil
	if c.ro {
		c.sess, c.passwd, c.replyZxid = 0, nil, 0
	}
	req := &proto.ConnectRequest{LastZxidSeen: c.lastZxid, TimeOut: c.wantTO, SessionID: c.sess, Passwd: c.passwd,
		HasReadOnly: c.ro, ReadOnly: c.ro}
	if c.passwd == nil {
		req.Passwd = make([]byte, 16)
	}
	if sm.traceOn(s.id) {
		sm.tracef(s.id, "c%d connect to n%d (conn %d, session 0x%x, seen 0x%x)", c.id, s.id, cn.id, c.sess, c.lastZxid)
	}
	sm.hash.add(20, int64(c.id), s.id, int64(cn.id))
	sm.toServer(cn, &packet{kind: pktConnect, req: req})
}

// clientDrop closes the client's connection from its side: every request
// in flight gets an unknown outcome.
func (sm *Sim) clientDrop(c *client, why string) {
	cn := c.cn
	if cn == nil {
		return
	}
	sm.tracef(cn.srv.id, "c%d drops conn %d to n%d: %s", c.id, cn.id, cn.srv.id, why)
	sm.hash.add(21, int64(c.id), int64(cn.id))
	sm.toServer(cn, &packet{kind: pktFin})
	cn.open = false
	sm.forgetPending(c)
	c.cn, c.connecting = nil, false
}

// forgetPending leaves every request in flight with an unknown outcome. A
// client that lost its connection while closing its session gives the
// session up: it either closed or will expire.
func (sm *Sim) forgetPending(c *client) {
	for _, p := range c.pending {
		if p.rec != nil {
			p.rec.Return = -1
		}
	}
	c.pending = nil
	if c.closing {
		sm.endSession(c, false)
	}
}

// send puts a request on the wire.
func (sm *Sim) send(c *client, p *pend, body proto.Record) {
	c.pending = append(c.pending, p)
	c.lastSend = sm.now
	if p.rec != nil {
		p.rec.Call = sm.now
		p.rec.Return = -1
		sm.hist.ops = append(sm.hist.ops, p.rec)
		if sm.traceOn(c.cn.srv.id) {
			sm.tracef(c.cn.srv.id, "c%d → n%d xid %d %s %s", c.id, c.cn.srv.id, p.xid, p.op, describeReq(body))
		}
	}
	sm.hash.add(22, int64(c.id), int64(p.xid), int64(p.op))
	sm.toServer(c.cn, &packet{kind: pktRequest, xid: p.xid, op: p.op, body: body})
}

// request sends a recorded workload request.
func (sm *Sim) request(c *client, op proto.OpCode, body proto.Record) {
	c.xid++
	rec := &opRecord{Client: c.id, Session: c.sess, Server: c.cn.srv.id, Op: op, Xid: c.xid, Req: body, SyncFloor: sm.check.ackedMax}
	sm.send(c, &pend{xid: c.xid, op: op, rec: rec, live: sm.phase == phaseLiveness}, body)
}

// toServer sends a packet from the client side of cn.
func (sm *Sim) toServer(cn *conn, p *packet) {
	if !cn.open {
		return
	}
	at := max(sm.now+sm.clientLatency(), cn.toSrvLast)
	cn.toSrvLast = at
	sm.schedule(&event{at: at, kind: evToServer, cn: cn, pkt: p})
}

// toClient sends a packet from the server side of cn.
func (sm *Sim) toClient(cn *conn, p *packet) {
	at := max(sm.now+sm.clientLatency(), cn.toCliLast)
	cn.toCliLast = at
	sm.schedule(&event{at: at, kind: evToClient, cn: cn, pkt: p})
}

func (sm *Sim) clientLatency() int64 { return 200 + sm.rng.Int64N(sm.prof.netLatency+1) }

// atServer handles a packet arriving at a server.
func (sm *Sim) atServer(cn *conn, p *packet) {
	s := cn.srv
	if p.kind == pktConnect {
		cn.srvGen = s.gen // the connection is made to whatever runs now
	}
	if !s.up {
		if p.kind != pktFin {
			sm.toClient(cn, &packet{kind: pktReset, why: "connection refused"})
		}
		return
	}
	if s.gen != cn.srvGen {
		return // the server restarted since: this connection is gone
	}
	local := s.localMs(sm.now)
	switch p.kind {
	case pktConnect:
		cn.atServer = true
		s.conns[cn.id] = cn
		sm.hash.add(30, s.id, int64(cn.id))
		s.r.Connect(cn.id, p.req, cn.cl.address(), local)
	case pktRequest:
		if s.conns[cn.id] == nil {
			return
		}
		sm.hash.add(31, s.id, int64(cn.id), int64(p.xid))
		s.r.Submit(cn.id, p.xid, p.op, p.body, local)
	case pktFin:
		if s.conns[cn.id] == nil {
			return
		}
		delete(s.conns, cn.id)
		if cn.roServer {
			s.roConns--
		}
		sm.hash.add(32, s.id, int64(cn.id))
		s.r.Disconnect(cn.id)
	}
	sm.drive(s)
}

// serverOutput routes one replica output to its connection.
func (sm *Sim) serverOutput(s *server, o *Output) {
	if sm.adminOutput(s, o) {
		return
	}
	cn := s.conns[uint64(o.Conn)]
	if cn == nil {
		return // the connection closed already
	}
	sm.hash.add(33, s.id, int64(o.Conn), int64(o.Kind), int64(o.Header.Xid), o.Header.Zxid, int64(o.Header.Err))
	sm.toClient(cn, &packet{kind: pktOutput, out: o})
	if o.Kind == OutConnect && o.Connect != nil && o.Connect.ReadOnly && o.Connect.TimeOut > 0 {
		if !cn.roServer {
			s.roConns++
		}
		cn.roServer = true
		sm.report.Counters["read-only-sessions"]++
	}
	if o.Kind == OutClose {
		delete(s.conns, cn.id)
		if cn.roServer {
			s.roConns--
		}
		if sm.traceOn(s.id) {
			sm.tracef(s.id, "n%d closes conn %d of c%d: %s", s.id, cn.id, cn.cl.id, o.Reason)
		}
		s.closed = append(s.closed, cn.id)
	}
}

// closeConn kills a connection from outside (server crash, network fault).
func (sm *Sim) closeConn(cn *conn, why string, tellServer bool) {
	s := cn.srv
	if s.conns[cn.id] != nil {
		delete(s.conns, cn.id)
		if cn.roServer {
			s.roConns--
		}
		if tellServer && s.up {
			s.r.Disconnect(cn.id)
		}
	}
	sm.toClient(cn, &packet{kind: pktReset, why: why})
}

// atClient handles a packet arriving at a client.
func (sm *Sim) atClient(cn *conn, p *packet) {
	c := cn.cl
	if c.cn != cn {
		return // an old connection
	}
	if p.kind == pktReset {
		if sm.traceOn(cn.srv.id) {
			sm.tracef(cn.srv.id, "c%d conn %d to n%d reset: %s", c.id, cn.id, cn.srv.id, p.why)
		}
		sm.hash.add(40, int64(c.id), int64(cn.id))
		cn.open = false
		sm.forgetPending(c)
		c.cn, c.connecting = nil, false
		sm.wake(c, sm.now+10_000+sm.rng.Int64N(50_000))
		return
	}
	o := p.out
	c.lastRecv = sm.now
	sm.hash.add(41, int64(c.id), int64(o.Kind), int64(o.Header.Xid), o.Header.Zxid, int64(o.Header.Err))
	switch o.Kind {
	case OutConnect:
		sm.clientConnected(c, o.Connect)
	case OutReply:
		sm.clientReply(c, o)
	case OutEvent:
		if ev, ok := o.Body.(*proto.WatcherEvent); ok {
			if sm.traceOn(cn.srv.id) {
				sm.tracef(cn.srv.id, "c%d event %s %s at 0x%x", c.id, eventName(ev.Type), ev.Path, o.Header.Zxid)
			}
			sm.report.Counters["watch-events"]++
			sm.watchEvent(cn, o.Header.Zxid, ev)
		}
	case OutClose:
		sm.tracef(cn.srv.id, "c%d conn %d closed by n%d", c.id, cn.id, cn.srv.id)
		cn.open = false
		sm.forgetPending(c)
		c.cn, c.connecting = nil, false
		sm.wake(c, sm.now+10_000+sm.rng.Int64N(50_000))
	}
}

func (sm *Sim) clientConnected(c *client, r *proto.ConnectResponse) {
	if r == nil {
		return
	}
	if r.SessionID == 0 || r.TimeOut <= 0 {
		sm.tracef(c.cn.srv.id, "c%d session 0x%x expired (told by n%d)", c.id, c.sess, c.cn.srv.id)
		sm.endSession(c, true)
		sm.clientDrop(c, "session expired")
		sm.wake(c, sm.now+1000)
		return
	}
	if c.sess != 0 && r.SessionID != c.sess {
		sm.violation("c%d reconnected with session 0x%x and got session 0x%x", c.id, c.sess, r.SessionID)
	}
	if c.ro {
		c.sess, c.passwd, c.timeout = r.SessionID, r.Passwd, r.TimeOut
		c.connecting, c.lastRecv = false, sm.now
		c.cn.roClient = r.ReadOnly
		sm.tracef(c.cn.srv.id, "c%d connected to n%d: session 0x%x, read-only %v", c.id, c.cn.srv.id, c.sess, r.ReadOnly)
		return
	}
	if c.sess == 0 {
		c.rec = &sessionRecord{Client: c.id, Session: r.SessionID, Start: sm.now, End: -1}
		sm.hist.sessions = append(sm.hist.sessions, c.rec)
		c.replyZxid = 0
	}
	c.sess, c.passwd, c.timeout = r.SessionID, r.Passwd, r.TimeOut
	c.connecting = false
	c.lastRecv = sm.now
	c.rec.LastHeard = sm.now
	sm.tracef(c.cn.srv.id, "c%d connected to n%d: session 0x%x timeout %dms", c.id, c.cn.srv.id, c.sess, c.timeout)
}

// endSession forgets the client's session: the next connect starts anew.
func (sm *Sim) endSession(c *client, expired bool) {
	if c.rec != nil {
		c.rec.End = sm.now
		c.rec.Expired = expired
		c.rec.Closed = !expired
	}
	c.sess, c.passwd, c.timeout, c.rec, c.closing = 0, nil, 0, nil, false
	c.versions = map[string]int32{}
}

func (sm *Sim) clientReply(c *client, o *Output) {
	if len(c.pending) == 0 || c.pending[0].xid != o.Header.Xid {
		want := int32(0)
		if len(c.pending) > 0 {
			want = c.pending[0].xid
		}
		sm.violation("c%d got reply xid %d, expected %d (replies out of order)", c.id, o.Header.Xid, want)
		return
	}
	p := c.pending[0]
	c.pending = c.pending[1:]
	if z := o.Header.Zxid; z > 0 {
		sm.watchMissed(c.cn, z, func() string { return fmt.Sprintf("got the reply to xid %d at 0x%x", o.Header.Xid, z) })
		if z < c.replyZxid {
			sm.violation("c%d session 0x%x went back in time: reply zxid 0x%x after 0x%x", c.id, c.sess, z, c.replyZxid)
		}
		c.replyZxid = max(c.replyZxid, z)
		if !c.ro {
			sm.check.ackedMax = max(sm.check.ackedMax, z)
		}
		c.lastZxid = max(c.lastZxid, z)
	}
	if c.ro && p.body != nil {
		sm.checkReadOnlyReply(c, p, o)
		if o.Header.Zxid > 0 {
			sm.watchSet(c.cn, &opRecord{Req: p.body, Err: o.Header.Err, Zxid: o.Header.Zxid})
		}
	}
	if c.rec != nil {
		c.rec.LastHeard = sm.now
	}
	if p.rec != nil {
		p.rec.Return = sm.now
		p.rec.Err = o.Header.Err
		p.rec.Resp = o.Body
		p.rec.Zxid = o.Header.Zxid
		sm.tracef(c.cn.srv.id, "c%d ← n%d xid %d %s %s zxid 0x%x", c.id, c.cn.srv.id, p.xid, p.op, o.Header.Err, o.Header.Zxid)
		if p.op == proto.OpSync && o.Header.Err == proto.ErrOK && o.Header.Zxid < p.rec.SyncFloor {
			sm.violation("sync: c%d's sync on n%d answered at 0x%x, below 0x%x that clients saw acknowledged before it was called (ZOOKEEPER-1675)",
				c.id, c.cn.srv.id, o.Header.Zxid, p.rec.SyncFloor)
		}
		sm.learn(c, p.rec)
		if o.Header.Zxid > 0 {
			sm.watchSet(c.cn, p.rec)
		}
		if p.live && o.Header.Err != proto.ErrSessionExpired && o.Header.Err != proto.ErrConnectionLoss {
			c.liveDone = true
		}
	}
	switch {
	case o.Header.Err == proto.ErrSessionExpired:
		sm.endSession(c, true)
		sm.clientDrop(c, "session expired")
	case p.op == proto.OpCloseSession:
		sm.endSession(c, false)
		sm.clientDrop(c, "session closed")
	}
}

// learn remembers versions from replies for later conditional ops.
func (sm *Sim) learn(c *client, r *opRecord) {
	if r.Err != proto.ErrOK {
		return
	}
	switch resp := r.Resp.(type) {
	case *proto.GetDataResponse:
		c.versions[r.Req.(*proto.GetDataRequest).Path] = resp.Stat.Version
	case *proto.SetDataResponse:
		c.versions[r.Req.(*proto.SetDataRequest).Path] = resp.Stat.Version
	case *proto.ExistsResponse:
		c.versions[r.Req.(*proto.ExistsRequest).Path] = resp.Stat.Version
	}
}

// issue sends one random workload operation.
func (sm *Sim) issue(c *client) {
	r := sm.rng
	x := r.IntN(100)
	if sm.phase == phaseLiveness {
		x = 40 + r.IntN(30) // reads and writes only
	}
	switch {
	case x < 20:
		sm.request(c, proto.OpCreate, sm.randCreate(c))
	case x < 25:
		sm.request(c, proto.OpCreate2, sm.randCreate(c))
	case x < 40:
		p := sm.pick(keys)
		sm.request(c, proto.OpSetData, &proto.SetDataRequest{Path: p, Data: sm.value(c), Version: sm.version(c, p)})
	case x < 50:
		p := sm.pick(keys)
		sm.request(c, proto.OpDelete, &proto.DeleteRequest{Path: p, Version: sm.version(c, p)})
	case x < 62:
		sm.request(c, proto.OpGetData, &proto.GetDataRequest{Path: sm.pick(keys), Watch: r.IntN(3) == 0})
	case x < 70:
		sm.request(c, proto.OpExists, &proto.ExistsRequest{Path: sm.pick(keys), Watch: r.IntN(3) == 0})
	case x < 78:
		p := sm.pick([]string{"/", "/a", "/b"})
		if r.IntN(2) == 0 {
			sm.request(c, proto.OpGetChildren, &proto.GetChildrenRequest{Path: p, Watch: r.IntN(3) == 0})
		} else {
			sm.request(c, proto.OpGetChildren2, &proto.GetChildren2Request{Path: p, Watch: r.IntN(3) == 0})
		}
	case x < 87:
		sm.request(c, proto.OpMulti, sm.randMulti(c))
	case x < 95:
		p := sm.pick(keys)
		sm.request(c, proto.OpSync, &proto.SyncRequest{Path: p})
		sm.request(c, proto.OpGetData, &proto.GetDataRequest{Path: p})
	case x < 97:
		if r.IntN(2) == 0 {
			// A client that registers and leaves at once: its ephemeral
			// create is still in flight when its session closes (the shape
			// of ZOOKEEPER-2355).
			cr := sm.randCreate(c)
			cr.Flags = proto.ModeEphemeral
			cr.Path = sm.pick(keys)
			sm.request(c, proto.OpCreate, cr)
		}
		sm.request(c, proto.OpCloseSession, &proto.EmptyRecord{})
		c.closing = true
	default:
		// Go silent for longer than the session timeout: the session
		// should expire while this client sleeps.
		c.pausedTill = sm.now + int64(c.timeout)*1000*(3+r.Int64N(3))/2
		sm.tracef(c.cn.srv.id, "c%d pauses until %s", c.id, fmtTime(c.pausedTill))
	}
}

func (sm *Sim) pick(xs []string) string { return xs[sm.rng.IntN(len(xs))] }

func (sm *Sim) value(c *client) []byte {
	c.seq++
	return fmt.Appendf(nil, "c%d-%d", c.id, c.seq)
}

func (sm *Sim) version(c *client, path string) int32 {
	if v, ok := c.versions[path]; ok && sm.rng.IntN(3) == 0 {
		return v
	}
	return -1
}

func (sm *Sim) randCreate(c *client) *proto.CreateRequest {
	modes := []int32{proto.ModePersistent, proto.ModeEphemeral, proto.ModePersistentSequential, proto.ModeEphemeralSequential}
	mode := modes[sm.rng.IntN(len(modes))]
	path := sm.pick(keys)
	if mode == proto.ModePersistentSequential || mode == proto.ModeEphemeralSequential {
		path = sm.pick(seqParents)
	}
	return &proto.CreateRequest{Path: path, Data: sm.value(c), ACL: proto.OpenACLUnsafe, Flags: mode}
}

func (sm *Sim) randMulti(c *client) *proto.MultiRequest {
	n := 1 + sm.rng.IntN(3)
	m := &proto.MultiRequest{}
	for range n {
		p := sm.pick(keys)
		switch sm.rng.IntN(4) {
		case 0:
			m.Ops = append(m.Ops, proto.MultiOp{Type: proto.OpCreate, Req: sm.randCreate(c)})
		case 1:
			m.Ops = append(m.Ops, proto.MultiOp{Type: proto.OpSetData, Req: &proto.SetDataRequest{Path: p, Data: sm.value(c), Version: sm.version(c, p)}})
		case 2:
			m.Ops = append(m.Ops, proto.MultiOp{Type: proto.OpDelete, Req: &proto.DeleteRequest{Path: p, Version: sm.version(c, p)}})
		default:
			m.Ops = append(m.Ops, proto.MultiOp{Type: proto.OpCheck, Req: &proto.CheckVersionRequest{Path: p, Version: sm.version(c, p)}})
		}
	}
	return m
}

// describeReq renders a request body for the trace.
func describeReq(b proto.Record) string {
	switch r := b.(type) {
	case *proto.CreateRequest:
		return fmt.Sprintf("%s mode %d", r.Path, r.Flags)
	case *proto.SetDataRequest:
		return fmt.Sprintf("%s v%d", r.Path, r.Version)
	case *proto.DeleteRequest:
		return fmt.Sprintf("%s v%d", r.Path, r.Version)
	case *proto.GetDataRequest:
		return r.Path
	case *proto.ExistsRequest:
		return r.Path
	case *proto.GetChildrenRequest:
		return r.Path
	case *proto.GetChildren2Request:
		return r.Path
	case *proto.SyncRequest:
		return r.Path
	case *proto.MultiRequest:
		return fmt.Sprintf("(%d ops)", len(r.Ops))
	}
	return ""
}
