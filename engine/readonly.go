package engine

import (
	"fmt"
	"maps"
	"slices"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
)

// Read-only mode (Config.ReadOnlyMode, ZooKeeper's readonlymode.enabled).
//
// A member of an ensemble that has been looking for a leader for
// max(2000 ms, TickMs) serves the clients whose handshake allows read-only
// access, from its own applied state, which may be stale. The grace period
// is measured in input time (Tick and Connect stamps): it starts at the
// first such stamp after the server became Looking, so it may end up to one
// tick late, never early. Read-only mode ends as soon as the election does
// (the server leads, follows or observes): every read-only connection is
// closed and every local session dropped before the server syncs with a
// leader, so nobody reads a state that a SNAP or TRUNC is about to replace.
// If the server goes back to looking, the grace period starts again.
//
// What it matches in Apache ZooKeeper 3.8 (QuorumPeer.run case LOOKING;
// ReadOnlyZooKeeperServer; ReadOnlyRequestProcessor;
// ZooKeeperServer.processConnectRequest; ZOOKEEPER-3863/-3864):
//   - a handshake without the readOnly flag is closed without a reply
//     ("Refusing session request for not-read-only client");
//   - a handshake with sessionId 0 gets a new local session: never
//     replicated, never sent to a leader, gone when read-only mode ends
//     (ZooKeeper 3.8 needs localSessionsEnabled=true for this; here a
//     read-only session is always local). ConnectResponse.readOnly is true;
//   - a handshake that renews a global session (one in the replicated
//     session table) is closed without a reply ("Refusing global session
//     reconnection in RO mode"): the client goes on to look for a read-write
//     server. A local session of this server can be renewed with its
//     password until it expires, like any session;
//   - create, create2, createContainer, createTTL, delete, deleteContainer,
//     setData, setACL, multi, check, sync and reconfig are answered
//     NotReadOnly (-119) with the last applied zxid, and the connection
//     stays open; reads, watches, ping, auth and whoAmI are served locally;
//     closeSession closes the local session, without a txn.
//
// Session ids: a local session's id comes from the same counter as the
// global sessions this server creates (its id in the high byte, its start
// time in ms below, then +1 per session; see initialSessionID and
// newSessionID), skipping ids of live sessions of either kind. The counter
// never hands an id out twice, a later start seeds it later, and other
// servers mint under their own high byte, so no global session ever gets a
// local session's id, just as no two global sessions share one. Whether an
// id is global is decided by the replicated session table, as ZooKeeper's
// LearnerSessionTracker.isGlobalSession does, never by the id's bits: a
// local id presented to any read-write server is unknown there, so the
// client is told its session expired (the Java client never presents one:
// until it has seen a read-write server it connects with sessionId 0).
//
// Nothing here proposes a txn, sends a peer message or touches the tree.

// maybeEnterReadOnly starts read-only mode once the grace period has passed.
// It runs on the inputs that carry time (Tick, Connect).
func (n *Node) maybeEnterReadOnly() {
	if !n.cfg.ReadOnlyMode || n.readOnly || n.serving || n.halted != nil || n.status.Role != zab.Looking {
		return
	}
	if !n.lookingKnown {
		n.lookingFrom, n.lookingKnown = n.now, true
		return
	}
	if n.now-n.lookingFrom >= n.cfg.readOnlyDelayMs() {
		n.readOnly = true
	}
}

// leaveReadOnly ends read-only mode: the clients are closed (they reconnect
// and look for a read-write server) and the local sessions dropped.
func (n *Node) leaveReadOnly(why string) {
	n.readOnly = false
	for _, id := range slices.Sorted(maps.Keys(n.conns)) {
		n.dropConn(id)
		n.closeConn(id, why)
	}
	clear(n.localSessions)
}

// connectReadOnly handles a handshake in read-only mode. The caller already
// refused clients that have seen a newer zxid than ours.
func (n *Node) connectReadOnly(cr ConnectRequest) {
	req := cr.Req
	if !req.HasReadOnly || !req.ReadOnly {
		n.closeConn(cr.Conn, "read-only mode: refusing a client that does not allow read-only access")
		return
	}
	if req.SessionID != 0 && n.sessions[req.SessionID] != nil {
		n.closeConn(cr.Conn, fmt.Sprintf("read-only mode: refusing to renew global session 0x%x", req.SessionID))
		return
	}
	timeout := n.clampTimeout(req.TimeOut)
	var s *session
	if req.SessionID == 0 {
		id := n.newSessionID()
		s = &session{id: id, timeout: timeout, passwd: SessionPassword(id)}
		n.localSessions[id] = s
	} else {
		s = n.localSessions[req.SessionID]
		if s == nil || !passwordMatches(req.Passwd, s.passwd) {
			n.output(Output{Conn: cr.Conn, Kind: OutConnect, Connect: &proto.ConnectResponse{
				Passwd: make([]byte, passwordLen), HasReadOnly: true, ReadOnly: true,
			}})
			n.closeConn(cr.Conn, fmt.Sprintf("local session 0x%x expired or wrong password", req.SessionID))
			return
		}
		if s.conn != 0 && s.conn != cr.Conn {
			old := s.conn
			n.dropConn(old)
			n.closeConn(old, fmt.Sprintf("local session 0x%x moved to another connection", s.id))
		}
	}
	c := n.newConn(cr, timeout)
	c.readOnly, c.session = true, s.id
	s.conn, s.timeout = cr.Conn, timeout
	n.touch(s)
	n.output(Output{Conn: cr.Conn, Kind: OutConnect, Connect: &proto.ConnectResponse{
		TimeOut: timeout, SessionID: s.id, Passwd: slices.Clone(s.passwd), HasReadOnly: true, ReadOnly: true,
	}})
}

// admitReadOnly decides how a request on a read-only connection is served.
func (n *Node) admitReadOnly(c *conn, q *queued) {
	s := n.localSessions[c.session]
	if s == nil {
		q.kind, q.err = qFixed, proto.ErrSessionExpired
		q.closeAfter, q.closeWhy = true, "request on an expired local session"
		return
	}
	n.touch(s)
	switch {
	case q.req.Body == nil:
		q.kind, q.err = qFixed, proto.ErrMarshallingError
	case rejectedReadOnly(q.req.Op):
		q.kind, q.err = qFixed, proto.ErrNotReadOnly
	case q.req.Op == proto.OpCloseSession:
		delete(n.localSessions, s.id)
		q.kind = qFixed
		q.closeAfter, q.closeWhy = true, "local session closed by the client"
	default:
		// Reads, watch management, ping, auth; sasl and unknown types get
		// the answers they get in read-write mode. Every request that route
		// would forward to a leader was caught above.
		n.route(c, q)
	}
}

// rejectedReadOnly reports whether a read-only server answers op with
// NotReadOnly: the opcodes ZooKeeper 3.8's ReadOnlyRequestProcessor rejects.
func rejectedReadOnly(op proto.OpCode) bool {
	switch op {
	case proto.OpCreate, proto.OpCreate2, proto.OpCreateTTL, proto.OpCreateContainer,
		proto.OpDelete, proto.OpDeleteContainer, proto.OpSetData, proto.OpSetACL,
		proto.OpMulti, proto.OpCheck, proto.OpSync, proto.OpReconfig:
		return true
	}
	return false
}

// expireLocalSessions drops the local sessions silent past their timeout and
// closes their connections, once per tick in read-only mode.
func (n *Node) expireLocalSessions() {
	for _, id := range slices.Sorted(maps.Keys(n.localSessions)) {
		s := n.localSessions[id]
		if s.expireTick > n.tick {
			continue
		}
		delete(n.localSessions, id)
		if s.conn != 0 {
			c := s.conn
			n.dropConn(c)
			n.closeConn(c, fmt.Sprintf("local session 0x%x expired", id))
		}
	}
}

// ReadOnly reports whether the server is in read-only mode.
func (n *Node) ReadOnly() bool { return n.readOnly }

// LocalSessionCount returns the number of local (read-only) sessions.
func (n *Node) LocalSessionCount() int { return len(n.localSessions) }
