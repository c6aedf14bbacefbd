package zab

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A leadership confirmation needs a quorum's answers to PINGs sent after
// it was asked for: a leader cut off from its followers never gets one,
// and echoes of earlier PINGs do not count.
func TestConfirmLeadershipNeedsAQuorumRoundTrip(t *testing.T) {
	c := newCluster(t, clusterOpts{voters: 3, observers: 1, seed: 41})
	l := c.awaitSynced(3000)
	c.stabilize()
	p := c.nodes[l].p
	r1 := p.ConfirmLeadership()
	require.NotZero(t, r1)
	require.Equal(t, r1, p.ConfirmLeadership(), "asked twice before any input: one round")
	require.Less(t, p.LeadershipConfirmed(), r1)
	c.handleReady(l)
	c.stabilize()
	require.Equal(t, r1, p.LeadershipConfirmed())

	var a, b int64
	for _, id := range c.voters {
		if id != l {
			if a == 0 {
				a = id
			} else {
				b = id
			}
		}
	}
	// Both followers' links stall: the leader still leads for a while,
	// but proves nothing.
	c.freezeLink(l, a)
	c.freezeLink(l, b)
	p.Tick() // a PING before the round: its echo must not confirm it
	c.handleReady(l)
	r2 := p.ConfirmLeadership() // after an input (the tick): a new round
	require.Greater(t, r2, r1)
	c.handleReady(l)
	c.stabilize()
	require.Equal(t, Leading, p.Status().Role)
	require.Equal(t, r1, p.LeadershipConfirmed(), "no follower answered")

	// An echo of the PING sent before the round does not confirm it; an
	// echo of the round's own PING does. One follower and the leader are
	// a quorum of three.
	epoch := p.Status().Epoch
	v := p.lead.learners[a].pingVal
	c.stepNode(l, Message{Type: MsgPing, From: a, To: l, Epoch: epoch, Zxid: v})
	require.Equal(t, r1, p.LeadershipConfirmed(), "the echo of the earlier PING")
	c.stepNode(l, Message{Type: MsgPing, From: a, To: l, Epoch: epoch, Zxid: 0})
	require.Equal(t, r1, p.LeadershipConfirmed(), "a learner's own PING (touches) echoes nothing")
	c.stepNode(l, Message{Type: MsgPing, From: a, To: l, Epoch: epoch, Zxid: v})
	require.Equal(t, r2, p.LeadershipConfirmed())

	// A newer proposal raises the PINGs' value: an echo of it answers a
	// PING sent after the round.
	_, ok := c.propose(l)
	require.True(t, ok)
	r3 := p.ConfirmLeadership()
	c.handleReady(l)
	c.stepNode(l, Message{Type: MsgPing, From: b, To: l, Epoch: epoch, Zxid: p.lastProposed()})
	require.Equal(t, r3, p.LeadershipConfirmed())

	// Not a leader: nothing to confirm.
	f := c.nodes[a].p
	require.Zero(t, f.ConfirmLeadership())
	require.Zero(t, f.LeadershipConfirmed())

	// The stalled links come back: the queued PINGs are echoed and the
	// ensemble carries on.
	c.healAll()
	c.stabilize()
	require.Equal(t, Leading, p.Status().Role)
}

// A single voter confirms at once.
func TestConfirmLeadershipSingleVoter(t *testing.T) {
	c := newCluster(t, clusterOpts{voters: 1, seed: 1})
	p := c.nodes[1].p
	r := p.ConfirmLeadership()
	require.NotZero(t, r)
	require.Equal(t, r, p.LeadershipConfirmed())
}

// The leader pings a learner only once its sync stream is queued: a
// ZooKeeper learner exits on a PING where it expects DIFF, TRUNC or SNAP.
// Until then a learner has initLimit, not syncLimit, to be heard from.
func TestNoPingBeforeSync(t *testing.T) {
	voters := []int64{1, 2, 3, 4, 5}
	l := NewPeer(Config{ID: 1, Voters: voters, SyncLimit: 2, InitLimit: 10}, Initial{}, &testApp{})
	for _, from := range []int64{2, 3, 4} {
		l.Step(Message{Type: MsgNotification, From: from, To: 1, Vote: Vote{Leader: 1, Round: 1, State: Looking}})
	}
	for i := 0; i < 3 && l.Status().Role != Leading; i++ {
		l.Tick()
	}
	require.Equal(t, Leading, l.Status().Role)
	l.Step(Message{Type: MsgFollowerInfo, From: 2, To: 1})
	l.Step(Message{Type: MsgFollowerInfo, From: 3, To: 1})
	rd := l.Ready()
	require.Len(t, msgsOf(rd, MsgLeaderInfo), 2)
	l.Advance()
	// 2 acks the epoch, 3 not yet: no quorum of acks, no sync. Longer
	// than syncLimit: nobody is pinged or dropped.
	l.Step(Message{Type: MsgAckEpoch, From: 2, To: 1, Epoch: 0})
	for i := 0; i < 5; i++ {
		l.Tick()
		rd := l.Ready()
		require.Empty(t, msgsOf(rd, MsgPing))
		l.Advance()
	}
	l.Step(Message{Type: MsgAckEpoch, From: 3, To: 1, Epoch: 0})
	rd = l.Ready()
	require.Len(t, msgsOf(rd, MsgDiff), 2, "both learners sync")
	l.Advance()
	l.Tick()
	require.Len(t, msgsOf(l.Ready(), MsgPing), 2)
}

// Echoes a session's own PINGs cannot account for are ignored: a value
// not sent yet, or more echoes of a value than PINGs carried it.
func TestPingEchoesAreBoundedByPings(t *testing.T) {
	c := newCluster(t, clusterOpts{voters: 3, seed: 43})
	l := c.awaitSynced(3000)
	c.stabilize()
	p := c.nodes[l].p
	var a, b int64
	for _, id := range c.voters {
		if id != l {
			if a == 0 {
				a = id
			} else {
				b = id
			}
		}
	}
	c.freezeLink(l, a)
	c.freezeLink(l, b)
	r := p.ConfirmLeadership()
	c.handleReady(l)
	epoch := p.Status().Epoch
	ra := p.lead.learners[a]
	v, run := ra.pingVal, ra.pingRun
	// Replies beyond the PINGs sent: a value above the newest, and one
	// echo too many of the newest.
	c.stepNode(l, Message{Type: MsgPing, From: a, To: l, Epoch: epoch, Zxid: v + 1})
	require.Less(t, p.LeadershipConfirmed(), r)
	for i := 0; i < run+3; i++ {
		c.stepNode(l, Message{Type: MsgPing, From: a, To: l, Epoch: epoch, Zxid: v})
	}
	require.Equal(t, run, ra.replyRun, "no more echoes than PINGs")
	require.Equal(t, r, p.LeadershipConfirmed())
}

// HasLearner tells a transport which learner links the leader still holds:
// a follower silent past syncLimit is dropped (and its link should close,
// as ZooKeeper's LearnerHandler ends on its read timeout), the others stay.
func TestHasLearnerAfterSilence(t *testing.T) {
	c := newCluster(t, clusterOpts{voters: 5, seed: 7})
	l := c.awaitSynced(3000)
	c.stabilize()
	p := c.nodes[l].p
	var silent, other int64
	for _, id := range c.voters {
		if id == l {
			continue
		}
		require.True(t, p.HasLearner(id), "learner %d synced", id)
		require.False(t, c.nodes[id].p.HasLearner(l), "a follower holds no learner")
		if silent == 0 {
			silent = id
		} else if other == 0 {
			other = id
		}
	}
	require.False(t, p.HasLearner(l), "the leader is not its own learner")

	c.freezeLink(l, silent)
	for i := 0; i < p.cfg.SyncLimit; i++ {
		// The others answer every PING; only the frozen link is silent.
		p.Tick()
		c.handleReady(l)
		c.stabilize()
		require.True(t, p.HasLearner(silent), "silent for %d ticks, within syncLimit", i+1)
	}
	p.Tick()
	c.handleReady(l)
	require.Equal(t, Leading, p.Status().Role, "four of five voters still follow")
	require.False(t, p.HasLearner(silent), "silent past syncLimit: dropped")
	require.True(t, p.HasLearner(other))
}
