package sim

import (
	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// The per-link capabilities check (docs/ZAB.md, "What the simulator must
// do"): nothing beyond ZooKeeper's protocol goes on a link whose
// capabilities lack it. A ZooKeeper leader makes no txn of a REQUEST of op
// -12 and never answers it; a ZooKeeper follower knows no TIMEOUTNOW. The
// check goes by the capabilities the transport stamped on what the sender
// received (FOLLOWERINFO on a leader, LEADERINFO on a learner), so it
// judges the engine whatever the codec negotiated.

// linkCaps are the capabilities one incarnation of a server was told.
type linkCaps struct {
	// learners: by learner id, from its newest FOLLOWERINFO.
	learners map[int64]zab.Caps
	// leaders: by leader id, from its newest LEADERINFO.
	leaders map[int64]zab.Caps
}

func newLinkCaps() linkCaps {
	return linkCaps{learners: map[int64]zab.Caps{}, leaders: map[int64]zab.Caps{}}
}

// noteLinkCaps records the capabilities stamped on a message s received.
func (sm *Sim) noteLinkCaps(s *server, m zab.Message) {
	switch m.Type {
	case zab.MsgFollowerInfo:
		s.caps.learners[m.From] = m.Caps
	case zab.MsgLeaderInfo:
		s.caps.leaders[m.From] = m.Caps
	}
}

// checkLinkCaps fails the seed on a TIMEOUTNOW to a follower whose link
// lacks CapTransfer, or a moveSession REQUEST to a leader whose link lacks
// CapMoveRequest.
func (sm *Sim) checkLinkCaps(s *server, m zab.Message) {
	switch m.Type {
	case zab.MsgTimeoutNow:
		if c := s.caps.learners[m.To]; c&zab.CapTransfer == 0 {
			sm.violation("caps: n%d sent TIMEOUTNOW to n%d, whose link has caps %#x (no CapTransfer)", s.id, m.To, uint64(c))
		}
	case zab.MsgApp:
		p, n, err := quorum.DecodePacket(m.Payload, wireLimits)
		if err != nil || n != len(m.Payload) || p.Type != quorum.Request {
			return
		}
		f, err := quorum.DecodeRequest(&p)
		if err != nil || f.Op != tree.OpMoveSession {
			return
		}
		if c := s.caps.leaders[m.To]; c&zab.CapMoveRequest == 0 {
			sm.violation("caps: n%d sent a moveSession REQUEST (op %d) to n%d, whose link has caps %#x (no CapMoveRequest)", s.id, f.Op, m.To, uint64(c))
		}
	}
}
