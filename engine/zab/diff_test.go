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
	for _, from := range []int64{1, 3} {
		f.Step(Message{Type: MsgNotification, From: from, To: 2, Vote: Vote{Leader: 1, Round: 1, State: Looking, PeerEpoch: 1, Zxid: MakeZxid(1, 9)}})
	}
	for i := 0; i < 3 && f.Status().Role == Looking; i++ {
		f.Tick()
	}
	require.Equal(t, Following, f.Status().Role)
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
