package engine

import (
	"fmt"
	"slices"

	"github.com/zabkeeper/zabkeeper/engine/bugs"
	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
)

// applyEntry applies one committed txn: the tree, then sessions, then the
// outputs it causes — watch events first, then the reply that could reveal
// them.
func (n *Node) applyEntry(e zab.Entry) {
	txn := n.proposed[e.Zxid]
	if txn != nil {
		delete(n.proposed, e.Zxid)
	} else {
		var err error
		if txn, err = tree.UnmarshalTxn(e.Data); err != nil {
			// A committed txn we cannot read would fork this replica from
			// the others: stop rather than diverge.
			panic(fmt.Sprintf("engine: committed txn 0x%x does not decode: %v", e.Zxid, err))
		}
	}
	if txn.Zxid <= n.lastApplied {
		return // covered by the snapshot we started from
	}
	res := n.tree.Apply(txn)
	n.lastApplied = txn.Zxid
	n.tail(false).Committed++
	if d := n.snapDigest; d != nil && txn.Zxid >= d.Zxid {
		n.snapDigest = nil
		if txn.Zxid == d.Zxid && n.tree.Digest() != d.Digest {
			n.tail(false).DigestMismatch = &DigestMismatch{Zxid: d.Zxid, Expected: d.Digest, Actual: n.tree.Digest()}
		}
	}
	// The watchers of one change get the same event: one copy for all of
	// them (outputs are read-only), which the server encodes once.
	var shared *proto.WatcherEvent
	for i, ev := range res.Events {
		c := ConnID(ev.Watcher)
		if n.conns[c] == nil {
			continue
		}
		if bugs.Active(bugs.FollowerDropsWatchEvents) && n.status.Role != zab.Leading {
			continue
		}
		if shared == nil {
			// Room for all of them at once, not by doubling.
			b := n.tail(false)
			b.Outputs = slices.Grow(b.Outputs, len(res.Events)-i)
		}
		if shared == nil || *shared != ev.Event {
			e := ev.Event
			shared = &e
		}
		n.output(Output{Conn: c, Kind: OutEvent, Header: proto.ReplyHeader{Xid: proto.XidNotification, Zxid: txn.Zxid}, Body: shared})
	}
	if txn.Type == proto.OpSync {
		// A sync txn of an earlier version, read from the log: a no-op,
		// as to ZooKeeper (syncs are answered without a txn now).
		return
	}
	// The connection holding the session, if it is here: found before a
	// closeSession removes the session.
	var owner *conn
	if s := n.sessions[txn.SessionID]; s != nil && s.conn != 0 {
		owner = n.conns[s.conn]
	}
	n.applySession(txn)
	if owner == nil || txn.Cxid == internalCxid {
		return
	}
	for _, q := range owner.queue {
		if q.kind == qWrite && !q.done && q.req.Xid == txn.Cxid {
			q.done, q.err, q.resp = true, res.Err, res.Resp
			if res.Err == proto.ErrSessionMoved {
				// The leader saw the session owned by another server. As
				// ZooKeeper does (FinalRequestProcessor), the connection
				// closes in this request's turn, without a reply. A
				// moveSession applied before this txn has closed it
				// already in all but unforeseen cases.
				q.closeAfter, q.silent = true, true
				q.closeWhy = fmt.Sprintf("session 0x%x moved to another server", txn.SessionID)
			}
			break
		}
	}
	// Answer now, before the next committed txn is applied: a read queued
	// behind this write must see exactly the state this write left.
	n.drain(owner)
}

// applySession keeps the session table in step with the txns: every
// replica creates and removes sessions at the same zxid.
func (n *Node) applySession(txn *tree.Txn) {
	switch txn.Type {
	case proto.OpCreateSession:
		s := &session{id: txn.SessionID, timeout: txn.TimeOut, passwd: SessionPassword(txn.SessionID), owner: txn.Owner}
		n.touch(s)
		n.sessions[s.id] = s
		n.ownerApplied(txn)
		n.completeHandshake(s) // the client went away during the handshake if none: the session will expire
	case tree.OpMoveSession:
		s := n.sessions[txn.SessionID]
		if s == nil {
			return // the leader proposes a move only for a live session
		}
		s.owner, s.timeout = txn.Owner, txn.TimeOut
		n.touch(s)
		n.ownerApplied(txn)
		if s.owner == n.id() {
			n.completeHandshake(s)
			return
		}
		if n.staleMove(txn) {
			return // the client moved here since, by REVALIDATE
		}
		// Another server holds the session now: the connection here is
		// stale. ZooKeeper lets it live until a write through it reaches
		// the leader, fails with SessionMoved and closes it without a
		// reply (FinalRequestProcessor); we close it now, which is the same
		// to the client: every write it has in flight was forwarded before
		// this txn applied here, so it reaches the leader after the move
		// and becomes an error txn, never applied.
		if c := s.conn; c != 0 {
			n.dropConn(c)
			n.closeConn(c, fmt.Sprintf("session 0x%x moved to server %d", s.id, s.owner))
		}
	case proto.OpCloseSession:
		s := n.sessions[txn.SessionID]
		delete(n.sessions, txn.SessionID)
		delete(n.touched, txn.SessionID)
		delete(n.proposedOwners, txn.SessionID)
		delete(n.owners, txn.SessionID)
		delete(n.movedHere, txn.SessionID)
		if c, ok := n.pendingConnects[txn.SessionID]; ok {
			// A client reconnecting here waits for a move the leader
			// refused: the session is gone.
			delete(n.pendingConnects, txn.SessionID)
			if cn := n.conns[c]; cn != nil {
				n.refuseHandshake(cn, fmt.Sprintf("session 0x%x expired", txn.SessionID))
			}
		}
		if s == nil || s.conn == 0 {
			return
		}
		if cn := n.conns[s.conn]; cn != nil && txn.Cxid != internalCxid && hasPendingWrite(cn, txn.Cxid) {
			return // the client asked: its reply closes the connection
		}
		c := s.conn
		n.dropConn(c)
		n.closeConn(c, fmt.Sprintf("session 0x%x expired", txn.SessionID))
	}
}

// ownerApplied forgets the proposed owner a createSession or moveSession
// named once the newest such proposal for the session has applied.
func (n *Node) ownerApplied(txn *tree.Txn) {
	if p, ok := n.proposedOwners[txn.SessionID]; ok && p.zxid <= txn.Zxid {
		delete(n.proposedOwners, txn.SessionID)
	}
}

// completeHandshake answers the handshake waiting on this server for the
// txn that created the session or moved it here: the connection now holds
// the session, and an older connection of it here is closed.
func (n *Node) completeHandshake(s *session) {
	c, ok := n.pendingConnects[s.id]
	if !ok {
		return
	}
	delete(n.pendingConnects, s.id)
	cn := n.conns[c]
	if cn == nil {
		return
	}
	if s.conn != 0 && s.conn != c {
		old := s.conn
		n.dropConn(old)
		n.closeConn(old, fmt.Sprintf("session 0x%x moved to another connection", s.id))
	}
	s.conn = cn.id
	cn.session = s.id
	n.alive(s)
	n.output(Output{Conn: cn.id, Kind: OutConnect, Connect: &proto.ConnectResponse{
		TimeOut: s.timeout, SessionID: s.id, Passwd: slices.Clone(s.passwd), HasReadOnly: cn.hasReadOnly,
	}})
}

func hasPendingWrite(c *conn, xid int32) bool {
	for _, q := range c.queue {
		if q.kind == qWrite && !q.done && q.req.Xid == xid {
			return true
		}
	}
	return false
}
