package zab

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// An observer that syncs while proposals are outstanding gets the
// committed history only; each outstanding txn reaches it once, as an
// INFORM, when it commits (ZooKeeper's startForwarding sends outstanding
// proposals to participants only, and a ZooKeeper observer would apply a
// txn it got as PROPOSAL and again as INFORM, or fail).
func TestObserverSyncGetsCommittedTxnsOnly(t *testing.T) {
	c := newCluster(t, clusterOpts{voters: 3, observers: 1, seed: 31})
	l := c.awaitSynced(3000)
	z0, _ := c.propose(l)
	c.awaitApplied(z0, c.ids, 3000)
	const o = 4
	c.cutLink(l, o)
	require.Equal(t, Looking, c.nodes[o].p.Status().Role)
	// Proposals stay outstanding: the followers' links stall.
	for _, f := range c.voters {
		if f != l {
			c.freezeLink(l, f)
		}
	}
	var out []int64
	for i := 0; i < 3; i++ {
		z, ok := c.propose(l)
		require.True(t, ok)
		out = append(out, z)
	}
	committed := c.nodes[l].p.Status().Committed
	require.Equal(t, z0, committed)

	type sent struct {
		t MsgType
		z int64
	}
	var toObserver []sent
	c.onSend = func(m Message) {
		if m.From == l && m.To == o {
			z := m.Zxid
			if m.Type == MsgProposal || m.Type == MsgInform {
				z = m.Entry.Zxid
			}
			toObserver = append(toObserver, sent{m.Type, z})
		}
	}
	// The observer alone gets its link back and resyncs, without ticks
	// (the leader keeps its followers meanwhile).
	delete(c.cut, linkKey(l, o))
	// Only the observer ticks (its election rounds), so the leader keeps
	// its stalled followers.
	synced := func() bool {
		st := c.nodes[o].p.Status()
		return st.Role == Observing && st.Established
	}
	for i := 0; i < 50 && !synced(); i++ {
		c.nodes[o].p.Tick()
		c.handleReady(o)
		c.stabilize()
	}
	st := c.nodes[o].p.Status()
	require.True(t, st.Role == Observing && st.Established, c.describe())
	require.Equal(t, l, st.Leader)
	require.Equal(t, committed, c.nodes[l].p.Status().Committed, "still outstanding")
	for _, s := range toObserver {
		if s.t == MsgProposal {
			require.LessOrEqual(t, s.z, committed, "outstanding proposal sent to the observer: %+v", toObserver)
		}
	}
	require.Equal(t, z0, c.nodes[o].p.Status().LastZxid)

	// The followers' acks arrive: the outstanding txns commit and reach the
	// observer once each, as INFORMs.
	c.healAll()
	c.awaitApplied(out[len(out)-1], c.ids, 3000)
	var informs []int64
	for _, s := range toObserver {
		if s.t == MsgInform {
			informs = append(informs, s.z)
		}
	}
	require.Equal(t, out, informs)
	require.Equal(t, append([]int64{z0}, out...), zxids(c.nodes[o].app.ents)[len(c.nodes[o].app.ents)-4:])

	// An INFORM for a zxid the observer already holds (as one that an
	// older leader's sync could have sent) changes nothing: it is not
	// applied twice and the observer stays.
	before := len(c.nodes[o].app.ents)
	epoch := c.nodes[l].p.Status().Epoch
	dup := c.nodes[o].app.ents[before-1]
	c.stepNode(o, Message{Type: MsgInform, From: l, To: o, Epoch: epoch, Entry: dup})
	require.Len(t, c.nodes[o].app.ents, before)
	st = c.nodes[o].p.Status()
	require.Equal(t, Observing, st.Role)
	require.True(t, st.Established)
}

// A looking non-voter answers no other non-voter's notification: ZooKeeper
// notifies voters only, and two non-voters that both answered one another
// at once (two looking observers, or an observer and a voter of a stale
// configuration that sees it as a non-voter) would answer each other
// forever (the simulator's seed 605 with reconfigs spun so). A looking
// voter still answers a looking observer at once.
func TestLookingObserversDoNotAnswerEachOther(t *testing.T) {
	c := newCluster(t, clusterOpts{voters: 3, observers: 2, seed: 5})
	for _, id := range c.voters {
		c.crash(id)
	}
	c.stabilize()
	const o1, o2 = 4, 5
	require.Equal(t, Looking, c.nodes[o1].p.Status().Role)
	require.Equal(t, Looking, c.nodes[o2].p.Status().Role)
	answers := map[[2]int64]int{}
	c.onSend = func(m Message) {
		if m.Type == MsgNotification {
			answers[[2]int64{m.From, m.To}]++
		}
	}
	looking := Message{Type: MsgNotification, From: o1, To: o2, Vote: Vote{Round: 1, State: Looking}}
	c.stepNode(o2, looking)
	require.Zero(t, answers[[2]int64{o2, o1}], "an observer answered an observer")

	c.restart(1)
	clear(answers)
	looking.To = 1
	c.stepNode(1, looking)
	require.Equal(t, 1, answers[[2]int64{1, o1}], "a looking voter answers a looking observer at once")
}
