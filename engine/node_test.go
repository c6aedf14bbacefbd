package engine

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
)

// harness drives a single Node the way the server does, with a log that
// persists when told to, so tests can hold writes un-fsynced.
type harness struct {
	t    *testing.T
	n    *Node
	now  int64
	log  []Entry
	outs []Output
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	n, err := Restore(testConfig(), Durable{})
	require.NoError(t, err)
	h := &harness{t: t, now: 1_700_000_000_000, n: n}
	h.collect()
	require.True(t, n.Serving(), "a standalone server elects itself at once")
	return h
}

func testConfig() Config {
	return Config{
		ServerID: 1, TickMs: 100, MinSessionTimeout: 200, MaxSessionTimeout: 2000,
		SessionSecret: []byte("test-secret"), StartTime: 1_700_000_000_000,
	}
}

// collect moves the Node's Ready batches into the harness.
func (h *harness) collect() {
	for h.n.HasReady() {
		rd := h.n.Ready()
		h.log = append(h.log, rd.Entries...)
		h.outs = append(h.outs, rd.Outputs...)
		h.n.Advance()
	}
}

// persistAll reports every logged entry durable.
func (h *harness) persistAll() {
	h.collect()
	if len(h.log) > 0 {
		h.n.Persisted(h.log[len(h.log)-1].Zxid)
	}
	h.collect()
}

// take returns and forgets the outputs for one connection.
func (h *harness) take(c ConnID) []Output {
	var mine, rest []Output
	for _, o := range h.outs {
		if o.Conn == c {
			mine = append(mine, o)
		} else {
			rest = append(rest, o)
		}
	}
	h.outs = rest
	return mine
}

func (h *harness) connect(c ConnID, timeout int32) int64 {
	h.t.Helper()
	h.n.Connect(ConnectRequest{Conn: c, Req: &proto.ConnectRequest{TimeOut: timeout, Passwd: make([]byte, 16)}, ClientIP: "127.0.0.1", Time: h.now})
	h.collect()
	require.Empty(h.t, h.take(c), "a new session is answered only once its createSession commits")
	h.persistAll()
	outs := h.take(c)
	require.Len(h.t, outs, 1)
	require.Equal(h.t, OutConnect, outs[0].Kind)
	require.NotZero(h.t, outs[0].Connect.SessionID)
	return outs[0].Connect.SessionID
}

func (h *harness) submit(c ConnID, xid int32, op proto.OpCode, body proto.Record) {
	h.n.Submit(Request{Conn: c, Xid: xid, Op: op, Body: body, Time: h.now})
	h.collect()
}

func TestWriteRepliesOnlyAfterPersisted(t *testing.T) {
	h := newHarness(t)
	h.connect(1, 1000)
	h.submit(1, 1, proto.OpCreate, &proto.CreateRequest{Path: "/a", Data: []byte("x"), ACL: proto.OpenACLUnsafe})
	require.Empty(t, h.take(1), "no reply before the txn is durable")
	require.Len(t, h.log, 2, "createSession and create are logged")
	h.persistAll()
	outs := h.take(1)
	require.Len(t, outs, 1)
	require.Equal(t, proto.ErrOK, outs[0].Header.Err)
	require.Equal(t, &proto.CreateResponse{Path: "/a"}, outs[0].Body)
	require.Equal(t, h.log[1].Zxid, outs[0].Header.Zxid)
}

func TestReadWaitsForSessionsEarlierWrite(t *testing.T) {
	h := newHarness(t)
	h.connect(1, 1000)
	h.submit(1, 1, proto.OpCreate, &proto.CreateRequest{Path: "/a", ACL: proto.OpenACLUnsafe})
	h.submit(1, 2, proto.OpExists, &proto.ExistsRequest{Path: "/a"})
	require.Empty(t, h.take(1), "the read must not overtake the session's pending write")
	h.persistAll()
	outs := h.take(1)
	require.Len(t, outs, 2)
	require.Equal(t, int32(1), outs[0].Header.Xid)
	require.Equal(t, int32(2), outs[1].Header.Xid)
	require.Equal(t, proto.ErrOK, outs[1].Header.Err, "the read sees the write before it")
}

func TestErrorWaitsForEarlierProposals(t *testing.T) {
	h := newHarness(t)
	h.connect(1, 1000)
	h.connect(2, 1000)
	h.submit(1, 1, proto.OpCreate, &proto.CreateRequest{Path: "/a", ACL: proto.OpenACLUnsafe})
	// Session 2's create fails against the pending create of session 1; the
	// error must not be answered before that create commits.
	h.submit(2, 1, proto.OpCreate, &proto.CreateRequest{Path: "/a", ACL: proto.OpenACLUnsafe})
	require.Empty(t, h.take(2))
	h.persistAll()
	outs := h.take(2)
	require.Len(t, outs, 1)
	require.Equal(t, proto.ErrNodeExists, outs[0].Header.Err)
}

func TestWatchEventPrecedesReply(t *testing.T) {
	h := newHarness(t)
	h.connect(1, 1000)
	h.submit(1, 1, proto.OpCreate, &proto.CreateRequest{Path: "/a", ACL: proto.OpenACLUnsafe})
	h.persistAll()
	h.take(1)
	h.submit(1, 2, proto.OpGetData, &proto.GetDataRequest{Path: "/a", Watch: true})
	h.take(1)
	h.submit(1, 3, proto.OpSetData, &proto.SetDataRequest{Path: "/a", Data: []byte("y"), Version: -1})
	h.persistAll()
	outs := h.take(1)
	require.Len(t, outs, 2)
	require.Equal(t, OutEvent, outs[0].Kind)
	require.Equal(t, &proto.WatcherEvent{Type: proto.EventNodeDataChanged, State: proto.StateSyncConnected, Path: "/a"}, outs[0].Body)
	require.Equal(t, OutReply, outs[1].Kind)
	require.Equal(t, int32(3), outs[1].Header.Xid)
}

func TestSessionExpiryRemovesEphemeralsAndClosesConnection(t *testing.T) {
	h := newHarness(t)
	sid := h.connect(1, 200)
	h.connect(2, 2000)
	h.submit(1, 1, proto.OpCreate, &proto.CreateRequest{Path: "/e", ACL: proto.OpenACLUnsafe, Flags: proto.ModeEphemeral})
	h.persistAll()
	h.take(1)
	h.submit(2, 1, proto.OpExists, &proto.ExistsRequest{Path: "/e", Watch: true})
	outs := h.take(2)
	require.Len(t, outs, 1)
	require.Equal(t, sid, outs[0].Body.(*proto.ExistsResponse).Stat.EphemeralOwner)

	// Keep session 2 alive with pings; session 1 goes silent.
	for i := 0; i < 5; i++ {
		h.now += 100
		h.n.Tick(h.now)
		h.submit(2, int32(10+i), proto.OpPing, &proto.EmptyRecord{})
		h.persistAll()
	}
	var closed bool
	for _, o := range h.take(1) {
		closed = closed || o.Kind == OutClose
	}
	require.True(t, closed, "the expired session's connection is closed")
	var deleted bool
	for _, o := range h.take(2) {
		if ev, ok := o.Body.(*proto.WatcherEvent); ok && ev.Type == proto.EventNodeDeleted && ev.Path == "/e" {
			deleted = true
		}
	}
	require.True(t, deleted, "the watcher learns the ephemeral is gone")
	require.Equal(t, 1, h.n.SessionCount())
}

func TestReconnectWithWrongPasswordIsRefused(t *testing.T) {
	h := newHarness(t)
	sid := h.connect(1, 1000)
	bad := make([]byte, 16)
	h.n.Connect(ConnectRequest{Conn: 2, Req: &proto.ConnectRequest{TimeOut: 1000, SessionID: sid, Passwd: bad}, Time: h.now})
	h.collect()
	outs := h.take(2)
	require.Len(t, outs, 2)
	require.Equal(t, int32(0), outs[0].Connect.TimeOut)
	require.Equal(t, int64(0), outs[0].Connect.SessionID)
	require.Equal(t, OutClose, outs[1].Kind)
}

func TestClientAheadOfServerIsRefused(t *testing.T) {
	h := newHarness(t)
	h.n.Connect(ConnectRequest{Conn: 1, Req: &proto.ConnectRequest{TimeOut: 1000, LastZxidSeen: 99, Passwd: make([]byte, 16)}, Time: h.now})
	h.collect()
	outs := h.take(1)
	require.Len(t, outs, 1)
	require.Equal(t, OutClose, outs[0].Kind)
}

func TestSnapshotAndReplayRestoreState(t *testing.T) {
	h := newHarness(t)
	h.connect(1, 1000)
	h.submit(1, 1, proto.OpCreate, &proto.CreateRequest{Path: "/a", Data: []byte("1"), ACL: proto.OpenACLUnsafe})
	h.persistAll()
	zxid, write := h.n.Snapshot()
	var buf bytes.Buffer
	require.NoError(t, write(&buf))
	h.submit(1, 2, proto.OpSetData, &proto.SetDataRequest{Path: "/a", Data: []byte("2"), Version: -1})
	h.persistAll()

	var after []zab.Entry
	for _, e := range h.log {
		if e.Zxid > zxid {
			after = append(after, zab.Entry{Zxid: e.Zxid, Data: e.Data})
		}
	}
	restored, err := Restore(testConfig(), Durable{SnapshotZxid: zxid, Snapshot: buf.Bytes(), Log: after})
	require.NoError(t, err)
	require.Equal(t, h.n.LastZxid(), restored.LastZxid())
	require.Equal(t, h.n.Tree().Digest(), restored.Tree().Digest())
	require.Equal(t, 1, restored.SessionCount())
}

func TestInputBetweenReadyAndAdvanceIsKept(t *testing.T) {
	h := newHarness(t)
	h.n.Connect(ConnectRequest{Conn: 1, Req: &proto.ConnectRequest{TimeOut: 1000, Passwd: make([]byte, 16)}, Time: h.now})
	require.True(t, h.n.HasReady())
	rd := h.n.Ready()
	require.Len(t, rd.Entries, 1, "the createSession txn")
	// A second handshake arrives before the caller advances.
	h.n.Connect(ConnectRequest{Conn: 2, Req: &proto.ConnectRequest{TimeOut: 1000, Passwd: make([]byte, 16)}, Time: h.now})
	h.n.Advance()
	h.log = append(h.log, rd.Entries...)
	h.persistAll()
	require.Len(t, h.log, 2, "the second createSession survived Advance")
	require.Len(t, h.take(1), 1)
	require.Len(t, h.take(2), 1)
}

func TestRequestsAfterCloseSessionAnsweredInOrder(t *testing.T) {
	h := newHarness(t)
	h.connect(1, 1000)
	h.submit(1, 1, proto.OpCloseSession, &proto.EmptyRecord{})
	h.submit(1, 2, proto.OpExists, &proto.ExistsRequest{Path: "/"})
	h.persistAll()
	outs := h.take(1)
	require.GreaterOrEqual(t, len(outs), 2)
	require.Equal(t, int32(1), outs[0].Header.Xid, "the close reply comes first")
	require.Equal(t, proto.ErrOK, outs[0].Header.Err)
	require.Equal(t, OutClose, outs[len(outs)-1].Kind)
}

// Node.Role is what the server feeds the ZooKeeper transport after every
// Ready: the role and leader Status has, without Status's allocations on
// a leader.
func TestNodeRoleDoesNotAllocate(t *testing.T) {
	c := newCluster(t, 3)
	l := c.waitLeader()
	for _, id := range c.ids() {
		st := c.nodes[id].Status()
		role, leader := c.nodes[id].Role()
		require.Equal(t, st.Role, role)
		require.Equal(t, l, leader)
	}
	n := c.nodes[l]
	require.Positive(t, testing.AllocsPerRun(100, func() { _ = n.Status() }))
	require.Zero(t, testing.AllocsPerRun(100, func() { _, _ = n.Role() }))
}
