package zab

// Leadership confirmation: a round trip that proves this server still led
// after some moment. A sync, answered without a txn (where ZooKeeper's
// leader answers once the outstanding proposals commit, ZOOKEEPER-1675),
// waits for one, so a leader cut off from its quorum — and
// maybe already replaced — never answers a sync with stale data.
//
// No new packet: the round is PINGs. The leader's PING carries its last
// proposed zxid (as ZooKeeper's does) and every learner echoes the PING's
// zxid in its reply (ZooKeeper's Learner.ping does), once per PING, in
// order on the link. The values a leader sends one learner never decrease,
// so a reply proves receipt of a PING sent at or after a mark (value v, the
// k-th PING with that value) when it echoes a value above v, or is at least
// the k-th reply echoing v: each reply answers a distinct PING, so the k-th
// one with v answers the k-th PING with v or a later one. Other PINGs a
// learner sends (engine touches, zxid 0) echo no leader value: every value
// a leader sends is at least epoch<<32 > 0. A round is confirmed once a
// quorum of voters, this server included, answered such a PING.
//
// Echoes are counted per learner session (a new FOLLOWERINFO starts from
// zero), so this assumes the transport does not deliver a message of a
// learner's earlier connection after its next session began; the counting
// ignores echoes the session's own PINGs cannot account for, which leaves
// only a reply held back across the whole of the next handshake.

// pingMark is where a round starts on one learner's link.
type pingMark struct {
	link uint64 // the learner session (LearnerLink)
	val  int64
	run  int
}

// confirmRound is a requested confirmation not yet reached.
type confirmRound struct {
	id    uint64
	marks map[int64]pingMark
}

// lastProposed is the value of the leader's PINGs: its newest zxid, at
// least epoch<<32 (ZooKeeper's Leader.lastProposed).
func (p *Peer) lastProposed() int64 { return max(p.log.last(), MakeZxid(p.epoch, 0)) }

// sendPing sends a PING to learner r and counts it.
func (p *Peer) sendPing(r *learnerRecord) {
	v := p.lastProposed()
	if v == r.pingVal {
		r.pingRun++
	} else {
		r.pingVal, r.pingRun = v, 1
	}
	p.send(Message{Type: MsgPing, To: r.id, Epoch: p.epoch, Zxid: v})
}

// handlePingReply counts a learner's echo of one of our PINGs. An echo
// this session's PINGs cannot account for (a value not sent yet, or more
// echoes of a value than PINGs with it) is ignored: a late message of the
// learner's previous session, which the transport delivered after this
// one began.
func (p *Peer) handlePingReply(r *learnerRecord, z int64) {
	switch {
	case z > r.pingVal || z < r.replyVal:
		return
	case z > r.replyVal:
		r.replyVal, r.replyRun = z, 1
	case z == r.pingVal && r.replyRun >= r.pingRun:
		return
	default:
		r.replyRun++
	}
	p.checkRounds()
}

// ConfirmLeadership asks for proof that this server still leads as of
// now: it pings every synced learner and returns the round, which
// LeadershipConfirmed reports once a quorum of voters answered. 0 when
// this server is not an established leader (nothing will confirm). Calls
// between two inputs (Step, Tick) share one round.
func (p *Peer) ConfirmLeadership() uint64 {
	if p.role != Leading || !p.established {
		return 0
	}
	l := p.lead
	if n := len(l.rounds); n > 0 && l.roundFresh {
		return l.rounds[n-1].id
	}
	p.confirmSeq++
	rd := confirmRound{id: p.confirmSeq, marks: map[int64]pingMark{}}
	for _, id := range l.ids() {
		r := l.learners[id]
		if r.stage != recUpToDate {
			continue
		}
		p.sendPing(r)
		if !r.observer {
			rd.marks[id] = pingMark{link: r.link, val: r.pingVal, run: r.pingRun}
		}
	}
	l.rounds = append(l.rounds, rd)
	l.roundFresh = true
	p.checkRounds()
	return rd.id
}

// LeadershipConfirmed returns the newest confirmed round of this
// leadership: every round up to it is confirmed. 0 when not leading.
func (p *Peer) LeadershipConfirmed() uint64 {
	if p.role != Leading || !p.established {
		return 0
	}
	return p.lead.confirmed
}

// checkRounds confirms the rounds a quorum answered, oldest first.
func (p *Peer) checkRounds() {
	l := p.lead
	for len(l.rounds) > 0 {
		rd := l.rounds[0]
		answered := func(id int64) bool {
			if id == p.id {
				return true
			}
			m, ok := rd.marks[id]
			r := l.learners[id]
			if !ok || r == nil || r.link != m.link {
				return false
			}
			return r.replyVal > m.val || (r.replyVal == m.val && r.replyRun >= m.run)
		}
		// Only voters count, in every configuration in force or pending.
		if !p.quorumIn(answered) {
			return
		}
		l.confirmed = rd.id
		l.rounds = l.rounds[1:]
	}
}
