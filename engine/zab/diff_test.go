package zab

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A DIFF names, as ZooKeeper's does, the newest zxid of the leader's
// committed history (maxCommittedLog), not the learner's last zxid.
func TestDiffNamesTheLeadersCommittedZxid(t *testing.T) {
	c := newCluster(t, clusterOpts{voters: 3, seed: 11})
	l := c.awaitSynced(2000)
	first, _ := c.propose(l)
	c.awaitApplied(first, c.ids, 2000)
	f := c.ids[0]
	if f == l {
		f = c.ids[1]
	}
	c.partition([]int64{f})
	var last int64
	for i := 0; i < 5; i++ {
		last, _ = c.propose(l)
	}
	c.awaitApplied(last, []int64{l}, 2000)
	var diffs []int64
	c.onSend = func(m Message) {
		if m.Type == MsgDiff && m.To == f {
			diffs = append(diffs, m.Zxid)
		}
	}
	c.healAll()
	c.awaitApplied(last, c.ids, 5000)
	require.NotEmpty(t, diffs)
	require.Equal(t, last, diffs[len(diffs)-1], "DIFF(maxCommittedLog), the follower was at %x", first)
}

// followerAt returns a follower of leader 1 in epoch 2 whose log ends at
// (1, n), with its ACKEPOCH sent.
func followerAt(t *testing.T, n int64) *Peer {
	var log []Entry
	for i := int64(1); i <= n; i++ {
		log = append(log, Entry{Zxid: MakeZxid(1, i), Data: []byte{byte(i)}})
	}
	f := NewPeer(Config{ID: 2, Voters: []int64{1, 2, 3}}, Initial{HardState: HardState{AcceptedEpoch: 1, CurrentEpoch: 1}, Log: log}, &testApp{})
	f.Ready()
	f.Advance()
	followServer1(t, f)
	f.Step(Message{Type: MsgLeaderInfo, From: 1, To: 2, Epoch: 2})
	rd := f.Ready()
	require.Equal(t, []Message{{Type: MsgAckEpoch, From: 2, To: 1, Epoch: 1, Zxid: MakeZxid(1, n)}}, msgsOf(rd, MsgAckEpoch))
	f.Advance()
	return f
}

// What a learner accepts in a DIFF sync: the named point may be past its
// last zxid (the proposals up to it follow), never before it, and the
// stream must reach it, without gaps within an epoch, by NEWLEADER.
func TestLearnerChecksDiff(t *testing.T) {
	prop := func(n int64) Message {
		return Message{Type: MsgProposal, From: 1, To: 2, Epoch: 2, Entry: Entry{Zxid: MakeZxid(1, n), Data: []byte{byte(n)}}}
	}
	diff := func(z int64) Message { return Message{Type: MsgDiff, From: 1, To: 2, Epoch: 2, Zxid: z} }
	newLeader := Message{Type: MsgNewLeader, From: 1, To: 2, Epoch: 2, Zxid: MakeZxid(2, 0)}
	step := func(p *Peer, ms ...Message) {
		for _, m := range ms {
			p.Step(m)
		}
	}

	// ZooKeeper's DIFF(maxCommittedLog) with the proposals after ours.
	f := followerAt(t, 3)
	step(f, diff(MakeZxid(1, 5)), prop(4), prop(5), newLeader)
	require.Equal(t, Following, f.Status().Role)
	require.Equal(t, MakeZxid(1, 5), f.Status().LastZxid)
	f.Persisted(MakeZxid(1, 5))
	rd := f.Ready()
	require.Equal(t, []Message{{Type: MsgAck, From: 2, To: 1, Epoch: 2, Zxid: MakeZxid(2, 0)}}, msgsOf(rd, MsgAck))

	// Up to date: DIFF(our last zxid), nothing follows.
	f = followerAt(t, 3)
	step(f, diff(MakeZxid(1, 3)), newLeader)
	require.Equal(t, Following, f.Status().Role)

	// A point below our last zxid: our tail is not on the leader's
	// history (it needed a TRUNC).
	f = followerAt(t, 3)
	step(f, diff(MakeZxid(1, 2)))
	require.Equal(t, Looking, f.Status().Role)
	// The server logs why (Status.Why): the DIFF and our last zxid.
	require.Contains(t, f.Status().Why, "DIFF to 0x100000002 does not fit our log (last 0x100000003")

	// A point of a later epoch than the leader's.
	f = followerAt(t, 3)
	step(f, diff(MakeZxid(3, 1)))
	require.Equal(t, Looking, f.Status().Role)

	// The stream falls short of the named point.
	f = followerAt(t, 3)
	step(f, diff(MakeZxid(1, 5)), prop(4), newLeader)
	require.Equal(t, Looking, f.Status().Role)
	require.Contains(t, f.Status().Why, "the sync fell short of 0x100000005 (last 0x100000004)")

	// A gap within an epoch: the leader did not diff from our last zxid.
	f = followerAt(t, 3)
	step(f, diff(MakeZxid(1, 5)), prop(5))
	require.Equal(t, Looking, f.Status().Role)
}

// A follower that rejoins the same established leader within the epoch
// holding proposals the leader has not committed (it restarted after
// logging them) is truncated to the leader's commit point and gets them
// again as proposals, as from ZooKeeper's syncFollower: a DIFF past the
// commit point would leave them uncommitted on a ZooKeeper learner, whose
// link commits only proposals sent on its connection (seed 802). The
// follower ends with everything committed.
func TestLearnerPastCommitPointIsTruncatedToIt(t *testing.T) {
	c := newCluster(t, clusterOpts{voters: 5, seed: 802})
	l := c.awaitSynced(3000)
	z0, _ := c.propose(l)
	c.awaitApplied(z0, c.ids, 3000)
	var f int64
	var rest []int64
	for _, id := range c.ids {
		switch {
		case id == l:
		case f == 0:
			f = id
		default:
			rest = append(rest, id)
		}
	}
	// Only f hears the proposals: no quorum acks them.
	for _, o := range rest {
		c.freezeLink(l, o)
	}
	var out []int64
	for i := 0; i < 4; i++ {
		z, ok := c.propose(l)
		require.True(t, ok)
		out = append(out, z)
	}
	c.stabilize()
	committed := c.nodes[l].p.Status().Committed
	require.Equal(t, z0, committed)
	require.Equal(t, out[3], c.nodes[f].p.Status().LastZxid)

	// f restarts with the outstanding proposals in its log and rejoins l,
	// which is still established in the same epoch.
	type sent struct {
		t MsgType
		z int64
	}
	var toF []sent
	c.onSend = func(m Message) {
		if m.From == l && m.To == f && (len(toF) > 0 || m.Type == MsgDiff || m.Type == MsgTrunc || m.Type == MsgSnap) {
			z := m.Zxid
			if m.Type == MsgProposal {
				z = m.Entry.Zxid
			}
			toF = append(toF, sent{m.Type, z})
		}
	}
	c.crash(f)
	c.restart(f)
	require.Equal(t, out[3], c.nodes[f].p.Status().LastZxid)
	synced := func() bool {
		st := c.nodes[f].p.Status()
		return st.Role == Following && st.Established && st.Leader == l
	}
	for i := 0; i < 50 && !synced(); i++ {
		c.nodes[f].p.Tick()
		c.handleReady(f)
		c.stabilize()
	}
	require.True(t, synced(), c.describe())
	require.Equal(t, Leading, c.nodes[l].p.Status().Role)
	require.Equal(t, committed, c.nodes[l].p.Status().Committed, "still outstanding: the restarted follower's acks alone make no quorum")
	epoch := c.nodes[l].p.Status().Epoch
	require.Equal(t, epoch, Epoch(out[3]), "same epoch")
	want := []sent{{MsgTrunc, committed}}
	for _, z := range out {
		want = append(want, sent{MsgProposal, z})
	}
	want = append(want, sent{MsgNewLeader, MakeZxid(epoch, 0)})
	require.GreaterOrEqual(t, len(toF), len(want), "%+v", toF)
	require.Equal(t, want, toF[:len(want)], "TRUNC to the commit point, then the rest as proposals")

	// The others' acks arrive: everything commits, and f, which got the
	// proposals on this connection, learns it.
	c.healAll()
	c.awaitApplied(out[3], c.ids, 3000)
	var commits []int64
	for _, s := range toF {
		if s.t == MsgCommit {
			commits = append(commits, s.z)
		}
	}
	require.NotEmpty(t, commits)
	require.Equal(t, out[3], commits[len(commits)-1])
	require.Equal(t, out[3], c.nodes[f].p.Status().Committed)
}

// followServer1 has server 2 of {1, 2, 3}, looking at epoch 1, follow
// server 1: servers 1 and 3 vote for 1 (last zxid 0x100000009).
func followServer1(t *testing.T, f *Peer) {
	t.Helper()
	for _, from := range []int64{1, 3} {
		f.Step(Message{Type: MsgNotification, From: from, To: 2, Vote: Vote{Leader: 1, Round: 1, State: Looking, PeerEpoch: 1, Zxid: MakeZxid(1, 9)}})
	}
	for i := 0; i < 3 && f.Status().Role == Looking; i++ {
		f.Tick()
	}
	require.Equal(t, Following, f.Status().Role)
}
