package engine

import (
	"fmt"
	"maps"
	"slices"

	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// handleApp handles an application packet from the leader or a learner
// (forward.go). One that does not decode, or that this server does not
// take in its role, is dropped and recorded (PeerErrors), never applied.
func (n *Node) handleApp(m zab.Message) {
	p, err := decodePacket(m.Payload, n.payloadLimits())
	if err != nil {
		n.peerError(m.From, err)
		return
	}
	if n.handleCapsApp(m.From, &p) {
		return
	}
	if n.status.Role != zab.Leading {
		n.peerError(m.From, fmt.Errorf("%w: unexpected %s packet from the leader", errBadPayload, p.Type))
		return
	}
	switch p.Type {
	case quorum.Request:
		f, rec, recErr, err := n.decodeForwarded(&p)
		if err != nil {
			n.peerError(m.From, err)
			return
		}
		if f.op == tree.OpMoveSession && n.zab.LearnerCaps(m.From)&zab.CapMoveRequest == 0 {
			n.peerError(m.From, fmt.Errorf("%w: moveSession REQUEST on a link without CapMoveRequest (REVALIDATE moves sessions)", errBadPayload))
			return
		}
		if recErr != nil {
			n.peerError(m.From, recErr) // led all the same: a MarshallingError txn answers the client
		}
		f.from = m.From
		n.lead(&f, rec)
	case quorum.Ping:
		touches, err := quorum.DecodeTouches(&p)
		if err != nil {
			n.peerError(m.From, fmt.Errorf("%w: %w", errBadPayload, err))
			return
		}
		for _, t := range touches {
			if s := n.sessions[t.Session]; s != nil {
				n.touchFor(s, t.Timeout)
			}
		}
	default:
		n.peerError(m.From, fmt.Errorf("%w: unexpected %s packet from a learner", errBadPayload, p.Type))
	}
}

// nextZxid is the zxid the next proposal will get.
func (n *Node) nextZxid() int64 {
	if zab.Epoch(n.lastProposed) < n.status.Epoch {
		return zab.MakeZxid(n.status.Epoch, 1)
	}
	return n.lastProposed + 1
}

// lead turns a request into a txn and proposes it. rec is the decoded
// request record (decoded once: by the server that took the request, or by
// handleApp for a forwarded one); nil for session changes, or when a
// forwarded record did not decode.
//
// Sessions are judged as of the newest proposal, not as applied here: a
// leader applies a txn only once its own disk has it, so a learner whose
// quorum ack came first may already serve a session the leader has not
// applied (liveSession).
//
// Session ownership (ZooKeeper's PrepRequestProcessor checks each request's
// owner with SessionTrackerImpl.checkSession, and Leader.revalidateSession
// sets it when a client reconnects through a learner): a moveSession request
// (or a REVALIDATE, peercaps.go) becomes a txn naming the requesting server
// as the owner; a write or closeSession from a server that is not the owner
// becomes an error txn with SessionMoved, so it is never applied. Unlike
// ZooKeeper, closeSession is checked too: a stale connection cannot close a
// session that moved away from it. A sync makes no txn and is not checked,
// as in ZooKeeper.
func (n *Node) lead(f *forwarded, rec proto.Record) {
	if !n.serving || n.status.Role != zab.Leading {
		return
	}
	if n.status.Transferring {
		held := *f // a copy: f is usually the caller's, on its stack
		n.held = append(n.held, heldRequest{f: &held, rec: rec})
		return
	}
	hdr := tree.Txn{Zxid: n.nextZxid(), SessionID: f.session, Cxid: f.cxid, Time: n.now}
	errTxn := func(code proto.ErrCode) *tree.Txn {
		t := hdr
		t.Type, t.Err = proto.OpError, code
		return &t
	}
	if f.op == proto.OpSync {
		// No txn: SYNC once the outstanding proposals commit and the
		// leadership is confirmed (peercaps.go). As ZooKeeper's leader,
		// whatever the session's state.
		if f.from == n.id() {
			return // the leader's own clients' syncs never come here
		}
		n.leadSync(f)
		return
	}
	owner, live := n.liveSession(f.session)
	if live && owner == 0 && f.op != proto.OpCreateSession && f.op != tree.OpMoveSession {
		owner = n.memoryOwner(f.session, f.from)
	}
	moved := live && owner != 0 && owner != f.from
	var txn *tree.Txn
	switch f.op {
	case proto.OpCreateSession:
		t := hdr // hdr itself stays off the heap for the common case
		txn = &t
		txn.Type, txn.TimeOut, txn.Owner = proto.OpCreateSession, f.timeout, f.from
	case tree.OpMoveSession:
		if !live {
			// Its closeSession is applied or proposed: when the requesting
			// server applies it, it refuses the waiting handshake.
			return
		}
		if s := n.sessions[f.session]; s != nil {
			n.touch(s)
		}
		t := hdr
		txn = &t
		txn.Type, txn.TimeOut, txn.Owner = tree.OpMoveSession, f.timeout, f.from
	case proto.OpCloseSession:
		if moved {
			txn = errTxn(proto.ErrSessionMoved)
			break
		}
		if s := n.sessions[f.session]; s != nil {
			s.closing = true
		}
		delete(n.proposedOwners, f.session)
		txn = n.tree.Prepare(hdr, tree.Caller{SessionID: f.session}, proto.OpCloseSession, nil)
	default:
		if !live {
			txn = errTxn(proto.ErrSessionExpired)
			break
		}
		if moved {
			txn = errTxn(proto.ErrSessionMoved)
			break
		}
		if rec == nil {
			// A forwarded record that did not decode (handleApp decoded
			// it, once): ZooKeeper's PrepRequestProcessor answers so.
			txn = errTxn(proto.ErrMarshallingError)
			break
		}
		if r, ok := rec.(*proto.ReconfigRequest); ok {
			txn = n.prepareReconfig(hdr, tree.Caller{SessionID: f.session, Auth: f.auth}, r)
			break
		}
		txn = n.tree.Prepare(hdr, tree.Caller{SessionID: f.session, Auth: f.auth}, f.op, rec)
	}
	n.propose(txn)
}

// liveSession reports whether a session is live as of the newest proposal
// (leader): applied and not closing, or with its createSession proposed and
// no closeSession after it; and its owner then, counting a proposed
// moveSession, so that no request forwarded after a move was proposed is
// applied for the old owner. Owner 0 is unknown.
//
// A session whose replicated owner is unknown has the one the leader keeps
// in memory (owners, peercaps.go; 0 while unknown there too).
func (n *Node) liveSession(id int64) (owner int64, live bool) {
	if s := n.sessions[id]; s != nil {
		if s.closing {
			return 0, false
		}
		owner, live = s.owner, true
	}
	if p, ok := n.proposedOwners[id]; ok {
		owner, live = p.owner, true
	}
	if owner == 0 {
		owner = n.owners[id]
	}
	return owner, live
}

// propose hands a prepared txn to zab.
func (n *Node) propose(txn *tree.Txn) {
	n.checkProposable(txn)
	if txn.Type != proto.OpError {
		// ZooKeeper's TxnDigest: the tree digest once this txn is applied
		// (every txn but a failed single op carries one).
		txn.DigestVersion, txn.Digest = tree.DigestVersion, n.tree.PendingDigest()
	}
	zxid, ok := n.zab.Propose(txn.Marshal())
	if !ok {
		// The epoch's counter is exhausted or leadership just ended: zab
		// starts an election, and the role change closes the clients.
		n.tree.AbandonPending()
		return
	}
	if zxid != txn.Zxid {
		panic(fmt.Sprintf("engine: prepared txn for zxid 0x%x, zab proposed 0x%x", txn.Zxid, zxid))
	}
	n.lastProposed = zxid
	n.proposed[zxid] = txn
	if txn.Type == proto.OpCreateSession || txn.Type == tree.OpMoveSession {
		n.proposedOwners[txn.SessionID] = proposedOwner{owner: txn.Owner, zxid: zxid}
	}
}

// expireSessions closes, by txn, every session silent past its timeout.
func (n *Node) expireSessions() {
	if n.status.Transferring {
		return // the successor takes over expiry with a fresh grace period
	}
	for _, id := range slices.Sorted(maps.Keys(n.sessions)) {
		s := n.sessions[id]
		if s.closing || s.expireTick > n.tick {
			continue
		}
		s.closing = true
		hdr := tree.Txn{Zxid: n.nextZxid(), SessionID: s.id, Cxid: internalCxid, Time: n.now}
		n.propose(n.tree.Prepare(hdr, tree.Caller{SessionID: s.id}, proto.OpCloseSession, nil))
	}
}

// reap deletes, by txn, empty containers and expired TTL nodes once per
// reap interval.
func (n *Node) reap() {
	if n.status.Transferring {
		return
	}
	n.reapCountdown--
	if n.reapCountdown > 0 {
		return
	}
	n.reapCountdown = n.cfg.ReapIntervalTicks
	for _, p := range n.tree.Expired(n.now, n.cfg.MaxReapPerInterval) {
		hdr := tree.Txn{Zxid: n.nextZxid(), Cxid: internalCxid, Time: n.now}
		txn := n.tree.Prepare(hdr, tree.Caller{}, proto.OpDeleteContainer, &proto.DeleteContainerRequest{Path: p})
		if txn.Type != proto.OpError {
			n.propose(txn)
		}
	}
}
