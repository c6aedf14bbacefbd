package zab

import "github.com/zabkeeper/zabkeeper/engine/bugs"

// Discovery (ZAB phase 1). A learner opens with FOLLOWERINFO carrying its
// acceptedEpoch (not its last zxid: ZooKeeper's FOLLOWERINFO has none, so
// the leader learns it from ACKEPOCH, before any check or sync uses it). Once FOLLOWERINFOs from a quorum of voters
// (the leader included) arrived, the leader picks an epoch above every
// accepted epoch among them, persists it as its acceptedEpoch and answers
// LEADERINFO. A learner accepts an epoch no lower than its own, persists it,
// and answers ACKEPOCH with its currentEpoch and last zxid; the leader gives
// up if a voter's (currentEpoch, lastZxid) beats its own. A learner that had
// already accepted that very epoch answers with currentEpoch -1, which does
// not count toward the quorum (as in ZooKeeper's Learner and Leader): each
// voter then counts for at most one leader per epoch, so at most one leader
// per epoch gets its ACKEPOCH quorum, sets currentEpoch and establishes.
//
// When the leader sets its own currentEpoch. ZooKeeper's Leader sets it
// after the NEWLEADER quorum; the protocol TLA+ spec in apache/zookeeper
// (zookeeper-specifications/protocol-spec, LeaderProcessACKEPOCH) sets it
// when the ACKEPOCH quorum forms, before any NEWLEADER is sent. We follow the
// spec, with one more condition: the leader's own log must be durable first
// (the leader-side twin of ZOOKEEPER-3911/-4643). The spec's order makes the
// leader's vote in any later election carry the new epoch as soon as its
// history became the epoch's initial history, which is what a follower's
// currentEpoch says after it acks NEWLEADER; and the durability condition
// makes that claim true: a leader that crashed with an unsynced tail and
// restarted with currentEpoch = e' could otherwise beat a voter holding a
// committed entry the leader lost. HardState is made durable before the
// NEWLEADER messages of the same Ready go out, so the leader counts itself
// in the NEWLEADER quorum.

func (p *Peer) handleFollowerInfo(m Message) {
	l := p.lead
	if _, ok := l.learners[m.From]; ok {
		// The learner started over with us: forget its old session.
		l.removeLearner(m.From)
		delete(l.acked, m.From)
	}
	r := &learnerRecord{
		id:            m.From,
		observer:      m.Observer,
		stage:         recInfo,
		acceptedEpoch: m.Epoch,
		caps:          m.Caps,
	}
	p.links++
	r.link = p.links
	l.addLearner(r)
	if l.epochChosen {
		p.send(Message{Type: MsgLeaderInfo, To: r.id, Epoch: p.epoch})
		return
	}
	if p.anyVoter(r.id) {
		// Counted where it is a voter, whether it follows or observes
		// (liveVoter).
		l.infos[r.id] = m.Epoch
	}
	p.maybeChooseEpoch()
}

// maybeChooseEpoch picks the new epoch once a quorum of voters reported
// their accepted epochs.
func (p *Peer) maybeChooseEpoch() {
	l := p.lead
	if l.epochChosen || !p.quorumIn(func(id int64) bool { _, ok := l.infos[id]; return ok }) {
		return
	}
	var maxEpoch int64
	for _, id := range sortedKeys(l.infos) {
		maxEpoch = max(maxEpoch, l.infos[id])
	}
	newEpoch := maxEpoch + 1
	if bugs.Active(bugs.ReuseEpoch) && maxEpoch > 0 {
		newEpoch = maxEpoch
	}
	l.epochChosen = true
	p.epoch = newEpoch
	hs := p.hs
	hs.AcceptedEpoch = newEpoch
	p.setHardState(hs)
	for _, id := range l.ids() {
		p.send(Message{Type: MsgLeaderInfo, To: id, Epoch: newEpoch})
	}
	l.acked[p.id] = true
	p.maybeSetCurrentEpoch()
}

func (p *Peer) handleAckEpoch(r *learnerRecord, m Message) {
	l := p.lead
	if !l.epochChosen || r.stage != recInfo {
		return
	}
	counts := p.anyVoter(r.id) && m.Epoch != noEpoch
	if counts && stateGreater(m.Epoch, m.Zxid, p.hs.CurrentEpoch, p.log.last()) {
		// ZAB: a voter knows a newer history than ours; we may not lead.
		p.becomeLooking("voter %d has a newer history (epoch %d, zxid %#x) than this leader's (epoch %d, zxid %#x)", m.From, m.Epoch, m.Zxid, p.hs.CurrentEpoch, p.log.last())
		return
	}
	r.currentEpoch = m.Epoch
	r.lastZxid = m.Zxid
	r.stage = recAckEpoch
	if l.currentSet {
		p.syncLearner(r)
		return
	}
	if counts {
		l.acked[r.id] = true
	}
	p.maybeSetCurrentEpoch()
}

// stateGreater orders (currentEpoch, lastZxid) pairs.
func stateGreater(e1, z1, e2, z2 int64) bool {
	if e1 != e2 {
		return e1 > e2
	}
	return z1 > z2
}

// maybeSetCurrentEpoch adopts the new epoch as currentEpoch once a quorum
// acked it and this server's log is durable, then syncs every learner that
// acked.
func (p *Peer) maybeSetCurrentEpoch() {
	l := p.lead
	if !l.epochChosen || l.currentSet || !p.quorumIn(func(id int64) bool { return l.acked[id] }) || p.persisted < p.log.last() {
		return
	}
	l.currentSet = true
	hs := p.hs
	hs.CurrentEpoch = p.epoch
	p.setHardState(hs)
	for _, id := range l.ids() {
		if r := l.learners[id]; r.stage == recAckEpoch {
			p.syncLearner(r)
		}
	}
	p.maybeEstablish()
}
