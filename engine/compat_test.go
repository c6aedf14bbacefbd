package engine

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// Compat mode (Config.ZooKeeperPeers): REVALIDATE, SYNC, owners in the
// leader's memory, and only txns ZooKeeper applies as we do.

func newCompatCluster(t *testing.T, size int) *cluster {
	return newClusterWith(t, size, func(cfg *Config) { cfg.ZooKeeperPeers = true })
}

// requireZooKeeperTxns checks that every txn server id logged is one
// ZooKeeper 3.8 applies as we do.
func (c *cluster) requireZooKeeperTxns(id int64) {
	c.t.Helper()
	for _, txn := range c.logged(id, 0) {
		require.NotEqual(c.t, tree.OpMoveSession, txn.Type, "zxid 0x%x", txn.Zxid)
		require.NotEqual(c.t, proto.OpSync, txn.Type, "zxid 0x%x", txn.Zxid)
		require.Zero(c.t, txn.Owner, "zxid 0x%x: no owner extension", txn.Zxid)
	}
}

func TestCompatRevalidateMovesSession(t *testing.T) {
	c := newCompatCluster(t, 3)
	leader := c.waitLeader()
	a, b := c.followers(leader)
	r := c.open(a, 1)
	sid := r.SessionID
	require.Equal(t, a, c.nodes[leader].owners[sid], "createSession's forwarder owns it, in the leader's memory")
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
	require.Len(t, *pkts, 2, "REVALIDATE and its reply, nothing else")
	s, timeout, err := quorum.DecodeRevalidate(&(*pkts)[0])
	require.NoError(t, err)
	require.Equal(t, sid, s)
	require.EqualValues(t, 1500, timeout)
	s, valid, err := quorum.DecodeRevalidateReply(&(*pkts)[1])
	require.NoError(t, err)
	require.Equal(t, sid, s)
	require.True(t, valid)
	require.Equal(t, seen, c.nodes[leader].LastZxid(), "no txn moves the session")
	require.Equal(t, b, c.nodes[leader].owners[sid])
	require.Empty(t, c.take(a, 1), "a's stale connection lives on, as in ZooKeeper")

	// A write through the stale connection fails with SessionMoved: its
	// connection closes without a reply; the session lives on at b.
	c.nodes[a].Submit(Request{Conn: 1, Xid: 2, Op: proto.OpSetData, Body: &proto.SetDataRequest{Path: "/e", Data: []byte("a"), Version: -1}, Time: c.now})
	c.settle()
	requireClosed(t, c.take(a, 1), "a's stale connection")
	o = c.call(b, 2, 2, proto.OpSetData, &proto.SetDataRequest{Path: "/e", Data: []byte("b"), Version: -1})
	require.Equal(t, proto.ErrOK, o.Header.Err)

	// Reconnecting on the leader revalidates there: no packet, no txn.
	z := c.nodes[leader].LastZxid()
	*pkts = nil
	outs = c.reconnect(leader, 3, r, 0)
	require.Len(t, outs, 1)
	require.Equal(t, OutConnect, outs[0].Kind)
	require.Empty(t, *pkts)
	require.Equal(t, z, c.nodes[leader].LastZxid())
	require.Equal(t, leader, c.nodes[leader].owners[sid])
	for _, id := range c.ids() {
		c.requireZooKeeperTxns(id)
	}
}

func TestCompatRevalidateRefused(t *testing.T) {
	c := newCompatCluster(t, 3)
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
		if p, err := decodePacket(m.Payload); err == nil && p.Type == quorum.Revalidate && m.To == b {
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
	require.Empty(t, c.take(a, 1), "a's connection is untouched")
}

// A learner's syncs are answered by SYNCs paired in order, each once what
// committed before it is applied there; no sync txn is proposed.
func TestCompatSyncFIFO(t *testing.T) {
	c := newCompatCluster(t, 3)
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
		c.requireZooKeeperTxns(id)
	}
}

// The leader waits for the proposals outstanding when a sync arrived.
func TestCompatLeaderSyncWaitsForOutstanding(t *testing.T) {
	c := newCompatCluster(t, 3)
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

func TestCompatNoLeadershipTransfer(t *testing.T) {
	c := newCompatCluster(t, 3)
	leader := c.waitLeader()
	require.False(t, c.nodes[leader].TransferLeadership())
	c.settle()
	require.Equal(t, leader, c.leader())
	require.False(t, c.nodes[leader].Status().Transferring)
}

// A moveSession REQUEST has no place in compat mode.
func TestCompatRefusesMoveSessionRequest(t *testing.T) {
	c := newCompatCluster(t, 3)
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
func TestCompatSyncOwedToAnEarlierLearnerSessionIsDropped(t *testing.T) {
	c := newCompatCluster(t, 3)
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
