package tree

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/proto"
)

// TestNodeSize pins the node at 80 bytes, a Go size class: a field added
// to it costs 16 bytes a znode (96, the next class).
func TestNodeSize(t *testing.T) {
	require.LessOrEqual(t, unsafe.Sizeof(node{}), uintptr(80))
}

// TestLeavesShareMeta checks that leaves with an equal ACL share one meta,
// that a parent, a node whose ACL was set and /zookeeper/config have their
// own, and that the Stat fields kept there are a node's own.
func TestLeavesShareMeta(t *testing.T) {
	h := newHarness(t, Options{})
	c := Caller{SessionID: 1}
	for _, p := range []string{"/a", "/a/x", "/a/y", "/b"} {
		require.Equal(t, proto.ErrOK, h.do(c, proto.OpCreate, &proto.CreateRequest{Path: p, ACL: proto.OpenACLUnsafe}).Err)
	}
	tr := h.tr
	require.Same(t, tr.node("/a/x").meta, tr.node("/a/y").meta)
	require.Same(t, tr.node("/a/x").meta, tr.node("/b").meta)
	require.NotSame(t, tr.node("/a").meta, tr.node("/b").meta, "a parent has a pzxid and cversion of its own")
	require.Same(t, tr.node("/a").meta.acl, tr.node("/b").meta.acl)
	require.Equal(t, int32(-1), tr.node(configPath).aversion())
	require.Equal(t, int32(0), tr.node(procPath).aversion())

	st := tr.node("/a").stat(2)
	require.Equal(t, int32(2), st.Cversion)
	require.Equal(t, tr.node("/a/y").czxid, st.Pzxid)
	require.Equal(t, tr.node("/b").czxid, tr.node("/b").pzxid())

	require.Equal(t, proto.ErrOK, h.do(c, proto.OpSetACL, &proto.SetACLRequest{Path: "/b", ACL: proto.OpenACLUnsafe, Version: -1}).Err)
	require.NotSame(t, tr.node("/a/x").meta, tr.node("/b").meta)
	require.Equal(t, int32(1), tr.node("/b").aversion())
	require.Equal(t, int32(0), tr.node("/a/x").aversion(), "the shared meta is never changed")
	require.Equal(t, proto.OpenACLUnsafe, tr.node("/b").acl())
}
