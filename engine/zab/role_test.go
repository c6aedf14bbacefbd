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
