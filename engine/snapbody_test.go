package engine

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// TestClusterSnapIsZooKeeperBody: the SnapshotData a leader hands out for a
// SNAP is ZooKeeper's SNAP body (what quorum.CopySnapshotBody walks, with
// the leader's sessions and nodes), the learner loads it, and what it
// persists is a snapshot file of ours with the leader's digest, from which
// it restarts.
func TestClusterSnapIsZooKeeperBody(t *testing.T) {
	c := newClusterWith(t, 3, func(cfg *Config) { cfg.MaxLogEntries = 4 })
	leader := c.waitLeader()
	lagging := c.ids()[0]
	if lagging == leader {
		lagging = c.ids()[1]
	}
	c.down[lagging] = true
	sid := c.connect(leader, 1)
	o := c.call(leader, 1, 1, proto.OpCreate, &proto.CreateRequest{Path: "/eph", Data: []byte("e"), ACL: proto.OpenACLUnsafe, Flags: proto.ModeEphemeral})
	require.Equal(t, proto.ErrOK, o.Header.Err)
	readOnly := []proto.ACL{{Perms: proto.PermRead, Id: proto.Id{Scheme: "world", ID: "anyone"}}}
	for i := 0; i < 20; i++ {
		acl := proto.OpenACLUnsafe
		if i%2 == 1 {
			acl = readOnly
		}
		o := c.call(leader, 1, int32(i+2), proto.OpCreate, &proto.CreateRequest{Path: fmt.Sprintf("/k%02d", i), Data: []byte{byte(i)}, ACL: acl})
		require.Equal(t, proto.ErrOK, o.Header.Err)
	}

	var body []byte
	var sessions []int64
	var digest uint64
	var nodes int
	c.mangle = func(m *zab.Message) {
		if m.Type == zab.MsgSnap && m.To == lagging && body == nil {
			var err error
			body, err = zab.ReadSnapshot(m.Snapshot)
			require.NoError(t, err)
			l := c.nodes[leader]
			require.Equal(t, m.Zxid, l.LastZxid(), "the leader's state when the SNAP goes out")
			sessions, digest, nodes = l.SessionIDs(), l.Tree().Digest(), l.Tree().NodeCount()
		}
	}
	c.start(lagging, c.ids())
	for i := 0; i < 300 && !(c.nodes[lagging].Serving() && c.nodes[lagging].LastZxid() == c.nodes[leader].LastZxid()); i++ {
		c.tick()
	}
	require.NotNil(t, body, "a SNAP went to the lagging follower")
	require.Empty(t, c.snapErrs)
	require.Contains(t, sessions, sid)

	require.NotEqual(t, []byte("ZKSN"), body[:4], "no file header")
	sum, err := quorum.CopySnapshotBody(nil, bytes.NewReader(body), quorum.SnapLimits{})
	require.NoError(t, err)
	require.Equal(t, int64(len(body)), sum.Bytes, "the body ends with its signature")
	require.Equal(t, nodes, sum.Nodes)
	got := make([]int64, 0, len(sum.Sessions))
	for _, s := range sum.Sessions {
		got = append(got, s.Session)
	}
	require.Equal(t, sessions, got)
	ls, err := tree.ReadSnapshotBody(bytes.NewReader(body), tree.Options{}, 1)
	require.NoError(t, err)
	require.Equal(t, digest, ls.Tree.Digest())
	require.Equal(t, []string{"/eph"}, ls.Tree.Ephemerals(sid))

	// What the learner persists is a snapshot file: it loads with the
	// digest recomputed from the body's tree, and the node restarts on it.
	snap := c.disk[lagging].snap
	require.NotNil(t, snap)
	file, err := zab.ReadSnapshot(snap.Data)
	require.NoError(t, err)
	require.Equal(t, []byte("ZKSN"), file[:4])
	fl, err := tree.ReadSnapshot(bytes.NewReader(file), tree.Options{}, snap.Zxid)
	require.NoError(t, err)
	require.True(t, fl.HasDigest)
	require.False(t, fl.DigestMismatch)
	require.Equal(t, tree.SnapshotDigest{Zxid: snap.Zxid, Version: tree.DigestVersion, Digest: fl.Tree.Digest()}, fl.Digest)
	c.start(lagging, c.ids())
	for i := 0; i < 300 && !(c.nodes[lagging].Serving() && c.nodes[lagging].LastZxid() == c.nodes[leader].LastZxid()); i++ {
		c.tick()
	}
	require.Equal(t, c.nodes[leader].LastZxid(), c.nodes[lagging].LastZxid())
	require.Equal(t, c.nodes[leader].Tree().Digest(), c.nodes[lagging].Tree().Digest())
}
