package zab

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// collectApp runs the cluster, keeping every Ready.App a server receives.
func TestAppMessagesAreEpochFenced(t *testing.T) {
	c := newCluster(t, clusterOpts{voters: 3, observers: 1, seed: 21})
	l := c.awaitSynced(3000)
	var f int64
	for _, id := range c.ids {
		if id != l {
			f = id
			break
		}
	}
	got := map[int64][]Message{}
	c.onApp = func(id int64, m Message) { got[id] = append(got[id], m) }

	require.True(t, c.nodes[f].p.SendApp(l, []byte("to-leader")))
	require.False(t, c.nodes[f].p.SendApp(c.ids[len(c.ids)-1], []byte("not my leader")))
	require.True(t, c.nodes[l].p.SendApp(f, []byte("to-learner")))
	require.True(t, c.nodes[l].p.SendApp(4, []byte("to-observer")))
	c.handleReady(f)
	c.handleReady(l)
	c.stabilize()
	require.Len(t, got[l], 1)
	require.Equal(t, []byte("to-leader"), got[l][0].Payload)
	require.Equal(t, f, got[l][0].From)
	require.Len(t, got[f], 1)
	require.Equal(t, []byte("to-learner"), got[f][0].Payload)
	require.Len(t, got[4], 1)

	// A payload stamped with another epoch, or from a server that is not
	// the leader, is dropped.
	epoch := c.nodes[l].p.Status().Epoch
	c.stepNode(f, Message{Type: MsgApp, From: l, To: f, Epoch: epoch - 1, Payload: []byte("stale")})
	c.stepNode(l, Message{Type: MsgApp, From: f, To: l, Epoch: epoch + 1, Payload: []byte("future")})
	other := c.ids[0]
	if other == l || other == f {
		other = c.ids[1]
	}
	if other == l || other == f {
		other = c.ids[2]
	}
	c.stepNode(f, Message{Type: MsgApp, From: other, To: f, Epoch: epoch, Payload: []byte("impostor")})
	c.stepNode(l, Message{Type: MsgApp, From: 99, To: l, Epoch: epoch, Payload: []byte("stranger")})
	require.Len(t, got[l], 1)
	require.Len(t, got[f], 1)

	// Not established: no link.
	c.crash(l)
	require.False(t, c.nodes[f].p.SendApp(l, []byte("x")))
}

func TestLearnerIgnoresNonLeaderAndStaleEpoch(t *testing.T) {
	c := newCluster(t, clusterOpts{voters: 3, seed: 23})
	l := c.awaitSynced(3000)
	z, _ := c.propose(l)
	c.awaitApplied(z, c.ids, 2000)
	var f, g int64
	for _, id := range c.ids {
		if id != l {
			if f == 0 {
				f = id
			} else {
				g = id
			}
		}
	}
	epoch := c.nodes[l].p.Status().Epoch
	before := c.nodes[f].p.Status()
	// A proposal from a non-leader, and one from the leader in a stale
	// epoch, change nothing.
	c.stepNode(f, Message{Type: MsgProposal, From: g, To: f, Epoch: epoch, Entry: Entry{Zxid: MakeZxid(epoch, 2)}})
	c.stepNode(f, Message{Type: MsgProposal, From: l, To: f, Epoch: epoch - 1, Entry: Entry{Zxid: MakeZxid(epoch-1, 99)}})
	c.stepNode(f, Message{Type: MsgCommit, From: l, To: f, Epoch: epoch - 1, Zxid: MakeZxid(epoch-1, 99)})
	require.Equal(t, before, c.nodes[f].p.Status())
	// A gap in the leader's proposals (a lost message) sends the follower
	// back to election.
	c.stepNode(f, Message{Type: MsgProposal, From: l, To: f, Epoch: epoch, Entry: Entry{Zxid: MakeZxid(epoch, 5)}})
	require.Equal(t, Looking, c.nodes[f].p.Status().Role)
	// It resyncs.
	z2, _ := c.propose(l)
	c.awaitApplied(z2, c.ids, 3000)
}

func TestLinkDownAndSilence(t *testing.T) {
	c := newCluster(t, clusterOpts{voters: 3, seed: 25})
	l := c.awaitSynced(3000)
	var f int64
	for _, id := range c.ids {
		if id != l {
			f = id
			break
		}
	}
	// The learner's link to its leader breaks: it looks; the leader drops
	// it but keeps its quorum.
	c.cutLink(l, f)
	require.Equal(t, Looking, c.nodes[f].p.Status().Role)
	st := c.nodes[l].p.Status()
	require.Equal(t, Leading, st.Role)
	require.NotContains(t, st.Followers, f)
	c.healAll()
	c.awaitSynced(3000)
	// A silent partition of the leader: SyncLimit ticks later it gives up
	// and so do its followers.
	c.silentPartition([]int64{l})
	for i := 0; i < c.nodes[l].cfg.SyncLimit+2; i++ {
		c.tickAll()
	}
	require.Equal(t, Looking, c.nodes[l].p.Status().Role)
	for _, id := range c.ids {
		if id != l {
			require.NotEqual(t, l, c.nodes[id].p.Status().Leader)
		}
	}
}

func TestReadyRoleChanged(t *testing.T) {
	app := &testApp{}
	p := NewPeer(Config{ID: 1, Voters: []int64{1}}, Initial{}, app)
	rd := p.Ready()
	require.True(t, rd.RoleChanged)
	require.Equal(t, &HardState{AcceptedEpoch: 1, CurrentEpoch: 1}, rd.HardState)
	p.Advance()
	require.False(t, p.HasReady())
	_, ok := p.Propose([]byte("a"))
	require.True(t, ok)
	rd = p.Ready()
	require.False(t, rd.RoleChanged)
	require.Len(t, rd.Entries, 1)
	require.Empty(t, rd.Committed, "nothing applies before it is durable")
	p.Advance()
	p.Persisted(rd.Entries[0].Zxid)
	rd = p.Ready()
	require.Equal(t, []Entry{{Zxid: MakeZxid(1, 1), Data: []byte("a")}}, rd.Committed)
	p.Advance()
}

func TestInitialLogIsNotCommittedUntilSynced(t *testing.T) {
	e := func(n int64) Entry { return Entry{Zxid: MakeZxid(1, n), Data: []byte{byte(n)}} }
	init := Initial{HardState: HardState{AcceptedEpoch: 1, CurrentEpoch: 1}, SnapshotZxid: MakeZxid(1, 1),
		Log: []Entry{e(2), e(3)}}
	p := NewPeer(Config{ID: 1, Voters: []int64{1, 2, 3}, ElectionTicks: 3}, init, &testApp{})
	rd := p.Ready()
	require.Empty(t, rd.Committed)
	require.Equal(t, MakeZxid(1, 1), p.Status().Committed)
	require.Equal(t, MakeZxid(1, 3), p.Status().LastZxid)
	require.Len(t, rd.Messages, 2, "a notification to each other voter")
}

func msgsOf(rd Ready, typ MsgType) []Message {
	var out []Message
	for _, m := range rd.Messages {
		if m.Type == typ {
			out = append(out, m)
		}
	}
	return out
}

// An ACKEPOCH from a learner that had already accepted the epoch (Epoch -1)
// lets it sync but does not count toward the leader's quorum.
func TestReackedEpochDoesNotCount(t *testing.T) {
	// The learner side.
	f := NewPeer(Config{ID: 2, Voters: []int64{1, 2, 3}}, Initial{HardState: HardState{AcceptedEpoch: 5, CurrentEpoch: 4}}, &testApp{})
	f.Ready()
	for _, from := range []int64{1, 3} {
		f.Step(Message{Type: MsgNotification, From: from, To: 2, Vote: Vote{Leader: 1, Round: 1, State: Looking, PeerEpoch: 9}})
	}
	f.Tick()
	require.Equal(t, Following, f.Status().Role)
	f.Ready()
	f.Step(Message{Type: MsgLeaderInfo, From: 1, To: 2, Epoch: 5})
	rd := f.Ready()
	require.Nil(t, rd.HardState)
	require.Equal(t, []Message{{Type: MsgAckEpoch, From: 2, To: 1, Epoch: -1}}, msgsOf(rd, MsgAckEpoch))

	// The leader side.
	l := NewPeer(Config{ID: 1, Voters: []int64{1, 2, 3}}, Initial{}, &testApp{})
	for _, from := range []int64{2, 3} {
		l.Step(Message{Type: MsgNotification, From: from, To: 1, Vote: Vote{Leader: 1, Round: 1, State: Looking}})
	}
	require.Equal(t, Leading, l.Status().Role)
	l.Ready()
	l.Step(Message{Type: MsgFollowerInfo, From: 2, To: 1, Epoch: 4})
	rd = l.Ready()
	require.Equal(t, &HardState{AcceptedEpoch: 5}, rd.HardState)
	require.Len(t, msgsOf(rd, MsgLeaderInfo), 1)
	l.Step(Message{Type: MsgAckEpoch, From: 2, To: 1, Epoch: -1})
	rd = l.Ready()
	require.Nil(t, rd.HardState, "no quorum yet: 2's ack does not count")
	require.Empty(t, msgsOf(rd, MsgNewLeader))
	l.Step(Message{Type: MsgFollowerInfo, From: 3, To: 1})
	l.Step(Message{Type: MsgAckEpoch, From: 3, To: 1})
	rd = l.Ready()
	require.Equal(t, &HardState{AcceptedEpoch: 5, CurrentEpoch: 5}, rd.HardState)
	require.Len(t, msgsOf(rd, MsgNewLeader), 2, "both learners sync")
}

// The leader gives up when a voter's (currentEpoch, lastZxid) is newer.
func TestLeaderGivesUpToNewerFollower(t *testing.T) {
	l := NewPeer(Config{ID: 1, Voters: []int64{1, 2, 3}}, Initial{HardState: HardState{AcceptedEpoch: 1, CurrentEpoch: 1}}, &testApp{})
	for _, from := range []int64{2, 3} {
		l.Step(Message{Type: MsgNotification, From: from, To: 1, Vote: Vote{Leader: 1, Round: 1, State: Looking, PeerEpoch: 1}})
	}
	require.Equal(t, Leading, l.Status().Role)
	l.Step(Message{Type: MsgFollowerInfo, From: 2, To: 1, Epoch: 1})
	l.Step(Message{Type: MsgAckEpoch, From: 2, To: 1, Epoch: 1, Zxid: MakeZxid(1, 3)})
	require.Equal(t, Looking, l.Status().Role)
}

// LearnerLink names a synced learner's session with the leader and changes
// when the learner starts over, so the engine never sends an answer owed
// to one session on the next.
func TestLearnerLinkChangesWhenTheLearnerStartsOver(t *testing.T) {
	c := newCluster(t, clusterOpts{voters: 3, seed: 7, fsyncDelay: 1})
	l := c.awaitSynced(3000)
	f := c.ids[0]
	if f == l {
		f = c.ids[1]
	}
	first := c.nodes[l].p.LearnerLink(f)
	require.NotZero(t, first)
	require.Zero(t, c.nodes[f].p.LearnerLink(l), "only a leader has learner links")
	c.cutLink(l, f)
	require.Zero(t, c.nodes[l].p.LearnerLink(f))
	c.healAll()
	require.Equal(t, l, c.awaitSynced(3000))
	second := c.nodes[l].p.LearnerLink(f)
	require.NotZero(t, second)
	require.NotEqual(t, first, second)
}

// ReuseApp: a handed-back App array carries the next MsgApps (no array per
// Ready), cleared of what it held, and the messages are the ones stepped.
func TestReuseApp(t *testing.T) {
	c := newCluster(t, clusterOpts{voters: 3, seed: 21})
	l := c.awaitSynced(3000)
	f := c.ids[0]
	if f == l {
		f = c.ids[1]
	}
	p := c.nodes[l].p
	epoch := p.Status().Epoch
	step := func(payload []byte) Ready {
		p.Step(Message{Type: MsgApp, From: f, To: l, Epoch: epoch, Payload: payload})
		rd := p.Ready()
		p.Advance()
		return rd
	}
	first := step([]byte("a")).App
	require.Len(t, first, 1)
	p.ReuseApp(first)
	require.Nil(t, first[:1][0].Payload, "handed back cleared")
	second := step([]byte("b")).App
	require.Len(t, second, 1)
	require.Equal(t, []byte("b"), second[0].Payload)
	require.Same(t, &first[:1][0], &second[0], "the same array")
	p.ReuseApp(second)
	c3 := []byte("c")
	require.Equal(t, 0.0, testing.AllocsPerRun(50, func() { p.ReuseApp(step(c3).App) }))
}
