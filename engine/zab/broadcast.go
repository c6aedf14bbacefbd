package zab

import "github.com/zabkeeper/zabkeeper/engine/bugs"

import "slices"

// Broadcast (ZAB phase 3). The established leader appends each txn to its
// log and sends it as PROPOSAL to every follower that got NEWLEADER; a
// follower appends it and acks once it is durable (acks are cumulative: an
// ACK(z) says every entry up to z is durable). The leader commits strictly
// in zxid order the newest zxid of its epoch that a quorum of voters hold
// durably (itself only after Persisted), and sends COMMIT to followers and
// INFORM with each committed entry to observers.

func (p *Peer) propose(data []byte) (int64, bool) {
	l := p.lead
	next := l.counter + 1
	if next >= p.counterLimit {
		// The counter is exhausted: a new epoch restarts it.
		p.becomeLooking("the zxid counter of epoch %d is exhausted: a new epoch restarts it", p.epoch)
		return 0, false
	}
	l.counter = next
	e := Entry{Zxid: MakeZxid(p.epoch, next), Data: data}
	p.appendEntry(e)
	for _, id := range l.ids() {
		if r := l.learners[id]; !r.observer && r.stage >= recSynced {
			p.send(Message{Type: MsgProposal, To: id, Epoch: p.epoch, Entry: e})
		}
	}
	p.advanceCommit()
	return e.Zxid, true
}

func (p *Peer) handleAck(r *learnerRecord, m Message) {
	if Counter(m.Zxid) == 0 {
		if m.Zxid != MakeZxid(p.epoch, 0) || r.stage != recSynced {
			return
		}
		r.stage = recAcked
		r.ackedUpTo = r.syncEnd
		if p.established {
			p.sendUpToDate(r)
			p.advanceCommit()
			return
		}
		p.maybeEstablish()
		return
	}
	if r.observer || r.stage < recAcked {
		return
	}
	if z := min(m.Zxid, p.log.last()); z > r.ackedUpTo {
		r.ackedUpTo = z
		p.advanceCommit()
	}
}

// ackedBy is the newest zxid server id holds durably as this leader knows
// it: its own fsynced log, a follower's acks; -1 for servers that do not
// ack (observers, learners not synced).
func (p *Peer) ackedBy(id int64) int64 {
	if id == p.id {
		return min(p.persisted, p.log.last())
	}
	r := p.lead.learners[id]
	if r == nil || r.observer || r.stage < recAcked {
		return -1
	}
	return r.ackedUpTo
}

// quorumPoint is the newest zxid a quorum of c's voters holds durably.
func (p *Peer) quorumPoint(c *Membership) int64 {
	// A small ensemble's acks fit on the stack (this runs on every ACK).
	var buf [8]int64
	acks := buf[:0]
	for _, id := range c.Voters {
		acks = append(acks, p.ackedBy(id))
	}
	q := len(c.Voters)/2 + 1
	if bugs.Active(bugs.CommitBeforeQuorum) {
		q = 1
	}
	if len(acks) < q {
		return -1
	}
	slices.Sort(acks)
	return acks[len(acks)-q] // the q-th highest
}

// commitPoint is the newest zxid every configuration it concerns has a
// quorum for: the active one every entry, a pending one the entries from
// its reconfig entry on (ZooKeeper adds the last-seen verifier to every
// proposal from the reconfig's on).
func (p *Peer) commitPoint() int64 {
	c := p.quorumPoint(&p.active)
	for i := range p.pending {
		pc := &p.pending[i]
		if c < pc.Version {
			break
		}
		before, _ := p.log.lastBefore(pc.Version)
		if !bugs.Active(bugs.ActivateBeforeNewQuorum) {
			c = max(min(c, p.quorumPoint(pc)), before)
		}
	}
	if bugs.Active(bugs.StaleConfigQuorum) && p.replaced != nil {
		c = min(c, p.quorumPoint(p.replaced))
	}
	return c
}

// advanceCommit commits the newest zxid of the epoch a quorum of voters
// holds durably (of every configuration concerned), activating the
// configuration of a reconfig entry it commits.
func (p *Peer) advanceCommit() {
	if p.role != Leading || !p.established {
		return
	}
	l := p.lead
	c := p.commitPoint()
	if c <= p.committed || Epoch(c) != p.epoch {
		return
	}
	old := p.committed
	p.committed = c
	var newly []Entry
	for _, e := range p.log.after(old) {
		if e.Zxid > c {
			break
		}
		newly = append(newly, e)
	}
	// A reconfig entry among them: its configuration activates here, and
	// the learners hear COMMITANDACTIVATE or INFORMANDACTIVATE for it.
	var activated *Membership
	if len(p.pending) > 0 && p.pending[0].Version <= c {
		a := p.pending[0]
		activated = &a
	}
	var designated int64
	if activated != nil {
		p.activateCommitted()
		designated = p.designatedLeader(p.active)
	}
	for _, id := range l.ids() {
		r := l.learners[id]
		if r.stage < recSynced {
			continue
		}
		if !r.observer {
			if activated != nil {
				p.send(Message{Type: MsgCommitAndActivate, To: id, Epoch: p.epoch, Zxid: activated.Version, Vote: Vote{Leader: designated}})
				if c == activated.Version {
					continue
				}
			}
			p.send(Message{Type: MsgCommit, To: id, Epoch: p.epoch, Zxid: c})
			continue
		}
		for _, e := range newly {
			if activated != nil && e.Zxid == activated.Version {
				p.send(Message{Type: MsgInformAndActivate, To: id, Epoch: p.epoch, Entry: e, Vote: Vote{Leader: designated}})
				continue
			}
			p.send(Message{Type: MsgInform, To: id, Epoch: p.epoch, Entry: e})
		}
	}
	p.maybeApply()
	if activated == nil {
		return
	}
	if !p.active.IsVoter(p.id) {
		p.leaderActivated(designated)
		return
	}
	// Entries after the reconfig's may have a quorum of the new
	// configuration alone.
	p.advanceCommit()
}

// nextInEpoch reports whether z directly follows this server's log within
// the current epoch.
func (p *Peer) nextInEpoch(z int64) bool {
	if Epoch(z) != p.epoch {
		return false
	}
	last := p.log.last()
	if Epoch(last) == p.epoch {
		return Counter(z) == Counter(last)+1
	}
	return Counter(z) == 1 && z > last
}

// handleProposal appends a proposal on a learner: a synced entry during the
// sync stream, a broadcast one after NEWLEADER.
func (p *Peer) handleProposal(m Message) {
	z := m.Entry.Zxid
	ok := false
	switch p.learn.stage {
	case lsSync:
		if bugs.Active(bugs.KeepDivergentTail) && z <= p.log.last() {
			return // keeps whatever it had at z
		}
		last := p.log.last()
		// Within an epoch a history has no gaps: a proposal of last's
		// epoch must follow it directly.
		ok = p.nextInEpoch(z) || (z > last && Epoch(z) < p.epoch &&
			(Epoch(z) != Epoch(last) || Counter(z) == Counter(last)+1))
	case lsNewLeader, lsAcked, lsUpToDate:
		ok = p.role == Following && p.nextInEpoch(z)
	}
	if !ok {
		// A gap or a protocol error: resync from scratch.
		p.becomeLooking("proposal %#x from leader %d does not follow the log (last %#x): resync", z, m.From, p.log.last())
		return
	}
	p.appendEntry(m.Entry)
	if bugs.Active(bugs.AckBeforePersist) {
		p.maybeAckProposals()
	}
}

// handleCommit raises the commit point; entries are applied once durable.
func (p *Peer) handleCommit(m Message) {
	if m.Zxid > p.log.last() {
		p.becomeLooking("leader %d committed %#x beyond the log (last %#x)", m.From, m.Zxid, p.log.last())
		return
	}
	if m.Zxid > p.committed {
		p.committed = m.Zxid
		p.maybeApply()
		if m.Type == MsgCommit {
			p.commitChanged()
		}
	}
}

// handleInform appends (if new) and commits a committed entry on an
// observer.
func (p *Peer) handleInform(m Message) {
	z := m.Entry.Zxid
	if z > p.log.last() {
		if !p.nextInEpoch(z) {
			p.becomeLooking("INFORM %#x from leader %d does not follow the log (last %#x)", z, m.From, p.log.last())
			return
		}
		p.appendEntry(m.Entry)
	} else if !p.log.contains(z) && z > p.log.base {
		p.becomeLooking("INFORM %#x from leader %d is not in the log", z, m.From)
		return
	}
	if z > p.committed {
		p.committed = z
		p.maybeApply()
		if m.Type == MsgInform {
			p.commitChanged()
		}
	}
}

// maybeAckProposals acknowledges, cumulatively, the durable proposals of
// the epoch after NEWLEADER was acked. Observers do not ack proposals.
func (p *Peer) maybeAckProposals() {
	ls := p.learn
	if ls == nil || ls.stage < lsAcked || p.role != Following {
		return
	}
	z := min(p.persisted, p.log.last())
	if bugs.Active(bugs.AckBeforePersist) {
		z = p.log.last()
	}
	if z > ls.ackSent && Epoch(z) == p.epoch {
		ls.ackSent = z
		p.send(Message{Type: MsgAck, To: p.leader, Epoch: p.epoch, Zxid: z})
	}
}
