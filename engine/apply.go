package engine

import (
	"fmt"
	"slices"

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
	for _, ev := range res.Events {
		c := ConnID(ev.Watcher)
		if n.conns[c] == nil {
			continue
		}
		e := ev.Event
		n.output(Output{Conn: c, Kind: OutEvent, Header: proto.ReplyHeader{Xid: proto.XidNotification, Zxid: txn.Zxid}, Body: &e})
	}
	if txn.Type == proto.OpSync && res.Err == proto.ErrOK {
		res.Resp = &proto.SyncResponse{Path: txn.Path}
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
		s := &session{id: txn.SessionID, timeout: txn.TimeOut, passwd: slices.Clone(txn.Data)}
		n.touch(s)
		n.sessions[s.id] = s
		c, ok := n.pendingConnects[s.id]
		if !ok {
			return
		}
		delete(n.pendingConnects, s.id)
		cn := n.conns[c]
		if cn == nil {
			return // the client went away during the handshake; the session will expire
		}
		s.conn = cn.id
		cn.session = s.id
		n.alive(s)
		n.output(Output{Conn: cn.id, Kind: OutConnect, Connect: &proto.ConnectResponse{
			TimeOut: s.timeout, SessionID: s.id, Passwd: slices.Clone(s.passwd), HasReadOnly: cn.hasReadOnly,
		}})
	case proto.OpCloseSession:
		s := n.sessions[txn.SessionID]
		delete(n.sessions, txn.SessionID)
		delete(n.touched, txn.SessionID)
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

func hasPendingWrite(c *conn, xid int32) bool {
	for _, q := range c.queue {
		if q.kind == qWrite && !q.done && q.req.Xid == xid {
			return true
		}
	}
	return false
}
