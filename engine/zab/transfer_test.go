package zab

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// transfer starts a leadership transfer on id and carries out its Ready.
func (c *cluster) transfer(id int64) bool {
	ok := c.nodes[id].p.TransferLeadership()
	c.tracef("TRANSFER at %d -> %v", id, ok)
	c.handleReady(id)
	return ok
}

// A leader under write load that hands over: a follower leads the next
// epoch after message deliveries alone, without a single tick (so without
// any election or sync timeout), and holds every proposal the old leader
// made, including those still in flight when the transfer started.
func TestTransferLeadershipElectsWithoutTimeouts(t *testing.T) {
	for _, n := range []int{3, 5} {
		for seed := uint64(1); seed <= 40; seed++ {
			t.Run(fmt.Sprintf("voters=%d/seed=%d", n, seed), func(t *testing.T) {
				c := newCluster(t, clusterOpts{voters: n, seed: seed, fsyncDelay: 2})
				old := c.awaitSynced(5000)
				oldEpoch := c.nodes[old].p.Status().Epoch
				var last int64
				for i := 0; i < 10; i++ {
					z, ok := c.propose(old)
					require.True(t, ok)
					last = z
				}
				// Some of them delivered, some in flight.
				for i := 0; i < int(seed)%7; i++ {
					c.deliverOne()
				}
				require.True(t, c.transfer(old))
				st := c.nodes[old].p.Status()
				require.True(t, st.Transferring || st.HandedOver, "%+v", st)
				_, ok := c.propose(old)
				require.False(t, ok, "a transferring leader proposes nothing")

				ticks := c.ticks
				c.stabilize()
				require.Equal(t, ticks, c.ticks)
				l, ok := c.leader()
				require.True(t, ok, "no leader after the transfer: %s", c.describe())
				require.NotEqual(t, old, l)
				require.Greater(t, c.nodes[l].p.Status().Epoch, oldEpoch)
				require.True(t, c.nodes[old].p.Status().HandedOver)
				for _, id := range c.ids {
					st := c.nodes[id].p.Status()
					require.True(t, st.Established, "%s", c.describe())
					require.Equal(t, l, st.Leader)
					require.True(t, c.applied(id, last), "server %d lacks %x", id, last)
				}
				require.Positive(t, c.sent[MsgTimeoutNow])
				// The old leader follows; the new one takes writes.
				require.Equal(t, Following, c.nodes[old].p.Status().Role)
				z, ok := c.propose(l)
				require.True(t, ok)
				c.stabilize()
				require.True(t, c.applied(old, z))
			})
		}
	}
}

// The successor is a follower that holds the leader's whole log: one cut
// off from the leader is never chosen.
func TestTransferLeadershipWaitsForCatchUp(t *testing.T) {
	c := newCluster(t, clusterOpts{voters: 3, seed: 7})
	old := c.awaitSynced(5000)
	require.Equal(t, int64(3), old)
	c.freezeLink(3, 2)
	var last int64
	for i := 0; i < 5; i++ {
		z, ok := c.propose(old)
		require.True(t, ok)
		last = z
	}
	require.True(t, c.transfer(old))
	require.True(t, c.nodes[old].p.Status().Transferring, "nobody acked yet")
	c.runUntil("server 1 leads", 2000, func() bool {
		l, ok := c.leader()
		return ok && l == 1
	})
	require.True(t, c.applied(1, last))
	c.healAll()
	c.awaitSynced(5000)
	c.awaitApplied(last, c.ids, 5000)
}

// No follower catches up within TransferTicks: the transfer is abandoned
// and the leader leads on, proposals allowed again.
func TestTransferLeadershipGivesUp(t *testing.T) {
	c := newCluster(t, clusterOpts{voters: 3, seed: 3})
	old := c.awaitSynced(5000)
	c.freezeLink(old, 1)
	c.freezeLink(old, 2)
	_, ok := c.propose(old)
	require.True(t, ok)
	require.True(t, c.transfer(old))
	for i := 0; i <= DefaultTransferTicks; i++ {
		require.True(t, c.nodes[old].p.Status().Transferring)
		c.tickAll()
	}
	st := c.nodes[old].p.Status()
	require.False(t, st.Transferring)
	require.False(t, st.HandedOver)
	require.Equal(t, Leading, st.Role)
	c.healAll()
	z, ok := c.propose(old)
	require.True(t, ok)
	c.awaitApplied(z, c.ids, 5000)
	require.Equal(t, 0, c.sent[MsgTimeoutNow])
}

func TestTransferLeadershipRefused(t *testing.T) {
	single := newCluster(t, clusterOpts{voters: 1, seed: 1})
	require.False(t, single.transfer(1), "no follower to hand over to")
	require.True(t, single.nodes[1].p.Status().Established)

	c := newCluster(t, clusterOpts{voters: 3, seed: 2})
	l := c.awaitSynced(5000)
	for _, id := range c.ids {
		if id != l {
			require.False(t, c.transfer(id), "a follower has nothing to hand over")
		}
	}
	require.True(t, c.transfer(l))
	// Observers are never chosen: with only observers synced there is no
	// one to hand over to.
	o := newCluster(t, clusterOpts{voters: 1, observers: 2, seed: 4})
	ol := o.awaitSynced(5000)
	require.False(t, o.transfer(ol))
}

// TIMEOUTNOW goes only to followers whose link has CapTransfer, and the
// successor is one of them; with none, there is no transfer.
func TestTransferLeadershipOnlyToCapTransferFollowers(t *testing.T) {
	zkLike := func(a, b int64) Caps {
		if a <= 2 || b <= 2 {
			return 0 // servers 1 and 2 behave as ZooKeeper servers
		}
		return AllCaps
	}
	c := newCluster(t, clusterOpts{voters: 5, seed: 3, caps: zkLike})
	l := c.awaitSynced(5000)
	require.Greater(t, l, int64(2), "fast leader election ranks the highest ids first")
	require.True(t, c.transfer(l))
	require.NotNil(t, c.nodes[l].p.successor)
	require.Greater(t, c.nodes[l].p.successor.Leader, int64(2))
	told := 0
	for k, q := range c.queues {
		for _, m := range q {
			if m.Type == MsgTimeoutNow {
				require.Equal(t, l, k[0])
				require.Greater(t, m.To, int64(2), "TIMEOUTNOW to a server without CapTransfer")
				told++
			}
		}
	}
	require.Equal(t, 2, told, "both capable followers")

	none := newCluster(t, clusterOpts{voters: 3, seed: 3, caps: func(a, b int64) Caps { return CapStreamSnap | CapMoveRequest }})
	nl := none.awaitSynced(5000)
	require.False(t, none.transfer(nl), "no follower takes TIMEOUTNOW")
	require.True(t, none.nodes[nl].p.Status().Established)
}

// The chosen successor dies before the election ends: the departing server
// votes for it only in that one election, then normally, so the survivors
// elect a leader instead of waiting for a dead one again and again.
func TestTransferLeadershipSuccessorDies(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			c := newCluster(t, clusterOpts{voters: 3, seed: seed})
			old := c.awaitSynced(5000)
			z, ok := c.propose(old)
			require.True(t, ok)
			c.stabilize()
			require.True(t, c.transfer(old))
			target := c.nodes[old].p.successor.Leader
			c.crash(target)
			c.runUntil("a leader among the survivors", 20000, func() bool {
				l, ok := c.leader()
				return ok && l != target && len(c.nodes[l].p.Status().Followers) == 1
			})
			l, _ := c.leader()
			for _, id := range c.ids {
				if id != target {
					c.awaitApplied(z, []int64{id}, 5000)
				}
			}
			_, ok = c.propose(l)
			require.True(t, ok)
		})
	}
}
