package engine

import (
	"crypto/subtle"
	"fmt"
	"slices"
	"strings"

	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/proto"
)

// Node is one replica: the data tree, the sessions and the request pipeline.
//
// This is the single-replica Node: it commits its own proposals as soon as
// the caller reports them persisted. The ZAB issue replaces the commit rule
// inside the package; the caller-facing shape (Connect, Submit, Tick,
// Persisted, Ready, Advance) stays.
//
// A Node is not safe for concurrent use: one goroutine drives it.
type Node struct {
	cfg  Config
	tree *tree.Tree

	sessions    map[int64]*session
	conns       map[ConnID]*conn
	nextSession int64

	now  int64 // last wall-clock ms seen in an input
	tick int64

	lastProposed int64 // zxid of the newest proposal
	lastApplied  int64 // zxid of the newest applied txn
	inflight     []*proposal

	// blocked holds connections whose queue head waits on a commit.
	blocked map[ConnID]struct{}

	reapCountdown int
	ready         Ready
}

// proposal is a txn on its way to commit.
type proposal struct {
	txn  *tree.Txn
	conn ConnID // the local connection that asked for it, or 0
	// connect is set for a createSession: the handshake to answer.
	connect *ConnectRequest
}

// conn is one client connection known to this server.
type conn struct {
	id          ConnID
	session     int64 // 0 until the handshake completes
	ip          string
	auth        []proto.Id
	hasReadOnly bool
	timeout     int32
	queue       []*queued
}

type queuedKind int

const (
	// qRead is executed against the tree when it reaches the queue head.
	qRead queuedKind = iota
	// qWrite waits for its txn to be applied.
	qWrite
	// qBarrier waits until every txn proposed before it was applied, then
	// sends a fixed reply (an error found at prepare time, sync, auth …).
	qBarrier
)

// queued is one request waiting its turn on a connection: replies leave in
// request order, and a read waits for the session's earlier writes.
type queued struct {
	kind   queuedKind
	req    Request
	caller tree.Caller
	zxid   int64 // qWrite: its txn; qBarrier: wait until applied >= zxid
	done   bool  // qWrite: applied
	err    proto.ErrCode
	resp   proto.Record
	// closeAfter closes the connection after the reply (closeSession,
	// failed auth).
	closeAfter bool
	closeWhy   string
}

// NewNode returns a Node with an empty tree. Restore state with LoadSnapshot
// and Replay before the first input.
func NewNode(cfg Config) *Node {
	cfg.normalize()
	n := &Node{
		cfg:         cfg,
		tree:        tree.New(cfg.Tree),
		sessions:    map[int64]*session{},
		conns:       map[ConnID]*conn{},
		blocked:     map[ConnID]struct{}{},
		nextSession: initialSessionID(cfg.ServerID, cfg.StartTime),
	}
	n.reapCountdown = cfg.ReapIntervalTicks
	return n
}

// LastZxid returns the zxid of the newest applied txn.
func (n *Node) LastZxid() int64 { return n.lastApplied }

// Outstanding returns the number of proposals not yet committed.
func (n *Node) Outstanding() int { return len(n.inflight) }

// Tree gives read access to the data tree for statistics. Callers must not
// modify it and must use it only from the goroutine that drives the Node.
func (n *Node) Tree() *tree.Tree { return n.tree }

// SessionCount returns the number of live sessions.
func (n *Node) SessionCount() int { return len(n.sessions) }

// SessionOf returns the session bound to a connection, or 0.
func (n *Node) SessionOf(c ConnID) int64 {
	if cn := n.conns[c]; cn != nil {
		return cn.session
	}
	return 0
}

// HasReady reports whether Ready has anything for the caller.
func (n *Node) HasReady() bool {
	return len(n.ready.Entries) > 0 || len(n.ready.Outputs) > 0 || n.ready.Committed > 0
}

// Ready returns the pending batch. The caller must handle it as Ready's
// documentation says and then call Advance.
func (n *Node) Ready() Ready { return n.ready }

// Advance acknowledges the batch returned by Ready.
func (n *Node) Advance() { n.ready = Ready{} }

func (n *Node) observe(t int64) {
	if t > n.now {
		n.now = t
	}
}

func (n *Node) output(o Output) { n.ready.Outputs = append(n.ready.Outputs, o) }

func (n *Node) closeConn(c ConnID, why string) {
	n.output(Output{Conn: c, Kind: OutClose, Reason: why})
}

// Connect handles a client handshake on a new connection.
func (n *Node) Connect(cr ConnectRequest) {
	n.observe(cr.Time)
	req := cr.Req
	if req.LastZxidSeen > n.lastApplied {
		// The client has seen a newer state than ours: never let it go back
		// in time (ZooKeeper closes without a reply).
		n.closeConn(cr.Conn, fmt.Sprintf("client has seen zxid 0x%x, ours is 0x%x", req.LastZxidSeen, n.lastApplied))
		return
	}
	timeout := min(max(req.TimeOut, int32(n.cfg.MinSessionTimeout)), int32(n.cfg.MaxSessionTimeout))
	c := &conn{id: cr.Conn, ip: cr.ClientIP, hasReadOnly: req.HasReadOnly, timeout: timeout}
	if cr.ClientIP != "" {
		c.auth = []proto.Id{{Scheme: "ip", ID: cr.ClientIP}}
	}
	n.conns[cr.Conn] = c

	if req.SessionID == 0 {
		id := n.nextSession
		for n.sessions[id] != nil {
			id++
		}
		n.nextSession = id + 1
		txn := &tree.Txn{
			Zxid:      n.lastProposed + 1,
			SessionID: id,
			Time:      n.now,
			Type:      proto.OpCreateSession,
			TimeOut:   timeout,
			Data:      sessionPassword(n.cfg.SessionSecret, id),
		}
		n.propose(txn, 0, &cr)
		return
	}

	s := n.sessions[req.SessionID]
	if s == nil || s.closing || len(req.Passwd) != passwordLen || subtle.ConstantTimeCompare(req.Passwd, s.passwd) != 1 {
		n.output(Output{Conn: cr.Conn, Kind: OutConnect, Connect: &proto.ConnectResponse{
			Passwd: make([]byte, passwordLen), HasReadOnly: req.HasReadOnly,
		}})
		delete(n.conns, cr.Conn)
		n.closeConn(cr.Conn, fmt.Sprintf("session 0x%x expired or wrong password", req.SessionID))
		return
	}
	if s.conn != 0 && s.conn != cr.Conn {
		// The session moved to this new connection: the old one is done.
		old := s.conn
		n.dropConn(old)
		n.closeConn(old, fmt.Sprintf("session 0x%x moved to another connection", s.id))
	}
	s.conn = cr.Conn
	s.timeout = timeout
	c.session = s.id
	n.touch(s)
	n.output(Output{Conn: cr.Conn, Kind: OutConnect, Connect: &proto.ConnectResponse{
		TimeOut: timeout, SessionID: s.id, Passwd: slices.Clone(s.passwd), HasReadOnly: req.HasReadOnly,
	}})
}

// Disconnect tells the Node a connection closed: its watches go, its session
// lives on until it expires or another connection takes it.
func (n *Node) Disconnect(c ConnID) {
	cn := n.conns[c]
	if cn == nil {
		return
	}
	n.dropConn(c)
}

func (n *Node) dropConn(c ConnID) {
	cn := n.conns[c]
	if cn == nil {
		return
	}
	if s := n.sessions[cn.session]; s != nil && s.conn == c {
		s.conn = 0
	}
	n.tree.RemoveWatcher(tree.WatcherID(c))
	delete(n.conns, c)
	delete(n.blocked, c)
}

func (n *Node) touch(s *session) {
	s.expireTick = n.tick + ticksFor(s.timeout, n.cfg.TickMs)
}

// Tick advances logical time by one tick: sessions past their timeout
// expire, and every reap interval empty containers and expired TTL nodes go.
// now is the caller's wall clock in ms (TTL deadlines are measured in it).
func (n *Node) Tick(now int64) {
	n.observe(now)
	n.tick++
	for _, id := range sortedSessionIDs(n.sessions) {
		s := n.sessions[id]
		if s.closing || s.expireTick > n.tick {
			continue
		}
		n.expire(s)
	}
	n.reapCountdown--
	if n.reapCountdown <= 0 {
		n.reapCountdown = n.cfg.ReapIntervalTicks
		for _, p := range n.tree.Expired(n.now, n.cfg.MaxReapPerInterval) {
			hdr := tree.Txn{Zxid: n.lastProposed + 1, Time: n.now}
			txn := n.tree.Prepare(hdr, tree.Caller{}, proto.OpDeleteContainer, &proto.DeleteContainerRequest{Path: p})
			if txn.Type != proto.OpError {
				n.propose(txn, 0, nil)
			}
		}
	}
}

func (n *Node) expire(s *session) {
	s.closing = true
	hdr := tree.Txn{Zxid: n.lastProposed + 1, SessionID: s.id, Time: n.now}
	txn := n.tree.Prepare(hdr, tree.Caller{SessionID: s.id}, proto.OpCloseSession, nil)
	n.propose(txn, 0, nil)
}

// propose assigns txn its place in history and hands it to the log.
func (n *Node) propose(txn *tree.Txn, c ConnID, connect *ConnectRequest) {
	if txn.Zxid != n.lastProposed+1 {
		panic(fmt.Sprintf("engine: proposal zxid 0x%x after 0x%x", txn.Zxid, n.lastProposed))
	}
	n.lastProposed = txn.Zxid
	n.inflight = append(n.inflight, &proposal{txn: txn, conn: c, connect: connect})
	n.ready.Entries = append(n.ready.Entries, Entry{Zxid: txn.Zxid, Data: txn.Marshal()})
}

// Persisted reports that every entry up to zxid is durable. A single replica
// is its own quorum, so those proposals commit and are applied now.
func (n *Node) Persisted(zxid int64) {
	for len(n.inflight) > 0 && n.inflight[0].txn.Zxid <= zxid {
		p := n.inflight[0]
		n.inflight[0] = nil
		n.inflight = n.inflight[1:]
		n.apply(p)
	}
	n.drainBlocked()
}

func (n *Node) drainBlocked() {
	if len(n.blocked) == 0 {
		return
	}
	ids := make([]ConnID, 0, len(n.blocked))
	for c := range n.blocked {
		ids = append(ids, c)
	}
	slices.Sort(ids)
	for _, c := range ids {
		delete(n.blocked, c)
		if cn := n.conns[c]; cn != nil {
			n.drain(cn)
		}
	}
}

// apply applies one committed txn: the tree, then sessions, then the
// outputs it causes (events first, then the reply that could reveal them).
func (n *Node) apply(p *proposal) {
	txn := p.txn
	res := n.tree.Apply(txn)
	n.lastApplied = txn.Zxid
	n.ready.Committed++
	for _, ev := range res.Events {
		c := ConnID(ev.Watcher)
		if n.conns[c] == nil {
			continue
		}
		e := ev.Event
		n.output(Output{Conn: c, Kind: OutEvent, Header: proto.ReplyHeader{Xid: proto.XidNotification, Zxid: txn.Zxid}, Body: &e})
	}
	n.applySession(txn, p)
	if p.conn == 0 {
		return
	}
	cn := n.conns[p.conn]
	if cn == nil {
		return
	}
	for _, q := range cn.queue {
		if q.kind == qWrite && q.zxid == txn.Zxid {
			q.done, q.err, q.resp = true, res.Err, res.Resp
			break
		}
	}
	n.drain(cn)
}

func (n *Node) applySession(txn *tree.Txn, p *proposal) {
	switch txn.Type {
	case proto.OpCreateSession:
		s := &session{id: txn.SessionID, timeout: txn.TimeOut, passwd: slices.Clone(txn.Data)}
		n.touch(s)
		n.sessions[s.id] = s
		if p == nil || p.connect == nil {
			return
		}
		cn := n.conns[p.connect.Conn]
		if cn == nil {
			return // the client went away during the handshake; the session will expire
		}
		s.conn = cn.id
		cn.session = s.id
		n.output(Output{Conn: cn.id, Kind: OutConnect, Connect: &proto.ConnectResponse{
			TimeOut: s.timeout, SessionID: s.id, Passwd: slices.Clone(s.passwd), HasReadOnly: cn.hasReadOnly,
		}})
	case proto.OpCloseSession:
		s := n.sessions[txn.SessionID]
		delete(n.sessions, txn.SessionID)
		if s == nil || s.conn == 0 {
			return
		}
		if p != nil && p.conn == s.conn {
			return // the client asked: its reply closes the connection
		}
		c := s.conn
		n.dropConn(c)
		n.closeConn(c, fmt.Sprintf("session 0x%x expired", txn.SessionID))
	}
}

// Replay applies a txn read back from the log at recovery: no outputs, no
// watches (no client is connected yet).
func (n *Node) Replay(data []byte) error {
	txn, err := tree.UnmarshalTxn(data)
	if err != nil {
		return fmt.Errorf("engine: replay: %w", err)
	}
	if txn.Zxid <= n.lastApplied {
		// Already in the snapshot: snapshots are taken between txns, so
		// anything at or below its zxid is covered.
		return nil
	}
	n.tree.Apply(txn)
	n.applySession(txn, nil)
	n.lastApplied = txn.Zxid
	n.lastProposed = txn.Zxid
	n.ready = Ready{}
	return nil
}

// caller returns the auth context of a connection.
func (n *Node) caller(c *conn) tree.Caller {
	return tree.Caller{SessionID: c.session, Auth: slices.Clone(c.auth)}
}

// Submit handles one client request on an established connection.
func (n *Node) Submit(r Request) {
	n.observe(r.Time)
	c := n.conns[r.Conn]
	if c == nil || c.session == 0 {
		n.closeConn(r.Conn, "request before the handshake completed")
		return
	}
	s := n.sessions[c.session]
	if s == nil || s.closing {
		n.output(Output{Conn: c.id, Kind: OutReply, Header: proto.ReplyHeader{Xid: r.Xid, Zxid: n.lastApplied, Err: proto.ErrSessionExpired}})
		n.dropConn(c.id)
		n.closeConn(c.id, "request on an expired session")
		return
	}
	n.touch(s)
	q := &queued{req: r, caller: n.caller(c)}
	switch {
	case r.Body == nil:
		// The body did not decode: ZooKeeper answers MarshallingError in
		// turn and keeps serving the connection.
		q.kind, q.err = qBarrier, proto.ErrMarshallingError
	default:
		n.route(c, s, q)
	}
	c.queue = append(c.queue, q)
	n.drain(c)
}

// route decides how a decoded request is served: read now (in turn),
// proposed as a txn, or answered by a barrier.
func (n *Node) route(c *conn, s *session, q *queued) {
	r := q.req
	switch r.Op {
	case proto.OpPing, proto.OpExists, proto.OpGetData, proto.OpGetACL, proto.OpGetChildren,
		proto.OpGetChildren2, proto.OpGetAllChildrenNumber, proto.OpGetEphemerals, proto.OpMultiRead,
		proto.OpCheckWatches, proto.OpRemoveWatches, proto.OpAddWatch, proto.OpSetWatches,
		proto.OpSetWatches2, proto.OpWhoAmI:
		q.kind = qRead
	case proto.OpCreate, proto.OpCreate2, proto.OpCreateContainer, proto.OpCreateTTL, proto.OpDelete,
		proto.OpSetData, proto.OpSetACL, proto.OpMulti:
		hdr := tree.Txn{Zxid: n.lastProposed + 1, SessionID: c.session, Cxid: r.Xid, Time: n.now}
		txn := n.tree.Prepare(hdr, q.caller, r.Op, r.Body)
		if txn.Type == proto.OpError {
			// Answer once everything proposed before it is applied, so the
			// error never reflects a change that might not commit.
			// (A failed multi is not an error txn: it is logged as a multi
			// whose ops carry their codes, as ZooKeeper does.)
			q.kind, q.zxid, q.err = qBarrier, n.lastProposed, txn.Err
		} else {
			q.kind, q.zxid = qWrite, txn.Zxid
			n.propose(txn, c.id, nil)
		}
	case proto.OpCloseSession:
		s.closing = true
		hdr := tree.Txn{Zxid: n.lastProposed + 1, SessionID: c.session, Cxid: r.Xid, Time: n.now}
		txn := n.tree.Prepare(hdr, q.caller, proto.OpCloseSession, nil)
		q.kind, q.zxid = qWrite, txn.Zxid
		q.closeAfter, q.closeWhy = true, "session closed by the client"
		n.propose(txn, c.id, nil)
	case proto.OpSync:
		q.kind, q.zxid = qBarrier, n.lastProposed
		if sr, ok := r.Body.(*proto.SyncRequest); ok {
			q.resp = &proto.SyncResponse{Path: sr.Path}
		}
	case proto.OpAuth:
		q.kind = qBarrier
		n.auth(c, q)
	case proto.OpSasl:
		q.kind, q.err = qBarrier, proto.ErrUnimplemented
	case proto.OpReconfig:
		q.kind, q.err = qBarrier, proto.ErrReconfigDisabled
	default:
		// Unknown types, a top-level check, internal-only types: ZooKeeper
		// answers Unimplemented and closes.
		q.kind, q.err = qBarrier, proto.ErrUnimplemented
		q.closeAfter, q.closeWhy = true, fmt.Sprintf("unsupported request type %v", r.Op)
	}
}

// auth adds the identity of an auth packet to the connection at once, so
// later requests see it; the reply waits its turn like any other.
func (n *Node) auth(c *conn, q *queued) {
	ap, ok := q.req.Body.(*proto.AuthPacket)
	if !ok {
		q.err, q.closeAfter, q.closeWhy = proto.ErrAuthFailed, true, "malformed auth packet"
		return
	}
	id, code := tree.ValidateAuth(ap.Scheme, ap.Auth)
	if code != proto.ErrOK {
		q.err, q.closeAfter, q.closeWhy = code, true, fmt.Sprintf("auth scheme %q failed", ap.Scheme)
		return
	}
	if !slices.Contains(c.auth, id) {
		c.auth = append(c.auth, id)
	}
}

// drain answers the requests at the head of a connection's queue that can be
// answered now, in order.
func (n *Node) drain(c *conn) {
	for len(c.queue) > 0 {
		q := c.queue[0]
		hdr := proto.ReplyHeader{Xid: q.req.Xid}
		switch q.kind {
		case qWrite:
			if !q.done {
				return
			}
		case qBarrier:
			if n.lastApplied < q.zxid {
				n.blocked[c.id] = struct{}{}
				return
			}
		case qRead:
			q.resp, q.err = n.read(c, q)
		}
		c.queue[0] = nil
		c.queue = c.queue[1:]
		hdr.Zxid, hdr.Err = n.lastApplied, q.err
		if q.req.Op == proto.OpAuth {
			hdr.Zxid = 0
		}
		body := q.resp
		if q.err != proto.ErrOK {
			body = nil
		}
		n.output(Output{Conn: c.id, Kind: OutReply, Header: hdr, Body: body})
		if q.closeAfter {
			n.dropConn(c.id)
			n.closeConn(c.id, q.closeWhy)
			return
		}
	}
}

// read executes a read or watch-management request against the tree.
func (n *Node) read(c *conn, q *queued) (proto.Record, proto.ErrCode) {
	w := tree.WatcherID(c.id)
	switch q.req.Op {
	case proto.OpPing:
		return nil, proto.ErrOK
	case proto.OpWhoAmI:
		resp := &proto.WhoAmIResponse{ClientInfo: []proto.ClientInfo{}}
		for _, id := range c.auth {
			user := id.ID
			if id.Scheme == "digest" {
				// ZooKeeper names a digest identity by its user, not its hash.
				user, _, _ = strings.Cut(user, ":")
			}
			resp.ClientInfo = append(resp.ClientInfo, proto.ClientInfo{AuthScheme: id.Scheme, User: user})
		}
		return resp, proto.ErrOK
	case proto.OpSetWatches, proto.OpSetWatches2:
		for _, ev := range n.tree.SetWatches(q.caller, w, q.req.Body) {
			e := ev.Event
			n.output(Output{Conn: c.id, Kind: OutEvent, Header: proto.ReplyHeader{Xid: proto.XidNotification, Zxid: ev.Zxid}, Body: &e})
		}
		return nil, proto.ErrOK
	}
	return n.tree.Read(q.caller, w, q.req.Op, q.req.Body)
}
