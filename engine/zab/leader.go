package zab

import (
	"slices"
	"sort"

	"github.com/zabkeeper/zabkeeper/engine/bugs"
)

// Stages of a learner as its leader sees it.
const (
	// recInfo: FOLLOWERINFO received; LEADERINFO sent once the epoch is
	// chosen.
	recInfo = iota
	// recAckEpoch: ACKEPOCH received; sync starts once a quorum acked.
	recAckEpoch
	// recSynced: the sync stream and NEWLEADER were sent; proposals and
	// commits are queued behind them.
	recSynced
	// recAcked: NEWLEADER acknowledged; the learner's acks count.
	recAcked
	// recUpToDate: UPTODATE sent; the learner serves.
	recUpToDate
)

// learnerRecord is the leader's view of one learner (ZooKeeper's
// LearnerHandler).
type learnerRecord struct {
	id       int64
	observer bool
	stage    int
	// acceptedEpoch is from FOLLOWERINFO; currentEpoch and lastZxid from
	// ACKEPOCH (FOLLOWERINFO carries no last zxid under ZooKeeper).
	acceptedEpoch, currentEpoch, lastZxid int64
	// syncEnd is the leader's last zxid when NEWLEADER was queued.
	syncEnd int64
	// ackedUpTo is the newest zxid the learner acknowledged durable.
	ackedUpTo int64
	// silence counts ticks since the learner was last heard.
	silence int
	// link numbers this learner session (LearnerLink).
	link uint64
	// pingVal and pingRun are the value of the newest PING sent and how
	// many PINGs in a row carried it; replyVal and replyRun the same for
	// the learner's echoes (confirm.go).
	pingVal, replyVal int64
	pingRun, replyRun int
	// caps are the link's capabilities, from FOLLOWERINFO (caps.go).
	caps Caps
}

// leaderState is the state of a leader from election to step-down.
type leaderState struct {
	// epochChosen is set once a quorum's FOLLOWERINFO fixed the new epoch
	// (Peer.epoch).
	epochChosen bool
	// infos are the accepted epochs of voters heard in discovery
	// (including this server).
	infos map[int64]int64
	// acked are the voters whose ACKEPOCH arrived (including this server).
	acked map[int64]bool
	// currentSet is set once currentEpoch = epoch was queued for
	// persistence and the syncs started.
	currentSet bool
	// learners are the learners connected, by id; change them only
	// through addLearner and removeLearner, which keep sorted.
	learners map[int64]*learnerRecord
	// sorted are learners' ids in order (ids), built when first asked
	// for after a change and nil until then.
	sorted []int64
	// elapsed counts ticks since this server started leading.
	elapsed int
	// counter is the counter of the newest proposal of the epoch.
	counter int64
	// transfer is set while leadership is being handed over
	// (transfer.go).
	transfer *transferState
	// rounds are the leadership confirmations asked for and not yet
	// reached, oldest first; confirmed is the newest reached; roundFresh
	// is set until the next input, so calls in between share a round
	// (confirm.go).
	rounds     []confirmRound
	confirmed  uint64
	roundFresh bool
}

// ids returns the learner ids in order, so map order decides nothing. The
// slice is shared until the learners change (every propose and commit walks
// it: a sorted copy each time was an allocation per txn); a change builds
// the next one in a new array, so a caller ranging over the ids while a
// learner is added or dropped sees the ids as they were.
func (l *leaderState) ids() []int64 {
	if l.sorted == nil {
		l.sorted = make([]int64, 0, len(l.learners))
		for id := range l.learners {
			l.sorted = append(l.sorted, id)
		}
		slices.Sort(l.sorted) // sort.Slice allocates its swapper on every call
	}
	return l.sorted[:len(l.sorted):len(l.sorted)]
}

// addLearner sets the learner record of r.id.
func (l *leaderState) addLearner(r *learnerRecord) {
	l.learners[r.id] = r
	l.sorted = nil
}

// removeLearner forgets the learner id.
func (l *leaderState) removeLearner(id int64) {
	delete(l.learners, id)
	l.sorted = nil
}

func (p *Peer) becomeLeader() {
	p.role = Leading
	p.leader = p.id
	p.epoch = 0
	p.established = false
	p.learn = nil
	p.lead = &leaderState{
		infos:    map[int64]int64{p.id: p.hs.AcceptedEpoch},
		acked:    map[int64]bool{},
		learners: map[int64]*learnerRecord{},
	}
	pending := p.pendingInfo
	p.pendingInfo = map[int64]Message{}
	for _, id := range sortedKeys(pending) {
		p.stepLeader(pending[id])
		if p.role != Leading {
			return
		}
	}
	p.maybeChooseEpoch()
}

func sortedKeys[V any](m map[int64]V) []int64 {
	out := make([]int64, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func (p *Peer) stepLeader(m Message) {
	l := p.lead
	if m.Type == MsgFollowerInfo {
		p.handleFollowerInfo(m)
		return
	}
	r := l.learners[m.From]
	if r == nil {
		return
	}
	if m.Type == MsgLinkDown {
		p.dropLearner(m.From)
		return
	}
	r.silence = 0
	if m.Type == MsgAckEpoch {
		p.handleAckEpoch(r, m)
		return
	}
	if !l.epochChosen || m.Epoch != p.epoch {
		return // stale or premature
	}
	switch m.Type {
	case MsgAck:
		p.handleAck(r, m)
		p.maybeFinishTransfer()
	case MsgPing:
		p.handlePingReply(r, m.Zxid)
	case MsgApp:
		if p.established && r.stage == recUpToDate {
			p.queueApp(m)
		}
	}
}

// HasLearner reports whether this server leads and holds learner id: its
// FOLLOWERINFO arrived and the leader has not dropped it since (its link
// broke, or it was silent past initLimit or syncLimit). A transport closes
// the link of a learner the leader no longer holds, as ZooKeeper's
// LearnerHandler ends on its socket's read timeout.
func (p *Peer) HasLearner(id int64) bool {
	return p.role == Leading && p.lead.learners[id] != nil
}

// dropLearner forgets a learner (its link broke or it went silent) and
// steps down if the established leader no longer has a quorum.
func (p *Peer) dropLearner(id int64) {
	p.lead.removeLearner(id)
	delete(p.lead.acked, id)
	if p.established && !p.quorumIn(p.liveVoter) {
		p.becomeLooking("lost a quorum of voters: learner %d left", id)
	}
}

// liveVoter reports whether id is this server or a learner that acked
// NEWLEADER; quorumIn counts it only where it is a voter.
//
// A learner counts by the configurations, not by the role it connected
// in, as ZooKeeper's leader counts NEWLEADER acks (Proposal.addAck) and
// its synced learners (the lead loop's SyncedLearnerTracker): an observer
// that a pending configuration makes a voter, which it could not learn
// from a ZooKeeper-like notification (relayVote), acks NEWLEADER having
// persisted the whole initial history (an observer gets all of it before
// establishment, sync.go) and reconnects as a follower when UPTODATE
// activates that configuration. So do discovery's FOLLOWERINFO and
// ACKEPOCH counts. Without a pending configuration's promotion an
// observer is a voter of no configuration, and counts nowhere.
func (p *Peer) liveVoter(id int64) bool {
	if id == p.id {
		return true
	}
	r := p.lead.learners[id]
	return r != nil && r.stage >= recAcked
}

func (p *Peer) tickLeader() {
	l := p.lead
	l.elapsed++
	l.roundFresh = false
	if !p.established && l.elapsed > p.cfg.InitLimit {
		p.becomeLooking("no quorum synced within initLimit (%d ticks)", p.cfg.InitLimit)
		return
	}
	for _, id := range l.ids() {
		r := l.learners[id]
		r.silence++
		// No PING before the sync stream: a ZooKeeper learner takes
		// only DIFF, TRUNC or SNAP after ACKEPOCH and exits on anything
		// else ("Got unexpected packet from leader"); ZooKeeper's
		// LearnerHandler starts pinging once the sync is queued. Until
		// the learner acked NEWLEADER it has initLimit, as in ZooKeeper
		// (its socket timeout), since it may be silent meanwhile.
		limit := p.cfg.SyncLimit
		if r.stage < recAcked {
			limit = p.cfg.InitLimit
		}
		if r.silence > limit {
			p.dropLearner(id)
			if p.role != Leading {
				return
			}
			continue
		}
		if p.ticks%p.cfg.PingTicks == 0 && r.stage >= recSynced {
			p.sendPing(r)
		}
	}
	p.tickTransfer()
	if p.established && !p.quorumIn(p.liveVoter) {
		p.becomeLooking("lost a quorum of voters (syncLimit)")
	}
}

// establish starts the broadcast phase once a quorum of voters acked
// NEWLEADER: the leader's whole history is now committed.
func (p *Peer) establish() {
	p.established = true
	p.updateVoteEpoch()
	p.lead.counter = 0
	if bugs.Active(bugs.ReuseEpoch) && Epoch(p.log.last()) == p.epoch {
		p.lead.counter = Counter(p.log.last()) // carries on the reused epoch
	}
	if last := p.log.last(); last > p.committed {
		p.committed = last
	}
	// The whole history is committed, a pending configuration with it:
	// it activates now (ZooKeeper's startZkServer; the NEWLEADER quorum
	// was one of both configurations).
	activated := p.activateCommitted()
	if c := p.newLeaderConfig(); c.Version > p.active.Version {
		// The initial configuration's version becomes NEWLEADER's zxid
		// (newLeaderConfig): same members, so no role changes.
		p.setActive(c)
	}
	for _, id := range p.lead.ids() {
		if r := p.lead.learners[id]; r.stage == recAcked {
			p.sendUpToDate(r)
		}
	}
	p.maybeApply()
	if activated && !p.active.IsVoter(p.id) {
		// The learners see at UPTODATE that their leader is no voter and
		// elect one of the new configuration.
		p.handOverTo(0, "this leader is not a voter of configuration %#x it activated when established", p.active.Version)
	}
}

func (p *Peer) sendUpToDate(r *learnerRecord) {
	r.stage = recUpToDate
	p.send(Message{Type: MsgUpToDate, To: r.id, Epoch: p.epoch, Zxid: p.committed})
}

// maybeEstablish checks the NEWLEADER quorum. The leader counts itself: its
// currentEpoch was set only after its own history was durable.
func (p *Peer) maybeEstablish() {
	if p.established || !p.lead.currentSet {
		return
	}
	if p.quorumIn(p.liveVoter) || bugs.Active(bugs.EstablishWithoutNewLeaderQuorum) {
		p.establish()
	}
}
