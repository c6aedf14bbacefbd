package zab

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// lookingVote is a Looking notification of round 1 from `from` proposing
// `leader` with an empty history.
func lookingVote(from, leader int64) Message {
	return Message{Type: MsgNotification, From: from, To: 2,
		Vote: Vote{Leader: leader, Round: 1, State: Looking}}
}

// A quorum that agrees decides only after FinalizeTicks, in case a better
// vote comes from the voter not heard yet.
func TestFinalizeWaitsForTheSilentVoter(t *testing.T) {
	p := NewPeer(Config{ID: 2, Voters: []int64{1, 2, 3}, ElectionTicks: 100, FinalizeTicks: 3}, Initial{}, &testApp{})
	p.Step(lookingVote(3, 3))
	require.Equal(t, Looking, p.Status().Role, "server 2 adopts 3's vote; a quorum agrees but 1 may still speak")
	p.Tick()
	p.Tick()
	require.Equal(t, Looking, p.Status().Role)
	p.Tick()
	require.Equal(t, Following, p.Status().Role)
	require.Equal(t, int64(3), p.Status().Leader)
}

// A voter whose link is down will not vote: the quorum decides at once.
func TestNoFinalizeWaitForAVoterWhoseLinkIsDown(t *testing.T) {
	p := NewPeer(Config{ID: 2, Voters: []int64{1, 2, 3}, ElectionTicks: 100, FinalizeTicks: 3}, Initial{}, &testApp{})
	p.Step(lookingVote(3, 3))
	require.Equal(t, Looking, p.Status().Role)
	p.Step(Message{Type: MsgLinkDown, From: 1, To: 2})
	require.Equal(t, Following, p.Status().Role, "decided without waiting for server 1")
	require.Equal(t, int64(3), p.Status().Leader)

	// Known down before the quorum forms: decided as soon as it does.
	q := NewPeer(Config{ID: 2, Voters: []int64{1, 2, 3}, ElectionTicks: 100, FinalizeTicks: 3}, Initial{}, &testApp{})
	q.Step(Message{Type: MsgLinkDown, From: 1, To: 2})
	q.Step(lookingVote(3, 3))
	require.Equal(t, Following, q.Status().Role)

	// Heard from again, it is waited for again.
	r := NewPeer(Config{ID: 2, Voters: []int64{1, 2, 3}, ElectionTicks: 100, FinalizeTicks: 3}, Initial{}, &testApp{})
	r.Step(Message{Type: MsgLinkDown, From: 1, To: 2})
	r.Step(Message{Type: MsgPing, From: 1, To: 2})
	r.Step(lookingVote(3, 3))
	require.Equal(t, Looking, r.Status().Role)
}

// Rebroadcasts back off: each one that did not end the election doubles
// the interval, up to MaxElectionTicks.
func TestElectionRebroadcastBacksOff(t *testing.T) {
	p := NewPeer(Config{ID: 2, Voters: []int64{1, 2, 3}, ElectionTicks: 2, MaxElectionTicks: 8}, Initial{}, &testApp{})
	p.Ready()
	p.Advance()
	var gaps []int
	last := 0
	for tick := 1; tick <= 200 && len(gaps) < 6; tick++ {
		p.Tick()
		if p.HasReady() {
			rd := p.Ready()
			p.Advance()
			if len(msgsOf(rd, MsgNotification)) > 0 {
				gaps = append(gaps, tick-last)
				last = tick
			}
		}
	}
	require.Len(t, gaps, 6)
	// Jittered in [interval, 2*interval): 2, 4, 8, 8, ...
	for i, lo := range []int{2, 4, 8, 8, 8, 8} {
		require.GreaterOrEqual(t, gaps[i], lo, "gap %d of %v", i, gaps)
		require.Less(t, gaps[i], 2*lo, "gap %d of %v", i, gaps)
	}
}

// Notifications are answered as ZooKeeper's FastLeaderElection answers
// them: a server out of election answers a looking peer at once with its
// current vote; a looking voter answers a looking voter of a lower round,
// and a looking non-voter, at once.
func TestNotificationsAnsweredAtOnce(t *testing.T) {
	votesTo := func(rd Ready, to int64) []Vote {
		var out []Vote
		for _, m := range rd.Messages {
			if m.Type == MsgNotification && m.To == to {
				out = append(out, m.Vote)
			}
		}
		return out
	}
	cfg := Config{ID: 2, Voters: []int64{1, 2, 3}, Observers: []int64{4}, ElectionTicks: 100, FinalizeTicks: 1}

	// Looking, round 2, answers a round-1 voter and a looking observer.
	p := NewPeer(cfg, Initial{}, &testApp{})
	p.Step(Message{Type: MsgNotification, From: 3, To: 2, Vote: Vote{Leader: 3, Round: 2, State: Looking}})
	p.Ready()
	p.Advance()
	p.Step(Message{Type: MsgNotification, From: 1, To: 2, Vote: Vote{Leader: 1, Round: 1, State: Looking}})
	rd := p.Ready()
	p.Advance()
	require.Equal(t, []Vote{{Leader: 3, Round: 2, State: Looking}}, votesTo(rd, 1))
	p.Step(Message{Type: MsgNotification, From: 4, To: 2, Vote: Vote{Round: 1, State: Looking}})
	rd = p.Ready()
	p.Advance()
	require.Equal(t, []Vote{{Leader: 3, Round: 2, State: Looking}}, votesTo(rd, 4))

	// Following: a looking voter or observer gets the decided vote.
	p.Tick()
	require.Equal(t, Following, p.Status().Role)
	p.Ready()
	p.Advance()
	for _, from := range []int64{1, 4} {
		p.Step(Message{Type: MsgNotification, From: from, To: 2, Vote: Vote{Leader: from, Round: 7, State: Looking}})
		rd = p.Ready()
		p.Advance()
		require.Equal(t, []Vote{{Leader: 3, Round: 2, State: Following}}, votesTo(rd, from))
	}
}

// A looking voter leads on the FOLLOWING votes of its own round that name
// it, as ZooKeeper's checkLeader lets it ("if everyone else thinks I'm the
// leader, I must be the leader"). The voter that decided for it may never
// send it the looking notification: an election link keeps only the newest
// notification not yet written, and that voter's FOLLOWING answer to a
// second notification replaces it (the partition of
// faults/interop's TestNativeEnsembleFaults healing, when both sides'
// notifications arrive at once). Without the rule this server kept looking
// until its follower gave up on the quorum port, initLimit·tickTime later.
func TestLeadsOnFollowingVotesOfItsRound(t *testing.T) {
	cfg := Config{ID: 3, Voters: []int64{1, 3}, Observers: []int64{2}, ElectionTicks: 100, FinalizeTicks: 3}
	following := func(round int64) Message {
		return Message{Type: MsgNotification, From: 1, To: 3, Vote: Vote{Leader: 3, Round: round, State: Following}}
	}
	p := NewPeer(cfg, Initial{}, &testApp{})
	p.Ready()
	p.Advance()
	round := p.currentVote().Round
	// Server 1 proposed itself in this round (its notification before the
	// heal), then decided for 3 and answered as a follower.
	p.Step(Message{Type: MsgNotification, From: 1, To: 3, Vote: Vote{Leader: 1, Round: round, State: Looking}})
	require.Equal(t, Looking, p.Status().Role)
	p.Step(following(round))
	require.Equal(t, Leading, p.Status().Role, "server 1 follows 3 in 3's round: 3 leads")
	require.Equal(t, int64(3), p.Status().Leader)

	// Of another round, the same vote is no quorum for it.
	for _, r := range []int64{round - 1, round + 1} {
		q := NewPeer(cfg, Initial{}, &testApp{})
		q.Ready()
		q.Advance()
		q.Step(following(r))
		for range 5 {
			q.Tick()
		}
		require.Equal(t, Looking, q.Status().Role, "a FOLLOWING vote of round %d (own %d)", r, round)
	}

	// Nor while it proposes another server (nor does it follow that one
	// on votes for itself).
	q := NewPeer(Config{ID: 3, Voters: []int64{1, 3, 4}, ElectionTicks: 100, FinalizeTicks: 3}, Initial{}, &testApp{})
	q.Ready()
	q.Advance()
	r := q.currentVote().Round
	q.Step(Message{Type: MsgNotification, From: 4, To: 3, Vote: Vote{Leader: 4, Zxid: 5, Round: r, State: Looking}})
	for _, from := range []int64{1, 4} {
		q.Step(Message{Type: MsgNotification, From: from, To: 3, Vote: Vote{Leader: 3, Round: r, State: Following}})
	}
	require.Equal(t, Looking, q.Status().Role)
}

// A FOLLOWERINFO kept while looking is forgotten when its link breaks: the
// learner's next link brings its own, and leading on both sent two
// LEADERINFOs down that link, which the learner drops as malformed (a
// ZooKeeper learner too), so the new leader waited initLimit for a quorum
// (TestNativeEnsembleFaults, 20 s more after a partition healed).
func TestStaleFollowerInfoIsForgottenWithItsLink(t *testing.T) {
	p := NewPeer(Config{ID: 3, Voters: []int64{1, 3}, ElectionTicks: 100, FinalizeTicks: 3}, Initial{}, &testApp{})
	p.Ready()
	p.Advance()
	round := p.currentVote().Round
	leaderInfos := 0
	drain := func() {
		rd := p.Ready()
		p.Advance()
		for _, m := range msgsOf(rd, MsgLeaderInfo) {
			if m.To == 1 {
				leaderInfos++
			}
		}
	}
	info := Message{Type: MsgFollowerInfo, From: 1, To: 3}
	p.Step(info) // its first link, while 3 still looks
	p.Step(Message{Type: MsgLinkDown, From: 1, To: 3})
	p.Step(Message{Type: MsgNotification, From: 1, To: 3, Vote: Vote{Leader: 3, Round: round, State: Looking}})
	require.Equal(t, Leading, p.Status().Role)
	drain()
	p.Step(info) // the next link's
	drain()
	require.Equal(t, 1, leaderInfos, "one LEADERINFO for the learner's one live link")
}
