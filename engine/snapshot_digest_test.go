package engine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/adler32"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/internal/fuzzysnap"
	"github.com/zabkeeper/zabkeeper/proto"
)

// TestFuzzySnapshotDigestCheckedAfterReplay: a snapshot named for zxid Z1
// whose content (and digest) is of a later zxid Z2, as ZooKeeper's fuzzy
// snapshots can be, restores by replaying the log from Z1+1, and the digest
// is compared once the replay reaches Z2: no report when it matches, a
// DigestMismatch when it does not.
func TestFuzzySnapshotDigestCheckedAfterReplay(t *testing.T) {
	h := newHarness(t)
	h.connect(1, 1000)
	h.submit(1, 1, proto.OpCreate, &proto.CreateRequest{Path: "/a", Data: []byte("1"), ACL: proto.OpenACLUnsafe})
	h.persistAll()
	z1 := h.n.LastZxid()
	h.submit(1, 2, proto.OpSetData, &proto.SetDataRequest{Path: "/a", Data: []byte("2"), Version: -1})
	h.persistAll()
	z2, write := h.n.Snapshot()
	require.Greater(t, z2, z1)
	var buf bytes.Buffer
	require.NoError(t, write(&buf))
	var after []zab.Entry
	for _, e := range h.log {
		if e.Zxid > z1 {
			after = append(after, zab.Entry{Zxid: e.Zxid, Data: e.Data})
		}
	}
	restore := func(snap []byte) *DigestMismatch {
		t.Helper()
		n, err := Restore(testConfig(), Durable{SnapshotZxid: z1, Snapshot: snap, Log: after})
		require.NoError(t, err)
		require.Equal(t, z2, n.LastZxid())
		var got *DigestMismatch
		for n.HasReady() {
			rd := n.Ready()
			if rd.DigestMismatch != nil {
				got = rd.DigestMismatch
			}
			n.Advance()
		}
		return got
	}
	require.Nil(t, restore(buf.Bytes()))

	// The same file with another digest, resealed.
	b := bytes.Clone(buf.Bytes())
	d := b[len(b)-21 : len(b)-13]
	binary.BigEndian.PutUint64(d, binary.BigEndian.Uint64(d)+1)
	binary.BigEndian.PutUint64(b[len(b)-13:], uint64(adler32.Checksum(b[:len(b)-13])))
	m := restore(b)
	require.NotNil(t, m)
	require.Equal(t, z2, m.Zxid)
	require.Equal(t, h.n.Tree().Digest(), m.Actual)
	require.Equal(t, m.Actual+1, m.Expected)
}

// TestRestoreReportsSnapshotDigestMismatch: a snapshot whose digest for its
// own zxid differs from its tree (sealed correctly: ZooKeeper's fuzzy
// snapshots can record that) is served and reported in a Ready, as
// ZooKeeper logs and counts it, never refused.
func TestRestoreReportsSnapshotDigestMismatch(t *testing.T) {
	tr := tree.New(tree.Options{})
	tr.Apply(&tree.Txn{Zxid: 1, SessionID: 1, Time: 1, Type: proto.OpCreate, Path: "/a", ACL: proto.OpenACLUnsafe})
	var buf bytes.Buffer
	_, err := tr.Snapshot().Write(&buf, nil)
	require.NoError(t, err)
	b := buf.Bytes()
	// The stream ends: seal, zxid, digest version, digest, seal (a long
	// Adler-32 of everything before it, then the string "/").
	const seal = 8 + 4 + 1
	b[len(b)-seal-1] ^= 1
	binary.BigEndian.PutUint64(b[len(b)-seal:], uint64(adler32.Checksum(b[:len(b)-seal])))
	n, err := Restore(testConfig(), Durable{SnapshotZxid: 1, Snapshot: b})
	require.NoError(t, err)
	var got *DigestMismatch
	for n.HasReady() {
		rd := n.Ready()
		if rd.DigestMismatch != nil {
			got = rd.DigestMismatch
		}
		n.Advance()
	}
	require.NotNil(t, got)
	require.Equal(t, int64(1), got.Zxid)
	require.Equal(t, tr.Digest(), got.Actual)
	require.Equal(t, tr.Digest()^1, got.Expected)
}

// TestFuzzySnapshotMissingACLResolvedBeforeServing: a snapshot whose ACL
// cache lacks the list a node was created with (ZooKeeper wrote the cache
// before the node, during a fuzzy snapshot) restores when the log holds
// the create, which gives the node its list before the server serves; with
// the log short of it the server refuses to serve, naming the node.
func TestFuzzySnapshotMissingACLResolvedBeforeServing(t *testing.T) {
	h := newHarness(t)
	h.connect(1, 1000)
	h.submit(1, 1, proto.OpCreate, &proto.CreateRequest{Path: "/a", ACL: proto.OpenACLUnsafe})
	h.persistAll()
	z1 := h.n.LastZxid()
	acl := []proto.ACL{{Perms: proto.PermRead, Id: proto.Id{Scheme: "ip", ID: "10.1.2.3"}}}
	h.submit(1, 2, proto.OpCreate, &proto.CreateRequest{Path: "/a/b", Data: []byte("b"), ACL: acl})
	h.persistAll()
	_, write := h.n.Snapshot()
	var buf bytes.Buffer
	require.NoError(t, write(&buf))
	// Drop ACL 2 ("/a" is 1, "/a/b" 2) from the cache and reseal.
	b, err := fuzzysnap.DropACL(buf.Bytes(), 2, acl)
	require.NoError(t, err)

	var after []zab.Entry
	for _, e := range h.log {
		if e.Zxid > z1 {
			after = append(after, zab.Entry{Zxid: e.Zxid, Data: e.Data})
		}
	}
	n, err := Restore(testConfig(), Durable{SnapshotZxid: z1, Snapshot: b, Log: after})
	require.NoError(t, err)
	require.True(t, n.Serving())
	require.NoError(t, n.Tree().CheckACLs())
	require.Equal(t, h.n.Tree().Digest(), n.Tree().Digest())
	resp, code := n.Tree().Read(tree.Caller{Auth: []proto.Id{{Scheme: "ip", ID: "10.1.2.3"}}}, 0, proto.OpGetACL, &proto.GetACLRequest{Path: "/a/b"})
	require.Equal(t, proto.ErrOK, code)
	require.Equal(t, acl, resp.(*proto.GetACLResponse).ACL)

	// The log without the create of /a/b: never served.
	var short []zab.Entry
	for _, e := range after {
		txn, err := tree.UnmarshalTxn(e.Data)
		require.NoError(t, err)
		if txn.Path != "/a/b" {
			short = append(short, e)
		}
	}
	require.Len(t, short, len(after)-1)
	last := z1
	if len(short) > 0 {
		last = short[len(short)-1].Zxid
	}
	n, err = Restore(testConfig(), Durable{SnapshotZxid: z1, Snapshot: b, Log: short})
	require.NoError(t, err, "the files read; serving them is what fails")
	require.False(t, n.Serving())
	require.EqualError(t, n.Halted(), `engine: cannot serve the tree recovered at zxid `+fmt.Sprintf("0x%x", last)+
		`: tree: node refers to an ACL the ACL cache lacks: node "/a/b" refers to ACL 2 (1 node(s) in all) and no txn replayed after the snapshot set its ACL`)
	require.ErrorIs(t, n.Halted(), tree.ErrMissingACL)
	// Halted for good: time passing does not make it serve, nor read-only.
	n.Tick(testConfig().StartTime + 60_000)
	require.False(t, n.Serving())
	require.False(t, n.ReadOnly())
}
