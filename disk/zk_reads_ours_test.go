package disk

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"
	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/internal/zkreal"
	"github.com/zabkeeper/zabkeeper/proto"
)

// ourTxns prepares and applies, on a tree, one txn of every kind zabkeeper
// logs, as the leader does (the digest stamped on each), including those
// ZooKeeper has no txn for: moveSession, sync, the session owner, a
// container made by a create request.
func ourTxns(t *testing.T) []*tree.Txn {
	t.Helper()
	tr := tree.New(tree.Options{ExtendedTypes: true})
	const epoch = int64(1) << 32
	zxid, now := epoch, int64(1764730000000)
	var out []*tree.Txn
	hdr := func(session int64, cxid int32) tree.Txn {
		zxid++
		now += 7
		return tree.Txn{Zxid: zxid, SessionID: session, Cxid: cxid, Time: now}
	}
	add := func(txn *tree.Txn) {
		if txn.Type != proto.OpError {
			txn.DigestVersion, txn.Digest = tree.DigestVersion, tr.PendingDigest()
		}
		tr.Apply(txn)
		out = append(out, txn)
	}
	const s1, s2 = int64(0x0100000000000001), int64(0x0200000000000002)
	open := proto.OpenACLUnsafe
	req := func(session int64, cxid int32, op proto.OpCode, r proto.Record) {
		h := hdr(session, cxid)
		add(tr.Prepare(h, tree.Caller{SessionID: session}, op, r))
	}
	session := func(session int64, typ proto.OpCode, timeout int32, owner int64) {
		h := hdr(session, 0)
		h.Type, h.TimeOut, h.Owner = typ, timeout, owner
		add(&h)
	}
	session(s1, proto.OpCreateSession, 30000, 1)
	session(s2, proto.OpCreateSession, 4000, 0)
	req(s1, 1, proto.OpCreate, &proto.CreateRequest{Path: "/ours", Data: []byte("v1"), ACL: open})
	req(s1, 2, proto.OpCreate2, &proto.CreateRequest{Path: "/ours/seq-", Data: []byte("s"), ACL: open, Flags: proto.ModePersistentSequential})
	req(s1, 3, proto.OpCreate, &proto.CreateRequest{Path: "/ours/eph", Data: []byte("e"), ACL: open, Flags: proto.ModeEphemeral})
	req(s2, 1, proto.OpCreate, &proto.CreateRequest{Path: "/ours/eph2", ACL: open, Flags: proto.ModeEphemeralSequential})
	req(s1, 4, proto.OpCreateContainer, &proto.CreateRequest{Path: "/ours/c", ACL: open, Flags: proto.ModeContainer})
	req(s1, 5, proto.OpCreate2, &proto.CreateRequest{Path: "/ours/c2", ACL: open, Flags: proto.ModeContainer})
	req(s1, 6, proto.OpCreateTTL, &proto.CreateTTLRequest{Path: "/ours/ttl", Data: []byte("t"), ACL: open, Flags: proto.ModePersistentWithTTL, TTL: 3600000})
	req(s1, 7, proto.OpSetData, &proto.SetDataRequest{Path: "/ours", Data: []byte("v2"), Version: -1})
	req(s1, 8, proto.OpSetACL, &proto.SetACLRequest{Path: "/ours/ttl", ACL: proto.ReadACLUnsafe, Version: -1})
	req(s1, 9, proto.OpMulti, &proto.MultiRequest{Ops: []proto.MultiOp{
		{Type: proto.OpCheck, Req: &proto.CheckVersionRequest{Path: "/ours", Version: 1}},
		{Type: proto.OpCreate, Req: &proto.CreateRequest{Path: "/ours/m", Data: []byte("m"), ACL: open}},
		{Type: proto.OpSetData, Req: &proto.SetDataRequest{Path: "/ours/m", Data: []byte("m2"), Version: 0}},
	}})
	req(s1, 10, proto.OpMulti, &proto.MultiRequest{Ops: []proto.MultiOp{
		{Type: proto.OpDelete, Req: &proto.DeleteRequest{Path: "/ours/m", Version: -1}},
		{Type: proto.OpCheck, Req: &proto.CheckVersionRequest{Path: "/ours", Version: 99}},
	}})
	req(s1, 11, proto.OpCreate, &proto.CreateRequest{Path: "/ours", ACL: open}) // an error txn
	h := hdr(s1, 12)
	h.Type, h.Path = proto.OpSync, "/ours"
	add(&h)
	session(s2, tree.OpMoveSession, 6000, 3)
	req(s1, 13, proto.OpDelete, &proto.DeleteRequest{Path: "/ours/seq-0000000000", Version: -1})
	closing := hdr(s2, 2)
	add(tr.Prepare(closing, tree.Caller{SessionID: s2}, proto.OpCloseSession, nil))
	return out
}

// writeOurLog writes txns with the Log into dir (several segments).
func writeOurLog(t *testing.T, dir string, txns []*tree.Txn) {
	t.Helper()
	l, err := OpenLog(dir, LogOptions{SegmentSize: 1 << 10})
	require.NoError(t, err)
	for _, x := range txns {
		require.NoError(t, l.Append(Record{Zxid: x.Zxid, Data: x.Marshal()}))
	}
	_, err = l.Sync()
	require.NoError(t, err)
	require.NoError(t, l.Close())
}

// TestTxnLogToolkitReadsOurLog runs ZooKeeper 3.8's TxnLogToolkit on every
// file of a log zabkeeper wrote: it reads every record, checksum and txn
// (no CRC error, no exception) and shows the header we wrote.
func TestTxnLogToolkitReadsOurLog(t *testing.T) {
	zkreal.Require(t)
	txns := ourTxns(t)
	dir := t.TempDir()
	writeOurLog(t, dir, txns)
	ns, err := listNamed(OSFS{}, filepath.Join(dir, versionDir), logPrefix)
	require.NoError(t, err)
	require.Greater(t, len(ns), 1, "several segments")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var lines []toolkitLine
	for _, n := range ns {
		cmd := zkreal.ToolCommand(ctx, "org.apache.zookeeper.server.persistence.TxnLogToolkit", filepath.Join(dir, versionDir, n.name))
		cmd.Env = append(os.Environ(), "TZ=UTC")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.NotContains(t, string(out), "Exception", "%s", out)
		got, count := parseToolkit(t, string(out))
		require.Equal(t, count, len(got), "%s", out)
		require.Contains(t, string(out), "ZooKeeper Transactional Log File with dbid 0 txnlog format version 2")
		lines = append(lines, got...)
	}
	require.Len(t, lines, len(txns))
	for i, x := range txns {
		b := x.Marshal()
		wire := proto.OpCode(int32(binary.BigEndian.Uint32(b[28:])))
		require.Equal(t, toolkitLine{session: x.SessionID, cxid: x.Cxid, zxid: x.Zxid, op: toolkitOp(wire)}, lines[i], "txn %d (%v)", i, x.Type)
	}
}

// TestZooKeeperServesOurLog starts Apache ZooKeeper 3.8 standalone on a
// data directory holding only a log zabkeeper wrote
// (zookeeper.snapshot.trust.empty lets it start from the log alone) and
// reads the tree it rebuilt through a client: every txn, including those
// written in forms ZooKeeper has no txn for, applied as zabkeeper applies
// them.
func TestZooKeeperServesOurLog(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ZooKeeper")
	}
	zkreal.Require(t)
	txns := ourTxns(t)
	want := tree.New(tree.Options{ExtendedTypes: true})
	for _, x := range txns {
		back, err := tree.UnmarshalTxn(x.Marshal())
		require.NoError(t, err)
		require.Equal(t, x, back)
		want.Apply(back)
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	writeOurLog(t, data, txns)

	zks := zkreal.Start(t, zkreal.Options{DataDir: data, Props: map[string]string{
		"zookeeper.snapshot.trust.empty": "true", "zookeeper.extendedTypesEnabled": "true"}})
	defer func() {
		if t.Failed() {
			t.Logf("ZooKeeper's output:\n%s", zks.Log())
		}
	}()

	c, ev, err := zk.Connect([]string{zks.Addr}, 10*time.Second, zk.WithLogInfo(false))
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for connected := false; !connected; {
		select {
		case e := <-ev:
			connected = e.State == zk.StateHasSession
		case <-ctx.Done():
			t.Fatal("no session with ZooKeeper within 60s")
		}
	}

	// Every node we hold under /ours, with its data and Stat, is
	// ZooKeeper's too.
	var walk func(path string)
	count := 0
	walk = func(path string) {
		resp, code := want.Read(tree.Caller{}, 0, proto.OpGetData, &proto.GetDataRequest{Path: path})
		require.Equal(t, proto.ErrOK, code, path)
		w := resp.(*proto.GetDataResponse)
		data, st, err := c.Get(path)
		require.NoError(t, err, path)
		require.Equal(t, string(w.Data), string(data), path)
		require.Equal(t, []int64{w.Stat.Czxid, w.Stat.Mzxid, w.Stat.Pzxid, w.Stat.Ctime, w.Stat.Mtime, w.Stat.EphemeralOwner},
			[]int64{st.Czxid, st.Mzxid, st.Pzxid, st.Ctime, st.Mtime, st.EphemeralOwner}, "Stat of %s", path)
		require.Equal(t, []int32{w.Stat.Version, w.Stat.Cversion, w.Stat.Aversion, w.Stat.DataLength, w.Stat.NumChildren},
			[]int32{st.Version, st.Cversion, st.Aversion, st.DataLength, st.NumChildren}, "Stat of %s", path)
		count++
		kids, code := want.Read(tree.Caller{}, 0, proto.OpGetChildren, &proto.GetChildrenRequest{Path: path})
		require.Equal(t, proto.ErrOK, code)
		names := kids.(*proto.GetChildrenResponse).Children
		zkNames, _, err := c.Children(path)
		require.NoError(t, err)
		require.ElementsMatch(t, names, zkNames, "children of %s", path)
		for _, n := range names {
			walk(path + "/" + n)
		}
	}
	walk("/ours")
	require.Greater(t, count, 5)
	acl, _, err := c.GetACL("/ours/ttl")
	require.NoError(t, err)
	require.Equal(t, zk.WorldACL(zk.PermRead), acl)
	_, err = c.Create("/after", nil, 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err, "ZooKeeper writes on after our log")
	// ZooKeeper compares the TxnDigest of each txn with its own tree digest
	// as it replays: ours is its DigestCalculator, so they must agree.
	out := zks.Log()
	require.NotContains(t, out, "Digests are not matching")
	require.NotContains(t, out, "First digest mismatch")
}
