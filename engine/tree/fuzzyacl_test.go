package tree

import (
	"bytes"
	"encoding/binary"
	"hash/adler32"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/proto"
)

// dropACLEntry removes ACL id's cache entry, holding acl, from a snapshot
// stream without sessions (file: after the 16-byte file header, resealed;
// body: at the start), as the ACL cache of a ZooKeeper fuzzy snapshot
// lacks a list first used while its nodes were written.
func dropACLEntry(t testing.TB, b []byte, file bool, id int64, acl []proto.ACL) []byte {
	t.Helper()
	e := proto.NewEncoder(nil)
	e.WriteLong(id)
	proto.WriteACLs(e, acl)
	entry := e.Bytes()
	countAt := 4 // the session count, then the ACL cache's
	if file {
		countAt += 16
	}
	i := bytes.Index(b[countAt+4:], entry)
	require.GreaterOrEqual(t, i, 0, "the snapshot's ACL cache holds ACL %d", id)
	i += countAt + 4
	out := append(bytes.Clone(b[:i]), b[i+len(entry):]...)
	binary.BigEndian.PutUint32(out[countAt:], binary.BigEndian.Uint32(out[countAt:])-1)
	if file {
		// seal (long, ustring "/"), digest (long, int, long), seal.
		const seal, digest = 8 + 4 + 1, 8 + 4 + 8
		first := len(out) - seal - digest - seal
		binary.BigEndian.PutUint64(out[first:], uint64(adler32.Checksum(out[:first])))
		binary.BigEndian.PutUint64(out[len(out)-seal:], uint64(adler32.Checksum(out[:len(out)-seal])))
	}
	return out
}

// getACL reads a node's ACL and Stat as the super user.
func getACL(t *testing.T, tr *Tree, path string) *proto.GetACLResponse {
	t.Helper()
	resp, code := tr.Read(Caller{Auth: []proto.Id{{Scheme: "super"}}}, 0, proto.OpGetACL, &proto.GetACLRequest{Path: path})
	require.Equal(t, proto.ErrOK, code, path)
	return resp.(*proto.GetACLResponse)
}

// TestFuzzySnapshotMissingACLResolvedByReplay: ZooKeeper serializes its ACL
// cache before its nodes while txns go on, so a node created (/a/b) or
// given an ACL (/a/c) with a new list during a fuzzy snapshot refers to an
// ACL id the snapshot's cache lacks. Such a snapshot loads, as ZooKeeper
// loads it, with the nodes unresolved; replaying the txns after the
// snapshot's zxid gives them the txns' lists and leaves the digest and
// Stats as they were. Without that replay CheckACLs fails naming the node.
func TestFuzzySnapshotMissingACLResolvedByReplay(t *testing.T) {
	h := newHarness(t, Options{})
	h.mustCreate("/a", 0)
	base := h.zxid
	newList := []proto.ACL{{Perms: proto.PermRead | proto.PermWrite, Id: proto.Id{Scheme: "digest", ID: DigestID("u", "p")}}}
	other := []proto.ACL{{Perms: proto.PermRead, Id: proto.Id{Scheme: "ip", ID: "10.0.0.0/8"}}}
	var txns []*Txn
	run := func(op proto.OpCode, req proto.Record) {
		txn := h.prepare(anyone, op, req)
		back, err := UnmarshalTxn(txn.Marshal())
		require.NoError(t, err)
		txns = append(txns, back)
		require.Equal(t, proto.ErrOK, h.tr.Apply(txn).Err)
	}
	run(proto.OpCreate, &proto.CreateRequest{Path: "/a/b", Data: []byte("b"), ACL: newList})
	run(proto.OpCreate, &proto.CreateRequest{Path: "/a/c", Data: []byte("c"), ACL: proto.OpenACLUnsafe})
	run(proto.OpSetACL, &proto.SetACLRequest{Path: "/a/c", ACL: other, Version: -1})
	run(proto.OpCreate, &proto.CreateRequest{Path: "/a/d", ACL: newList})
	run(proto.OpDelete, &proto.DeleteRequest{Path: "/a/d", Version: -1})
	want := h.tr

	// Numbered in first use along the node order: "/a" open 1, "/a/b"
	// newList 2, "/a/c" other 3, "/zookeeper/config" read 4.
	body := dropACLEntry(t, dropACLEntry(t, bodyBytes(t, want.Snapshot(), nil), false, 2, newList), false, 3, other)
	file := dropACLEntry(t, dropACLEntry(t, snapBytes(t, want.Snapshot()), true, 2, newList), true, 3, other)
	read := map[string]func() (*LoadedSnapshot, error){
		"body": func() (*LoadedSnapshot, error) { return ReadSnapshotBody(bytes.NewReader(body), Options{}, base) },
		"file": func() (*LoadedSnapshot, error) { return ReadSnapshot(bytes.NewReader(file), Options{}, base) },
	}
	for name, rd := range read {
		ls, err := rd()
		require.NoError(t, err, name)
		tr := ls.Tree
		require.Equal(t, 2, tr.UnresolvedACLs(), name)
		require.Equal(t, want.Digest(), tr.Digest(), name)
		err = tr.CheckACLs()
		require.ErrorIs(t, err, ErrMissingACL, name)
		require.ErrorContains(t, err, `"/a/b" refers to ACL 2`, name)

		// Written while unresolved: the node keeps an id the cache
		// lacks (never the marker's list), and reads back unresolved.
		out := snapBytes(t, tr.Snapshot())
		require.NotContains(t, string(out), "unresolved-acl", name)
		again, err := ReadSnapshot(bytes.NewReader(out), Options{}, base)
		require.NoError(t, err, name)
		require.Equal(t, 2, again.Tree.UnresolvedACLs(), name)
		require.Equal(t, want.Digest(), again.Tree.Digest(), name)

		for _, r := range []*Tree{tr, again.Tree} {
			stats := map[string]proto.Stat{}
			for _, p := range []string{"/a/b", "/a/c"} {
				stats[p] = getACL(t, r, p).Stat
			}
			for _, txn := range txns {
				r.Apply(txn)
			}
			require.NoError(t, r.CheckACLs(), name)
			require.Equal(t, 0, r.UnresolvedACLs(), name)
			require.Equal(t, newList, getACL(t, r, "/a/b").ACL, name)
			require.Equal(t, other, getACL(t, r, "/a/c").ACL, name)
			for p, st := range stats {
				require.Equal(t, st, getACL(t, r, p).Stat, "%s: %s's Stat", name, p)
			}
			requireSameTrees(t, want, r)
		}
	}

	// Only the txns up to the create of /a/b: /a/c stays unresolved.
	ls, err := ReadSnapshotBody(bytes.NewReader(body), Options{}, base)
	require.NoError(t, err)
	ls.Tree.Apply(txns[0])
	require.Equal(t, 1, ls.Tree.UnresolvedACLs())
	require.ErrorContains(t, ls.Tree.CheckACLs(), `"/a/c" refers to ACL 3`)
	// Deleting the node ends it too.
	ls.Tree.Apply(&Txn{Zxid: h.zxid + 1, SessionID: 1, Type: proto.OpDelete, Path: "/a/c"})
	require.NoError(t, ls.Tree.CheckACLs())

	// The fuzz targets' seeds hold one such node.
	p := populate(t)
	tr, err := load(dropACLEntry(t, snapBytes(t, p.tr.Snapshot()), true, 2, populateACL), Options{})
	require.NoError(t, err)
	require.ErrorContains(t, tr.CheckACLs(), `"/acl" refers to ACL 2`)
	ls, err = ReadSnapshotBody(bytes.NewReader(dropACLEntry(t, bodyBytes(t, p.tr.Snapshot(), nil), false, 2, populateACL)), Options{ExtendedTypes: true}, 5)
	require.NoError(t, err)
	require.ErrorContains(t, ls.Tree.CheckACLs(), `"/acl" refers to ACL 2`)
}

// populateACL is the ACL list populate gives "/acl": ACL 2 of its
// snapshots ("/a" is 1).
var populateACL = []proto.ACL{{Perms: proto.PermRead, Id: proto.Id{Scheme: "digest", ID: DigestID("u", "p")}}, {Perms: 3, Id: proto.Id{Scheme: "ip", ID: "10.0.0.0/8"}}}
