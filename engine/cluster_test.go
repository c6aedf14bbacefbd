package engine

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
)

// cluster runs several Nodes with instant, lossless delivery and disks that
// fsync at once: enough to test the request pipeline across servers. The
// simulator (package sim) covers faults.
type cluster struct {
	t     *testing.T
	nodes map[int64]*Node
	down  map[int64]bool
	disk  map[int64]*memDisk
	inbox []zab.Message
	outs  map[int64][]Output
	now   int64
	// configure, if set, adjusts each node's Config before it starts.
	configure func(*Config)
	// mangle, if set, may change each message before it is delivered.
	mangle func(*zab.Message)
	// linkCaps, if set, are the capabilities the transport stamps on the
	// FOLLOWERINFO and LEADERINFO between two servers; zab.AllCaps (two
	// zabkeeper servers) if nil.
	linkCaps func(a, b int64) zab.Caps
	// snapErrs are the SnapshotErrors of nodes that refused a SNAP.
	snapErrs []error
	// held servers receive nothing until released: their messages wait
	// in parked, in order, as on a slow link. What they send still goes.
	held   map[int64]bool
	parked []zab.Message
	// slow servers' disks fsync only when flushed.
	slow map[int64]bool
	// onConfig, if set, sees every Ready.Config.
	onConfig func(id int64, c ConfigChange)
}

// memDisk is what a node persisted.
type memDisk struct {
	hs   zab.HardState
	log  []zab.Entry
	snap *zab.SnapshotInstall
}

func clusterConfig(id int64, voters []int64) Config {
	cfg := testConfig()
	cfg.ServerID = id
	cfg.Voters = voters
	cfg.Seed = uint64(id)
	return cfg
}

func newCluster(t *testing.T, size int) *cluster { return newClusterWith(t, size, nil) }

// newClusterWith is newCluster with every node's Config adjusted by
// configure.
func newClusterWith(t *testing.T, size int, configure func(*Config)) *cluster {
	c := &cluster{t: t, nodes: map[int64]*Node{}, down: map[int64]bool{}, disk: map[int64]*memDisk{},
		outs: map[int64][]Output{}, now: 1_700_000_000_000, configure: configure, held: map[int64]bool{},
		slow: map[int64]bool{}}
	var voters []int64
	for i := 1; i <= size; i++ {
		voters = append(voters, int64(i))
	}
	for _, id := range voters {
		c.disk[id] = &memDisk{}
		c.start(id, voters)
	}
	return c
}

func (c *cluster) start(id int64, voters []int64) {
	d := c.disk[id]
	dur := Durable{HardState: d.hs, Log: slices.Clone(d.log)}
	if d.snap != nil {
		data, err := zab.ReadSnapshot(d.snap.Data)
		require.NoError(c.t, err)
		dur.SnapshotZxid, dur.Snapshot = d.snap.Zxid, data
		dur.Log = nil
		for _, e := range d.log {
			if e.Zxid > d.snap.Zxid {
				dur.Log = append(dur.Log, e)
			}
		}
	}
	cfg := clusterConfig(id, voters)
	if c.configure != nil {
		c.configure(&cfg)
	}
	n, err := Restore(cfg, dur)
	require.NoError(c.t, err)
	c.nodes[id] = n
	delete(c.down, id)
}

func (c *cluster) ids() []int64 {
	var ids []int64
	for id := range c.nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// settle handles every Ready and delivers every message until quiet.
func (c *cluster) settle() {
	for round := 0; round < 10000; round++ {
		busy := false
		for _, id := range c.ids() {
			n := c.nodes[id]
			if c.down[id] {
				continue
			}
			for n.HasReady() {
				busy = true
				rd := n.Ready()
				require.NoError(c.t, rd.Handle(clusterHandler{c, id}))
				n.Advance()
				if len(rd.Entries) > 0 && !c.slow[id] {
					n.Persisted(rd.Entries[len(rd.Entries)-1].Zxid)
				}
			}
		}
		msgs := c.inbox
		c.inbox = nil
		for _, m := range msgs {
			busy = true
			if c.down[m.To] || c.down[m.From] || c.nodes[m.To] == nil {
				continue
			}
			if m.Type == zab.MsgFollowerInfo || m.Type == zab.MsgLeaderInfo {
				m.Caps = zab.AllCaps
				if c.linkCaps != nil {
					m.Caps = c.linkCaps(m.From, m.To)
				}
			}
			if c.mangle != nil {
				c.mangle(&m)
			}
			if c.held[m.To] {
				c.parked = append(c.parked, m)
				continue
			}
			c.nodes[m.To].Step(m)
			if err := c.nodes[m.To].SnapshotError(); err != nil {
				c.snapErrs = append(c.snapErrs, err)
			}
		}
		if !busy {
			return
		}
	}
	c.t.Fatal("cluster did not settle")
}

// clusterHandler carries out a node's Ready obligations in memory: its
// disk, the cluster's inbox, its outputs. Entries are durable at once
// unless the node's disk is slow (Persisted is then the test's to call).
type clusterHandler struct {
	c  *cluster
	id int64
}

func (h clusterHandler) SaveHardState(hs zab.HardState) error {
	h.c.disk[h.id].hs = hs
	return nil
}

func (h clusterHandler) TruncateLog(after int64) error {
	d := h.c.disk[h.id]
	d.log = slices.DeleteFunc(d.log, func(e zab.Entry) bool { return e.Zxid > after })
	return nil
}

func (h clusterHandler) SaveSnapshot(snap *zab.SnapshotInstall) error {
	d := h.c.disk[h.id]
	d.log = slices.DeleteFunc(d.log, func(e zab.Entry) bool { return e.Zxid > snap.Zxid })
	d.snap = snap
	return nil
}

func (h clusterHandler) Send(msgs []zab.Message) { h.c.inbox = append(h.c.inbox, msgs...) }

func (h clusterHandler) AppendLog(entries []Entry) error {
	d := h.c.disk[h.id]
	for _, e := range entries {
		d.log = append(d.log, zab.Entry{Zxid: e.Zxid, Data: e.Data})
	}
	return nil
}

func (h clusterHandler) Deliver(outs []Output) { h.c.outs[h.id] = append(h.c.outs[h.id], outs...) }

func (h clusterHandler) ActivateConfig(c ConfigChange) error {
	if h.c.onConfig != nil {
		h.c.onConfig(h.id, c)
	}
	return nil
}

// hold stops delivering messages to server id until release.
func (c *cluster) hold(id int64) { c.held[id] = true }

// release delivers what server id missed, in order, and settles.
func (c *cluster) release(id int64) {
	delete(c.held, id)
	var keep []zab.Message
	for _, m := range c.parked {
		if m.To == id {
			c.inbox = append(c.inbox, m)
		} else {
			keep = append(keep, m)
		}
	}
	c.parked = keep
	c.settle()
}

// flush makes everything server id logged durable and settles.
func (c *cluster) flush(id int64) {
	if log := c.disk[id].log; len(log) > 0 {
		c.nodes[id].Persisted(log[len(log)-1].Zxid)
	}
	c.settle()
}

// tick ticks every live node once and settles.
func (c *cluster) tick() {
	c.now += 100
	for _, id := range c.ids() {
		if !c.down[id] {
			c.nodes[id].Tick(c.now)
		}
	}
	c.settle()
}

func (c *cluster) leader() int64 {
	for _, id := range c.ids() {
		st := c.nodes[id].Status()
		if !c.down[id] && st.Role == zab.Leading && st.Established {
			return id
		}
	}
	return 0
}

func (c *cluster) waitLeader() int64 {
	for i := 0; i < 200; i++ {
		if l := c.leader(); l != 0 {
			all := true
			for _, id := range c.ids() {
				all = all && (c.down[id] || c.nodes[id].Serving())
			}
			if all {
				return l
			}
		}
		c.tick()
	}
	c.t.Fatal("no established leader within 200 ticks")
	return 0
}

func (c *cluster) take(id int64, conn ConnID) []Output {
	var mine, rest []Output
	for _, o := range c.outs[id] {
		if o.Conn == conn {
			mine = append(mine, o)
		} else {
			rest = append(rest, o)
		}
	}
	c.outs[id] = rest
	return mine
}

func (c *cluster) connect(id int64, conn ConnID) int64 {
	c.t.Helper()
	c.nodes[id].Connect(ConnectRequest{Conn: conn, Req: &proto.ConnectRequest{TimeOut: 1000, Passwd: make([]byte, 16)}, Time: c.now})
	c.settle()
	outs := c.take(id, conn)
	require.Len(c.t, outs, 1, "handshake on server %d", id)
	require.Equal(c.t, OutConnect, outs[0].Kind)
	return outs[0].Connect.SessionID
}

func (c *cluster) call(id int64, conn ConnID, xid int32, op proto.OpCode, body proto.Record) Output {
	c.t.Helper()
	c.nodes[id].Submit(Request{Conn: conn, Xid: xid, Op: op, Body: body, Time: c.now})
	c.settle()
	outs := c.take(id, conn)
	for _, o := range outs {
		if o.Kind == OutReply && o.Header.Xid == xid {
			return o
		}
	}
	c.t.Fatalf("no reply to xid %d on server %d: %+v", xid, id, outs)
	return Output{}
}

func TestClusterWritesOnAnyServerReplicate(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.waitLeader()
	for _, id := range c.ids() {
		c.connect(id, ConnID(100+id))
		path := fmt.Sprintf("/from%d", id)
		o := c.call(id, ConnID(100+id), 1, proto.OpCreate, &proto.CreateRequest{Path: path, Data: []byte("x"), ACL: proto.OpenACLUnsafe})
		require.Equal(t, proto.ErrOK, o.Header.Err, "create via server %d (leader %d)", id, leader)
	}
	for _, id := range c.ids() {
		for _, src := range c.ids() {
			o := c.call(id, ConnID(100+id), int32(10+src), proto.OpExists, &proto.ExistsRequest{Path: fmt.Sprintf("/from%d", src)})
			require.Equal(t, proto.ErrOK, o.Header.Err, "server %d sees /from%d", id, src)
		}
	}
	digest := c.nodes[leader].Tree().Digest()
	for _, id := range c.ids() {
		require.Equal(t, c.nodes[leader].LastZxid(), c.nodes[id].LastZxid())
		require.Equal(t, digest, c.nodes[id].Tree().Digest())
	}
}

func TestClusterErrorsAndSyncThroughFollower(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.waitLeader()
	follower := c.ids()[0]
	if follower == leader {
		follower = c.ids()[1]
	}
	c.connect(follower, 1)
	o := c.call(follower, 1, 1, proto.OpCreate, &proto.CreateRequest{Path: "/missing/child", ACL: proto.OpenACLUnsafe})
	require.Equal(t, proto.ErrNoNode, o.Header.Err, "an error decided by the leader reaches the follower's client")
	o = c.call(follower, 1, 2, proto.OpSync, &proto.SyncRequest{Path: "/"})
	require.Equal(t, proto.ErrOK, o.Header.Err)
	require.Equal(t, &proto.SyncResponse{Path: "/"}, o.Body)
}

func TestClusterEphemeralsVanishEverywhereOnExpiry(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.waitLeader()
	follower := c.ids()[0]
	if follower == leader {
		follower = c.ids()[1]
	}
	sid := c.connect(follower, 1)
	o := c.call(follower, 1, 1, proto.OpCreate, &proto.CreateRequest{Path: "/e", ACL: proto.OpenACLUnsafe, Flags: proto.ModeEphemeral})
	require.Equal(t, proto.ErrOK, o.Header.Err)
	// The client goes silent: the leader expires the session by txn.
	c.nodes[follower].Disconnect(1)
	for i := 0; i < 30 && c.nodes[leader].SessionCount() > 0; i++ {
		c.tick()
	}
	for _, id := range c.ids() {
		require.NotContains(t, c.nodes[id].SessionIDs(), sid, "server %d", id)
		require.Zero(t, c.nodes[id].Tree().EphemeralCount(), "server %d", id)
	}
}

func TestClusterSurvivesLeaderCrash(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.waitLeader()
	c.connect(leader, 1)
	for i := 0; i < 5; i++ {
		o := c.call(leader, 1, int32(i+1), proto.OpCreate, &proto.CreateRequest{Path: fmt.Sprintf("/k%d", i), ACL: proto.OpenACLUnsafe})
		require.Equal(t, proto.ErrOK, o.Header.Err)
	}
	c.down[leader] = true
	for _, id := range c.ids() {
		if id != leader {
			c.nodes[id].Step(zab.Message{Type: zab.MsgLinkDown, From: leader, To: id})
		}
	}
	next := c.waitLeader()
	require.NotEqual(t, leader, next)
	require.Greater(t, c.nodes[next].Status().Epoch, int64(0))
	c.connect(next, 2)
	for i := 0; i < 5; i++ {
		o := c.call(next, 2, int32(i+1), proto.OpExists, &proto.ExistsRequest{Path: fmt.Sprintf("/k%d", i)})
		require.Equal(t, proto.ErrOK, o.Header.Err, "committed /k%d survives the leader's crash", i)
	}
	// The old leader restarts from its disk and catches up.
	c.start(leader, c.ids())
	c.waitLeader()
	for i := 0; i < 20; i++ {
		c.tick()
	}
	require.Equal(t, c.nodes[next].Tree().Digest(), c.nodes[leader].Tree().Digest())
}
