package engine

import (
	"github.com/zabkeeper/zabkeeper/engine/bugs"

	"crypto/subtle"
	"fmt"
	"slices"
	"strings"

	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
)

// conn is one client connection on this server.
type conn struct {
	id      ConnID
	session int64 // 0 until the handshake completes
	ip      string
	auth    []proto.Id
	// lapsing are identities verified outside the engine, with the time
	// their token expires (verified.go).
	lapsing     []lapsingID
	hasReadOnly bool
	// readOnly marks a connection accepted in read-only mode: its session
	// is local (readonly.go).
	readOnly bool
	timeout  int32
	queue    []*queued
}

type queuedKind int

const (
	// qRead is executed against the tree when it reaches the queue head.
	qRead queuedKind = iota
	// qWrite waits for its txn (a write, closeSession or sync) to be applied.
	qWrite
	// qFixed sends a reply decided on arrival (auth, errors) in its turn.
	qFixed
)

// queued is one request waiting its turn on a connection: replies leave in
// request order, and a read waits for the session's earlier writes.
type queued struct {
	kind   queuedKind
	req    Request
	caller tree.Caller
	done   bool // qWrite: applied
	err    proto.ErrCode
	resp   proto.Record
	// closeAfter closes the connection after the reply (closeSession,
	// failed auth, unsupported requests); with silent, instead of the reply
	// (SessionMoved).
	closeAfter bool
	silent     bool
	closeWhy   string
}

// internalCxid marks txns the leader makes on its own (expiry, reaping):
// no client xid is -1 on a write.
const internalCxid = -1

func (n *Node) closeConn(c ConnID, why string) {
	n.output(Output{Conn: c, Kind: OutClose, Reason: why})
}

// Connect handles a client handshake on a new connection.
func (n *Node) Connect(cr ConnectRequest) {
	n.observe(cr.Time)
	defer n.pump()
	n.maybeEnterReadOnly()
	req := cr.Req
	if !n.serving && !n.readOnly {
		n.closeConn(cr.Conn, "not serving: no established leader")
		return
	}
	if req.LastZxidSeen > n.lastApplied && !bugs.Active(bugs.ReadBeforeLastZxid) {
		// The client has seen a newer state than ours: never let it go back
		// in time (ZooKeeper closes without a reply).
		n.closeConn(cr.Conn, fmt.Sprintf("client has seen zxid 0x%x, ours is 0x%x", req.LastZxidSeen, n.lastApplied))
		return
	}
	if n.readOnly {
		n.connectReadOnly(cr)
		return
	}
	timeout := n.clampTimeout(req.TimeOut)
	c := n.newConn(cr, timeout)

	if req.SessionID == 0 {
		id := n.newSessionID()
		n.pendingConnects[id] = cr.Conn
		f := &forwarded{session: id, cxid: internalCxid, op: proto.OpCreateSession, timeout: timeout}
		if !n.forward(f, nil) {
			n.dropConn(cr.Conn)
			n.closeConn(cr.Conn, "no link to the leader")
		}
		return
	}

	s := n.sessions[req.SessionID]
	if s == nil || s.closing || !passwordMatches(req.Passwd, s.passwd) {
		n.refuseHandshake(c, fmt.Sprintf("session 0x%x expired or wrong password", req.SessionID))
		return
	}
	owner, live := n.liveSession(s.id)
	local := n.status.Role == zab.Leading && live && owner == n.id()
	if bugs.Active(bugs.ReadBeforeLastZxid) {
		local = true // trusts its own table, however far behind it is
	}
	if !local && n.status.Role != zab.Leading && !n.moveByRequest() {
		// A learner whose leader takes no moveSession REQUEST (a
		// ZooKeeper one, or behaving as such) asks it with REVALIDATE
		// and answers the client on the reply (peercaps.go).
		if old, ok := n.pendingConnects[s.id]; ok && old != cr.Conn {
			n.dropConn(old)
			n.closeConn(old, fmt.Sprintf("session 0x%x reconnected on a newer connection", s.id))
		}
		n.pendingConnects[s.id] = cr.Conn
		if !n.revalidate(s, c) {
			delete(n.pendingConnects, s.id)
			n.dropConn(cr.Conn)
			n.closeConn(cr.Conn, "no link to the leader")
		}
		return
	}
	if !local {
		// Only the leader knows whether the session is still live, and
		// only its owner may serve it. Unless this server is the leader and
		// owns it already, the reconnect goes through the leader as a
		// moveSession (ZooKeeper's learners revalidate every reconnect
		// with the leader, Learner.validateSession, and its leader makes
		// the learner the owner, Leader.revalidateSession). The handshake
		// completes when the txn applies here, after every txn before it:
		// a session the leader already closed is refused when its
		// closeSession applies here, and the session's connection on any
		// other server is closed.
		if old, ok := n.pendingConnects[s.id]; ok && old != cr.Conn {
			n.dropConn(old)
			n.closeConn(old, fmt.Sprintf("session 0x%x reconnected on a newer connection", s.id))
		}
		n.pendingConnects[s.id] = cr.Conn
		f := &forwarded{session: s.id, cxid: internalCxid, op: tree.OpMoveSession, timeout: timeout}
		if !n.forward(f, nil) {
			n.dropConn(cr.Conn)
			n.closeConn(cr.Conn, "no link to the leader")
		}
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
	n.alive(s)
	n.output(Output{Conn: cr.Conn, Kind: OutConnect, Connect: &proto.ConnectResponse{
		TimeOut: timeout, SessionID: s.id, Passwd: slices.Clone(s.passwd), HasReadOnly: req.HasReadOnly,
	}})
}

// clampTimeout bounds a requested session timeout to the configured range.
func (n *Node) clampTimeout(t int32) int32 {
	return min(max(t, int32(n.cfg.MinSessionTimeout)), int32(n.cfg.MaxSessionTimeout))
}

// newConn registers the connection of a handshake being accepted.
func (n *Node) newConn(cr ConnectRequest, timeout int32) *conn {
	c := &conn{id: cr.Conn, ip: cr.ClientIP, hasReadOnly: cr.Req.HasReadOnly, timeout: timeout}
	if cr.ClientIP != "" {
		c.auth = []proto.Id{{Scheme: "ip", ID: cr.ClientIP}}
	}
	c.auth = append(c.auth, cr.TransportIDs...)
	n.conns[cr.Conn] = c
	return c
}

// newSessionID hands out the next session id of this server, global or
// local, skipping ids in use.
func (n *Node) newSessionID() int64 {
	id := n.nextSession
	for n.sessions[id] != nil || n.localSessions[id] != nil {
		id++
	}
	n.nextSession = id + 1
	return id
}

// passwordMatches checks a handshake's password in constant time.
func passwordMatches(got, want []byte) bool {
	return len(got) == passwordLen && subtle.ConstantTimeCompare(got, want) == 1
}

// refuseHandshake tells the client of a pending or new connection that its
// session is gone (timeOut 0, sessionId 0, a zero password) and closes it.
func (n *Node) refuseHandshake(c *conn, why string) {
	n.output(Output{Conn: c.id, Kind: OutConnect, Connect: &proto.ConnectResponse{
		Passwd: make([]byte, passwordLen), HasReadOnly: c.hasReadOnly,
	}})
	n.dropConn(c.id)
	n.closeConn(c.id, why)
}

// Disconnect tells the Node a connection closed: its watches go, its session
// lives on until it expires or another connection takes it.
func (n *Node) Disconnect(c ConnID) {
	n.dropConn(c)
	n.pump()
}

func (n *Node) dropConn(c ConnID) {
	cn := n.conns[c]
	if cn == nil {
		return
	}
	if s := n.sessions[cn.session]; s != nil && s.conn == c {
		s.conn = 0
	}
	if s := n.localSessions[cn.session]; s != nil && s.conn == c {
		s.conn = 0
	}
	for id, pc := range n.pendingConnects {
		if pc == c {
			delete(n.pendingConnects, id)
		}
	}
	n.tree.RemoveWatcher(tree.WatcherID(c))
	delete(n.conns, c)
}

// alive records that a session showed signs of life on this server: the
// leader resets its expiry; a learner reports it, with the session's
// timeout, in its next PING to the leader.
func (n *Node) alive(s *session) {
	if n.status.Role == zab.Leading {
		n.touch(s)
	} else {
		n.touched[s.id] = s.timeout
	}
}

func (n *Node) touch(s *session) { n.touchFor(s, s.timeout) }

// touchFor resets a session's expiry for timeoutMs, the timeout a learner
// reported with its touch (ZooKeeper's touchSession(id, timeout)); 0 or
// less means the session's own.
func (n *Node) touchFor(s *session, timeoutMs int32) {
	if timeoutMs <= 0 {
		timeoutMs = s.timeout
	}
	s.expireTick = n.tick + ticksFor(timeoutMs, n.cfg.TickMs, n.cfg.TicksPerTickTime)
}

// caller returns the auth context of a connection (authIDs: the identities
// are shared, not copied, when none lapse).
func (n *Node) caller(c *conn) tree.Caller {
	return tree.Caller{SessionID: c.session, Auth: n.authIDs(c)}
}

// Submit handles one client request on an established connection.
func (n *Node) Submit(r Request) {
	n.observe(r.Time)
	defer n.pump()
	c := n.conns[r.Conn]
	if c == nil || c.session == 0 {
		n.closeConn(r.Conn, "request before the handshake completed")
		return
	}
	q := n.newQueued()
	q.req, q.caller = r, n.caller(c)
	if c.readOnly {
		n.admitReadOnly(c, q)
	} else {
		n.admit(c, q)
	}
	c.queue = append(c.queue, q)
	n.drain(c)
}

// admit decides how a request on a read-write connection is served.
func (n *Node) admit(c *conn, q *queued) {
	s := n.sessions[c.session]
	if s == nil || s.closing {
		// Answered in turn, after whatever the connection still waits for
		// (a closeSession reply, say), then the connection closes.
		q.kind, q.err = qFixed, proto.ErrSessionExpired
		q.closeAfter, q.closeWhy = true, "request on an expired session"
		return
	}
	n.alive(s)
	if q.req.Body == nil {
		// The body did not decode: ZooKeeper answers MarshallingError in
		// turn and keeps serving the connection.
		q.kind, q.err = qFixed, proto.ErrMarshallingError
		return
	}
	n.route(c, q)
}

// route decides how a decoded request is served: read in turn, forwarded to
// the leader as a txn, or answered with a fixed reply.
func (n *Node) route(c *conn, q *queued) {
	r := q.req
	switch r.Op {
	case proto.OpPing, proto.OpExists, proto.OpGetData, proto.OpGetACL, proto.OpGetChildren,
		proto.OpGetChildren2, proto.OpGetAllChildrenNumber, proto.OpGetEphemerals, proto.OpMultiRead,
		proto.OpCheckWatches, proto.OpRemoveWatches, proto.OpAddWatch, proto.OpSetWatches,
		proto.OpSetWatches2, proto.OpWhoAmI:
		q.kind = qRead
	case proto.OpCreate, proto.OpCreate2, proto.OpCreateContainer, proto.OpCreateTTL, proto.OpDelete,
		proto.OpSetData, proto.OpSetACL, proto.OpMulti, proto.OpCloseSession, proto.OpSync:
		q.kind = qWrite
		if r.Op == proto.OpCloseSession {
			q.closeAfter, q.closeWhy = true, "session closed by the client"
		}
		if r.Op == proto.OpSync && n.status.Role == zab.Leading && bugs.Active(bugs.SyncWithoutQuorum) {
			// Answers from local state, trusting it still leads.
			q.kind, q.resp = qFixed, &proto.SyncResponse{Path: r.Body.(*proto.SyncRequest).Path}
			return
		}
		if r.Op == proto.OpSync {
			if !n.startSync(c, q) {
				q.kind, q.err = qFixed, proto.ErrConnectionLoss
				q.closeAfter, q.closeWhy = true, "no link to the leader"
			}
			return
		}
		f := &forwarded{session: c.session, cxid: r.Xid, op: r.Op, auth: q.caller.Auth}
		if !n.forward(f, r.Body) {
			q.kind, q.err = qFixed, proto.ErrConnectionLoss
			q.closeAfter, q.closeWhy = true, "no link to the leader"
		}
	case proto.OpAuth:
		q.kind = qFixed
		n.auth(c, q)
	case proto.OpSasl:
		q.kind, q.err = qFixed, proto.ErrUnimplemented
	case proto.OpReconfig:
		switch {
		case !n.cfg.ReconfigEnabled:
			q.kind, q.err = qFixed, proto.ErrReconfigDisabled
		case !n.reconfigurable():
			q.kind, q.err = qFixed, proto.ErrUnimplemented // see Config.ReconfigEnabled
		default:
			// A write: the leader validates it (reconfig.go).
			q.kind = qWrite
			f := &forwarded{session: c.session, cxid: r.Xid, op: r.Op, auth: q.caller.Auth}
			if !n.forward(f, r.Body) {
				q.kind, q.err = qFixed, proto.ErrConnectionLoss
				q.closeAfter, q.closeWhy = true, "no link to the leader"
			}
		}
	default:
		// Unknown types, a top-level check, internal-only types: ZooKeeper
		// answers Unimplemented and closes.
		q.kind, q.err = qFixed, proto.ErrUnimplemented
		q.closeAfter, q.closeWhy = true, fmt.Sprintf("unsupported request type %v", r.Op)
	}
}

// forward hands a request to the leader: directly when this server leads,
// else over the established link. False when there is no such link, and
// always while not serving (read-only mode included).
func (n *Node) forward(f *forwarded, rec proto.Record) bool {
	if !n.serving {
		return false
	}
	f.from = n.id()
	if n.status.Role == zab.Leading {
		n.lead(f, rec)
		return true
	}
	return n.zab.SendApp(n.status.Leader, n.encodeForward(f, rec))
}

// auth adds the identity of an auth packet to the connection at once, so
// later requests see it; the reply waits its turn like any other.
func (n *Node) auth(c *conn, q *queued) {
	ap, ok := q.req.Body.(*proto.AuthPacket)
	if !ok {
		q.err, q.closeAfter, q.closeWhy = proto.ErrAuthFailed, true, "malformed auth packet"
		return
	}
	if ap.Scheme == "ip" {
		// ZooKeeper's IPAuthenticationProvider ignores the auth data and
		// adds the client's own address, which the connection already
		// holds: the answer is OK and nothing else changes.
		if c.ip != "" && !slices.Contains(c.auth, proto.Id{Scheme: "ip", ID: c.ip}) {
			c.auth = append(c.auth, proto.Id{Scheme: "ip", ID: c.ip})
		}
		return
	}
	if ap.Scheme == "x509" {
		// ZooKeeper's X509AuthenticationProvider takes the identity from the
		// client's certificate, never from the auth data: OK when the
		// connection proved one (TransportIDs), AuthFailed otherwise.
		if !slices.ContainsFunc(c.auth, func(id proto.Id) bool { return id.Scheme == "x509" }) {
			q.err, q.closeAfter, q.closeWhy = proto.ErrAuthFailed, true, "auth scheme \"x509\" without a client certificate"
		}
		return
	}
	if n.verifiedAuth(c, q, ap) {
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
		case qRead:
			q.resp, q.err = n.read(c, q)
		}
		c.queue[0] = nil
		if len(c.queue) == 1 {
			// Emptied: the next request reuses the array from here
			// instead of appending past its end (one request at a time
			// per session is the usual case).
			c.queue = c.queue[:0]
		} else {
			c.queue = c.queue[1:]
		}
		hdr.Zxid, hdr.Err = n.lastApplied, q.err
		if q.req.Op == proto.OpAuth {
			hdr.Zxid = 0
		}
		body := q.resp
		if q.err != proto.ErrOK {
			body = nil
		}
		if !q.silent {
			n.output(Output{Conn: c.id, Kind: OutReply, Header: hdr, Body: body})
		}
		if q.closeAfter {
			n.dropConn(c.id)
			n.closeConn(c.id, q.closeWhy)
			return
		}
		n.freeQueued(q)
	}
}

// maxSpareQueued bounds the answered requests' records kept for reuse.
const maxSpareQueued = 256

// newQueued returns a zeroed record for a request: an answered one when
// there is one (nothing refers to a request once drain has answered it),
// saving an allocation per request.
func (n *Node) newQueued() *queued {
	if k := len(n.spareQueued); k > 0 {
		q := n.spareQueued[k-1]
		n.spareQueued[k-1] = nil
		n.spareQueued = n.spareQueued[:k-1]
		return q
	}
	return new(queued)
}

// freeQueued keeps an answered request's record for newQueued.
func (n *Node) freeQueued(q *queued) {
	if len(n.spareQueued) < maxSpareQueued {
		*q = queued{}
		n.spareQueued = append(n.spareQueued, q)
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
		for _, id := range n.authIDs(c) {
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

// ReadNow answers a read at once when it can be answered ahead of the
// Node's inputs: a read that registers no watch (tree.ReadNoWatch), on an
// established read-write connection of a live session whose every earlier
// request has been answered, while this server serves. It returns the
// reply, or false when the request must go through Submit instead.
//
// ReadNow changes nothing (the session's liveness included: the caller
// reports it with Touch), so a caller may run it on other goroutines,
// concurrently with other ReadNow calls but with no other method, and
// must hand out every Output of the Ready batches before it, for the
// connection's replies to stay in order. The caller must also know that
// the connection has no request in flight towards Submit.
func (n *Node) ReadNow(r Request) (Output, bool) {
	if !n.serving || n.readOnly {
		return Output{}, false
	}
	c := n.conns[r.Conn]
	// A connection with identities that lapse (oidc) is judged on the
	// loop, where the time the lapse is measured against is current.
	if c == nil || c.session == 0 || c.readOnly || len(c.queue) > 0 || len(c.lapsing) > 0 {
		return Output{}, false
	}
	if s := n.sessions[c.session]; s == nil || s.closing {
		return Output{}, false
	}
	resp, code, ok := n.tree.ReadNoWatch(n.caller(c), tree.WatcherID(c.id), r.Op, r.Body)
	if !ok {
		return Output{}, false
	}
	if code != proto.ErrOK {
		resp = nil
	}
	return Output{Conn: c.id, Kind: OutReply, Header: proto.ReplyHeader{Xid: r.Xid, Zxid: n.lastApplied, Err: code}, Body: resp}, true
}

// Touch reports that the session of a connection was active (its reads
// were answered by ReadNow), as any request Submit takes does.
func (n *Node) Touch(conn ConnID, now int64) {
	n.observe(now)
	defer n.pump()
	c := n.conns[conn]
	if c == nil || c.session == 0 || c.readOnly {
		return
	}
	if s := n.sessions[c.session]; s != nil && !s.closing {
		n.alive(s)
	}
}
