package zab

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Role is what the server asks after every Ready: it says what Status
// says about the role and the leader, without Status's allocations on a
// leader (its followers list).
func TestRoleDoesNotAllocate(t *testing.T) {
	c := newCluster(t, clusterOpts{voters: 3, observers: 1, seed: 5})
	l := c.awaitSynced(3000)
	for _, id := range c.ids {
		st := c.nodes[id].p.Status()
		role, leader := c.nodes[id].p.Role()
		require.Equal(t, st.Role, role)
		require.Equal(t, st.Leader, leader)
	}
	p := c.nodes[l].p
	require.Positive(t, testing.AllocsPerRun(100, func() { _ = p.Status() }), "Status allocates on a leader")
	require.Zero(t, testing.AllocsPerRun(100, func() { _, _ = p.Role() }))
}

func BenchmarkLeaderRole(b *testing.B) {
	c := newCluster(b, clusterOpts{voters: 5, seed: 5})
	p := c.nodes[c.awaitSynced(3000)].p
	b.Run("Status", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			_ = p.Status()
		}
	})
	b.Run("Role", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			_, _ = p.Role()
		}
	})
}

// The leader's learner ids (leaderState.ids) are sorted, follow every
// change of the learners, cost nothing between changes, and a caller
// ranging over them while a learner goes sees them as they were.
func TestLeaderIDsFollowLearners(t *testing.T) {
	l := &leaderState{learners: map[int64]*learnerRecord{}}
	require.Empty(t, l.ids())
	for _, id := range []int64{5, 2, 9, 3} {
		l.addLearner(&learnerRecord{id: id})
	}
	require.Equal(t, []int64{2, 3, 5, 9}, l.ids())
	require.Equal(t, 0.0, testing.AllocsPerRun(100, func() { _ = l.ids() }))
	var seen []int64
	for _, id := range l.ids() {
		seen = append(seen, id)
		l.removeLearner(id)
		if id == 3 {
			l.addLearner(&learnerRecord{id: 1})
		}
	}
	require.Equal(t, []int64{2, 3, 5, 9}, seen)
	require.Equal(t, []int64{1}, l.ids())
	l.addLearner(&learnerRecord{id: 1}) // again: the same learner anew
	require.Equal(t, []int64{1}, l.ids())
	require.Len(t, append(l.ids(), 7), 2)
	require.Equal(t, []int64{1}, l.ids(), "an append to the ids copies")
}
