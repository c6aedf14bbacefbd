package engine

import (
	"fmt"

	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// Compat mode (Config.ZooKeeperPeers): the engine behaves as a ZooKeeper
// 3.8 server towards its peers, so that ZooKeeper servers can lead it and
// follow it.
//
//   - Session owners. ZooKeeper's leader keeps them in memory only
//     (SessionTrackerImpl): createSession's forwarder owns the session, a
//     client reconnecting through a learner is checked with REVALIDATE
//     (Learner.validateSession, Leader.revalidateSession), which also makes
//     that learner the owner, and a request from a server that is not the
//     owner fails with SessionMoved (checkSession; an unknown owner, after
//     a leader change, is set by the first request). No moveSession txn
//     and no owner in createSession: a stale connection on the old server
//     lives until a write through it fails.
//   - sync. A forwarded sync makes no txn: the leader answers SYNC once
//     every proposal outstanding when the sync arrived has committed
//     (Leader.processSync); the learner pairs SYNCs with its forwarded
//     syncs in order and answers each once it applied what committed
//     before the SYNC. The leader's own clients' syncs wait the same way.
//   - No leadership transfer (TransferLeadership reports false).
//
// Every txn the leader proposes is then one ZooKeeper 3.8 applies
// identically: create (under ZooKeeper's type, with the client's opcode in
// the extension ZooKeeper skips), delete, deleteContainer, setData,
// setACL, multi, createSession, closeSession and error txns.

// pendingSync is a sync waiting for its answer: for the leader, from a
// learner (to) or from a client of its own (conn, xid); target is the zxid
// that must commit (leader: the newest proposal when it arrived; learner:
// the commit point when the SYNC arrived).
type pendingSync struct {
	to     int64
	link   uint64 // the learner's session (zab LearnerLink) the sync came on
	conn   ConnID
	xid    int32
	path   string
	target int64
}

// compatSync takes a client's sync in compat mode, on the leader (waits
// for the outstanding proposals) or a learner (forwarded, then paired with
// a SYNC). False when the request cannot reach the leader.
func (n *Node) compatSync(c *conn, q *queued) bool {
	path := ""
	if sr, ok := q.req.Body.(*proto.SyncRequest); ok {
		path = sr.Path
	}
	ps := pendingSync{conn: c.id, xid: q.req.Xid, path: path}
	if n.status.Role == zab.Leading {
		if !n.serving {
			return false
		}
		ps.target = n.lastProposed
		n.leaderSyncs = append(n.leaderSyncs, ps)
		return true
	}
	f := &forwarded{session: c.session, cxid: q.req.Xid, op: proto.OpSync, auth: q.caller.Auth}
	if !n.forward(f, q.req.Body) {
		return false
	}
	n.learnerSyncs = append(n.learnerSyncs, ps)
	return true
}

// leadSync queues the SYNC answer to a learner's forwarded sync. As
// ZooKeeper's leader, it answers even for a session that moved or expired
// (checkSession makes no error txn for a request that has none): the
// learner's FIFO pairing depends on one SYNC per forwarded sync.
func (n *Node) leadSync(f *forwarded) {
	n.leaderSyncs = append(n.leaderSyncs, pendingSync{to: f.from, link: n.zab.LearnerLink(f.from), target: n.lastProposed})
}

// flushSyncs answers the syncs whose target is reached: a learner's with
// SYNC once committed, a client's once applied here.
func (n *Node) flushSyncs() {
	if len(n.leaderSyncs) == 0 && len(n.syncsDue) == 0 {
		return
	}
	commit := n.zab.CommitPoint()
	keep := n.leaderSyncs[:0]
	for _, ps := range n.leaderSyncs {
		switch {
		case ps.to != 0 && ps.link != n.zab.LearnerLink(ps.to):
			// The learner started over since: its client's connection is
			// gone, and a SYNC now would pair with a later sync.
		case ps.to != 0 && ps.target <= commit:
			n.zab.SendApp(ps.to, quorum.NewSync().Encode())
		case ps.to == 0 && ps.target <= n.lastApplied:
			n.answerSync(ps)
		default:
			keep = append(keep, ps)
		}
	}
	n.leaderSyncs = keep
	due := n.syncsDue[:0]
	for _, ps := range n.syncsDue {
		if ps.target <= n.lastApplied {
			n.answerSync(ps)
		} else {
			due = append(due, ps)
		}
	}
	n.syncsDue = due
}

// answerSync completes a client's sync in its connection's queue.
func (n *Node) answerSync(ps pendingSync) {
	c := n.conns[ps.conn]
	if c == nil {
		return
	}
	for _, q := range c.queue {
		if q.kind == qWrite && !q.done && q.req.Xid == ps.xid && q.req.Op == proto.OpSync {
			q.done, q.resp = true, &proto.SyncResponse{Path: ps.path}
			n.drain(c)
			return
		}
	}
}

// learnerSync pairs a SYNC from the leader with the oldest forwarded sync.
func (n *Node) learnerSync(from int64) {
	if len(n.learnerSyncs) == 0 {
		n.peerError(from, fmt.Errorf("%w: SYNC with no sync pending", errBadPayload))
		return
	}
	ps := n.learnerSyncs[0]
	n.learnerSyncs = n.learnerSyncs[1:]
	ps.target = n.zab.CommitPoint()
	n.syncsDue = append(n.syncsDue, ps)
}

// revalidate sends a reconnecting client's session to the leader for a
// REVALIDATE; the handshake completes or is refused on the reply.
func (n *Node) revalidate(s *session, c *conn) bool {
	if !n.serving || n.status.Role == zab.Leading {
		return false
	}
	return n.zab.SendApp(n.status.Leader, quorum.NewRevalidate(s.id, c.timeout).Encode())
}

// leadRevalidate answers a learner's REVALIDATE: valid while the session
// is live (as of the newest proposal), which also makes the learner its
// owner and touches it with the client's timeout (touchSession).
func (n *Node) leadRevalidate(from int64, p *quorum.Packet) {
	id, timeout, err := quorum.DecodeRevalidate(p)
	if err != nil {
		n.peerError(from, fmt.Errorf("%w: %w", errBadPayload, err))
		return
	}
	_, live := n.liveSession(id)
	if live {
		n.owners[id] = from
		if s := n.sessions[id]; s != nil {
			n.touchFor(s, timeout)
		}
	}
	n.zab.SendApp(from, quorum.NewRevalidateReply(-1, id, live).Encode())
}

// revalidated completes or refuses the handshake waiting for a REVALIDATE
// reply.
func (n *Node) revalidated(from int64, p *quorum.Packet) {
	id, valid, err := quorum.DecodeRevalidateReply(p)
	if err != nil {
		n.peerError(from, fmt.Errorf("%w: %w", errBadPayload, err))
		return
	}
	c, ok := n.pendingConnects[id]
	if !ok {
		return // the client went away, or a newer reconnect took over
	}
	cn := n.conns[c]
	s := n.sessions[id]
	if !valid || s == nil || s.closing {
		delete(n.pendingConnects, id)
		if cn != nil {
			n.refuseHandshake(cn, fmt.Sprintf("session 0x%x expired (the leader refused its revalidation)", id))
		}
		return
	}
	if cn != nil {
		s.timeout = cn.timeout
	}
	n.completeHandshake(s)
}

// handleCompatApp handles the packets only compat mode exchanges: on the
// leader, REVALIDATE; on a learner, the REVALIDATE reply and SYNC. False
// when p is not one of them.
func (n *Node) handleCompatApp(from int64, p *quorum.Packet) bool {
	if !n.cfg.ZooKeeperPeers {
		return false
	}
	switch {
	case p.Type == quorum.Revalidate && n.status.Role == zab.Leading:
		n.leadRevalidate(from, p)
	case p.Type == quorum.Revalidate:
		n.revalidated(from, p)
	case p.Type == quorum.Sync && n.status.Role != zab.Leading:
		n.learnerSync(from)
	default:
		return false
	}
	return true
}

// compatOwner is the owner of a live session in compat mode, set to from
// when unknown (ZooKeeper's checkSession).
func (n *Node) compatOwner(id, from int64) int64 {
	if o := n.owners[id]; o != 0 {
		return o
	}
	n.owners[id] = from
	return from
}

// checkCompatTxn panics on a txn ZooKeeper cannot apply as we do, proposed
// in compat mode: a bug, caught by the simulator, before any peer sees it.
func (n *Node) checkCompatTxn(txn *tree.Txn) {
	if !n.cfg.ZooKeeperPeers {
		return
	}
	if txn.Type == tree.OpMoveSession || txn.Type == proto.OpSync || txn.Owner != 0 {
		panic(fmt.Sprintf("engine: compat mode proposes a %v txn (owner %d) ZooKeeper cannot apply", txn.Type, txn.Owner))
	}
}
