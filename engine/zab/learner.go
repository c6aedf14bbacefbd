package zab

import "github.com/zabkeeper/zabkeeper/engine/bugs"

// Stages of a learner (follower or observer) with its leader.
const (
	// lsInfo: FOLLOWERINFO sent, waiting for LEADERINFO.
	lsInfo = iota
	// lsAckEpoch: ACKEPOCH sent, waiting for DIFF, TRUNC or SNAP.
	lsAckEpoch
	// lsSync: receiving the sync stream.
	lsSync
	// lsNewLeader: NEWLEADER received, waiting for the synced entries to
	// be durable before acking.
	lsNewLeader
	// lsAcked: NEWLEADER acked, waiting for UPTODATE.
	lsAcked
	// lsUpToDate: established; broadcast phase.
	lsUpToDate
)

// learnerState is the state of a follower or observer of one leader.
type learnerState struct {
	stage int
	// elapsed counts ticks since this server chose its leader; silence
	// since it last heard from it.
	elapsed, silence int
	// syncEnd is the last zxid of the sync stream (at NEWLEADER).
	syncEnd int64
	// ackSent is the newest zxid acknowledged to the leader.
	ackSent int64
	// diffTo is the zxid a DIFF named: the sync stream must reach it by
	// NEWLEADER.
	diffTo int64
	// leaderCaps are the link's capabilities, from LEADERINFO (caps.go).
	leaderCaps Caps
	// leaderConfig is the configuration NEWLEADER carried, adopted at
	// UPTODATE (reconfig.go).
	leaderConfig *Membership
}

func (p *Peer) becomeLearner(leader int64, role Role) {
	p.role = role
	p.leader = leader
	p.epoch = 0
	p.established = false
	p.lead = nil
	p.pendingInfo = map[int64]Message{}
	p.learn = &learnerState{}
	p.send(Message{
		Type:     MsgFollowerInfo,
		To:       leader,
		Epoch:    p.hs.AcceptedEpoch,
		Observer: role == Observing,
	})
}

func (p *Peer) tickLearner() {
	ls := p.learn
	ls.elapsed++
	ls.silence++
	limit := p.cfg.SyncLimit
	if ls.stage != lsUpToDate {
		if ls.elapsed > p.cfg.InitLimit {
			p.becomeLooking("leader %d did not finish the sync within initLimit (%d ticks)", p.leader, p.cfg.InitLimit)
			return
		}
		limit = p.cfg.InitLimit
	}
	if ls.silence > limit {
		p.becomeLooking("leader %d silent for more than %d ticks", p.leader, limit)
	}
}

func (p *Peer) stepLearner(m Message) {
	if m.From != p.leader {
		return
	}
	ls := p.learn
	if m.Type == MsgLinkDown {
		p.becomeLooking("link to leader %d broke", p.leader)
		return
	}
	ls.silence = 0
	switch m.Type {
	case MsgPing:
		// Echo the leader's value, as ZooKeeper's Learner.ping: the
		// leader proves its leadership with it (confirm.go).
		p.send(Message{Type: MsgPing, To: p.leader, Epoch: m.Epoch, Zxid: m.Zxid})
		return
	case MsgLeaderInfo:
		if ls.stage == lsInfo {
			p.handleLeaderInfo(m)
		}
		return
	}
	if ls.stage == lsInfo || m.Epoch != p.epoch {
		return // stale or premature
	}
	switch m.Type {
	case MsgDiff, MsgTrunc, MsgSnap:
		if ls.stage != lsAckEpoch {
			p.becomeLooking("leader %d sent a %s out of order (stage %d)", m.From, m.Type, ls.stage)
			return
		}
		p.handleSyncStart(m)
	case MsgProposal:
		p.handleProposal(m)
	case MsgCommit:
		if ls.stage < lsSync {
			p.becomeLooking("leader %d sent a COMMIT before the sync stream", m.From)
			return
		}
		p.handleCommit(m)
	case MsgNewLeader:
		if ls.stage != lsSync {
			p.becomeLooking("leader %d sent NEWLEADER out of order", m.From)
			return
		}
		p.handleNewLeader(m)
	case MsgUpToDate:
		if ls.stage != lsAcked {
			p.becomeLooking("leader %d sent UPTODATE before NEWLEADER was acked", m.From)
			return
		}
		p.handleUpToDate(m)
	case MsgInform:
		if p.role != Observing || ls.stage < lsNewLeader {
			p.becomeLooking("leader %d sent an INFORM to a non-observer or before NEWLEADER", m.From)
			return
		}
		p.handleInform(m)
	case MsgApp:
		if ls.stage == lsUpToDate {
			p.queueApp(m)
		}
	case MsgTimeoutNow:
		p.handleTimeoutNow(m)
	case MsgCommitAndActivate:
		if p.role != Following || ls.stage < lsNewLeader {
			p.becomeLooking("leader %d sent a COMMITANDACTIVATE to a non-follower or before NEWLEADER", m.From)
			return
		}
		p.handleCommitAndActivate(m)
	case MsgInformAndActivate:
		if p.role != Observing || ls.stage < lsNewLeader {
			p.becomeLooking("leader %d sent an INFORMANDACTIVATE to a non-observer or before NEWLEADER", m.From)
			return
		}
		p.handleCommitAndActivate(m)
	}
}

// handleLeaderInfo accepts the leader's new epoch, unless this server
// already accepted a newer one.
func (p *Peer) handleLeaderInfo(m Message) {
	newEpoch := m.Epoch
	if newEpoch < p.hs.AcceptedEpoch {
		p.becomeLooking("leader %d proposed epoch %d, below our accepted epoch %d", m.From, newEpoch, p.hs.AcceptedEpoch)
		return
	}
	ack := p.hs.CurrentEpoch
	if newEpoch == p.hs.AcceptedEpoch && !bugs.Active(bugs.ReuseEpoch) {
		// We acked this epoch before, maybe to another leader: ack again
		// so that we can sync, but with -1 so the ack does not count
		// toward the epoch quorum (ZooKeeper's rule). Otherwise two
		// leaders could each gather a quorum for the same epoch.
		ack = noEpoch
	} else {
		hs := p.hs
		hs.AcceptedEpoch = newEpoch
		p.setHardState(hs)
	}
	p.epoch = newEpoch
	p.learn.leaderCaps = m.Caps
	p.learn.stage = lsAckEpoch
	p.send(Message{Type: MsgAckEpoch, To: p.leader, Epoch: ack, Zxid: p.log.last()})
}

// noEpoch in ACKEPOCH marks a learner that had already accepted the epoch.
const noEpoch = -1
