package engine

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
)

// roConnect is a handshake that allows read-only access, as the Java client
// sends it with canBeReadOnly.
func roConnect(conn ConnID, session int64, passwd []byte, now int64) ConnectRequest {
	if passwd == nil {
		passwd = make([]byte, 16)
	}
	return ConnectRequest{Conn: conn, ClientIP: "127.0.0.1", Time: now, Req: &proto.ConnectRequest{
		TimeOut: 1000, SessionID: session, Passwd: passwd, HasReadOnly: true, ReadOnly: true,
	}}
}

// direct feeds one input to a node and collects its Ready batches at once,
// requiring that the input produced no txn, no durable state and no message
// to a leader: nothing read-only may reach the replicated state.
func (c *cluster) direct(id int64, input func(n *Node)) []Output {
	c.t.Helper()
	n := c.nodes[id]
	input(n)
	var outs []Output
	for n.HasReady() {
		rd := n.Ready()
		require.Empty(c.t, rd.Entries, "a read-only server logs nothing")
		require.Nil(c.t, rd.HardState)
		require.Nil(c.t, rd.Truncate)
		require.Nil(c.t, rd.Snapshot)
		require.Zero(c.t, rd.Committed)
		for _, m := range rd.Messages {
			require.NotEqual(c.t, zab.MsgApp, m.Type, "a read-only server forwards nothing")
		}
		outs = append(outs, rd.Outputs...)
		n.Advance()
	}
	return outs
}

// isolate takes every server but keep down, as if they crashed.
func (c *cluster) isolate(keep int64) {
	for _, id := range c.ids() {
		if id == keep {
			continue
		}
		c.down[id] = true
		c.nodes[keep].Step(zab.Message{Type: zab.MsgLinkDown, From: id, To: keep})
	}
	c.settle()
}

func kinds(outs []Output) []OutputKind {
	var ks []OutputKind
	for _, o := range outs {
		ks = append(ks, o.Kind)
	}
	return ks
}

// readOnlyCluster runs three nodes with read-only mode on, a global session
// on node survivor (a follower) holding /a = "x", and then isolates
// survivor, which is looking for a leader from the next tick on. It returns
// the cluster, the survivor and the global session's id and password.
func readOnlyCluster(t *testing.T) (c *cluster, survivor int64, sid int64, passwd []byte) {
	c = newClusterWith(t, 3, func(cfg *Config) { cfg.ReadOnlyMode = true })
	leader := c.waitLeader()
	survivor = 1
	if survivor == leader {
		survivor = 2
	}
	n := c.nodes[survivor]
	n.Connect(ConnectRequest{Conn: 1, Req: &proto.ConnectRequest{TimeOut: 1000, Passwd: make([]byte, 16)}, Time: c.now})
	c.settle()
	outs := c.take(survivor, 1)
	require.Len(t, outs, 1)
	sid, passwd = outs[0].Connect.SessionID, outs[0].Connect.Passwd
	o := c.call(survivor, 1, 1, proto.OpCreate, &proto.CreateRequest{Path: "/a", Data: []byte("x"), ACL: proto.OpenACLUnsafe})
	require.Equal(t, proto.ErrOK, o.Header.Err)
	require.False(t, n.ReadOnly())

	c.isolate(survivor)
	require.Equal(t, zab.Looking, n.Status().Role)
	require.False(t, n.Serving())
	closed := false
	for _, o := range c.take(survivor, 1) {
		closed = closed || o.Kind == OutClose
	}
	require.True(t, closed, "a server that stops serving closes its clients")
	return c, survivor, sid, passwd
}

// TestReadOnlyStartsAfterGracePeriod: max(2000 ms, tickTime) after the first
// tick spent looking, and not one tick earlier; before that, read-only
// clients are refused like everybody else.
func TestReadOnlyStartsAfterGracePeriod(t *testing.T) {
	c, id, _, _ := readOnlyCluster(t)
	n := c.nodes[id]
	c.tick() // the looking period is first seen at this tick
	start := c.now
	for c.now < start+1900 {
		c.tick()
		require.False(t, n.ReadOnly(), "still in the grace period %d ms after it started", c.now-start)
	}
	outs := c.direct(id, func(n *Node) { n.Connect(roConnect(10, 0, nil, c.now)) })
	require.Equal(t, []OutputKind{OutClose}, kinds(outs), "read-only clients wait for the grace period too")
	c.tick()
	require.Equal(t, start+2000, c.now)
	require.True(t, n.ReadOnly())
	require.False(t, n.Serving())
}

// TestReadOnlyStartsOnAConnectAfterGracePeriod: a handshake arriving after
// the grace period starts read-only mode without waiting for the next tick.
func TestReadOnlyStartsOnAConnectAfterGracePeriod(t *testing.T) {
	c, id, _, _ := readOnlyCluster(t)
	c.tick()
	outs := c.direct(id, func(n *Node) { n.Connect(roConnect(10, 0, nil, c.now+2000)) })
	require.Equal(t, []OutputKind{OutConnect}, kinds(outs))
	require.True(t, outs[0].Connect.ReadOnly)
	require.True(t, c.nodes[id].ReadOnly())
}

// TestReadOnlyDelayIsAtLeastTickTime: with a tickTime above 2 s, the grace
// period is one tickTime, as ZooKeeper's max(2000, tickTime).
func TestReadOnlyDelayIsAtLeastTickTime(t *testing.T) {
	require.EqualValues(t, 2000, (&Config{TickMs: 100}).readOnlyDelayMs())
	require.EqualValues(t, 2000, (&Config{TickMs: 2000}).readOnlyDelayMs())
	require.EqualValues(t, 3000, (&Config{TickMs: 3000}).readOnlyDelayMs())
}

func enterReadOnly(t *testing.T, c *cluster, id int64) {
	t.Helper()
	for i := 0; i < 30 && !c.nodes[id].ReadOnly(); i++ {
		c.tick()
	}
	require.True(t, c.nodes[id].ReadOnly(), "read-only within 30 ticks of 100 ms")
}

func TestReadOnlyServesReadsAndRefusesWrites(t *testing.T) {
	c, id, globalSID, _ := readOnlyCluster(t)
	n := c.nodes[id]
	enterReadOnly(t, c, id)
	zxid, digest := n.LastZxid(), n.Tree().Digest()
	sessions := n.SessionIDs()
	require.Contains(t, sessions, globalSID)

	// A client that does not allow read-only access is closed unanswered,
	// with and without the readOnly byte.
	for i, req := range []*proto.ConnectRequest{
		{TimeOut: 1000, Passwd: make([]byte, 16)},
		{TimeOut: 1000, Passwd: make([]byte, 16), HasReadOnly: true},
	} {
		conn := ConnID(20 + i)
		outs := c.direct(id, func(n *Node) { n.Connect(ConnectRequest{Conn: conn, Req: req, Time: c.now}) })
		require.Equal(t, []OutputKind{OutClose}, kinds(outs))
	}

	// A new session with the flag: local, read-only, this server's id in
	// the high byte, not in the replicated session table.
	outs := c.direct(id, func(n *Node) { n.Connect(roConnect(2, 0, nil, c.now)) })
	require.Equal(t, []OutputKind{OutConnect}, kinds(outs))
	resp := outs[0].Connect
	require.True(t, resp.HasReadOnly)
	require.True(t, resp.ReadOnly)
	require.EqualValues(t, 1000, resp.TimeOut)
	require.Len(t, resp.Passwd, 16)
	local := resp.SessionID
	require.NotZero(t, local)
	require.Equal(t, id, local>>56, "the server id in the high byte, as for global sessions")
	require.NotContains(t, n.SessionIDs(), local)
	require.Equal(t, sessions, n.SessionIDs(), "the replicated session table is untouched")
	require.Equal(t, 1, n.LocalSessionCount())

	call := func(xid int32, op proto.OpCode, body proto.Record) Output {
		t.Helper()
		outs := c.direct(id, func(n *Node) { n.Submit(Request{Conn: 2, Xid: xid, Op: op, Body: body, Time: c.now}) })
		require.Len(t, outs, 1, "one reply to xid %d, and the connection stays open", xid)
		require.Equal(t, OutReply, outs[0].Kind)
		require.Equal(t, xid, outs[0].Header.Xid)
		if op != proto.OpAuth { // auth replies carry zxid 0
			require.Equal(t, zxid, outs[0].Header.Zxid, "replies carry the last applied zxid")
		}
		return outs[0]
	}

	o := call(1, proto.OpGetData, &proto.GetDataRequest{Path: "/a", Watch: true})
	require.Equal(t, proto.ErrOK, o.Header.Err)
	require.Equal(t, []byte("x"), o.Body.(*proto.GetDataResponse).Data, "the data written before the partition")
	o = call(2, proto.OpGetChildren2, &proto.GetChildren2Request{Path: "/"})
	require.ElementsMatch(t, []string{"a", "zookeeper"}, o.Body.(*proto.GetChildren2Response).Children)
	require.Equal(t, proto.ErrOK, call(3, proto.OpExists, &proto.ExistsRequest{Path: "/a"}).Header.Err)
	require.Equal(t, proto.ErrNoNode, call(4, proto.OpExists, &proto.ExistsRequest{Path: "/none", Watch: true}).Header.Err)
	require.Equal(t, proto.ErrOK, call(5, proto.OpGetACL, &proto.GetACLRequest{Path: "/a"}).Header.Err)
	require.Equal(t, proto.ErrOK, call(6, proto.OpGetAllChildrenNumber, &proto.GetAllChildrenNumberRequest{Path: "/"}).Header.Err)
	require.Equal(t, proto.ErrOK, call(7, proto.OpGetEphemerals, &proto.GetEphemeralsRequest{PrefixPath: "/"}).Header.Err)
	require.Equal(t, proto.ErrOK, call(8, proto.OpWhoAmI, &proto.EmptyRecord{}).Header.Err)
	require.Equal(t, proto.ErrOK, call(9, proto.OpAddWatch, &proto.AddWatchRequest{Path: "/a", Mode: 1}).Header.Err)
	require.Equal(t, proto.ErrOK, call(10, proto.OpCheckWatches, &proto.CheckWatchesRequest{Path: "/a", Type: 2}).Header.Err)
	require.Equal(t, proto.ErrOK, call(11, proto.OpMultiRead, &proto.MultiRequest{Ops: []proto.MultiOp{
		{Type: proto.OpGetData, Req: &proto.GetDataRequest{Path: "/a"}}}}).Header.Err)
	require.Equal(t, proto.ErrOK, call(12, proto.OpAuth, &proto.AuthPacket{Scheme: "digest", Auth: []byte("u:p")}).Header.Err)
	require.Equal(t, proto.ErrOK, call(proto.XidPing, proto.OpPing, &proto.EmptyRecord{}).Header.Err)

	// Every write, and sync, is refused with NotReadOnly; the connection
	// stays usable.
	writes := []struct {
		op   proto.OpCode
		body proto.Record
	}{
		{proto.OpCreate, &proto.CreateRequest{Path: "/b", ACL: proto.OpenACLUnsafe}},
		{proto.OpCreate2, &proto.CreateRequest{Path: "/b", ACL: proto.OpenACLUnsafe}},
		{proto.OpCreateContainer, &proto.CreateRequest{Path: "/b", ACL: proto.OpenACLUnsafe, Flags: proto.ModeContainer}},
		{proto.OpCreateTTL, &proto.CreateTTLRequest{Path: "/b", ACL: proto.OpenACLUnsafe, Flags: proto.ModePersistentWithTTL, TTL: 1000}},
		{proto.OpDelete, &proto.DeleteRequest{Path: "/a", Version: -1}},
		{proto.OpDeleteContainer, &proto.DeleteContainerRequest{Path: "/a"}},
		{proto.OpSetData, &proto.SetDataRequest{Path: "/a", Data: []byte("y"), Version: -1}},
		{proto.OpSetACL, &proto.SetACLRequest{Path: "/a", ACL: proto.OpenACLUnsafe, Version: -1}},
		{proto.OpMulti, &proto.MultiRequest{Ops: []proto.MultiOp{{Type: proto.OpCheck, Req: &proto.CheckVersionRequest{Path: "/a", Version: 0}}}}},
		{proto.OpCheck, &proto.CheckVersionRequest{Path: "/a", Version: 0}},
		{proto.OpSync, &proto.SyncRequest{Path: "/"}},
		{proto.OpReconfig, &proto.ReconfigRequest{CurConfigID: -1}},
	}
	for i, w := range writes {
		o := call(int32(100+i), w.op, w.body)
		require.Equal(t, proto.ErrNotReadOnly, o.Header.Err, "%v", w.op)
		require.Nil(t, o.Body)
		o = call(int32(200+i), proto.OpGetData, &proto.GetDataRequest{Path: "/a"})
		require.Equal(t, []byte("x"), o.Body.(*proto.GetDataResponse).Data, "still usable after a refused %v", w.op)
	}
	require.Equal(t, zxid, n.LastZxid())
	require.Equal(t, digest, n.Tree().Digest(), "read-only mode leaves the tree as it was")
	require.Equal(t, sessions, n.SessionIDs())

	// closeSession closes the local session, without a txn.
	outs = c.direct(id, func(n *Node) {
		n.Submit(Request{Conn: 2, Xid: 300, Op: proto.OpCloseSession, Body: &proto.EmptyRecord{}, Time: c.now})
	})
	require.Equal(t, []OutputKind{OutReply, OutClose}, kinds(outs))
	require.Equal(t, proto.ErrOK, outs[0].Header.Err)
	require.Zero(t, n.LocalSessionCount())
	require.Equal(t, sessions, n.SessionIDs())
}

// TestReadOnlyRefusesGlobalSessionRenewal: as ZooKeeper 3.7+ does
// (ZOOKEEPER-3864), a global session is not renewed on a read-only server:
// the handshake is closed unanswered and the client looks elsewhere.
func TestReadOnlyRefusesGlobalSessionRenewal(t *testing.T) {
	c, id, sid, passwd := readOnlyCluster(t)
	enterReadOnly(t, c, id)
	outs := c.direct(id, func(n *Node) { n.Connect(roConnect(3, sid, passwd, c.now)) })
	require.Equal(t, []OutputKind{OutClose}, kinds(outs))
	require.Contains(t, c.nodes[id].SessionIDs(), sid, "the global session itself is untouched")
	require.Zero(t, c.nodes[id].LocalSessionCount())
}

// TestReadOnlyLocalSessionRenewalAndExpiry: a local session can be renewed
// on its server with its password until it expires; a wrong password or an
// unknown id is told the session expired, with readOnly set.
func TestReadOnlyLocalSessionRenewalAndExpiry(t *testing.T) {
	c, id, _, _ := readOnlyCluster(t)
	n := c.nodes[id]
	enterReadOnly(t, c, id)
	outs := c.direct(id, func(n *Node) { n.Connect(roConnect(2, 0, nil, c.now)) })
	local, passwd := outs[0].Connect.SessionID, outs[0].Connect.Passwd

	// Wrong password, unknown id: the expired answer, then close.
	bad := append([]byte(nil), passwd...)
	bad[0] ^= 1
	for i, req := range []ConnectRequest{roConnect(3, local, bad, c.now), roConnect(4, local+1000, passwd, c.now)} {
		outs := c.direct(id, func(n *Node) { n.Connect(req) })
		require.Equal(t, []OutputKind{OutConnect, OutClose}, kinds(outs), "case %d", i)
		require.Zero(t, outs[0].Connect.SessionID)
		require.Zero(t, outs[0].Connect.TimeOut)
		require.True(t, outs[0].Connect.ReadOnly)
	}

	// Renewal on a new connection takes the session from the old one.
	outs = c.direct(id, func(n *Node) { n.Connect(roConnect(5, local, passwd, c.now)) })
	require.Equal(t, []OutputKind{OutClose, OutConnect}, kinds(outs))
	require.Equal(t, ConnID(2), outs[0].Conn, "the old connection closes")
	require.Equal(t, local, outs[1].Connect.SessionID)
	require.True(t, outs[1].Connect.ReadOnly)

	// Pings keep it alive past its timeout (1000 ms = 10 ticks).
	for i := 0; i < 15; i++ {
		c.tick()
		o := c.direct(id, func(n *Node) {
			n.Submit(Request{Conn: 5, Xid: proto.XidPing, Op: proto.OpPing, Body: &proto.EmptyRecord{}, Time: c.now})
		})
		require.Equal(t, []OutputKind{OutReply}, kinds(o))
	}
	// A silent session expires and its connection closes.
	closed := false
	for i := 0; i < 15 && n.LocalSessionCount() > 0; i++ {
		c.tick()
	}
	for _, o := range c.take(id, 5) {
		closed = closed || o.Kind == OutClose
	}
	require.Zero(t, n.LocalSessionCount())
	require.True(t, closed)
	outs = c.direct(id, func(n *Node) { n.Connect(roConnect(6, local, passwd, c.now)) })
	require.Equal(t, []OutputKind{OutConnect, OutClose}, kinds(outs), "an expired local session cannot be renewed")

	// A session left without a connection expires too.
	outs = c.direct(id, func(n *Node) { n.Connect(roConnect(7, 0, nil, c.now)) })
	require.Equal(t, 1, n.LocalSessionCount())
	c.direct(id, func(n *Node) { n.Disconnect(7) })
	for i := 0; i < 15 && n.LocalSessionCount() > 0; i++ {
		c.tick()
	}
	require.Zero(t, n.LocalSessionCount())
	require.NotEqual(t, local, outs[0].Connect.SessionID, "ids are not reused")
}

// TestReadOnlyEndsWhenQuorumReturns: the election's end closes every
// read-only connection and drops the local sessions; the server then syncs
// and serves read-write clients, and its state matches the others'. If the
// quorum goes again, it is read-only again after the grace period.
func TestReadOnlyEndsWhenQuorumReturns(t *testing.T) {
	c, id, _, _ := readOnlyCluster(t)
	n := c.nodes[id]
	enterReadOnly(t, c, id)
	outs := c.direct(id, func(n *Node) { n.Connect(roConnect(2, 0, nil, c.now)) })
	local := outs[0].Connect.SessionID
	o := c.direct(id, func(n *Node) {
		n.Submit(Request{Conn: 2, Xid: 1, Op: proto.OpGetData, Body: &proto.GetDataRequest{Path: "/a", Watch: true}, Time: c.now})
	})
	require.Equal(t, proto.ErrOK, o[0].Header.Err)

	for _, other := range c.ids() {
		if other != id {
			c.start(other, c.ids())
		}
	}
	c.settle()
	require.NotEqual(t, zab.Looking, n.Status().Role)
	require.False(t, n.ReadOnly())
	require.Zero(t, n.LocalSessionCount())
	require.Contains(t, kinds(c.take(id, 2)), OutClose, "the read-only connection is closed")
	leader := c.waitLeader()
	require.True(t, n.Serving())

	// Read-write service; the local id is unknown to the ensemble.
	sid := c.connect(id, 3)
	require.NotEqual(t, local, sid)
	o2 := c.call(id, 3, 1, proto.OpSetData, &proto.SetDataRequest{Path: "/a", Data: []byte("y"), Version: -1})
	require.Equal(t, proto.ErrOK, o2.Header.Err)
	for _, other := range c.ids() {
		require.NotContains(t, c.nodes[other].SessionIDs(), local)
		require.Equal(t, c.nodes[leader].Tree().Digest(), c.nodes[other].Tree().Digest())
	}
	n.Connect(ConnectRequest{Conn: 4, Time: c.now, Req: &proto.ConnectRequest{TimeOut: 1000, SessionID: local, Passwd: make([]byte, 16)}})
	c.settle()
	outs = c.take(id, 4)
	require.Equal(t, []OutputKind{OutConnect, OutClose}, kinds(outs))
	require.Zero(t, outs[0].Connect.SessionID, "a local session is expired for the read-write ensemble")

	// The quorum goes again: connections close as always, then read-only
	// mode comes back after the grace period.
	c.isolate(id)
	require.False(t, n.ReadOnly())
	require.Contains(t, kinds(c.take(id, 3)), OutClose)
	enterReadOnly(t, c, id)
	outs = c.direct(id, func(n *Node) { n.Connect(roConnect(5, 0, nil, c.now)) })
	require.True(t, outs[0].Connect.ReadOnly)
	o = c.direct(id, func(n *Node) {
		n.Submit(Request{Conn: 5, Xid: 1, Op: proto.OpGetData, Body: &proto.GetDataRequest{Path: "/a"}, Time: c.now})
	})
	require.Equal(t, []byte("y"), o[0].Body.(*proto.GetDataResponse).Data)
}

// TestReadOnlyModeOff: without ReadOnlyMode nothing changes: a looking
// server refuses every client, read-only ones included.
func TestReadOnlyModeOff(t *testing.T) {
	c := newCluster(t, 3)
	c.waitLeader()
	c.isolate(1)
	for i := 0; i < 40; i++ {
		c.tick()
	}
	require.False(t, c.nodes[1].ReadOnly())
	outs := c.direct(1, func(n *Node) { n.Connect(roConnect(2, 0, nil, c.now)) })
	require.Equal(t, []OutputKind{OutClose}, kinds(outs))
}

// TestReadOnlyNeverOnStandalone: a standalone server always serves.
func TestReadOnlyNeverOnStandalone(t *testing.T) {
	cfg := testConfig()
	cfg.ReadOnlyMode = true
	n, err := Restore(cfg, Durable{})
	require.NoError(t, err)
	for i := int64(0); i < 50; i++ {
		n.Tick(1_700_000_000_000 + 100*i)
	}
	require.True(t, n.Serving())
	require.False(t, n.ReadOnly())
}

// TestReadOnlyRejectsWhatZooKeeperRejects pins the opcode list to ZooKeeper
// 3.8's ReadOnlyRequestProcessor.
func TestReadOnlyRejectsWhatZooKeeperRejects(t *testing.T) {
	rejected := map[proto.OpCode]bool{
		proto.OpSync: true, proto.OpCreate: true, proto.OpCreate2: true, proto.OpCreateTTL: true,
		proto.OpCreateContainer: true, proto.OpDelete: true, proto.OpDeleteContainer: true,
		proto.OpSetData: true, proto.OpReconfig: true, proto.OpSetACL: true, proto.OpMulti: true,
		proto.OpCheck: true,
	}
	for op := proto.OpCode(-11); op <= 110; op++ {
		require.Equal(t, rejected[op], rejectedReadOnly(op), "%v", op)
	}
}
