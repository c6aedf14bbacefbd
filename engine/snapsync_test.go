package engine

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
)

// TestClusterLaggingFollowerSyncsBySnapshot: a follower further behind than
// the leader's in-memory log gets a SNAP, installs it and serves the same
// state; a snapshot that does not load is refused without harm and the
// follower syncs with the next one.
func TestClusterLaggingFollowerSyncsBySnapshot(t *testing.T) {
	c := newClusterWith(t, 3, func(cfg *Config) { cfg.MaxLogEntries = 4 })
	leader := c.waitLeader()
	lagging := c.ids()[0]
	if lagging == leader {
		lagging = c.ids()[1]
	}
	c.down[lagging] = true
	c.connect(leader, 1)
	for i := 0; i < 40; i++ {
		o := c.call(leader, 1, int32(i+1), proto.OpCreate, &proto.CreateRequest{Path: fmt.Sprintf("/k%02d", i), ACL: proto.OpenACLUnsafe})
		require.Equal(t, proto.ErrOK, o.Header.Err)
	}

	// The first SNAP to the lagging follower arrives damaged.
	damaged := 0
	c.mangle = func(m *zab.Message) {
		if m.Type == zab.MsgSnap && m.To == lagging && damaged == 0 {
			damaged++
			data, err := zab.ReadSnapshot(m.Snapshot)
			require.NoError(t, err)
			// Cut in the middle, as a broken transfer leaves a spool:
			// the SNAP body, like ZooKeeper's, has no checksum of its
			// own (the transports' frames or TCP carry one).
			bad := append([]byte(nil), data[:len(data)/2]...)
			m.Snapshot = zab.SnapshotBytes(bad)
		}
	}
	c.start(lagging, c.ids())
	for i := 0; i < 300 && !(c.nodes[lagging].Serving() && c.nodes[lagging].LastZxid() == c.nodes[leader].LastZxid()); i++ {
		c.tick()
	}
	require.Equal(t, 1, damaged, "a SNAP was sent to the lagging follower")
	require.Len(t, c.snapErrs, 1, "the damaged snapshot was refused")
	require.ErrorContains(t, c.snapErrs[0], "snapshot")
	require.True(t, c.nodes[lagging].Serving(), "the follower syncs with the next SNAP")
	require.Equal(t, c.nodes[leader].LastZxid(), c.nodes[lagging].LastZxid())
	require.Equal(t, c.nodes[leader].Tree().Digest(), c.nodes[lagging].Tree().Digest())
	require.NotNil(t, c.disk[lagging].snap, "the installed snapshot was handed out to persist")
}
