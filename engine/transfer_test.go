package engine

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
)

func requireClosedConn(t *testing.T, outs []Output) {
	t.Helper()
	for _, o := range outs {
		if o.Kind == OutClose {
			return
		}
	}
	t.Fatalf("connection not closed: %+v", outs)
}

func replyTo(outs []Output, xid int32) (Output, bool) {
	for _, o := range outs {
		if o.Kind == OutReply && o.Header.Xid == xid {
			return o, true
		}
	}
	return Output{}, false
}

// A leader hands over while a write is in flight: the write commits, one
// that arrives during the transfer is held and never applied (its client
// reconnects and retries), a follower leads without any tick, and every
// session survives on the new leader, its grace period restarted.
func TestClusterLeaderHandsOverKeepsSessions(t *testing.T) {
	c := newCluster(t, 3)
	old := c.waitLeader()
	f1, f2 := c.followers(old)
	onLeader := c.open(old, 1)
	onFollower := c.open(f1, 2)
	o := c.call(f1, 2, 1, proto.OpCreate, &proto.CreateRequest{Path: "/eph", ACL: proto.OpenACLUnsafe, Flags: 1})
	require.Equal(t, proto.ErrOK, o.Header.Err)

	// A write in flight: proposed, not yet acknowledged.
	c.hold(f1)
	c.hold(f2)
	c.nodes[old].Submit(Request{Conn: 1, Xid: 1, Op: proto.OpCreate, Time: c.now,
		Body: &proto.CreateRequest{Path: "/inflight", ACL: proto.OpenACLUnsafe}})
	c.settle()
	require.True(t, c.nodes[old].TransferLeadership())
	require.True(t, c.nodes[old].Status().Transferring)
	require.False(t, c.nodes[f1].TransferLeadership(), "only a leader transfers")
	c.nodes[old].Submit(Request{Conn: 1, Xid: 2, Op: proto.OpCreate, Time: c.now,
		Body: &proto.CreateRequest{Path: "/held", ACL: proto.OpenACLUnsafe}})
	c.settle()
	require.Len(t, c.nodes[old].held, 1)

	now := c.now
	c.release(f1)
	c.release(f2)
	require.Equal(t, now, c.now, "no tick passed")
	next := c.leader()
	require.NotZero(t, next, "no leader without a tick")
	require.NotEqual(t, old, next)
	require.True(t, c.nodes[old].Status().HandedOver)
	require.Empty(t, c.nodes[old].held)

	outs := c.take(old, 1)
	r, ok := replyTo(outs, 1)
	require.True(t, ok, "the in-flight write is answered before the close: %+v", outs)
	require.Equal(t, proto.ErrOK, r.Header.Err)
	_, ok = replyTo(outs, 2)
	require.False(t, ok, "the held write is not answered")
	requireClosedConn(t, outs)

	// Both clients reconnect to the new leader a little later; their
	// sessions and the ephemeral are still there, the held write is not.
	for range 5 {
		c.tick()
	}
	for conn, resp := range map[ConnID]*proto.ConnectResponse{3: onLeader, 4: onFollower} {
		outs := c.reconnect(next, conn, resp, 0)
		require.NotEmpty(t, outs)
		require.Equal(t, OutConnect, outs[0].Kind)
		require.Equal(t, resp.SessionID, outs[0].Connect.SessionID, "session %x expired", resp.SessionID)
	}
	for range 10 { // within the 1.5 s timeout: the test clients send no pings
		c.tick()
	}
	for _, id := range c.ids() {
		n := c.nodes[id]
		require.Contains(t, n.SessionIDs(), onLeader.SessionID, "server %d (old %d, next %d): %+v", id, old, next, n.Status())
		require.Contains(t, n.SessionIDs(), onFollower.SessionID)
		for path, want := range map[string]proto.ErrCode{"/eph": proto.ErrOK, "/inflight": proto.ErrOK, "/held": proto.ErrNoNode} {
			_, code := n.Tree().Read(Caller{}, 0, proto.OpExists, &proto.ExistsRequest{Path: path})
			require.Equal(t, want, code, "%s on server %d", path, id)
		}
	}
	require.Equal(t, zab.Following, c.nodes[old].Status().Role)
}

// No follower acknowledges within the transfer's ticks: the leader leads
// on and the write it held is led and answered.
func TestClusterAbandonedTransferLeadsHeldRequests(t *testing.T) {
	c := newCluster(t, 3)
	old := c.waitLeader()
	f1, f2 := c.followers(old)
	c.open(old, 1)
	c.hold(f1)
	c.hold(f2)
	c.nodes[old].Submit(Request{Conn: 1, Xid: 1, Op: proto.OpCreate, Time: c.now,
		Body: &proto.CreateRequest{Path: "/a", ACL: proto.OpenACLUnsafe}})
	c.settle()
	require.True(t, c.nodes[old].TransferLeadership())
	c.nodes[old].Submit(Request{Conn: 1, Xid: 2, Op: proto.OpCreate, Time: c.now,
		Body: &proto.CreateRequest{Path: "/b", ACL: proto.OpenACLUnsafe}})
	c.settle()
	for c.nodes[old].Status().Transferring {
		c.tick()
	}
	require.Equal(t, old, c.leader())
	require.False(t, c.nodes[old].Status().HandedOver)
	c.release(f1)
	c.release(f2)
	outs := c.take(old, 1)
	for _, xid := range []int32{1, 2} {
		r, ok := replyTo(outs, xid)
		require.True(t, ok, "xid %d unanswered: %+v", xid, outs)
		require.Equal(t, proto.ErrOK, r.Header.Err)
	}
}
