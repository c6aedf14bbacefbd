package zab

// Fast leader election (ZooKeeper's FastLeaderElection). Votes are ordered
// by (PeerEpoch, Zxid, Leader): the proposed leader's currentEpoch, its last
// logged zxid and its id. A looking voter adopts any better vote it hears in
// its round and rebroadcasts; it decides once a quorum of the round's
// notifications agree with its vote (after waiting FinalizeTicks for a
// better vote, unless every voter that could still answer already agrees),
// or once a quorum of servers that
// are already following or leading point at the same leader and epoch and
// that leader says it leads.
// Non-voters (observers) propose nobody of their own and learn the leader
// only the second way; with reconfig they pass on the best vote of their
// round (relayVote), which counts where a pending configuration makes them
// voters.

import "slices"

// election is the state of fast leader election.
type election struct {
	// round is the logical clock.
	round int64
	// vote is the current proposal while looking, the decided vote after.
	vote Vote
	// recv holds this round's notifications, by voter.
	recv map[int64]Vote
	// out holds notifications from voters that are following or leading.
	out map[int64]Vote
	// elapsed and timeout time the rebroadcast of the vote; interval is
	// the current base of timeout, doubled by each rebroadcast up to
	// MaxElectionTicks.
	elapsed, timeout, interval int
	// decidePending is set when a quorum agrees but not every voter has
	// spoken: the decision waits finalizeLeft ticks for a better vote.
	decidePending bool
	finalizeLeft  int
}

// voteGreater orders votes by (PeerEpoch, Zxid, Leader).
func voteGreater(a, b Vote) bool {
	if a.PeerEpoch != b.PeerEpoch {
		return a.PeerEpoch > b.PeerEpoch
	}
	if a.Zxid != b.Zxid {
		return a.Zxid > b.Zxid
	}
	return a.Leader > b.Leader
}

// sameVote compares what a vote proposes, not who sent it when.
func sameVote(a, b Vote) bool {
	return a.Leader == b.Leader && a.Zxid == b.Zxid && a.PeerEpoch == b.PeerEpoch
}

// sameLeader compares the votes of servers out of election: as in
// ZooKeeper's Vote.equals, only the leader and its epoch matter, since
// servers that joined at different times decided on different zxids.
func sameLeader(a, b Vote) bool {
	return a.Leader == b.Leader && a.PeerEpoch == b.PeerEpoch
}

// updateVoteEpoch makes the decided vote carry the established epoch, as
// ZooKeeper's updateElectionVote does, so that every server of the epoch
// answers late joiners with the same (leader, epoch).
func (p *Peer) updateVoteEpoch() {
	p.elec.vote.PeerEpoch = p.epoch
}

// selfVote is this server's own candidacy.
func (p *Peer) selfVote() Vote {
	return Vote{Leader: p.id, Zxid: p.log.last(), PeerEpoch: p.hs.CurrentEpoch}
}

// currentVote is the notification this server sends now.
func (p *Peer) currentVote() Vote {
	v := p.elec.vote
	v.Round = p.elec.round
	v.State = p.role
	return v
}

func (p *Peer) resetElectionTimer() {
	p.elec.elapsed = 0
	if p.elec.interval <= 0 {
		p.elec.interval = p.cfg.ElectionTicks
	}
	p.elec.timeout = p.elec.interval + p.rng.intn(p.elec.interval)
}

func (p *Peer) startElection() {
	p.elec.round++
	p.elec.recv = map[int64]Vote{}
	p.elec.out = map[int64]Vote{}
	p.elec.decidePending = false
	p.elec.interval = p.cfg.ElectionTicks
	p.elec.vote = Vote{}
	if p.anyVoter(p.id) {
		p.setProposal(p.candidacy())
	}
	p.resetElectionTimer()
	if p.quietStart {
		// A leader the reconfig removed: its followers are switching to
		// the designated leader on COMMITANDACTIVATE, which a looking
		// notification (sent ahead of queued packets) would overtake and
		// turn into an election. It asks around at its next round.
		p.quietStart = false
	} else {
		p.broadcastVote()
	}
	p.checkRoundQuorum()
}

// setProposal changes this voter's proposal and records it as its own
// notification of the round.
func (p *Peer) setProposal(v Vote) {
	p.elec.vote = Vote{Leader: v.Leader, Zxid: v.Zxid, PeerEpoch: v.PeerEpoch}
	p.elec.recv[p.id] = p.currentVote()
	p.elec.decidePending = false
}

// broadcastVote sends the current notification to every other server.
func (p *Peer) broadcastVote() {
	for _, id := range p.allMembers() {
		if id != p.id {
			p.sendVote(id)
		}
	}
}

func (p *Peer) sendVote(to int64) {
	m := Message{Type: MsgNotification, To: to, Vote: p.currentVote()}
	if p.cfg.ReconfigOf != nil {
		// The sender's configurations, as ZooKeeper's notifications
		// carry theirs (reconfig.go, learnConfig).
		m.Payload = p.appendConfigs(nil)
	}
	p.send(m)
}

func (p *Peer) tickElection() {
	if p.elec.decidePending {
		p.elec.finalizeLeft--
		if p.elec.finalizeLeft <= 0 {
			p.elec.decidePending = false
			if p.roundAgrees(p.elec.vote) {
				p.decide(p.elec.vote)
				return
			}
		}
	}
	p.elec.elapsed++
	if p.elec.elapsed >= p.elec.timeout {
		p.elec.interval = min(2*p.elec.interval, p.cfg.MaxElectionTicks)
		p.resetElectionTimer()
		p.broadcastVote()
	}
}

// roundAgrees reports whether the voters whose notification of this round
// proposes v are a quorum (of every configuration concerned).
func (p *Peer) roundAgrees(v Vote) bool {
	return p.quorumIn(func(id int64) bool {
		w, ok := p.elec.recv[id]
		return ok && sameVote(w, v)
	})
}

// joinAgrees counts the voters that back v's leader for a server deciding
// whether to join it: the following and leading voters pointing at it and,
// when v is of this server's round, the looking voters of the round and this
// server's own vote — as ZooKeeper counts its receive set. Without the
// latter, a voter that lost the race to decide could never join a leader
// that needs its vote for a quorum: the leader's discovery would time out
// and the same race repeat (a livelock the simulator found at seed 569).
//
// A pending configuration whose reconfig entry is of an epoch before v's
// (the epoch v's leader established, or its currentEpoch while it is not
// established yet) is left out. Either that leader's history holds the
// entry, and the leader counts the configuration itself in discovery and
// sync; or it does not, and the entry was never committed (an epoch's
// initial history holds every committed txn of the epochs before) and the
// sync truncates it. Counting it would leave a server that proposed such a
// reconfig as a stalled leader, whose new voters are few, waiting for its
// own vote forever (seed 27 with --reconfig, 3 voters: the old leader,
// back from a stall, proposed a reconfig to two voters in its dead epoch
// and never joined the new one). It once was left out only while the
// entry was past v's zxid, which says the leader cannot hold it; but once
// the new epoch committed txns v's zxid is past it either way, and the
// server refused both voters of the dead configuration while each led in
// turn with its vote (seed 244 with --reconfig, 3 voters, 1 observer).
// Joining is a matter of liveness only: discovery and sync, not the
// election, keep the history.
func (p *Peer) joinAgrees(v Vote) bool {
	has := func(id int64) bool {
		if w, ok := p.elec.out[id]; ok && sameLeader(w, v) {
			return true
		}
		if v.Round != p.elec.round {
			return false
		}
		if id == p.id {
			return sameLeader(p.elec.vote, v)
		}
		w, ok := p.elec.recv[id]
		return ok && sameLeader(w, v)
	}
	for _, c := range p.configs() {
		if c != &p.active && Epoch(c.Version) < v.PeerEpoch {
			continue
		}
		if !c.HasQuorum(has) {
			return false
		}
	}
	return true
}

// silentDown counts the voters whose link is down and that sent no
// notification this round: no better vote can come from them until they
// are heard from again.
func (p *Peer) silentDown() int {
	n := 0
	for _, id := range p.allVoters() {
		if _, ok := p.elec.recv[id]; !ok && p.down[id] {
			n++
		}
	}
	return n
}

// checkRoundQuorum decides, or arms the finalize wait, when a quorum of the
// round agrees with this voter's proposal. It decides at once when every
// voter agrees or is known unreachable: waiting could bring no better vote.
// (Deciding early is a matter of liveness only: discovery, not the
// election, keeps a leader from losing committed history.)
func (p *Peer) checkRoundQuorum() {
	if p.role != Looking || !p.anyVoter(p.id) {
		return
	}
	voters := p.allVoters()
	n := 0
	for _, id := range voters {
		if w, ok := p.elec.recv[id]; ok && sameVote(w, p.elec.vote) {
			n++
		}
	}
	switch {
	case !p.roundAgrees(p.elec.vote):
	case n == len(voters), n+p.silentDown() == len(voters):
		p.decide(p.elec.vote)
	case !p.elec.decidePending:
		p.elec.decidePending = true
		p.elec.finalizeLeft = p.cfg.FinalizeTicks
	}
}

func (p *Peer) stepNotification(m Message) {
	p.learnConfig(m)
	n := m.Vote
	from := m.From
	if p.role != Looking {
		if from == p.leader && n.State == Looking && p.role != Leading && p.learn.stage > lsInfo {
			// Our leader gave up: so do we, then count its notification.
			// Only after LEADERINFO: on the FIFO link, a looking
			// notification that follows it was sent after the leader had
			// decided, whereas before it the leader may merely not have
			// decided yet.
			p.becomeLooking("leader %d is looking again", m.From)
		} else {
			if n.State == Looking {
				p.sendVote(from)
				if p.role == Following && p.anyVoter(from) {
					p.rememberEarlyVote(m)
				}
			}
			return
		}
	}
	if !p.anyVoter(from) {
		if n.State == Looking && p.anyVoter(p.id) {
			// A voter answers a looking non-voter (an observer) at once
			// with its current vote, whatever round, as ZooKeeper's
			// FastLeaderElection does. Only a looking one: answering every
			// notification could ping-pong with a peer that answers ours.
			// And only a voter: ZooKeeper's servers notify voters only,
			// so its non-voters never hear one another; two looking
			// non-voters (or a voter of a stale configuration and a
			// non-voter of the new one, which sees it as a non-voter) that
			// both answered at once would answer each other forever.
			p.sendVote(from)
		}
		return
	}
	if n.State != Looking && !p.anyVoter(n.Leader) {
		return
	}
	if n.State == Looking {
		if !p.anyVoter(n.Leader) {
			return
		}
		if !p.anyVoter(p.id) {
			p.relayVote(from, n)
			return
		}
		switch {
		case n.Round > p.elec.round:
			p.elec.round = n.Round
			p.elec.recv = map[int64]Vote{}
			if self := p.candidacy(); voteGreater(n, self) {
				p.setProposal(n)
			} else {
				p.setProposal(self)
			}
			p.broadcastVote()
		case n.Round < p.elec.round:
			p.sendVote(from)
			return
		case voteGreater(n, p.elec.vote):
			p.setProposal(n)
			p.broadcastVote()
		}
		p.elec.recv[from] = n
		p.checkRoundQuorum()
		return
	}
	// The sender is following or leading: a quorum of those pointing at the
	// same leader and epoch, with that leader saying it leads, is a leader
	// to join.
	p.elec.out[from] = n
	if p.joinAgrees(n) && p.leaderConfirmed(n) {
		p.elec.round = max(p.elec.round, n.Round)
		if n.Leader == p.id {
			// Its own proposal (joinAgrees counted it), not the
			// follower's copy of it.
			p.decide(p.elec.vote)
			return
		}
		p.decide(n)
	}
}

// relayVote is a looking non-voter's answer to a voter's looking
// notification n: it takes up the best vote of its round and passes it
// on, as ZooKeeper's FastLeaderElection does (a non-voter starts its round
// proposing nobody, which any vote for a voter beats, and notifies the
// voters of every change). Its vote counts where a configuration it does
// not know makes it a voter: a reconfig promoting it is pending on the
// voters, and ZooKeeper's notifications carry only the committed
// configuration, so it cannot learn it (learnConfig) from a ZooKeeper-like
// peer. Without this the voters waited for its vote forever (seed 16 with
// --reconfig, 3 voters, 1 observer: the promotion's leader lost power
// before the commit and another voter never came back, so the pending
// configuration's quorum needed the observer). It still decides only the
// second way, joining a leader that a quorum of servers out of election
// follows (stepNotification).
//
// It does not answer a lower round: a voter answers a non-voter's looking
// notification at once, so the two would answer each other forever. While
// it proposes nobody its round means nothing, and it takes a lower one
// too: otherwise, with a round above every voter's, its vote for nobody
// would be ignored and it would ignore theirs.
//
// With a static configuration (no reconfig) a non-voter's vote counts
// nowhere, and it keeps proposing nobody.
func (p *Peer) relayVote(from int64, n Vote) {
	if p.cfg.ReconfigOf == nil {
		return
	}
	switch {
	case n.Round > p.elec.round, n.Round < p.elec.round && p.elec.vote.Leader == 0:
		p.elec.round = n.Round
		p.elec.recv = map[int64]Vote{}
		p.setProposal(n)
		p.broadcastVote()
	case n.Round < p.elec.round:
		return
	case voteGreater(n, p.elec.vote):
		p.setProposal(n)
		p.broadcastVote()
	}
	p.elec.recv[from] = n
}

// leaderConfirmed is ZooKeeper's checkLeader for servers out of election:
// a vote for another server counts only if that server itself says it
// leads, in the same epoch. A vote for this server counts only from this
// server's own round: voters that decided for it in the round it is
// looking in are the round's quorum, whatever state they announce now
// ("if everyone else thinks I'm the leader, I must be the leader").
// Without that, a voter whose looking notification for it was replaced,
// before it went out, by its FOLLOWING answer to a later notification
// (election links keep only the newest unsent notification, ZooKeeper's
// send queue of one included) was never counted: this server kept looking
// while its follower waited initLimit·tickTime on the quorum port, then
// went looking itself (20 s lost, often 40, after a partition healed).
// A FOLLOWING vote of an older round, say from before this server
// restarted, still never makes it lead, nor one while it proposes another.
func (p *Peer) leaderConfirmed(v Vote) bool {
	if v.Leader == p.id {
		return v.Round == p.elec.round && p.role == Looking && p.elec.vote.Leader == p.id
	}
	w, ok := p.elec.out[v.Leader]
	return ok && w.State == Leading && sameLeader(w, v)
}

// decide ends the election with v.
func (p *Peer) decide(v Vote) {
	if v.Leader == p.id && p.successor != nil {
		// It just handed leadership over, so it does not take it back in
		// the election that follows: it votes for its successor anew
		// (nobody should have proposed it).
		p.setProposal(*p.successor)
		p.broadcastVote()
		return
	}
	// The successor's vote lasts one election: should that elect a leader
	// that is gone, this server votes normally in the next one rather than
	// for the gone successor again and again.
	p.successor = nil
	p.elec.vote = Vote{Leader: v.Leader, Zxid: v.Zxid, PeerEpoch: v.PeerEpoch}
	p.elec.decidePending = false
	switch {
	case v.Leader == p.id:
		p.becomeLeader()
	case p.anyVoter(p.id):
		p.becomeLearner(v.Leader, Following)
	default:
		p.becomeLearner(v.Leader, p.nonVoterRole())
	}
}

// nonVoterRole is the role this server learns in when it is a voter of no
// configuration in play: Observing when it observes in one; outside every
// one (a joiner whose own configuration is older than the one it learned
// from notifications, a removed server) the role its own configuration
// gave it, as ZooKeeper's learnerType stays what its config file said. A
// participant then follows without a vote (its acks never count), so the
// reconfig that adds it finds it a synced follower, which ZooKeeper's
// isQuorumSynced (QuorumSynced) counts and an observer is not.
func (p *Peer) nonVoterRole() Role {
	if slices.Contains(p.allMembers(), p.id) || slices.Contains(p.cfg.Observers, p.id) {
		return Observing
	}
	return Following
}
