package engine

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/internal/fuzzysnap"
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

// TestClusterSnapWithUnresolvedACLNotServed: a SNAP body whose ACL cache
// lacks a node's list (a ZooKeeper leader's fuzzy body) is installed, not
// refused, and persisted with the node still naming an ACL the cache
// lacks; here no txn after the SNAP sets that node's ACL, so the follower
// refuses to serve when it would start, naming the node, rather than serve
// it with a wrong ACL.
func TestClusterSnapWithUnresolvedACLNotServed(t *testing.T) {
	c := newClusterWith(t, 3, func(cfg *Config) { cfg.MaxLogEntries = 4 })
	leader := c.waitLeader()
	lagging := c.ids()[0]
	if lagging == leader {
		lagging = c.ids()[1]
	}
	c.down[lagging] = true
	c.connect(leader, 1)
	acl := []proto.ACL{{Perms: proto.PermRead, Id: proto.Id{Scheme: "ip", ID: "10.9.9.9"}}}
	for i := 0; i < 10; i++ {
		o := c.call(leader, 1, int32(i+1), proto.OpCreate, &proto.CreateRequest{Path: fmt.Sprintf("/k%02d", i), ACL: proto.OpenACLUnsafe})
		require.Equal(t, proto.ErrOK, o.Header.Err)
	}
	o := c.call(leader, 1, 11, proto.OpCreate, &proto.CreateRequest{Path: "/x", ACL: acl})
	require.Equal(t, proto.ErrOK, o.Header.Err)

	snaps := 0
	c.mangle = func(m *zab.Message) {
		if m.Type != zab.MsgSnap || m.To != lagging {
			return
		}
		snaps++
		data, err := zab.ReadSnapshot(m.Snapshot)
		require.NoError(t, err)
		// Drop the cache entry of /x's list: ids in first use along the
		// node order, "/k00" (open) 1, "/x" 2.
		fuzzy, err := fuzzysnap.DropACLFromBody(data, 2, acl)
		require.NoError(t, err)
		m.Snapshot = zab.SnapshotBytes(fuzzy)
	}
	c.start(lagging, c.ids())
	for i := 0; i < 300 && c.nodes[lagging].Halted() == nil; i++ {
		c.tick()
	}
	require.EqualError(t, c.nodes[lagging].Halted(), fmt.Sprintf("engine: cannot serve the tree recovered at zxid 0x%x: tree: node refers to an ACL the ACL cache lacks: "+
		`node "/x" refers to ACL 2 (1 node(s) in all) and no txn replayed after the snapshot set its ACL`, c.nodes[leader].LastZxid()))
	for i := 0; i < 100; i++ {
		c.tick() // halted for good: it stays synced but never serves
	}
	require.Equal(t, 1, snaps)
	require.Empty(t, c.snapErrs, "the fuzzy SNAP was installed, not refused")
	require.False(t, c.nodes[lagging].Serving())
	// What the follower persisted names the ACL its cache lacks again.
	snap := c.disk[lagging].snap
	require.NotNil(t, snap)
	data, err := zab.ReadSnapshot(snap.Data)
	require.NoError(t, err)
	ls, err := tree.ReadSnapshot(bytes.NewReader(data), tree.Options{}, snap.Zxid)
	require.NoError(t, err)
	err = ls.Tree.CheckACLs()
	require.ErrorIs(t, err, tree.ErrMissingACL)
	require.ErrorContains(t, err, `node "/x" refers to ACL`)
}

// TestClusterSnapWithUnresolvedACLResolvedBySetACL: a follower installs a
// SNAP body whose ACL cache lacks a node's list, and the setACL the leader
// commits after the SNAP, which reaches the follower before it serves,
// gives the node its list: it serves the leader's tree and ACLs.
func TestClusterSnapWithUnresolvedACLResolvedBySetACL(t *testing.T) {
	c := newClusterWith(t, 3, func(cfg *Config) { cfg.MaxLogEntries = 4 })
	leader := c.waitLeader()
	lagging := c.ids()[0]
	if lagging == leader {
		lagging = c.ids()[1]
	}
	c.down[lagging] = true
	c.connect(leader, 1)
	acl := []proto.ACL{{Perms: proto.PermRead, Id: proto.Id{Scheme: "ip", ID: "10.9.9.9"}}, {Perms: proto.PermAdmin, Id: proto.Id{Scheme: "world", ID: "anyone"}}}
	for i := 0; i < 10; i++ {
		o := c.call(leader, 1, int32(i+1), proto.OpCreate, &proto.CreateRequest{Path: fmt.Sprintf("/k%02d", i), ACL: proto.OpenACLUnsafe})
		require.Equal(t, proto.ErrOK, o.Header.Err)
	}
	o := c.call(leader, 1, 11, proto.OpCreate, &proto.CreateRequest{Path: "/x", ACL: acl})
	require.Equal(t, proto.ErrOK, o.Header.Err)

	xacl, code := c.nodes[leader].Tree().Read(tree.Caller{Auth: []proto.Id{{Scheme: "super"}}}, 0, proto.OpGetACL, &proto.GetACLRequest{Path: "/x"})
	require.Equal(t, proto.ErrOK, code)
	require.Equal(t, acl, xacl.(*proto.GetACLResponse).ACL)
	snaps, snapZxid := 0, int64(0)
	c.mangle = func(m *zab.Message) {
		if m.Type != zab.MsgSnap || m.To != lagging || snaps > 0 {
			return // (a held message passes mangle again on release)
		}
		snaps++
		snapZxid = m.Zxid
		data, err := zab.ReadSnapshot(m.Snapshot)
		require.NoError(t, err)
		fuzzy, err := fuzzysnap.DropACLFromBody(data, 2, acl)
		require.NoError(t, err)
		m.Snapshot = zab.SnapshotBytes(fuzzy)
		c.held[lagging] = true // the SNAP waits until the setACL is committed
	}
	c.start(lagging, c.ids())
	for i := 0; i < 300 && snaps == 0; i++ {
		c.tick()
	}
	require.Equal(t, 1, snaps)
	other := []proto.ACL{{Perms: proto.PermAll, Id: proto.Id{Scheme: "ip", ID: "10.8.8.8"}}}
	o = c.call(leader, 1, 12, proto.OpSetACL, &proto.SetACLRequest{Path: "/x", ACL: other, Version: -1})
	require.Equal(t, proto.ErrOK, o.Header.Err)
	c.release(lagging)
	for i := 0; i < 300 && !(c.nodes[lagging].Serving() && c.nodes[lagging].LastZxid() == c.nodes[leader].LastZxid()); i++ {
		c.tick()
	}
	require.Empty(t, c.snapErrs)
	require.True(t, c.nodes[lagging].Serving())
	require.NoError(t, c.nodes[lagging].Tree().CheckACLs())
	super := tree.Caller{Auth: []proto.Id{{Scheme: "super"}}}
	want, code := c.nodes[leader].Tree().Read(super, 0, proto.OpGetACL, &proto.GetACLRequest{Path: "/x"})
	require.Equal(t, proto.ErrOK, code)
	got, code := c.nodes[lagging].Tree().Read(super, 0, proto.OpGetACL, &proto.GetACLRequest{Path: "/x"})
	require.Equal(t, proto.ErrOK, code)
	require.Equal(t, other, got.(*proto.GetACLResponse).ACL)
	require.Equal(t, want, got)
	require.Equal(t, c.nodes[leader].Tree().Digest(), c.nodes[lagging].Tree().Digest())
	// The state it installed, persisted, was the fuzzy one.
	snap := c.disk[lagging].snap
	require.NotNil(t, snap)
	require.Equal(t, snapZxid, snap.Zxid)
	data, err := zab.ReadSnapshot(snap.Data)
	require.NoError(t, err)
	ls, err := tree.ReadSnapshot(bytes.NewReader(data), tree.Options{}, snap.Zxid)
	require.NoError(t, err)
	require.ErrorContains(t, ls.Tree.CheckACLs(), `node "/x" refers to ACL`)
}
