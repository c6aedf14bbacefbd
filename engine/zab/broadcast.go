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

// advanceCommit commits the newest zxid of the epoch a quorum of voters
// holds durably.
func (p *Peer) advanceCommit() {
	if p.role != Leading || !p.established {
		return
	}
	l := p.lead
	// The acks are sorted below, so the map's order does not matter; a
	// small ensemble's fit on the stack (this runs on every ACK).
	var buf [8]int64
	acks := append(buf[:0], min(p.persisted, p.log.last()))
	for _, r := range l.learners {
		if !r.observer && r.stage >= recAcked {
			acks = append(acks, r.ackedUpTo)
		}
	}
	q := p.quorum()
	if bugs.Active(bugs.CommitBeforeQuorum) {
		q = 1
	}
	if len(acks) < q {
		return
	}
	slices.Sort(acks)
	c := acks[len(acks)-q] // the q-th highest
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
	for _, id := range l.ids() {
		r := l.learners[id]
		if r.stage < recSynced {
			continue
		}
		if !r.observer {
			p.send(Message{Type: MsgCommit, To: id, Epoch: p.epoch, Zxid: c})
			continue
		}
		for _, e := range newly {
			p.send(Message{Type: MsgInform, To: id, Epoch: p.epoch, Entry: e})
		}
	}
	p.maybeApply()
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
		ok = !p.isObserver(p.id) && p.nextInEpoch(z)
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
