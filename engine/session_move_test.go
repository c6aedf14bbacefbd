package engine

import (
	"bytes"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
)

// Sessions moving between servers: the owner is replicated by txns
// (createSession, moveSession), the leader refuses writes forwarded by a
// server that no longer owns the session (SessionMoved error txns), and a
// server that loses a session closes its connection of it.

// open starts a new session on server id and returns the handshake reply.
func (c *cluster) open(id int64, conn ConnID) *proto.ConnectResponse {
	c.t.Helper()
	c.nodes[id].Connect(ConnectRequest{Conn: conn, Req: &proto.ConnectRequest{TimeOut: 1000, Passwd: make([]byte, 16)}, Time: c.now})
	c.settle()
	outs := c.take(id, conn)
	require.Len(c.t, outs, 1, "handshake on server %d", id)
	require.Equal(c.t, OutConnect, outs[0].Kind)
	require.NotZero(c.t, outs[0].Connect.SessionID)
	return outs[0].Connect
}

// reconnect resumes a session on server id over a new connection and
// returns every output for that connection once the cluster settled.
func (c *cluster) reconnect(id int64, conn ConnID, r *proto.ConnectResponse, lastZxid int64) []Output {
	c.t.Helper()
	c.nodes[id].Connect(ConnectRequest{Conn: conn, Time: c.now, Req: &proto.ConnectRequest{
		TimeOut: 1500, SessionID: r.SessionID, Passwd: r.Passwd, LastZxidSeen: lastZxid}})
	c.settle()
	return c.take(id, conn)
}

// followers returns two servers that do not lead.
func (c *cluster) followers(leader int64) (int64, int64) {
	var fs []int64
	for _, id := range c.ids() {
		if id != leader {
			fs = append(fs, id)
		}
	}
	return fs[0], fs[1]
}

func (c *cluster) owners(sid int64) map[int64]int64 {
	m := map[int64]int64{}
	for _, id := range c.ids() {
		if s := c.nodes[id].sessions[sid]; s != nil {
			m[id] = s.owner
		}
	}
	return m
}

// logged decodes the txns server id logged after zxid.
func (c *cluster) logged(id, after int64) []*tree.Txn {
	c.t.Helper()
	var txns []*tree.Txn
	for _, e := range c.disk[id].log {
		if e.Zxid > after {
			txn, err := tree.UnmarshalTxn(e.Data)
			require.NoError(c.t, err)
			txns = append(txns, txn)
		}
	}
	return txns
}

func requireClosed(t *testing.T, outs []Output, what string) {
	t.Helper()
	require.NotEmpty(t, outs, what)
	for _, o := range outs[:len(outs)-1] {
		require.NotEqual(t, OutReply, o.Kind, "%s: no reply before the close: %+v", what, o)
	}
	require.Equal(t, OutClose, outs[len(outs)-1].Kind, what)
}

func TestClusterSessionMovesToAnotherServer(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.waitLeader()
	a, b := c.followers(leader)
	r := c.open(a, 1)
	sid := r.SessionID
	require.Equal(t, map[int64]int64{1: a, 2: a, 3: a}, c.owners(sid), "the creating server owns a new session everywhere")
	o := c.call(a, 1, 1, proto.OpCreate, &proto.CreateRequest{Path: "/e", ACL: proto.OpenACLUnsafe, Flags: proto.ModeEphemeral})
	require.Equal(t, proto.ErrOK, o.Header.Err)
	seen := o.Header.Zxid

	// The client has seen a zxid b has not applied: b refuses it without
	// a move (the lastZxidSeen check runs first).
	outs := c.reconnect(b, 2, r, seen+100)
	require.Len(t, outs, 1)
	require.Equal(t, OutClose, outs[0].Kind)
	require.Equal(t, seen, c.nodes[leader].LastZxid(), "no txn for a refused client")
	require.Empty(t, c.take(a, 1), "a keeps the session")

	// Reconnecting on b moves the session: one moveSession txn, then the
	// handshake reply; a closes its connection of the session.
	outs = c.reconnect(b, 3, r, seen)
	require.Len(t, outs, 1)
	require.Equal(t, OutConnect, outs[0].Kind)
	require.Equal(t, sid, outs[0].Connect.SessionID)
	require.Equal(t, r.Passwd, outs[0].Connect.Passwd)
	require.EqualValues(t, 1500, outs[0].Connect.TimeOut)
	moves := c.logged(leader, seen)
	require.Len(t, moves, 1)
	require.Equal(t, tree.OpMoveSession, moves[0].Type)
	require.Equal(t, b, moves[0].Owner)
	require.EqualValues(t, 1500, moves[0].TimeOut)
	require.Equal(t, map[int64]int64{1: b, 2: b, 3: b}, c.owners(sid))
	for _, id := range c.ids() {
		require.EqualValues(t, 1500, c.nodes[id].sessions[sid].timeout, "server %d", id)
	}
	closed := c.take(a, 1)
	requireClosed(t, closed, "a's connection of the moved session")
	require.Contains(t, closed[len(closed)-1].Reason, "moved to server")
	require.Zero(t, c.nodes[a].SessionOf(1))

	// The session lives on at b with its ephemeral.
	o = c.call(b, 3, 2, proto.OpSetData, &proto.SetDataRequest{Path: "/e", Data: []byte("b"), Version: -1})
	require.Equal(t, proto.ErrOK, o.Header.Err)
	for _, id := range c.ids() {
		require.Equal(t, []string{"/e"}, c.nodes[id].Tree().Ephemerals(sid), "server %d", id)
	}

	// Reconnecting on a follower that owns the session still asks the
	// leader (only it knows whether the session lives): a moveSession to
	// the same owner. The older connection closes.
	z := c.nodes[leader].LastZxid()
	outs = c.reconnect(b, 4, r, 0)
	require.Len(t, outs, 1)
	require.Equal(t, OutConnect, outs[0].Kind)
	moves = c.logged(leader, z)
	require.Len(t, moves, 1)
	require.Equal(t, tree.OpMoveSession, moves[0].Type)
	require.Equal(t, b, moves[0].Owner)
	requireClosed(t, c.take(b, 3), "b's older connection")

	// And back to a, then to the leader: each move closes the previous.
	outs = c.reconnect(a, 5, r, 0)
	require.Equal(t, OutConnect, outs[0].Kind)
	requireClosed(t, c.take(b, 4), "b's connection after the move back to a")
	outs = c.reconnect(leader, 6, r, 0)
	require.Equal(t, OutConnect, outs[0].Kind)
	requireClosed(t, c.take(a, 5), "a's connection after the move to the leader")
	require.Equal(t, map[int64]int64{1: leader, 2: leader, 3: leader}, c.owners(sid))
	o = c.call(leader, 6, 3, proto.OpDelete, &proto.DeleteRequest{Path: "/e", Version: -1})
	require.Equal(t, proto.ErrOK, o.Header.Err)

	// The leader decides alone for a session it owns: no txn.
	z = c.nodes[leader].LastZxid()
	outs = c.reconnect(leader, 7, r, 0)
	require.Len(t, outs, 1)
	require.Equal(t, OutConnect, outs[0].Kind)
	require.Equal(t, z, c.nodes[leader].LastZxid())
	requireClosed(t, c.take(leader, 6), "the leader's older connection")
}

// TestClusterReconnectToLaggingOwnerAfterExpiry: the session expired (its
// closeSession committed) while its owner lagged behind. A reconnect there
// must not be accepted from the lagging table: the owner asks the leader,
// which proposes no move for a closed session, and the handshake is refused
// once the close applies there.
func TestClusterReconnectToLaggingOwnerAfterExpiry(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.waitLeader()
	a, _ := c.followers(leader)
	r := c.open(a, 1)
	c.nodes[a].Disconnect(1)
	c.settle()
	// a's disk stalls: it stays in touch with the leader but applies
	// nothing new.
	c.slow[a] = true
	for i := 0; i < 30 && slices.Contains(c.nodes[leader].SessionIDs(), r.SessionID); i++ {
		c.tick()
	}
	require.NotContains(t, c.nodes[leader].SessionIDs(), r.SessionID, "the leader expired the session")
	require.Contains(t, c.nodes[a].SessionIDs(), r.SessionID, "a has not applied the expiry")
	outs := c.reconnect(a, 2, r, 0)
	require.Empty(t, outs, "a waits for the leader")
	c.slow[a] = false
	c.flush(a)
	outs = c.take(a, 2)
	require.Len(t, outs, 2)
	require.Equal(t, OutConnect, outs[0].Kind)
	require.Zero(t, outs[0].Connect.SessionID, "the session expired")
	require.Equal(t, OutClose, outs[1].Kind)
}

// TestClusterStaleServerWriteIsSessionMoved: a's connection still holds the
// session when it moved to b, because a has not heard of the move yet. The
// writes and the closeSession a forwards reach the leader after the move:
// they become SessionMoved error txns, nothing changes, the session lives
// on at b, and a closes its connection without a reply.
func TestClusterStaleServerWriteIsSessionMoved(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.waitLeader()
	a, b := c.followers(leader)
	r := c.open(a, 1)
	sid := r.SessionID
	o := c.call(a, 1, 1, proto.OpCreate, &proto.CreateRequest{Path: "/n", ACL: proto.OpenACLUnsafe})
	require.Equal(t, proto.ErrOK, o.Header.Err)

	c.hold(a)
	outs := c.reconnect(b, 2, r, 0)
	require.Len(t, outs, 1, "the leader and b are a quorum")
	require.Equal(t, OutConnect, outs[0].Kind)
	require.Equal(t, a, c.nodes[a].sessions[sid].owner, "a has not applied the move")
	before := c.nodes[leader].LastZxid()

	c.nodes[a].Submit(Request{Conn: 1, Xid: 2, Op: proto.OpSetData, Time: c.now,
		Body: &proto.SetDataRequest{Path: "/n", Data: []byte("stale"), Version: -1}})
	c.nodes[a].Submit(Request{Conn: 1, Xid: 3, Op: proto.OpCreate, Time: c.now,
		Body: &proto.CreateRequest{Path: "/stale", ACL: proto.OpenACLUnsafe}})
	c.nodes[a].Submit(Request{Conn: 1, Xid: 4, Op: proto.OpSync, Time: c.now, Body: &proto.SyncRequest{Path: "/"}})
	c.nodes[a].Submit(Request{Conn: 1, Xid: 5, Op: proto.OpCloseSession, Time: c.now, Body: &proto.EmptyRecord{}})
	c.settle()
	require.Empty(t, c.take(a, 1), "nothing is answered before a applies the leader's verdicts")

	// The sync makes no txn (answered by SYNC, unchecked, as in
	// ZooKeeper): three verdicts.
	errs := c.logged(leader, before)
	require.Len(t, errs, 3)
	for i, txn := range errs {
		require.Equal(t, proto.OpError, txn.Type, "txn %d", i)
		require.Equal(t, proto.ErrSessionMoved, txn.Err, "txn %d", i)
		require.Equal(t, sid, txn.SessionID)
		require.Equal(t, []int32{2, 3, 5}[i], txn.Cxid)
	}

	c.release(a)
	requireClosed(t, c.take(a, 1), "a's stale connection")
	for _, id := range c.ids() {
		n := c.nodes[id]
		require.Contains(t, n.SessionIDs(), sid, "a stale closeSession does not close the moved session (server %d)", id)
		rd, code := n.Tree().Read(tree.Caller{}, 0, proto.OpGetData, &proto.GetDataRequest{Path: "/n"})
		require.Equal(t, proto.ErrOK, code)
		require.Empty(t, rd.(*proto.GetDataResponse).Data, "server %d: the stale setData was not applied", id)
		_, code = n.Tree().Read(tree.Caller{}, 0, proto.OpExists, &proto.ExistsRequest{Path: "/stale"})
		require.Equal(t, proto.ErrNoNode, code, "server %d: the stale create was not applied", id)
		require.Equal(t, c.nodes[leader].Tree().Digest(), n.Tree().Digest())
	}
	o = c.call(b, 2, 1, proto.OpCreate, &proto.CreateRequest{Path: "/fresh", ACL: proto.OpenACLUnsafe})
	require.Equal(t, proto.ErrOK, o.Header.Err, "the session works at b")
}

// TestClusterMoveOfClosingSessionIsRefused: the client reconnects on b
// while its closeSession (sent through a) is already committed but not yet
// applied on b. The leader proposes no move; b refuses the handshake when it
// applies the close.
func TestClusterMoveOfClosingSessionIsRefused(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.waitLeader()
	a, b := c.followers(leader)
	r := c.open(a, 1)
	c.hold(b)
	o := c.call(a, 1, 1, proto.OpCloseSession, &proto.EmptyRecord{})
	require.Equal(t, proto.ErrOK, o.Header.Err)
	require.Contains(t, c.nodes[b].SessionIDs(), r.SessionID, "b has not applied the close")
	before := c.nodes[leader].LastZxid()
	outs := c.reconnect(b, 2, r, 0)
	require.Empty(t, outs, "b waits for the leader")
	require.Equal(t, before, c.nodes[leader].LastZxid(), "no move for a closing session")
	c.release(b)
	outs = c.take(b, 2)
	require.Len(t, outs, 2)
	require.Equal(t, OutConnect, outs[0].Kind)
	require.Zero(t, outs[0].Connect.SessionID, "the session expired")
	require.Zero(t, outs[0].Connect.TimeOut)
	require.Equal(t, OutClose, outs[1].Kind)
}

// TestSessionOwnerUnknownAfterSnapshot: the snapshot format has no owner,
// so a session restored from one has owner 0 (unknown): the first
// reconnect moves it to its server by txn.
func TestSessionOwnerUnknownAfterSnapshot(t *testing.T) {
	h := newHarness(t)
	h.n.Connect(ConnectRequest{Conn: 1, Req: &proto.ConnectRequest{TimeOut: 1000, Passwd: make([]byte, 16)}, Time: h.now})
	h.persistAll()
	r := h.take(1)[0].Connect
	require.Equal(t, int64(1), h.n.sessions[r.SessionID].owner)

	zxid, write := h.n.Snapshot()
	var buf bytes.Buffer
	require.NoError(t, write(&buf))
	hs := zab.HardState{AcceptedEpoch: zab.Epoch(zxid), CurrentEpoch: zab.Epoch(zxid)}
	n, err := Restore(testConfig(), Durable{HardState: hs, SnapshotZxid: zxid, Snapshot: buf.Bytes()})
	require.NoError(t, err)
	h = &harness{t: t, now: h.now, n: n}
	h.collect()
	require.Zero(t, n.sessions[r.SessionID].owner, "unknown after a restart from a snapshot")

	n.Connect(ConnectRequest{Conn: 2, Time: h.now, Req: &proto.ConnectRequest{TimeOut: 1000, SessionID: r.SessionID, Passwd: r.Passwd}})
	h.collect()
	require.Empty(t, h.take(2), "the handshake waits for the moveSession txn")
	require.Len(t, h.log, 1)
	h.persistAll()
	outs := h.take(2)
	require.Len(t, outs, 1)
	require.Equal(t, r.SessionID, outs[0].Connect.SessionID)
	require.Equal(t, int64(1), n.sessions[r.SessionID].owner)
}

// TestSessionMovedErrorClosesWithoutReply: a SessionMoved error txn for a
// connection that still holds the session closes it in the request's turn
// without a reply, as ZooKeeper does. (A moveSession closes such a
// connection first; here the owner is forged to reach this path.)
func TestSessionMovedErrorClosesWithoutReply(t *testing.T) {
	h := newHarness(t)
	sid := h.connect(1, 1000)
	h.submit(1, 1, proto.OpCreate, &proto.CreateRequest{Path: "/a", ACL: proto.OpenACLUnsafe})
	h.n.sessions[sid].owner = 7
	h.submit(1, 2, proto.OpSetData, &proto.SetDataRequest{Path: "/a", Data: []byte("x"), Version: -1})
	h.submit(1, 3, proto.OpExists, &proto.ExistsRequest{Path: "/a"})
	h.persistAll()
	outs := h.take(1)
	require.Len(t, outs, 2)
	require.Equal(t, OutReply, outs[0].Kind)
	require.Equal(t, int32(1), outs[0].Header.Xid, "the earlier write is answered")
	require.Equal(t, OutClose, outs[1].Kind, "then the connection closes without a reply to xid 2")
	txn, err := tree.UnmarshalTxn(h.log[len(h.log)-1].Data)
	require.NoError(t, err)
	require.Equal(t, proto.OpError, txn.Type)
	require.Equal(t, proto.ErrSessionMoved, txn.Err)
}

// TestClusterLeaderJudgesSessionsByProposals: the leader applies a txn
// only once its own disk has it, so followers whose acks made the quorum
// may serve a session, or a move of it, before the leader applied it. The
// leader must judge requests by what it proposed: a write on a session
// whose createSession it has not applied is no SessionExpired, and a write
// from the old owner after a move it has not applied is SessionMoved.
func TestClusterLeaderJudgesSessionsByProposals(t *testing.T) {
	// Five servers: with the leader's disk slow and a held, b and the two
	// others are a quorum.
	c := newCluster(t, 5)
	leader := c.waitLeader()
	a, b := c.followers(leader)
	c.slow[leader] = true
	r := c.open(a, 1)
	require.NotContains(t, c.nodes[leader].SessionIDs(), r.SessionID, "the leader has not applied the createSession")
	o := c.call(a, 1, 1, proto.OpCreate, &proto.CreateRequest{Path: "/n", ACL: proto.OpenACLUnsafe})
	require.Equal(t, proto.ErrOK, o.Header.Err, "a new session's first write")

	c.hold(a)
	outs := c.reconnect(b, 2, r, 0)
	require.Len(t, outs, 1)
	require.Equal(t, OutConnect, outs[0].Kind, "b applied the move")
	require.NotContains(t, c.nodes[leader].SessionIDs(), r.SessionID, "the leader has applied neither the createSession nor the move")
	log := c.disk[leader].log
	before := log[len(log)-1].Zxid
	c.nodes[a].Submit(Request{Conn: 1, Xid: 2, Op: proto.OpCreate, Time: c.now,
		Body: &proto.CreateRequest{Path: "/stale", ACL: proto.OpenACLUnsafe}})
	c.settle()
	txns := c.logged(leader, before)
	require.Len(t, txns, 1)
	require.Equal(t, proto.OpError, txns[0].Type)
	require.Equal(t, proto.ErrSessionMoved, txns[0].Err)

	c.slow[leader] = false
	c.flush(leader)
	c.release(a)
	requireClosed(t, c.take(a, 1), "a's stale connection")
	for _, id := range c.ids() {
		_, code := c.nodes[id].Tree().Read(tree.Caller{}, 0, proto.OpExists, &proto.ExistsRequest{Path: "/stale"})
		require.Equal(t, proto.ErrNoNode, code, "server %d", id)
		require.Equal(t, b, c.owners(r.SessionID)[id], "server %d", id)
	}
}
