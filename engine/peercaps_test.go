package engine

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// Per-link capabilities (peercaps.go): over links without any (to a
// ZooKeeper server, or one behaving as such) REVALIDATE moves sessions,
// no moveSession REQUEST and no TIMEOUTNOW is sent; sync is answered by
// SYNC on every link; only txns ZooKeeper applies as we do are proposed.

// zooKeeperLinks gives every link no capabilities: each server behaves
// toward each other as toward ZooKeeper servers.
func zooKeeperLinks(a, b int64) zab.Caps { return 0 }

func newZooKeeperLinkCluster(t *testing.T, size int) *cluster {
	c := newCluster(t, size)
	c.linkCaps = zooKeeperLinks
	return c
}

// requireNoSyncTxns checks that server id logged no sync txn: a sync is
// answered without one, on every link.
func (c *cluster) requireNoSyncTxns(id int64) {
	c.t.Helper()
	for _, txn := range c.logged(id, 0) {
		require.NotEqual(c.t, proto.OpSync, txn.Type, "zxid 0x%x", txn.Zxid)
	}
}

// moves returns the moveSession txns server id logged after zxid.
func (c *cluster) moves(id, after int64) []*tree.Txn {
	var out []*tree.Txn
	for _, txn := range c.logged(id, after) {
		if txn.Type == tree.OpMoveSession {
			out = append(out, txn)
		}
	}
	return out
}

func TestRevalidateMovesSessionAndReplicatesTheMove(t *testing.T) {
	c := newZooKeeperLinkCluster(t, 3)
	leader := c.waitLeader()
	a, b := c.followers(leader)
	r := c.open(a, 1)
	sid := r.SessionID
	o := c.call(a, 1, 1, proto.OpCreate, &proto.CreateRequest{Path: "/e", ACL: proto.OpenACLUnsafe, Flags: proto.ModeEphemeral})
	require.Equal(t, proto.ErrOK, o.Header.Err)
	seen := o.Header.Zxid

	pkts := c.appPackets()
	outs := c.reconnect(b, 2, r, seen)
	require.Len(t, outs, 1)
	require.Equal(t, OutConnect, outs[0].Kind)
	require.Equal(t, sid, outs[0].Connect.SessionID)
	require.Equal(t, r.Passwd, outs[0].Connect.Passwd)
	require.EqualValues(t, 1500, outs[0].Connect.TimeOut)
	require.Len(t, *pkts, 2, "REVALIDATE and its reply, no moveSession REQUEST")
	s, timeout, err := quorum.DecodeRevalidate(&(*pkts)[0])
	require.NoError(t, err)
	require.Equal(t, sid, s)
	require.EqualValues(t, 1500, timeout)
	s, valid, err := quorum.DecodeRevalidateReply(&(*pkts)[1])
	require.NoError(t, err)
	require.Equal(t, sid, s)
	require.True(t, valid)
	require.Equal(t, seen+1, (*pkts)[1].Zxid, "the reply names the move it replicates")
	for _, id := range c.ids() {
		mv := c.moves(id, seen)
		require.Len(t, mv, 1, "server %d", id)
		require.Equal(t, b, mv[0].Owner, "the learner that revalidated owns the session")
		require.EqualValues(t, 1500, mv[0].TimeOut)
	}
	requireClosed(t, c.take(a, 1), "a's stale connection, closed by the move")
	o = c.call(b, 2, 2, proto.OpSetData, &proto.SetDataRequest{Path: "/e", Data: []byte("b"), Version: -1})
	require.Equal(t, proto.ErrOK, o.Header.Err)

	// Reconnecting on the leader moves it there, by txn: no packet.
	z := c.nodes[leader].LastZxid()
	*pkts = nil
	outs = c.reconnect(leader, 3, r, 0)
	require.Len(t, outs, 1)
	require.Equal(t, OutConnect, outs[0].Kind)
	require.Empty(t, *pkts)
	mv := c.moves(leader, z)
	require.Len(t, mv, 1)
	require.Equal(t, leader, mv[0].Owner)
	requireClosed(t, c.take(b, 2), "b's stale connection")
	for _, id := range c.ids() {
		c.requireNoSyncTxns(id)
	}
}

func TestRevalidateRefused(t *testing.T) {
	c := newZooKeeperLinkCluster(t, 3)
	leader := c.waitLeader()
	a, b := c.followers(leader)
	l := c.nodes[leader]

	// The leader says invalid for a session it does not know.
	pkts := c.appPackets()
	l.Step(zab.Message{Type: zab.MsgApp, From: a, To: leader, Epoch: l.Status().Epoch, Payload: quorum.NewRevalidate(12345, 3000).Encode()})
	c.settle()
	require.Len(t, *pkts, 1)
	s, valid, err := quorum.DecodeRevalidateReply(&(*pkts)[0])
	require.NoError(t, err)
	require.Equal(t, int64(12345), s)
	require.False(t, valid)
	require.Zero(t, l.owners[12345])

	// A learner refuses the handshake on an invalid reply (here the leader
	// is made to say so, as one that just expired the session would).
	r := c.open(a, 1)
	c.mangle = func(m *zab.Message) {
		if m.Type != zab.MsgApp {
			return
		}
		if p, err := decodePacket(m.Payload, quorum.Limits{}); err == nil && p.Type == quorum.Revalidate && m.To == b {
			id, _, err := quorum.DecodeRevalidateReply(&p)
			require.NoError(t, err)
			m.Payload = quorum.NewRevalidateReply(-1, id, false).Encode()
		}
	}
	outs := c.reconnect(b, 2, r, 0)
	require.Len(t, outs, 2)
	require.Equal(t, OutConnect, outs[0].Kind)
	require.Zero(t, outs[0].Connect.SessionID, "session expired, as ZooKeeper answers")
	require.Equal(t, OutClose, outs[1].Kind)
	require.Zero(t, c.nodes[b].SessionOf(2))
	// The leader's real answer was valid, and it moved the session to b.
	requireClosed(t, c.take(a, 1), "a's connection, closed by the move")
}

// A move away from a learner proposed before the one its REVALIDATE was
// answered with does not close the client's new connection there when it
// applies after the reply (the reply goes out at once, the older move
// commits later).
func TestOlderMoveDoesNotCloseARevalidatedConnection(t *testing.T) {
	c := newZooKeeperLinkCluster(t, 3)
	leader := c.waitLeader()
	a, b := c.followers(leader)
	r := c.open(a, 1)
	l := c.nodes[leader]
	c.hold(a)
	c.hold(b)
	// The leader's own reconnect proposes a move to the leader; b's
	// REVALIDATE then gets its reply, and a later move to b, before the
	// first move commits.
	l.Connect(ConnectRequest{Conn: 7, Time: c.now, Req: &proto.ConnectRequest{TimeOut: 1500, SessionID: r.SessionID, Passwd: r.Passwd}})
	c.nodes[b].Connect(ConnectRequest{Conn: 2, Time: c.now, Req: &proto.ConnectRequest{TimeOut: 1500, SessionID: r.SessionID, Passwd: r.Passwd}})
	c.settle()
	c.release(b)
	c.release(a)
	mv := c.moves(b, 0)
	require.Len(t, mv, 2)
	require.Equal(t, leader, mv[0].Owner)
	require.Equal(t, b, mv[1].Owner)
	outs := c.take(b, 2)
	require.NotEmpty(t, outs)
	require.Equal(t, OutConnect, outs[0].Kind)
	require.Equal(t, r.SessionID, outs[0].Connect.SessionID)
	for _, o := range outs[1:] {
		require.NotEqual(t, OutClose, o.Kind, "the older move closed b's new connection")
	}
	require.Equal(t, r.SessionID, c.nodes[b].SessionOf(2))
	o := c.call(b, 2, 1, proto.OpCreate, &proto.CreateRequest{Path: "/b", ACL: proto.OpenACLUnsafe})
	require.Equal(t, proto.ErrOK, o.Header.Err)
}

// A leader with one learner of each kind: REVALIDATE from the one without
// capabilities and op -12 from the one with them both replicate the move;
// both learners' syncs are answered by SYNC; TIMEOUTNOW goes to the
// capable follower only, which takes over.
func TestMixedCapsLeader(t *testing.T) {
	const zk = 1 // behaves as a ZooKeeper server toward everyone
	c := newCluster(t, 3)
	c.linkCaps = func(a, b int64) zab.Caps {
		if a == zk || b == zk {
			return 0
		}
		return zab.AllCaps
	}
	leader := c.waitLeader()
	require.NotEqual(t, int64(zk), leader, "fast leader election ranks the highest id first")
	native := 6 - leader - zk // the third of ids 1, 2, 3
	r := c.open(native, 1)
	z := c.nodes[leader].LastZxid()

	pkts := c.appPackets()
	outs := c.reconnect(zk, 2, r, 0)
	require.Equal(t, OutConnect, outs[0].Kind)
	require.Equal(t, r.SessionID, outs[0].Connect.SessionID)
	require.Len(t, *pkts, 2)
	require.Equal(t, quorum.Revalidate, (*pkts)[0].Type, "no op -12 on a link without CapMoveRequest")
	mv := c.moves(native, z)
	require.Len(t, mv, 1)
	require.Equal(t, int64(zk), mv[0].Owner)

	*pkts = nil
	z = c.nodes[leader].LastZxid()
	outs = c.reconnect(native, 3, r, 0)
	require.Equal(t, OutConnect, outs[0].Kind)
	require.Len(t, *pkts, 1, "op -12, answered by the txn")
	require.Equal(t, quorum.Request, (*pkts)[0].Type)
	mv = c.moves(zk, z)
	require.Len(t, mv, 1)
	require.Equal(t, native, mv[0].Owner)

	// sync: SYNC on both links, no txn.
	c.connect(zk, 4)
	*pkts = nil
	z = c.nodes[leader].LastZxid()
	for _, id := range []int64{zk, native} {
		conn := ConnID(4)
		if id == native {
			conn = 3
		}
		o := c.call(id, conn, 9, proto.OpSync, &proto.SyncRequest{Path: "/"})
		require.Equal(t, proto.ErrOK, o.Header.Err, "server %d", id)
	}
	var types []quorum.PacketType
	for _, p := range *pkts {
		types = append(types, p.Type)
	}
	require.Equal(t, []quorum.PacketType{quorum.Request, quorum.Sync, quorum.Request, quorum.Sync}, types)
	require.Equal(t, z, c.nodes[leader].LastZxid(), "no sync txn")

	// Transfer: TIMEOUTNOW to the capable follower only.
	var told []int64
	prev := c.mangle
	c.mangle = func(m *zab.Message) {
		prev(m)
		if m.Type == zab.MsgTimeoutNow {
			told = append(told, m.To)
		}
	}
	require.True(t, c.nodes[leader].TransferLeadership())
	c.settle()
	require.Equal(t, []int64{native}, told)
	require.Equal(t, native, c.waitLeader())
}

// A learner's syncs are answered by SYNCs paired in order, each once what
// committed before it is applied there; no sync txn is proposed.
func TestSyncFIFO(t *testing.T) {
	for _, caps := range []zab.Caps{0, zab.AllCaps} {
		t.Run(fmt.Sprintf("caps=%d", caps), func(t *testing.T) { testSyncFIFO(t, caps) })
	}
}

func testSyncFIFO(t *testing.T, caps zab.Caps) {
	c := newCluster(t, 3)
	c.linkCaps = func(a, b int64) zab.Caps { return caps }
	leader := c.waitLeader()
	a, _ := c.followers(leader)
	c.connect(a, 1)
	c.connect(a, 2)
	c.connect(leader, 3)
	z := c.nodes[leader].LastZxid()

	// a's disk is slow: it learns that /x committed but cannot apply it.
	c.slow[a] = true
	c.nodes[leader].Submit(Request{Conn: 3, Xid: 1, Op: proto.OpCreate, Body: &proto.CreateRequest{Path: "/x", ACL: proto.OpenACLUnsafe}, Time: c.now})
	c.settle()
	require.Equal(t, proto.ErrOK, c.take(leader, 3)[0].Header.Err)
	pkts := c.appPackets()
	c.nodes[a].Submit(Request{Conn: 1, Xid: 1, Op: proto.OpSync, Body: &proto.SyncRequest{Path: "/one"}, Time: c.now})
	c.nodes[a].Submit(Request{Conn: 2, Xid: 1, Op: proto.OpSync, Body: &proto.SyncRequest{Path: "/two"}, Time: c.now})
	c.settle()
	var types []quorum.PacketType
	for _, p := range *pkts {
		types = append(types, p.Type)
	}
	require.Equal(t, []quorum.PacketType{quorum.Request, quorum.Request, quorum.Sync, quorum.Sync}, types)
	require.Empty(t, c.take(a, 1), "the SYNC came, but /x is not applied on a yet")
	require.Empty(t, c.take(a, 2))

	c.flush(a)
	for conn, path := range map[ConnID]string{1: "/one", 2: "/two"} {
		outs := c.take(a, conn)
		require.Len(t, outs, 1)
		require.Equal(t, proto.ErrOK, outs[0].Header.Err)
		require.Equal(t, &proto.SyncResponse{Path: path}, outs[0].Body)
		require.Equal(t, z+1, outs[0].Header.Zxid, "the reply reflects /x")
	}
	require.Equal(t, z+1, c.nodes[leader].LastZxid(), "no sync txn")

	// The leader's own client's sync: answered without a txn.
	o := c.call(leader, 3, 2, proto.OpSync, &proto.SyncRequest{Path: "/"})
	require.Equal(t, proto.ErrOK, o.Header.Err)
	require.Equal(t, &proto.SyncResponse{Path: "/"}, o.Body)
	require.Equal(t, z+1, c.nodes[leader].LastZxid())

	// A SYNC with no sync pending is a peer error, dropped.
	c.nodes[a].Step(zab.Message{Type: zab.MsgApp, From: leader, To: a, Epoch: c.nodes[a].Status().Epoch, Payload: quorum.NewSync().Encode()})
	require.Len(t, c.nodes[a].PeerErrors(), 1)
	for _, id := range c.ids() {
		c.requireNoSyncTxns(id)
	}
}

// The leader waits for the proposals outstanding when a sync arrived.
func TestLeaderSyncWaitsForOutstanding(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.waitLeader()
	a, b := c.followers(leader)
	c.connect(leader, 1)
	c.connect(a, 2)
	c.hold(a)
	c.hold(b)
	c.nodes[leader].Submit(Request{Conn: 1, Xid: 1, Op: proto.OpCreate, Body: &proto.CreateRequest{Path: "/x", ACL: proto.OpenACLUnsafe}, Time: c.now})
	c.nodes[leader].Submit(Request{Conn: 1, Xid: 2, Op: proto.OpSync, Body: &proto.SyncRequest{Path: "/"}, Time: c.now})
	c.settle()
	require.Empty(t, c.take(leader, 1), "nothing committed yet")
	c.release(a)
	c.release(b)
	outs := c.take(leader, 1)
	require.Len(t, outs, 2)
	require.Equal(t, int32(2), outs[1].Header.Xid)
	require.Equal(t, proto.ErrOK, outs[1].Header.Err)
}

// No follower with CapTransfer: no transfer, the leader just stops.
func TestNoLeadershipTransferOverZooKeeperLinks(t *testing.T) {
	c := newZooKeeperLinkCluster(t, 3)
	leader := c.waitLeader()
	require.False(t, c.nodes[leader].TransferLeadership())
	c.settle()
	require.Equal(t, leader, c.leader())
	require.False(t, c.nodes[leader].Status().Transferring)
}

// A moveSession REQUEST on a link without CapMoveRequest is refused.
func TestRefusesMoveSessionRequestWithoutCap(t *testing.T) {
	c := newZooKeeperLinkCluster(t, 3)
	leader := c.waitLeader()
	a, _ := c.followers(leader)
	r := c.open(a, 1)
	l := c.nodes[leader]
	z := l.LastZxid()
	l.Step(zab.Message{Type: zab.MsgApp, From: a, To: leader, Epoch: l.Status().Epoch,
		Payload: encodeRequest(&forwarded{session: r.SessionID, cxid: internalCxid, op: tree.OpMoveSession, timeout: 1000})})
	c.settle()
	require.Len(t, l.PeerErrors(), 1)
	require.Equal(t, z, l.LastZxid())
}

// A SYNC owed to a learner whose session with the leader ended (here its
// link broke; zab's TestLearnerLinkChangesWhenTheLearnerStartsOver shows a
// new session gets a new LearnerLink) is not sent: it would pair with a
// later sync of the new session.
func TestSyncOwedToAnEarlierLearnerSessionIsDropped(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.waitLeader()
	a, b := c.followers(leader)
	l := c.nodes[leader]
	c.connect(a, 1)
	c.connect(leader, 2)
	c.hold(a)
	c.hold(b)
	l.Submit(Request{Conn: 2, Xid: 1, Op: proto.OpCreate, Body: &proto.CreateRequest{Path: "/x", ACL: proto.OpenACLUnsafe}, Time: c.now})
	c.nodes[a].Submit(Request{Conn: 1, Xid: 1, Op: proto.OpSync, Body: &proto.SyncRequest{Path: "/"}, Time: c.now})
	c.settle()
	require.Len(t, l.leaderSyncs, 1, "waits for /x")
	pkts := c.appPackets()
	l.Step(zab.Message{Type: zab.MsgLinkDown, From: a, To: leader})
	c.release(b)
	require.Empty(t, l.leaderSyncs)
	for _, p := range *pkts {
		require.NotEqual(t, quorum.Sync, p.Type)
	}
}

// Stronger than ZooKeeper's sync (ZOOKEEPER-1675): with nothing
// outstanding, the leader still answers its own client's sync only once a
// quorum answered a PING sent after the sync arrived, so a leader cut off
// from its followers (maybe replaced already) answers no sync.
func TestLeaderSyncNeedsAQuorumRoundTrip(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.waitLeader()
	a, b := c.followers(leader)
	c.connect(leader, 1)
	c.connect(a, 2)
	z := c.nodes[leader].LastZxid()
	c.hold(a)
	c.hold(b)
	c.nodes[leader].Submit(Request{Conn: 1, Xid: 1, Op: proto.OpSync, Body: &proto.SyncRequest{Path: "/"}, Time: c.now})
	c.settle()
	require.Empty(t, c.take(leader, 1), "no follower answered since the sync arrived")
	// A follower's sync waits the same way for its SYNC.
	c.nodes[a].Submit(Request{Conn: 2, Xid: 1, Op: proto.OpSync, Body: &proto.SyncRequest{Path: "/a"}, Time: c.now})
	c.settle()
	c.release(b) // b and the leader are a quorum
	outs := c.take(leader, 1)
	require.Len(t, outs, 1)
	require.Equal(t, proto.ErrOK, outs[0].Header.Err)
	require.Equal(t, &proto.SyncResponse{Path: "/"}, outs[0].Body)
	require.Equal(t, z, c.nodes[leader].LastZxid(), "no txn")
	c.release(a)
	outs = c.take(a, 2)
	require.Len(t, outs, 1)
	require.Equal(t, &proto.SyncResponse{Path: "/a"}, outs[0].Body)
}
