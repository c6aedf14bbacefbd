package quorum_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/internal/zkreal"
	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// The SNAP body both ways between zabkeeper's tree and Apache ZooKeeper
// 3.8: a ZooKeeper follower loads the body tree.Snapshot.WriteBody writes,
// and tree.ReadSnapshotBody loads the body a ZooKeeper leader sends.

// snapTree builds the state the Go leader sends: sessions, ephemerals of
// two of them, a container, a sequential node, data, several ACL lists
// (open, read-only, digest, ip) and nodes changed after their creation
// (setData, setACL, a deleted child), all in epoch 1.
func snapTree(t *testing.T) (*tree.Tree, []tree.SnapshotSession) {
	tr := tree.New(tree.Options{})
	const s1, s2, s3 = int64(0x100000a0001), int64(0x100000a0002), int64(0x100000a0003)
	sessions := []tree.SnapshotSession{{ID: s1, Timeout: 30000}, {ID: s2, Timeout: 12000}, {ID: s3, Timeout: 40000}}
	readOnly := []proto.ACL{{Perms: proto.PermRead, Id: proto.Id{Scheme: "world", ID: "anyone"}}}
	digest := []proto.ACL{{Perms: proto.PermAll, Id: proto.Id{Scheme: "digest", ID: tree.DigestID("snap", "body")}}}
	mixed := []proto.ACL{{Perms: proto.PermRead | proto.PermWrite, Id: proto.Id{Scheme: "ip", ID: "127.0.0.1"}}, readOnly[0]}
	var zxid int64
	apply := func(txn tree.Txn) {
		zxid++
		txn.Zxid, txn.Time = quorum.MakeZxid(1, zxid), 1_700_000_000_000+zxid*1000
		if txn.ParentCversion == 0 {
			txn.ParentCversion = -1
		}
		res := tr.Apply(&txn)
		require.Equal(t, proto.ErrOK, res.Err, "%+v", txn)
	}
	create := func(p string, data string, acl []proto.ACL, typ proto.OpCode, mode int32, owner int64) {
		apply(tree.Txn{Type: typ, SessionID: owner, Path: p, Data: []byte(data), ACL: acl, Mode: mode})
	}
	create("/app", "v0", proto.OpenACLUnsafe, proto.OpCreate, proto.ModePersistent, s1)
	create("/app/conf", "read only", readOnly, proto.OpCreate, proto.ModePersistent, s1)
	create("/app/secret", "digest only", digest, proto.OpCreate, proto.ModePersistent, s2)
	create("/app/mixed", "", mixed, proto.OpCreate, proto.ModePersistent, s2)
	create("/app/mixed/leaf", "x", mixed, proto.OpCreate, proto.ModePersistent, s2)
	create("/app/seq-0000000007", "seq", proto.OpenACLUnsafe, proto.OpCreate, proto.ModePersistent, s1)
	create("/app/e1", "eph of s1", proto.OpenACLUnsafe, proto.OpCreate, proto.ModeEphemeral, s1)
	create("/app/e2", "eph of s2", readOnly, proto.OpCreate, proto.ModeEphemeral, s2)
	create("/locks", "", proto.OpenACLUnsafe, proto.OpCreateContainer, proto.ModeContainer, s1)
	create("/locks/l-1", "held", proto.OpenACLUnsafe, proto.OpCreate, proto.ModeEphemeral, s1)
	create("/gone", "", proto.OpenACLUnsafe, proto.OpCreate, proto.ModePersistent, s1)
	create("/big", string(bytes.Repeat([]byte("0123456789abcdef"), 8192)), proto.OpenACLUnsafe, proto.OpCreate, proto.ModePersistent, s3)
	apply(tree.Txn{Type: proto.OpSetData, Path: "/app", Data: []byte("v1"), Version: 1})
	apply(tree.Txn{Type: proto.OpSetData, Path: "/app", Data: []byte("v2"), Version: 2})
	apply(tree.Txn{Type: proto.OpSetACL, Path: "/app/mixed", ACL: readOnly, Version: 1})
	apply(tree.Txn{Type: proto.OpDelete, Path: "/gone"})
	return tr, sessions
}

// znode is what a client reads of a node.
type znode struct {
	data []byte
	stat proto.Stat
	acl  []proto.ACL
}

// readOurs walks tr from the root as a super user.
func readOurs(t *testing.T, tr *tree.Tree) map[string]znode {
	super := tree.Caller{Auth: []proto.Id{{Scheme: "super"}}}
	out := map[string]znode{}
	var walk func(p string)
	walk = func(p string) {
		resp, code := tr.Read(super, 0, proto.OpGetData, &proto.GetDataRequest{Path: p})
		require.Equal(t, proto.ErrOK, code, p)
		gd := resp.(*proto.GetDataResponse)
		resp, code = tr.Read(super, 0, proto.OpGetACL, &proto.GetACLRequest{Path: p})
		require.Equal(t, proto.ErrOK, code, p)
		out[p] = znode{data: gd.Data, stat: gd.Stat, acl: resp.(*proto.GetACLResponse).ACL}
		resp, code = tr.Read(super, 0, proto.OpGetChildren, &proto.GetChildrenRequest{Path: p})
		require.Equal(t, proto.ErrOK, code, p)
		for _, c := range resp.(*proto.GetChildrenResponse).Children {
			walk(path.Join(p, c))
		}
	}
	walk("/")
	return out
}

// readZooKeeper walks a ZooKeeper server from the root through a go-zk
// client authenticated as the digest user of snapTree.
func readZooKeeper(c *zk.Conn) (map[string]znode, error) {
	if err := c.AddAuth("digest", []byte("snap:body")); err != nil {
		return nil, err
	}
	out := map[string]znode{}
	var walk func(p string) error
	walk = func(p string) error {
		data, st, err := c.Get(p)
		if err != nil {
			return fmt.Errorf("get %s: %w", p, err)
		}
		acl, _, err := c.GetACL(p)
		if err != nil {
			return fmt.Errorf("getACL %s: %w", p, err)
		}
		n := znode{data: data, stat: proto.Stat{Czxid: st.Czxid, Mzxid: st.Mzxid, Ctime: st.Ctime, Mtime: st.Mtime,
			Version: st.Version, Cversion: st.Cversion, Aversion: st.Aversion, EphemeralOwner: st.EphemeralOwner,
			DataLength: st.DataLength, NumChildren: st.NumChildren, Pzxid: st.Pzxid}}
		for _, a := range acl {
			n.acl = append(n.acl, proto.ACL{Perms: a.Perms, Id: proto.Id{Scheme: a.Scheme, ID: a.ID}})
		}
		out[p] = n
		children, _, err := c.Children(p)
		if err != nil {
			return fmt.Errorf("children %s: %w", p, err)
		}
		for _, ch := range children {
			if err := walk(path.Join(p, ch)); err != nil {
				return err
			}
		}
		return nil
	}
	return out, walk("/")
}

// requireSameNodes compares what was read of two servers, node by node.
// /zookeeper/config is left out: a ZooKeeper learner replaces it with its
// own config after loading a SNAP (ZOOKEEPER-2819).
func requireSameNodes(t *testing.T, want, got map[string]znode) {
	delete(want, "/zookeeper/config")
	delete(got, "/zookeeper/config")
	for p, w := range want {
		g, ok := got[p]
		require.True(t, ok, "%s is missing", p)
		require.Equal(t, w.stat, g.stat, "stat of %s", p)
		require.Equal(t, len(w.data), len(g.data), "data of %s", p)
		require.True(t, bytes.Equal(w.data, g.data), "data of %s", p)
		require.Equal(t, w.acl, g.acl, "ACL of %s", p)
	}
	require.Equal(t, len(want), len(got), "node count")
}

var digestMismatchesRe = regexp.MustCompile(`(?m)^zk_digest_mismatches_count\s+(\d+)`)

// digestMismatches reads ZooKeeper's digest mismatch counter (mntr).
func digestMismatches(port int) (int, error) {
	out, err := fourLetter(port, "mntr")
	if err != nil {
		return 0, err
	}
	m := digestMismatchesRe.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no zk_digest_mismatches_count in mntr: %q", out)
	}
	return strconv.Atoi(m[1])
}

// TestInteropZooKeeperFollowsGoSnap: Apache ZooKeeper 3.8 follows a Go
// leader that syncs it by SNAP, sending the body tree.Snapshot.WriteBody
// writes. A go-zk client connected to ZooKeeper then reads every node with
// the data, Stat and ACL of our tree; ZooKeeper's own tree digest equals
// ours (a txn we propose with our digest after it raises no digest
// mismatch, one with a wrong digest does); and the snapshot ZooKeeper
// writes after the sync holds our sessions.
func TestInteropZooKeeperFollowsGoSnap(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Apache ZooKeeper")
	}
	tr, sessions := snapTree(t)
	snapZxid := tr.LastZxid()
	view := tr.Snapshot()
	var body bytes.Buffer
	_, err := view.WriteBody(&body, sessions)
	require.NoError(t, err)

	v := startTwoVoters(t, nil)
	config := v.winElection(t, snapZxid)
	const epoch = 2
	l, lastZxid, _ := v.acceptFollower(t, epoch, config)
	require.Equal(t, int64(0), lastZxid)
	snap, err := quorum.NewSyncStart(quorum.Snap, snapZxid)
	require.NoError(t, err)
	func() {
		// SNAP, then the body streamed from the view, nothing between.
		l.wmu.Lock()
		defer l.wmu.Unlock()
		require.NoError(t, quorum.WritePacket(l.fc, &snap))
		n, err := view.WriteBody(l.fc, sessions)
		require.NoError(t, err)
		require.Equal(t, int64(body.Len()), n)
	}()
	l.finishSync()
	var info srvrInfo
	l.serve("ZooKeeper serving", func() bool {
		info, err = srvr(v.zk.clientPort) // fails until it serves, a moment after UPTODATE
		return err == nil
	})
	require.Equal(t, "follower", info.mode)
	require.Equal(t, snapZxid, info.zxid, "ZooKeeper's zxid is the SNAP's")

	// A client on ZooKeeper: its session is forwarded to us, then it
	// reads the whole tree.
	c, _, err := zk.Connect([]string{fmt.Sprintf("127.0.0.1:%d", v.zk.clientPort)}, 20*time.Second,
		zk.WithLogger(quietLog{}), zk.WithLogInfo(false))
	require.NoError(t, err)
	defer c.Close()
	type result struct {
		nodes map[string]znode
		err   error
	}
	read := make(chan result, 1)
	go func() {
		nodes, err := readZooKeeper(c)
		read <- result{nodes, err}
	}()
	var got result
	l.serve("the client's reads", func() bool {
		select {
		case got = <-read:
			return true
		default:
			return false
		}
	})
	require.NoError(t, got.err)
	ours := readOurs(t, tr)
	requireSameNodes(t, ours, got.nodes)
	t.Logf("ZooKeeper serves our %d nodes with the same data, Stat and ACL (SNAP body %d bytes, %d sessions)", len(ours), body.Len(), len(sessions))
	require.Equal(t, sessions[0].ID, got.nodes["/app/e1"].stat.EphemeralOwner)
	// A container's owner (0x8000000000000000) is not in its client Stat
	// but is in the digest, which the txns below compare.

	// ZooKeeper compares its tree digest with the one a txn carries
	// after applying it (DataTree.compareDigest): ours after the same txn
	// matches. ZooKeeper applies txns in order, one at a time, so once the
	// third is visible the first two were compared: only the skewed one
	// may count.
	mismatches, err := digestMismatches(v.zk.clientPort)
	require.NoError(t, err)
	require.Zero(t, mismatches)
	version := got.nodes["/app"].stat.Version
	setData := func(data string, skew uint64) {
		l.zxid++
		version++
		txn := &tree.Txn{Zxid: l.zxid, SessionID: sessions[0].ID, Cxid: version, Time: time.Now().UnixMilli(), Type: proto.OpSetData,
			Path: "/app", Data: []byte(data), Version: version}
		require.Equal(t, proto.ErrOK, tr.Apply(txn).Err)
		txn.DigestVersion, txn.Digest = tree.DigestVersion, tr.Digest()+skew
		l.proposeTxn(txn)
	}
	setData("digest as ours", 0)
	setData("digest skewed", 1)
	setData("digest as ours again", 0)
	l.serve("ZooKeeper applying the txns", func() bool {
		d, _, err := c.Get("/app")
		require.NoError(t, err)
		return string(d) == "digest as ours again"
	})
	mismatches, err = digestMismatches(v.zk.clientPort)
	require.NoError(t, err)
	require.Equal(t, 1, mismatches, "only the skewed digest differs from ZooKeeper's")
	t.Logf("ZooKeeper's tree digest equals ours after 0x%x and 0x%x; the skewed one at 0x%x was counted", l.zxid-2, l.zxid, l.zxid-1)

	// ZooKeeper snapshotted the synced state at NEWLEADER: our sessions
	// and nodes, read back with our file reader.
	f, err := os.Open(filepath.Join(v.zk.dir, "data", "version-2", fmt.Sprintf("snapshot.%x", snapZxid)))
	require.NoError(t, err)
	defer f.Close()
	ls, err := tree.ReadSnapshot(f, tree.Options{}, snapZxid)
	require.NoError(t, err)
	for _, s := range sessions {
		require.Contains(t, ls.Sessions, s, "session 0x%x in ZooKeeper's snapshot", s.ID)
	}
	requireSameNodes(t, ours, readOurs(t, ls.Tree))
}

// TestInteropGoLoadsZooKeeperSnap: a Go observer joins a ZooKeeper 3.8
// leader with an empty history and gets a SNAP; the body, spooled by
// quorum.CopySnapshotBody as a learner's transport does, loads through
// tree.ReadSnapshotBody into a tree whose nodes are what a go-zk client
// reads from ZooKeeper (data, Stat, ACL), whose sessions hold the client's,
// and whose digest, after the next txn, is the one ZooKeeper's leader
// writes into that txn.
func TestInteropGoLoadsZooKeeperSnap(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Apache ZooKeeper")
	}
	zkreal.Require(t)
	ports := freePorts(t, 3)
	zkS := &zkServer{sid: 1, clientPort: ports[0], quorumPort: ports[1], electionPort: ports[2], dir: t.TempDir()}
	// One voter in quorum mode: it leads alone and takes observers.
	launch(t, zkS, map[string]string{"standaloneEnabled": "false", "server.1": fmt.Sprintf("127.0.0.1:%d:%d", zkS.quorumPort, zkS.electionPort)})
	require.Eventually(t, func() bool {
		info, err := srvr(zkS.clientPort)
		return err == nil && info.mode == "leader"
	}, 90*time.Second, 200*time.Millisecond)

	c, _, err := zk.Connect([]string{fmt.Sprintf("127.0.0.1:%d", zkS.clientPort)}, 20*time.Second,
		zk.WithLogger(quietLog{}), zk.WithLogInfo(false))
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.AddAuth("digest", []byte("snap:body")))
	open, readOnly := zk.WorldACL(zk.PermAll), zk.WorldACL(zk.PermRead)
	digest := zk.DigestACL(zk.PermAll, "snap", "body")
	mixed := append([]zk.ACL{{Perms: zk.PermAll, Scheme: "ip", ID: "127.0.0.1"}}, readOnly...)
	var ephemerals []string
	for _, n := range []struct {
		path, data string
		flags      int32
		acl        []zk.ACL
	}{
		{"/app", "v0", 0, open},
		{"/app/conf", "read only", 0, readOnly},
		{"/app/secret", "digest only", 0, digest},
		{"/app/mixed", "", 0, mixed},
		{"/app/mixed/leaf", "x", 0, mixed},
		{"/app/seq-", "seq", zk.FlagSequence, open},
		{"/app/e1", "ephemeral", zk.FlagEphemeral, open},
		{"/app/e2", "ephemeral sequential", zk.FlagEphemeral | zk.FlagSequence, readOnly},
		{"/gone", "", 0, open},
		{"/big", string(bytes.Repeat([]byte("0123456789abcdef"), 8192)), 0, open},
	} {
		p, err := c.Create(n.path, []byte(n.data), n.flags, n.acl)
		require.NoError(t, err, n.path)
		if n.flags&zk.FlagEphemeral != 0 {
			ephemerals = append(ephemerals, p)
		}
	}
	_, err = c.CreateContainer("/locks", nil, zk.FlagContainer, open)
	require.NoError(t, err)
	_, err = c.Create("/locks/l-1", []byte("held"), zk.FlagEphemeral, open)
	require.NoError(t, err)
	_, err = c.Set("/app", []byte("v1"), 0)
	require.NoError(t, err)
	_, err = c.SetACL("/app/mixed", readOnly, 0)
	require.NoError(t, err)
	require.NoError(t, c.Delete("/gone", 0))

	e := &ensemble{servers: []*zkServer{zkS}}
	o, newEpoch, start := join(t, e, 1, learnerOpts{observer: true, sid: 100})
	defer o.conn.Close()
	require.Equal(t, quorum.Snap, start.Type, "an empty observer gets a SNAP")
	var spool bytes.Buffer
	sum, err := quorum.CopySnapshotBody(&spool, o.r, quorum.SnapLimits{})
	require.NoError(t, err)
	ls, err := tree.ReadSnapshotBody(bytes.NewReader(spool.Bytes()), tree.Options{}, start.Zxid)
	require.NoError(t, err)
	tr := ls.Tree
	require.False(t, ls.HasDigest)
	require.Equal(t, sum.Nodes, tr.NodeCount())
	require.Len(t, ls.Sessions, len(sum.Sessions))
	require.Contains(t, ls.Sessions, tree.SnapshotSession{ID: c.SessionID(), Timeout: 20000})
	require.Equal(t, append(ephemerals, "/locks/l-1"), tr.Ephemerals(c.SessionID()))

	// Through NEWLEADER and UPTODATE, applying what the leader informs.
	apply := func(p quorum.Packet) *tree.Txn {
		txn, err := tree.UnmarshalTxn(p.Data)
		require.NoError(t, err)
		require.Equal(t, p.Zxid, txn.Zxid)
		tr.Apply(txn)
		return txn
	}
	for synced := false; !synced; {
		p := o.next()
		switch p.Type {
		case quorum.NewLeader:
			o.send(quorum.NewAck(p.Zxid))
		case quorum.UpToDate:
			o.send(quorum.NewAck(quorum.MakeZxid(newEpoch, 0)))
			synced = true
		case quorum.Inform:
			apply(p)
		default:
			t.Fatalf("unexpected %s during sync", p)
		}
	}
	zkNodes, err := readZooKeeper(c)
	require.NoError(t, err)
	requireSameNodes(t, zkNodes, readOurs(t, tr))
	t.Logf("ZooKeeper's SNAP body (%d bytes, %d sessions, %d ACL lists) loaded: %d nodes as the client reads them", sum.Bytes, len(sum.Sessions), sum.ACLs, sum.Nodes)

	// ZooKeeper's leader writes its tree digest after each txn into the
	// txn: ours after the same txn is the same.
	st, err := c.Set("/app", []byte("after the snap"), 1)
	require.NoError(t, err)
	for {
		p := o.next()
		require.Equal(t, quorum.Inform, p.Type, "%s", p)
		txn := apply(p)
		if txn.Zxid != st.Mzxid {
			continue
		}
		require.EqualValues(t, tree.DigestVersion, txn.DigestVersion, "ZooKeeper's txn carries its digest")
		require.Equal(t, txn.Digest, tr.Digest(), "our digest after 0x%x is ZooKeeper's", txn.Zxid)
		t.Logf("digest after 0x%x: ZooKeeper's %#x = ours", txn.Zxid, txn.Digest)
		break
	}
}

// TestZooKeeper38CapturedSnapBodiesLoad: the SNAP bodies ZooKeeper 3.8 sent
// in TestInteropZooKeeper38 (testdata/zk38) load through
// tree.ReadSnapshotBody, without Java, with the sessions and nodes
// quorum.CopySnapshotBody finds.
func TestZooKeeper38CapturedSnapBodiesLoad(t *testing.T) {
	for _, name := range []string{"observer-snap-stream.bin", "follower-snap-stream.bin"} {
		r := bytes.NewReader(readCapture(t, name))
		for {
			p, err := quorum.ReadPacket(r, quorum.Limits{})
			require.NoError(t, err, "%s: no SNAP", name)
			if p.Type != quorum.Snap {
				continue
			}
			var spool bytes.Buffer
			sum, err := quorum.CopySnapshotBody(&spool, r, quorum.SnapLimits{KeepPaths: true})
			require.NoError(t, err)
			ls, err := tree.ReadSnapshotBody(&spool, tree.Options{}, p.Zxid)
			require.NoError(t, err, name)
			require.Equal(t, sum.Nodes, ls.Tree.NodeCount(), name)
			require.Len(t, ls.Sessions, len(sum.Sessions), name)
			for i, s := range sum.Sessions {
				require.Equal(t, tree.SnapshotSession{ID: s.Session, Timeout: s.Timeout}, ls.Sessions[i])
			}
			require.Contains(t, sum.Paths, "/before")
			ours := readOurs(t, ls.Tree)
			for _, path := range sum.Paths {
				if path == "" {
					path = "/"
				}
				require.Contains(t, ours, path, name)
			}
			require.Equal(t, []byte("b"), ours["/before"].data)
			t.Logf("%s: SNAP 0x%x body %d bytes, %d sessions, %d nodes, digest %#x", name, p.Zxid, sum.Bytes, len(ls.Sessions), ls.Tree.NodeCount(), ls.Tree.Digest())
			// The txns that follow carry ZooKeeper's digest after them:
			// applied to the loaded tree, ours matches each.
			checked := 0
			for {
				q, err := quorum.ReadPacket(r, quorum.Limits{})
				if err == io.EOF {
					break
				}
				require.NoError(t, err)
				if (q.Type != quorum.Proposal && q.Type != quorum.Inform) || q.Zxid <= p.Zxid {
					continue
				}
				txn, err := tree.UnmarshalTxn(q.Data)
				require.NoError(t, err)
				ls.Tree.Apply(txn)
				if txn.DigestVersion == tree.DigestVersion {
					require.Equal(t, txn.Digest, ls.Tree.Digest(), "%s: digest after 0x%x", name, txn.Zxid)
					checked++
				}
			}
			require.NotZero(t, checked, name)
			t.Logf("%s: our digest is ZooKeeper's after each of the %d txns that follow", name, checked)
			break
		}
	}
}
