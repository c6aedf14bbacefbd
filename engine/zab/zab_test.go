package zab

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSingleVoterElectsItselfAndCommits(t *testing.T) {
	c := newCluster(t, clusterOpts{voters: 1, seed: 1})
	st := c.nodes[1].p.Status()
	require.Equal(t, Leading, st.Role)
	require.True(t, st.Established)
	require.Equal(t, int64(1), st.Epoch)
	require.Equal(t, HardState{AcceptedEpoch: 1, CurrentEpoch: 1}, c.nodes[1].disk.hs)
	for i := 0; i < 5; i++ {
		z, ok := c.propose(1)
		require.True(t, ok)
		require.Equal(t, MakeZxid(1, int64(i+1)), z)
	}
	c.stabilize()
	require.Len(t, c.nodes[1].app.ents, 5)
	require.Equal(t, MakeZxid(1, 5), c.nodes[1].p.Status().Committed)
}

func TestSingleVoterRestartKeepsHistory(t *testing.T) {
	c := newCluster(t, clusterOpts{voters: 1, seed: 2})
	for i := 0; i < 3; i++ {
		_, ok := c.propose(1)
		require.True(t, ok)
	}
	c.stabilize()
	c.crash(1)
	c.restart(1)
	st := c.nodes[1].p.Status()
	require.True(t, st.Established)
	require.Equal(t, int64(2), st.Epoch)
	require.Len(t, c.nodes[1].app.ents, 3)
	z, ok := c.propose(1)
	require.True(t, ok)
	require.Equal(t, MakeZxid(2, 1), z)
}

func TestElectAndReplicate(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(string(rune('0'+n)), func(t *testing.T) {
			c := newCluster(t, clusterOpts{voters: n, seed: uint64(n), fsyncDelay: 2})
			l := c.awaitSynced(3000)
			var last int64
			for i := 0; i < 20; i++ {
				z, ok := c.propose(l)
				require.True(t, ok)
				last = z
			}
			c.awaitApplied(last, c.ids, 3000)
			for _, id := range c.ids {
				require.Len(t, c.nodes[id].app.ents, 20)
			}
			// With ids equal in epoch and zxid, the highest id wins.
			require.Equal(t, int64(n), l)
			require.Len(t, c.nodes[l].p.Status().Followers, n-1, c.describe())
		})
	}
}

func TestLeaderCrashNewLeaderKeepsCommitted(t *testing.T) {
	c := newCluster(t, clusterOpts{voters: 3, seed: 7, fsyncDelay: 1})
	l := c.awaitLeader(2000)
	oldEpoch := c.nodes[l].p.Status().Epoch
	var last int64
	for i := 0; i < 10; i++ {
		last, _ = c.propose(l)
	}
	c.awaitApplied(last, []int64{l}, 3000)
	c.crash(l)
	nl := c.awaitLeader(5000)
	require.NotEqual(t, l, nl)
	require.Greater(t, c.nodes[nl].p.Status().Epoch, oldEpoch)
	z, ok := c.propose(nl)
	require.True(t, ok)
	c.awaitApplied(z, c.ids, 3000)
	for _, id := range c.ids {
		if c.alive(id) {
			require.Len(t, c.nodes[id].app.ents, 11)
		}
	}
	c.restart(l)
	c.awaitApplied(z, c.ids, 3000)
	require.Len(t, c.nodes[l].app.ents, 11)
}

// A follower cut off while the others make progress catches up by DIFF.
func TestFollowerBehindGetsDiff(t *testing.T) {
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
	diffs, truncs, snaps := c.sent[MsgDiff], c.sent[MsgTrunc], c.sent[MsgSnap]
	c.healAll()
	c.awaitApplied(last, c.ids, 5000)
	require.Greater(t, c.sent[MsgDiff], diffs)
	require.Equal(t, truncs, c.sent[MsgTrunc])
	require.Equal(t, snaps, c.sent[MsgSnap])
	require.Len(t, c.nodes[f].app.ents, 6)
}

func TestFollowerDivergentTailGetsTrunc(t *testing.T) {
	e := func(ep, n int64) Entry { return Entry{Zxid: MakeZxid(ep, n), Data: []byte{byte(ep), byte(n)}} }
	good := Initial{HardState: HardState{AcceptedEpoch: 2, CurrentEpoch: 2}, Log: []Entry{e(1, 1), e(2, 1)}}
	// Server 3 kept an uncommitted tail of epoch 1 that epoch 2 discarded.
	stale := Initial{HardState: HardState{AcceptedEpoch: 1, CurrentEpoch: 1}, Log: []Entry{e(1, 1), e(1, 2), e(1, 3)}}
	c := newCluster(t, clusterOpts{voters: 3, seed: 3, initial: map[int64]Initial{1: good, 2: good, 3: stale}})
	l := c.awaitLeader(2000)
	require.NotEqual(t, int64(3), l)
	c.stabilize()
	require.Positive(t, c.sent[MsgTrunc])
	z, ok := c.propose(l)
	require.True(t, ok)
	c.awaitApplied(z, c.ids, 3000)
	for _, id := range c.ids {
		ents := c.nodes[id].app.ents
		require.Equal(t, []int64{MakeZxid(1, 1), MakeZxid(2, 1), z}, zxids(ents))
	}
	// The divergent tail is gone from server 3's disk too.
	require.Equal(t, []int64{MakeZxid(1, 1), MakeZxid(2, 1), z}, zxids(c.nodes[3].disk.log))
}

func zxids(ents []Entry) []int64 {
	out := make([]int64, len(ents))
	for i, e := range ents {
		out[i] = e.Zxid
	}
	return out
}

func TestFollowerFarBehindGetsSnap(t *testing.T) {
	c := newCluster(t, clusterOpts{voters: 3, seed: 5, maxLog: 4})
	l := c.awaitSynced(2000)
	f := c.ids[0]
	if f == l {
		f = c.ids[1]
	}
	c.partition([]int64{f})
	var last int64
	for i := 0; i < 30; i++ {
		last, _ = c.propose(l)
		c.stabilize()
	}
	c.awaitApplied(last, []int64{l}, 2000)
	snaps := c.sent[MsgSnap]
	c.healAll()
	c.awaitApplied(last, c.ids, 5000)
	require.Greater(t, c.sent[MsgSnap], snaps)
	require.Equal(t, c.nodes[l].app.ents, c.nodes[f].app.ents)
	require.LessOrEqual(t, len(c.nodes[l].p.log.ents), 4+1)
	// The learner keeps working after a snapshot sync.
	z, _ := c.propose(c.mustLeader())
	c.awaitApplied(z, c.ids, 3000)
}

func (c *cluster) mustLeader() int64 {
	id, ok := c.leader()
	require.True(c.t, ok)
	return id
}

func TestObserverLearnsCommittedAndNeverCounts(t *testing.T) {
	c := newCluster(t, clusterOpts{voters: 3, observers: 1, seed: 9})
	obs := int64(4)
	l := c.awaitSynced(3000)
	z, _ := c.propose(l)
	c.awaitApplied(z, c.ids, 3000)
	require.Equal(t, Observing, c.nodes[obs].p.Status().Role)
	require.Positive(t, c.sent[MsgInform])
	// The leader plus the observer are no quorum.
	var others []int64
	for _, id := range c.voters {
		if id != l {
			others = append(others, id)
		}
	}
	c.silentPartition(others)
	z2, ok := c.propose(l)
	require.True(t, ok)
	for i := 0; i < 300; i++ {
		c.calmStep()
	}
	for _, id := range c.ids {
		require.False(t, c.applied(id, z2), "server %d applied a txn only leader and observer hold", id)
	}
	st := c.nodes[l].p.Status()
	require.False(t, st.Role == Leading && st.Established && st.Epoch == Epoch(z2), "leader kept leading without a quorum")
}

func TestMinorityPartitionCannotCommit(t *testing.T) {
	c := newCluster(t, clusterOpts{voters: 5, seed: 13, fsyncDelay: 1})
	l := c.awaitSynced(3000)
	z, _ := c.propose(l)
	c.awaitApplied(z, c.ids, 3000)
	minority := []int64{l}
	for _, id := range c.voters {
		if id != l {
			minority = append(minority, id)
			break
		}
	}
	c.silentPartition(minority)
	var stale []int64
	for i := 0; i < 5; i++ {
		if z, ok := c.propose(l); ok {
			stale = append(stale, z)
		}
	}
	require.NotEmpty(t, stale)
	require.Equal(t, len(stale), c.nodes[l].p.Status().Outstanding, "the cut-off leader's proposals stay outstanding")
	var nl int64
	c.runUntil("a new leader", 5000, func() bool {
		id, ok := c.leader()
		nl = id
		return ok && c.nodes[id].p.Status().Epoch > Epoch(z)
	})
	require.NotContains(t, minority, nl)
	z2, _ := c.propose(nl)
	c.healAll()
	c.awaitApplied(z2, c.ids, 5000)
	for _, id := range c.ids {
		for _, s := range stale {
			require.False(t, c.applied(id, s), "minority txn %x applied on %d", s, id)
		}
	}
}

func TestCounterOverflowForcesNewEpoch(t *testing.T) {
	t.Run("boundary", func(t *testing.T) {
		// A single voter whose epoch's counter stands at 0xfffffffd.
		c := newCluster(t, clusterOpts{voters: 1, seed: 17})
		c.nodes[1].p.lead.counter = 0xfffffffd
		z, ok := c.propose(1)
		require.True(t, ok)
		require.Equal(t, MakeZxid(1, 0xfffffffe), z)
		_, ok = c.propose(1)
		require.False(t, ok, "a zxid with counter 0xffffffff is never used")
		// It stepped down and, alone, at once led epoch 2.
		st := c.nodes[1].p.Status()
		require.Equal(t, int64(2), st.Epoch)
		require.True(t, st.Established)
		z, ok = c.propose(1)
		require.True(t, ok)
		require.Equal(t, MakeZxid(2, 1), z)
		c.stabilize()
		require.Equal(t, []int64{MakeZxid(1, 0xfffffffe), MakeZxid(2, 1)}, zxids(c.nodes[1].app.ents))
	})
	t.Run("cluster", func(t *testing.T) {
		c := newCluster(t, clusterOpts{voters: 3, seed: 17, fsyncDelay: 1})
		for _, id := range c.ids {
			c.nodes[id].p.counterLimit = 4
		}
		l := c.awaitSynced(3000)
		epoch := c.nodes[l].p.Status().Epoch
		var last int64
		for i := 1; i < 4; i++ {
			z, ok := c.propose(l)
			require.True(t, ok)
			last = z
		}
		_, ok := c.propose(l)
		require.False(t, ok)
		require.Equal(t, Looking, c.nodes[l].p.Status().Role)
		var nl int64
		c.runUntil("a leader of a new epoch", 5000, func() bool {
			id, ok := c.leader()
			nl = id
			return ok && c.nodes[id].p.Status().Epoch > epoch
		})
		c.awaitApplied(last, c.ids, 3000)
		z, ok := c.propose(nl)
		require.True(t, ok)
		require.Equal(t, int64(1), Counter(z))
		c.awaitApplied(z, c.ids, 3000)
	})
}

// ZOOKEEPER-3911/-4643/-4646: a learner acks NEWLEADER only once the synced
// entries are durable. Here the leader holds an entry nobody else has; once
// it established (so delivered that entry), a crash of the leader and of the
// follower that acked, with slow disks, must not lose it.
func TestNewLeaderAckWaitsForDurableSync(t *testing.T) {
	e := func(n int64) Entry { return Entry{Zxid: MakeZxid(1, n), Data: []byte{1, byte(n)}} }
	hs := HardState{AcceptedEpoch: 1, CurrentEpoch: 1}
	for seed := uint64(1); seed <= 20; seed++ {
		c := newCluster(t, clusterOpts{voters: 3, seed: seed, fsyncDelay: 30, down: []int64{2, 3}, initial: map[int64]Initial{
			1: {HardState: hs, Log: []Entry{e(1), e(2)}},
			2: {HardState: hs, Log: []Entry{e(1)}},
			3: {HardState: hs, Log: []Entry{e(1)}},
		}})
		c.restart(2)
		c.runUntil("server 1 establishes", 5000, func() bool {
			st := c.nodes[1].p.Status()
			return st.Role == Leading && st.Established
		})
		require.True(t, c.applied(1, e(2).Zxid))
		c.crash(1)
		c.crash(2)
		c.restart(2)
		c.restart(3)
		// checkInvariants fails if the next leader lacks the delivered
		// entry (primary integrity).
		l := c.awaitSynced(5000)
		z, _ := c.propose(l)
		c.awaitApplied(z, []int64{2, 3}, 5000)
		require.True(t, c.applied(2, e(2).Zxid))
	}
}
