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
// judges the engine whatever the codec negotiated; checkReceived judges
// the codec's negotiation against the servers' kinds (kinds.go).

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
		if !isMoveRequest(m) {
			return
		}
		if c := s.caps.leaders[m.To]; c&zab.CapMoveRequest == 0 {
			sm.violation("caps: n%d sent a moveSession REQUEST (op %d) to n%d, whose link has caps %#x (no CapMoveRequest)", s.id, tree.OpMoveSession, m.To, uint64(c))
		}
	}
}

// checkReceived checks what the codec decoded at end e of qc for s, before
// s steps it: the handshake packet's capabilities are what the two ends'
// kinds announce (every capability between two native servers, none
// otherwise), and nothing beyond ZooKeeper's protocol reaches a
// ZooKeeper-like server.
func (sm *Sim) checkReceived(s *server, qc *qconn, e int, m zab.Message) {
	switch {
	case m.Type == zab.MsgFollowerInfo && e == 1, m.Type == zab.MsgLeaderInfo && e == 0:
		want := zab.Caps(0)
		if qc.native[0] && qc.native[1] {
			want = zab.AllCaps
		}
		if m.Caps != want {
			sm.violation("caps: n%d (%s) read %s from n%d (%s) on conn %d with caps %#x, want %#x",
				s.id, kindName(qc.native[e]), describeMsg(m), m.From, kindName(qc.native[1-e]), qc.id, uint64(m.Caps), uint64(want))
		}
		if e == 1 {
			if want != 0 {
				sm.report.Counters["links-capable"]++
			} else {
				sm.report.Counters["links-zookeeper"]++
			}
		}
	case s.native:
	case m.Type == zab.MsgTimeoutNow:
		sm.violation("caps: TIMEOUTNOW from n%d reached n%d, which is ZooKeeper-like", m.From, s.id)
	case m.Type == zab.MsgApp && e == 1:
		if isMoveRequest(m) {
			sm.violation("caps: a moveSession REQUEST from n%d reached n%d, which is ZooKeeper-like", m.From, s.id)
		}
	}
}

// isMoveRequest reports whether m carries a learner's REQUEST of op -12.
func isMoveRequest(m zab.Message) bool {
	p, n, err := quorum.DecodePacket(m.Payload, wireLimits)
	if err != nil || n != len(m.Payload) || p.Type != quorum.Request {
		return false
	}
	f, err := quorum.DecodeRequest(&p)
	return err == nil && f.Op == tree.OpMoveSession
}
