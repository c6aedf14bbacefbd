package zab

// The capabilities of each leader/learner link (Caps), as the transport
// stamped them on the FOLLOWERINFO or LEADERINFO that opened it: the
// leader keeps each learner's, a learner its leader's. They decide what
// this server may send on the link beyond ZooKeeper's protocol
// (docs/ZAB.md, "Per-link capabilities"); zab itself needs them only for
// TIMEOUTNOW (transfer.go), the engine for the rest.

// LearnerCaps returns the capabilities of the link with learner id, while
// this server leads it (0 otherwise, or for an unknown learner).
func (p *Peer) LearnerCaps(id int64) Caps {
	if p.role != Leading {
		return 0
	}
	if r := p.lead.learners[id]; r != nil {
		return r.caps
	}
	return 0
}

// LeaderCaps returns the capabilities of the link with this learner's
// leader, known once its LEADERINFO arrived (0 before, and when not a
// learner).
func (p *Peer) LeaderCaps() Caps {
	if p.learn == nil || (p.role != Following && p.role != Observing) {
		return 0
	}
	return p.learn.leaderCaps
}
