package engine

import (
	"fmt"

	"github.com/zabkeeper/zabkeeper/engine/bugs"
	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// What this server does toward each peer depends on the capabilities of
// the link with it (zab.Caps, stamped by the transport on FOLLOWERINFO and
// LEADERINFO; docs/ZAB.md, "Per-link capabilities"): a link without them
// is one with an Apache ZooKeeper 3.8 server, or one behaving as such, and
// gets exactly what ZooKeeper's own peers exchange. There is no ensemble
// mode: the txns and the sync are the same whoever listens.
//
//   - Txns. Every txn the leader proposes is one ZooKeeper 3.8 applies
//     identically: create (under ZooKeeper's type, with the client's opcode
//     in the extension ZooKeeper skips), delete, deleteContainer, setData,
//     setACL, multi, createSession and closeSession (the owner in the
//     extension), moveSession (a createSession of the live session, cxid
//     -1, which ZooKeeper takes for a timeout renewal) and error txns.
//   - Session owners. The leader replicates them (createSession names the
//     forwarder, moveSession the server a client reconnected to), so
//     zabkeeper replicas know them and ZooKeeper replicas ignore them. A
//     move reaches the leader as a REQUEST of op -12 from a learner whose
//     link has CapMoveRequest, or as REVALIDATE (Learner.validateSession)
//     from any learner: the leader answers it as ZooKeeper's does
//     (Leader.revalidateSession: valid while the session is live), then
//     proposes the move. A learner sends op -12 only to a leader with
//     CapMoveRequest: ZooKeeper's PrepRequestProcessor makes no txn of an
//     opcode it does not know and never answers. Under a ZooKeeper leader
//     owners live in that leader's memory (SessionTrackerImpl); a session
//     whose owner the leader does not know (created under a ZooKeeper
//     leader, or loaded from a snapshot) gets the first requester as its
//     owner, in memory, as ZooKeeper's checkSession does.
//   - sync, one mechanism for every peer. A forwarded sync makes no txn:
//     the leader answers SYNC once every proposal outstanding when the
//     sync arrived has committed (Leader.processSync); the learner pairs
//     SYNCs with its forwarded syncs in order and answers each once it
//     applied what committed before the SYNC. The leader's own clients'
//     syncs wait the same way. Stronger than ZooKeeper (ZOOKEEPER-1675),
//     on the same wire: the leader also waits until a quorum of voters
//     answered a PING sent after the sync arrived (zab's
//     ConfirmLeadership), so a leader cut off from its quorum, maybe
//     already replaced, answers no sync. The sync txn of earlier versions
//     is still read from logs, and applied as the no-op it is to
//     ZooKeeper.
//   - Leadership transfer: TIMEOUTNOW only to followers whose link has
//     CapTransfer, the successor chosen among them (zab/transfer.go).

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
	// round is the leadership confirmation (zab ConfirmLeadership) the
	// leader's answer also waits for.
	round uint64
}

// startSync takes a client's sync, on the leader (waits for the
// outstanding proposals and a leadership confirmation) or a learner
// (forwarded, then paired with a SYNC). False when the request cannot
// reach the leader.
func (n *Node) startSync(c *conn, q *queued) bool {
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
		ps.round = n.zab.ConfirmLeadership()
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
	n.leaderSyncs = append(n.leaderSyncs, pendingSync{to: f.from, link: n.zab.LearnerLink(f.from), target: n.lastProposed,
		round: n.zab.ConfirmLeadership()})
}

// flushSyncs answers the syncs whose target is reached: a learner's with
// SYNC once committed, a client's once applied here.
func (n *Node) flushSyncs() {
	if len(n.leaderSyncs) == 0 && len(n.syncsDue) == 0 {
		return
	}
	commit := n.zab.CommitPoint()
	confirmed := n.zab.LeadershipConfirmed()
	keep := n.leaderSyncs[:0]
	for _, ps := range n.leaderSyncs {
		switch {
		case ps.to != 0 && ps.link != n.zab.LearnerLink(ps.to):
			// The learner started over since: its client's connection is
			// gone, and a SYNC now would pair with a later sync.
		case ps.round > confirmed:
			keep = append(keep, ps)
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

// leadRevalidate answers a learner's REVALIDATE as ZooKeeper's leader does:
// valid while the session is live (as of the newest proposal), touched
// with the client's timeout (touchSession). Then the move is replicated: a
// moveSession txn names the learner the owner, so that zabkeeper replicas
// close the session's connection elsewhere. The reply carries that txn's
// zxid (ZooKeeper's learner never reads a REVALIDATE's zxid, and its
// leader sends -1): the learner serves the client from the reply on, and
// a move away from it proposed before this one must not close the
// client's new connection when it applies there (revalidated).
func (n *Node) leadRevalidate(from int64, p *quorum.Packet) {
	id, timeout, err := quorum.DecodeRevalidate(p)
	if err != nil {
		n.peerError(from, fmt.Errorf("%w: %w", errBadPayload, err))
		return
	}
	_, live := n.liveSession(id)
	zxid := int64(-1)
	if live {
		if s := n.sessions[id]; s != nil {
			n.touchFor(s, timeout)
		}
		before := n.lastProposed
		n.lead(&forwarded{session: id, cxid: internalCxid, op: tree.OpMoveSession, timeout: timeout, from: from}, nil)
		if n.lastProposed != before {
			zxid = n.lastProposed
		}
	}
	n.zab.SendApp(from, quorum.NewRevalidateReply(zxid, id, live).Encode())
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
	if p.Zxid > 0 {
		n.movedHere[id] = p.Zxid
	}
	n.completeHandshake(s)
}

// staleMove reports whether a moveSession txn applying here is older than
// the move the leader answered this server's REVALIDATE with: the client
// is served here already, and the older move must not close it.
func (n *Node) staleMove(txn *tree.Txn) bool {
	at, ok := n.movedHere[txn.SessionID]
	if !ok {
		return false
	}
	if txn.Zxid >= at {
		delete(n.movedHere, txn.SessionID)
		return false
	}
	return true
}

// handleCapsApp handles the packets of ZooKeeper's session and sync
// protocol, which every link carries: on the leader, REVALIDATE; on a
// learner, the REVALIDATE reply and SYNC. False when p is not one of them.
func (n *Node) handleCapsApp(from int64, p *quorum.Packet) bool {
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

// memoryOwner is the owner of a live session whose replicated owner is
// unknown, kept in the leader's memory and set to from when unknown there
// too (ZooKeeper's checkSession).
func (n *Node) memoryOwner(id, from int64) int64 {
	if o := n.owners[id]; o != 0 {
		return o
	}
	n.owners[id] = from
	return from
}

// moveByRequest reports whether a reconnect through this learner moves its
// session with a REQUEST of op -12, which only a leader whose link has
// CapMoveRequest takes; otherwise with REVALIDATE.
func (n *Node) moveByRequest() bool {
	return n.zab.LeaderCaps()&zab.CapMoveRequest != 0 || bugs.Active(bugs.MoveRequestIgnoresCaps)
}

// checkProposable panics on a txn no replica may get any more: the sync
// txn (sync is answered without one). A bug, caught by the simulator,
// before any peer sees it.
func (n *Node) checkProposable(txn *tree.Txn) {
	if txn.Type == proto.OpSync {
		panic(fmt.Sprintf("engine: proposes a sync txn (zxid 0x%x)", txn.Zxid))
	}
}
