package zab

import "github.com/zabkeeper/zabkeeper/engine/bugs"

// Leadership transfer, for a leader about to stop (a SIGTERM, a rolling
// restart). ZooKeeper has none: its followers notice a stopped leader only
// after syncLimit ticks of silence and then elect, so every restart of a
// leader pauses writes for seconds. etcd's raft has one (MsgTransferLeader,
// MsgTimeoutNow), and this follows its steps:
//
//  1. TransferLeadership: the leader stops proposing (Propose fails; the
//     engine holds new requests back) and waits for a synced voter whose
//     acknowledged zxid is the leader's last, so it holds the leader's whole
//     history and will win the election and pass discovery.
//  2. It sends every synced follower MsgTimeoutNow, which makes it start an
//     election at once, and itself leaves leadership with a Looking
//     notification that votes for that follower (the successor), so no one
//     waits for a timeout. In that election the departing server votes for
//     its successor, never for itself; it may follow the new leader until
//     it stops.
//  3. If no follower caught up within Config.TransferTicks ticks, the
//     transfer is abandoned and the leader goes on leading; the caller
//     stops it anyway.
//
// Safety does not rest on the transfer: the election and discovery run as
// always (a new leader gives up if any voter of its quorum knows a newer
// history), the transfer only chooses who starts first. When several
// followers hold the leader's last zxid, fast leader election's order
// (epoch, zxid, id) may elect another of them than the target; that is as
// quick and as correct.

// DefaultTransferTicks is Config.TransferTicks when left zero.
const DefaultTransferTicks = 2

// transferState is a leader's transfer in progress.
type transferState struct {
	// elapsed counts ticks since the transfer started.
	elapsed int
}

// TransferLeadership starts handing leadership over to the most up-to-date
// follower, for a leader that is about to stop. It returns false, changing
// nothing, unless this server is an established leader with at least one
// synced voting follower whose link has CapTransfer, and no transfer under
// way. Progress shows in
// Status: Transferring while waiting for a follower to catch up, then
// HandedOver (and no longer Leading) once the target was told to take over.
func (p *Peer) TransferLeadership() bool {
	if p.role != Leading || !p.established || p.lead.transfer != nil {
		return false
	}
	if len(p.transferCandidates(0)) == 0 {
		return false
	}
	p.lead.transfer = &transferState{}
	p.maybeFinishTransfer()
	return true
}

// transferCandidates returns, in id order, the synced voting followers
// that acknowledged at least zxid and whose link has CapTransfer: a
// ZooKeeper follower knows no TIMEOUTNOW, so it is never told one, nor
// chosen as the successor (it just sees this leader's link close).
func (p *Peer) transferCandidates(zxid int64) []int64 {
	var out []int64
	for _, id := range p.lead.ids() {
		r := p.lead.learners[id]
		if r.caps&CapTransfer == 0 && !bugs.Active(bugs.TransferIgnoresCaps) {
			continue
		}
		if !r.observer && p.isVoter(id) && r.stage == recUpToDate && r.ackedUpTo >= zxid {
			out = append(out, id)
		}
	}
	return out
}

// maybeFinishTransfer hands over once a follower holds the whole log. Of
// several, the highest id: the one fast leader election ranks first among
// equal histories, so the election agrees with the choice.
func (p *Peer) maybeFinishTransfer() {
	if p.role != Leading || p.lead.transfer == nil {
		return
	}
	last := p.log.last()
	ready := p.transferCandidates(last)
	if len(ready) == 0 {
		return
	}
	target := ready[len(ready)-1]
	p.successor = &Vote{Leader: target, Zxid: last, PeerEpoch: p.hs.CurrentEpoch}
	for _, id := range p.transferCandidates(0) {
		p.send(Message{Type: MsgTimeoutNow, To: id, Epoch: p.epoch, Zxid: last, Vote: *p.successor})
	}
	p.handedOver = true
	p.becomeLooking("handed leadership over")
}

// tickTransfer abandons a transfer no follower completed in time.
func (p *Peer) tickTransfer() {
	t := p.lead.transfer
	if t == nil {
		return
	}
	t.elapsed++
	if t.elapsed > p.cfg.TransferTicks {
		p.lead.transfer = nil
	}
}

// handleTimeoutNow starts an election at once on a follower of a departing
// leader. The Looking notifications that other followers sent it while it
// was still following count in this election as if they had arrived now:
// followers go looking at slightly different moments, and without them a
// follower would hear too few votes of its round to decide at once, and
// wait a tick for more.
func (p *Peer) handleTimeoutNow(m Message) {
	if p.role != Following || p.learn.stage != lsUpToDate || m.Epoch != p.epoch {
		return
	}
	early := p.earlyVotes
	p.earlyVotes = nil
	p.becomeLooking("the leader handed over (TIMEOUTNOW)")
	for _, id := range sortedKeys(early) {
		if p.role != Looking {
			return
		}
		p.stepNotification(early[id])
	}
}

// rememberEarlyVote keeps, until the next tick, a Looking notification that
// reached this server while it was not looking, for handleTimeoutNow.
func (p *Peer) rememberEarlyVote(m Message) {
	if p.earlyVotes == nil {
		p.earlyVotes = map[int64]Message{}
	}
	p.earlyVotes[m.From] = m
}

// candidacy is the vote this server starts an election round with: its own,
// or, once it handed leadership over, its successor's.
func (p *Peer) candidacy() Vote {
	if p.successor != nil {
		return *p.successor
	}
	return p.selfVote()
}
