package sim

import (
	"github.com/zabkeeper/zabkeeper/engine/zab"
)

// Durability obligations. ZAB's safety rests on a server writing things down
// before it tells anyone it did: an ACK says the acked proposals are on
// disk; a NEWLEADER ack says the synced history and then the new
// currentEpoch are (ZOOKEEPER-3911, -4643, -4646); a LEADERINFO or NEWLEADER
// of an epoch says the leader's acceptedEpoch or currentEpoch holds it. A
// replica that breaks one of these promises usually gets away with it — only
// a crash at the wrong instant turns it into lost data — so the simulator
// checks the promises themselves, each time a message leaves a server,
// against what its disk (storage.go) holds durably at that moment.

// obligationsOn reports whether the durability obligations are checked.
func (sm *Sim) obligationsOn() bool { return !sm.opts.NoObligationChecks }

// noteNewLeader remembers, when a learner receives NEWLEADER, the end of the
// history synced to it: everything it logged before.
func (sm *Sim) noteNewLeader(s *server) {
	s.syncEnd = 0
	if n := len(s.mirror); n > 0 {
		s.syncEnd = s.mirror[n-1].zxid
	}
	s.syncEpochPending = true
}

// checkSendObligations checks a message s sends against its durable state.
func (sm *Sim) checkSendObligations(s *server, m zab.Message) {
	if !sm.obligationsOn() {
		return
	}
	d := s.st
	switch m.Type {
	case zab.MsgAck:
		upTo := m.Zxid
		what := "proposals"
		if zab.Counter(m.Zxid) == 0 {
			upTo, what = s.syncEnd, "NEWLEADER"
			if d.hard.CurrentEpoch < m.Epoch {
				sm.violation("durability: n%d acked NEWLEADER of epoch %d with currentEpoch %d on disk", s.id, m.Epoch, d.hard.CurrentEpoch)
			}
		}
		if z, ok := s.firstUnsynced(upTo); ok {
			sm.violation("durability: n%d acked %s up to 0x%x while its record 0x%x was not fsynced", s.id, what, upTo, z)
		}
	case zab.MsgLeaderInfo:
		if d.hard.AcceptedEpoch < m.Epoch {
			sm.violation("durability: n%d sent LEADERINFO of epoch %d with acceptedEpoch %d on disk", s.id, m.Epoch, d.hard.AcceptedEpoch)
		}
	case zab.MsgNewLeader:
		if d.hard.CurrentEpoch < m.Epoch {
			sm.violation("durability: n%d sent NEWLEADER of epoch %d with currentEpoch %d on disk", s.id, m.Epoch, d.hard.CurrentEpoch)
		}
	}
}

// checkEpochObligation checks a learner's new currentEpoch: the history
// synced to it must be durable before it adopts the epoch (ZOOKEEPER-4643).
func (sm *Sim) checkEpochObligation(s *server, hs zab.HardState) {
	if !sm.obligationsOn() || !s.syncEpochPending || hs.CurrentEpoch <= s.st.hard.CurrentEpoch {
		return
	}
	s.syncEpochPending = false
	if z, ok := s.firstUnsynced(s.syncEnd); ok {
		sm.violation("durability: n%d adopted currentEpoch %d while its synced record 0x%x (of up to 0x%x) was not fsynced", s.id, hs.CurrentEpoch, z, s.syncEnd)
	}
}

// noteNewLeaderAck records a NEWLEADER ack reaching its leader.
func (sm *Sim) noteNewLeaderAck(m zab.Message) {
	key := [2]int64{m.To, m.Epoch}
	if sm.nlAcks[key] == nil {
		sm.nlAcks[key] = map[int64]bool{}
	}
	sm.nlAcks[key][m.From] = true
}

// checkEstablishQuorum checks a leader that just established epoch e: a
// quorum of voters, itself included, must have acked its NEWLEADER (ZAB's
// synchronization phase ends only then; before, its history is not yet
// the epoch's durable initial history on a quorum).
func (sm *Sim) checkEstablishQuorum(s *server, epoch int64) {
	if !sm.obligationsOn() {
		return
	}
	acks := 1
	voters := sm.establishVoters(s)
	for _, v := range voters {
		if v != s.id && sm.nlAcks[[2]int64{s.id, epoch}][v] {
			acks++
		}
	}
	if acks <= len(voters)/2 {
		sm.violation("synchronization: n%d established epoch %d with NEWLEADER acks from %d of %d voters (itself included)", s.id, epoch, acks, len(voters))
	}
}
