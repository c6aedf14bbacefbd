package zab

import "github.com/zabkeeper/zabkeeper/engine/bugs"

// Synchronization (ZAB phase 2). For each learner that acked the epoch the
// leader picks:
//   - DIFF when the learner's last zxid is a point of the leader's held
//     history, at or below its commit point: the entries after it follow
//     as proposals;
//   - TRUNC when the learner has entries the leader's history lacks (a
//     longer or divergent uncommitted tail, ZOOKEEPER-1154/-2832): the
//     learner discards everything after the newest point of the leader's
//     history below its last zxid, or after the commit point when that is
//     older, then proposals follow as for DIFF;
//   - SNAP when that point is older than the held log (MaxLogEntries and
//     the byte bound), or when the entries to send outweigh the byte bound
//     (logByteLimit, ZooKeeper's snapshotSizeFactor test in
//     ZKDatabase.getProposalsFromTxnLog): the application's snapshot, then
//     the held entries after it.
// Then COMMIT up to what the leader knows committed, and NEWLEADER. Every
// proposal and commit of the epoch queues behind this stream on the FIFO
// link, as ZooKeeper's LearnerHandler does.
//
// An observer gets committed txns only (ZooKeeper's
// LearnerHandler.startForwarding sends outstanding proposals to
// participants only): an established leader syncs it up to its commit
// point, and the proposals still outstanding reach it as INFORMs once they
// commit, each exactly once. Before the leader is established its whole
// log is the epoch's initial history, which establishment commits
// (UPTODATE), so an observer gets all of it, as a follower does.
//
// DIFF names, as ZooKeeper's does, the point of the leader's committed
// history the diff brings the learner to (LearnerHandler.syncFollower's
// maxCommittedLog): the leader's commit point, or before establishment its
// last zxid (the initial history; a ZooKeeper leader has loaded its whole
// log as committed). A learner whose last zxid is past that point (it
// reconnects within the epoch holding proposals not known committed) gets
// TRUNC to it instead, as from ZooKeeper, and those entries again as
// proposals: a DIFF past the commit point would leave them uncommitted on
// a ZooKeeper learner, which learns commits only for proposals it
// received on its connection (netstub/zklink). The learner
// refuses a DIFF that names a point below its last zxid (its history is
// not a prefix of the leader's: that needs a TRUNC) and a sync stream that
// does not reach the named point by NEWLEADER; the proposals must extend
// its log contiguously within an epoch (ZOOKEEPER-4925's check).
//
// The learner acknowledges NEWLEADER only after (a) every synced entry is
// durable (Persisted) and (b) currentEpoch = the new epoch is durable, in
// that order (ZOOKEEPER-3911, -4643, -4646): (a) is waited for, (b) is the
// HardState of the same Ready as the ACK, which the caller makes durable
// before it sends messages.

// syncLearner queues the sync stream for r.
func (p *Peer) syncLearner(r *learnerRecord) {
	lz := r.lastZxid
	last := p.log.last()
	// end is the last entry this sync sends: the history a learner gets
	// before it takes part in broadcast.
	end := last
	if r.observer && p.established {
		end = min(p.committed, last)
	}
	// c is the newest point of the leader's committed history. A learner
	// past it (it reconnects within the epoch holding proposals not known
	// committed, say after a restart) is truncated to it and gets those
	// entries again as proposals, as ZooKeeper's syncFollower does
	// (peerLastZxid > maxCommittedLog: TRUNC): their COMMITs then follow
	// on this connection, and a ZooKeeper learner, which commits only
	// proposals it received on its connection, learns them too.
	c := p.diffPoint()
	var start int64
	switch {
	case (lz == last || (lz < last && p.log.contains(lz))) && lz <= c && !p.diffTooHeavy(lz, lz):
		start = lz
		p.send(Message{Type: MsgDiff, To: r.id, Epoch: p.epoch, Zxid: c})
	default:
		t, ok := p.log.lastBefore(lz)
		if lz > last {
			t, ok = last, true
		}
		if t > c && p.log.contains(c) {
			// Never past the commit point: the learner has applied
			// nothing beyond it (its TRUNC check).
			t = c
		}
		if ok && !p.diffTooHeavy(t, lz) {
			start = t
			p.send(Message{Type: MsgTrunc, To: r.id, Epoch: p.epoch, Zxid: t})
			break
		}
		z, data := p.app.Snapshot()
		if z < p.log.base || z > last {
			// The application is not where the log says; the learner
			// will retry.
			p.dropLearner(r.id)
			return
		}
		start = z
		p.send(Message{Type: MsgSnap, To: r.id, Epoch: p.epoch, Zxid: z, Snapshot: data})
	}
	for _, e := range p.log.after(start) {
		if e.Zxid > end {
			break
		}
		p.send(Message{Type: MsgProposal, To: r.id, Epoch: p.epoch, Entry: e})
	}
	if c := min(p.committed, end); c > start {
		p.send(Message{Type: MsgCommit, To: r.id, Epoch: p.epoch, Zxid: c})
	}
	p.send(Message{Type: MsgNewLeader, To: r.id, Epoch: p.epoch, Zxid: MakeZxid(p.epoch, 0), Payload: AppendMembership(nil, p.newLeaderConfig())})
	r.stage = recSynced
	r.syncEnd = max(start, end)
}

// diffPoint is the newest zxid of the leader's committed history, as a
// DIFF names it: the commit point once established, before that the last
// zxid (the initial history that establishment commits).
func (p *Peer) diffPoint() int64 {
	if p.established {
		return min(p.committed, p.log.last())
	}
	return p.log.last()
}

// diffTooHeavy reports whether a learner at lz should get a SNAP rather
// than the held entries after start: they outweigh the byte bound, and the
// snapshot (at least at the applied zxid the caller acknowledged) is past lz, so the learner can take it.
func (p *Peer) diffTooHeavy(start, lz int64) bool {
	return p.appliedAcked > lz && p.appliedAcked >= p.log.base && p.log.bytesAfter(start) > p.logByteLimit()
}

// handleSyncStart handles DIFF, TRUNC and SNAP on a learner.
func (p *Peer) handleSyncStart(m Message) {
	switch m.Type {
	case MsgDiff:
		// ZooKeeper's learner checks nothing here. The leader chose DIFF
		// because our last zxid (ACKEPOCH's) is on its history; a DIFF to
		// a point below it says otherwise, and a point of a later epoch
		// than the leader's is no history at all.
		if m.Zxid < p.log.last() || Epoch(m.Zxid) > p.epoch {
			p.becomeLooking("leader %d's DIFF to %#x does not fit our log (last %#x, leader epoch %d)", m.From, m.Zxid, p.log.last(), p.epoch)
			return
		}
		p.learn.diffTo = m.Zxid
	case MsgTrunc:
		if bugs.Active(bugs.KeepDivergentTail) {
			break
		}
		t := m.Zxid
		if !p.log.contains(t) || p.applied > t {
			// Our history does not contain the leader's point or we
			// applied past it: never rewrite applied state.
			p.becomeLooking("leader %d's TRUNC to %#x is not in our history or below what we applied (%#x)", m.From, t, p.applied)
			return
		}
		p.truncateLog(t)
	case MsgSnap:
		if m.Zxid < p.applied {
			p.becomeLooking("leader %d's SNAP at %#x is below what we applied (%#x)", m.From, m.Zxid, p.applied)
			return
		}
		p.installSnapshot(m.Zxid, m.Snapshot)
	}
	p.learn.stage = lsSync
}

// handleNewLeader ends the sync stream.
func (p *Peer) handleNewLeader(m Message) {
	if m.Zxid != MakeZxid(p.epoch, 0) || p.log.last() < p.learn.diffTo {
		// Not this epoch's NEWLEADER, or the sync stream fell short of
		// the point its DIFF named.
		p.becomeLooking("leader %d's NEWLEADER %#x is not this epoch's or the sync fell short of %#x (last %#x)", m.From, m.Zxid, p.learn.diffTo, p.log.last())
		return
	}
	if len(m.Payload) > 0 && p.cfg.ReconfigOf != nil {
		// Without reconfig the configuration is static and the check is
		// off (ZooKeeper's processReconfig does nothing then).
		c, err := DecodeMembership(m.Payload)
		if err != nil {
			p.becomeLooking("leader %d's NEWLEADER: %v", m.From, err)
			return
		}
		if c.Version < p.active.Version {
			// ZooKeeper's LearnerHandler refuses such a learner.
			p.becomeLooking("follower is ahead of leader %d (has a later activated configuration: %#x, the leader's is %#x)", m.From, p.active.Version, c.Version)
			return
		}
		p.learn.leaderConfig = &c
	}
	p.learn.stage = lsNewLeader
	p.learn.syncEnd = p.log.last()
	if bugs.Active(bugs.EpochBeforePersist) {
		hs := p.hs
		hs.CurrentEpoch = p.epoch
		p.setHardState(hs)
	}
	p.maybeAckNewLeader()
}

// maybeAckNewLeader acknowledges NEWLEADER once the synced history is
// durable, adopting the new epoch as currentEpoch first.
func (p *Peer) maybeAckNewLeader() {
	ls := p.learn
	if ls == nil || ls.stage != lsNewLeader {
		return
	}
	if p.persisted < ls.syncEnd && !bugs.Active(bugs.AckNewLeaderBeforePersist) {
		return
	}
	hs := p.hs
	hs.CurrentEpoch = p.epoch
	p.setHardState(hs)
	p.send(Message{Type: MsgAck, To: p.leader, Epoch: p.epoch, Zxid: MakeZxid(p.epoch, 0)})
	ls.stage = lsAcked
	ls.ackSent = ls.syncEnd
	p.maybeAckProposals()
}

// handleUpToDate starts serving.
func (p *Peer) handleUpToDate(m Message) {
	p.learn.stage = lsUpToDate
	p.established = true
	p.updateVoteEpoch()
	if m.Zxid > p.committed {
		p.committed = min(m.Zxid, p.log.last())
	}
	p.maybeApply()
	// The leader is established: its last-seen configuration is active
	// there (a snapshot may have carried us past its entry).
	p.activateCommitted()
	if c := p.learn.leaderConfig; c != nil {
		p.adopt(*c)
	}
	p.dropUnlogged()
	p.learnerActivated(0)
}
