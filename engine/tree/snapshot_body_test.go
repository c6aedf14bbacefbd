package tree

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// bodySessions are the sessions the body tests write: the owner of
// populate's ephemeral and one without nodes.
var bodySessions = []SnapshotSession{{ID: 9, Timeout: 4000}, {ID: 0x100000000001, Timeout: 30000}}

// bodyBytes writes s as a SNAP body.
func bodyBytes(t testing.TB, s *Snapshot, sessions []SnapshotSession) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := s.WriteBody(&buf, sessions)
	require.NoError(t, err)
	require.Equal(t, int64(buf.Len()), n)
	return buf.Bytes()
}

// signatureLen is the ustring "BenWasHere" that ends a body.
const signatureLen = 4 + len(SnapSignature)

func TestSnapBodyRoundTrip(t *testing.T) {
	h := populate(t)
	b := bodyBytes(t, h.tr.Snapshot(), bodySessions)
	require.Equal(t, b, bodyBytes(t, h.tr.Snapshot(), bodySessions), "deterministic")

	ls, err := ReadSnapshotBody(bytes.NewReader(b), Options{ExtendedTypes: true}, h.zxid)
	require.NoError(t, err)
	require.Equal(t, bodySessions, ls.Sessions)
	require.False(t, ls.HasDigest, "a SNAP body has no digest")
	require.False(t, ls.PendingDigest)
	require.False(t, ls.DigestMismatch)
	require.Equal(t, h.zxid, ls.Tree.LastZxid())
	requireSameTrees(t, h.tr, ls.Tree)
	require.Equal(t, recomputeDigest(ls.Tree), ls.Tree.Digest(), "the digest is computed from the nodes")
	require.Equal(t, []string{"/a/e"}, ls.Tree.Ephemerals(9))

	// The body is the file's middle: the same writer, without the file
	// header (16 bytes), seals and digest, with the signature.
	var file bytes.Buffer
	_, err = h.tr.Snapshot().Write(&file, bodySessions)
	require.NoError(t, err)
	shared := len(b) - signatureLen
	require.Equal(t, file.Bytes()[16:16+shared], b[:shared])
	require.Equal(t, append(binary.BigEndian.AppendUint32(nil, uint32(len(SnapSignature))), SnapSignature...), b[shared:])
	// And the file is still the file: it loads with its digest.
	fl, err := ReadSnapshot(bytes.NewReader(file.Bytes()), Options{ExtendedTypes: true}, h.zxid)
	require.NoError(t, err)
	require.True(t, fl.HasDigest)
	require.Equal(t, h.tr.Digest(), fl.Digest.Digest)
	requireSameTrees(t, ls.Tree, fl.Tree)

	// A fresh tree's body: the built-in nodes only, no sessions.
	empty := bodyBytes(t, New(Options{}).Snapshot(), nil)
	el, err := ReadSnapshotBody(bytes.NewReader(empty), Options{}, 0)
	require.NoError(t, err)
	requireSameTrees(t, New(Options{}), el.Tree)
	require.Empty(t, el.Sessions)
}

// TestSnapBodyIsWhatQuorumCopies: package quorum's CopySnapshotBody, which
// walks a SNAP body the way ZooKeeper's learner reads it, takes ours whole
// and finds our sessions, ACL lists and nodes, in our order.
func TestSnapBodyIsWhatQuorumCopies(t *testing.T) {
	h := populate(t)
	snap := h.tr.Snapshot()
	b := bodyBytes(t, snap, bodySessions)
	var copied bytes.Buffer
	// Followed by another packet's bytes, as on the quorum stream.
	sum, err := quorum.CopySnapshotBody(&copied, bytes.NewReader(append(bytes.Clone(b), 0, 0, 0, 5)), quorum.SnapLimits{KeepPaths: true})
	require.NoError(t, err)
	require.Equal(t, b, copied.Bytes(), "the copy is the body, signature included, nothing after")
	require.Equal(t, int64(len(b)), sum.Bytes)
	require.Len(t, sum.Sessions, len(bodySessions))
	for i, s := range bodySessions {
		require.Equal(t, quorum.Touch{Session: s.ID, Timeout: s.Timeout}, sum.Sessions[i])
	}
	require.Equal(t, h.tr.NodeCount(), sum.Nodes)
	// The open list of /a and the rest, /zookeeper/config's read-only
	// one and /acl's (the built-in open nodes use id -1, outside the
	// cache).
	require.Equal(t, 3, sum.ACLs)
	want := snap.paths()
	slices.SortFunc(want, pathOrder)
	want[0] = "" // the root, as ZooKeeper names it in a snapshot
	require.Equal(t, want, sum.Paths)
}

// TestSnapBodyRefusesDamage: a body cut anywhere (in the sessions, the ACL
// cache, a node, the end of nodes or the signature), with a wrong or
// missing signature, with bytes after it, or that is not a body at all
// does not load.
func TestSnapBodyRefusesDamage(t *testing.T) {
	h := populate(t)
	b := bodyBytes(t, h.tr.Snapshot(), bodySessions)
	read := func(b []byte) error {
		_, err := ReadSnapshotBody(bytes.NewReader(b), Options{ExtendedTypes: true}, h.zxid)
		return err
	}
	for i := 0; i < len(b); i++ {
		require.ErrorIs(t, read(b[:i]), ErrBadSnapshot, "truncated at %d of %d", i, len(b))
	}

	shared := len(b) - signatureLen
	for _, sig := range []string{"BenWasHerf", "benwashere", "BenWasHere!", "", "/"} {
		bad := binary.BigEndian.AppendUint32(bytes.Clone(b[:shared]), uint32(len(sig)))
		err := read(append(bad, sig...))
		require.ErrorIs(t, err, ErrBadSnapshot, "signature %q", sig)
	}
	err := read(binary.BigEndian.AppendUint32(bytes.Clone(b[:shared]), 0xffffffff))
	require.ErrorIs(t, err, ErrBadSnapshot, "null signature")
	require.ErrorContains(t, read(append(bytes.Clone(b), 0)), "bytes after the signature")

	// A snapshot file is not a body (its header reads as a session count
	// and sessions, then garbage), nor the reverse.
	var file bytes.Buffer
	_, err = h.tr.Snapshot().Write(&file, bodySessions)
	require.NoError(t, err)
	require.ErrorIs(t, read(file.Bytes()), ErrBadSnapshot)
	_, err = ReadSnapshot(bytes.NewReader(b), Options{}, h.zxid)
	require.ErrorIs(t, err, ErrBadSnapshot)

	// Garbage, and a claimed size far beyond the input: an error, with
	// memory bounded by the input.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		g := make([]byte, rng.IntN(512))
		for i := range g {
			g[i] = byte(rng.UintN(256))
		}
		require.Error(t, read(g))
	}
	huge := []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 1, 2, 3}
	require.ErrorIs(t, read(huge), ErrBadSnapshot, "a root path claiming 2 GiB")
	allocs := testing.AllocsPerRun(1, func() { _ = read(huge) })
	require.Less(t, allocs, float64(100))
}

// FuzzReadSnapshotBody: no input panics the body reader; what it loads has
// a consistent digest, is a body quorum.CopySnapshotBody walks to the same
// sessions and nodes, and writes back to a body that loads to the same
// tree.
func FuzzReadSnapshotBody(f *testing.F) {
	h := populate(f)
	f.Add(bodyBytes(f, h.tr.Snapshot(), bodySessions))
	f.Add(bodyBytes(f, New(Options{}).Snapshot(), nil))
	// A fuzzy snapshot's: "/acl" refers to an ACL the cache lacks.
	f.Add(dropACLEntry(f, bodyBytes(f, h.tr.Snapshot(), nil), false, 2, populateACL))
	f.Fuzz(func(t *testing.T, b []byte) {
		ls, err := ReadSnapshotBody(bytes.NewReader(b), Options{ExtendedTypes: true}, 5)
		if err != nil {
			return
		}
		tr := ls.Tree
		if recomputeDigest(tr) != tr.Digest() {
			t.Fatalf("digest mismatch")
		}
		sum, err := quorum.CopySnapshotBody(nil, bytes.NewReader(b), quorum.SnapLimits{})
		if err != nil {
			t.Fatalf("loads, but CopySnapshotBody refuses it: %v", err)
		}
		if sum.Nodes != tr.NodeCount() || len(sum.Sessions) != len(ls.Sessions) || sum.Bytes != int64(len(b)) {
			t.Fatalf("CopySnapshotBody finds %d nodes, %d sessions, %d bytes; the tree has %d nodes, %d sessions of %d bytes",
				sum.Nodes, len(sum.Sessions), sum.Bytes, tr.NodeCount(), len(ls.Sessions), len(b))
		}
		var out bytes.Buffer
		if _, err := tr.Snapshot().WriteBody(&out, ls.Sessions); err != nil {
			t.Fatal(err)
		}
		again, err := ReadSnapshotBody(&out, Options{ExtendedTypes: true}, 5)
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
		if again.Tree.Digest() != tr.Digest() || again.Tree.NodeCount() != tr.NodeCount() ||
			again.Tree.UnresolvedACLs() != tr.UnresolvedACLs() {
			t.Fatalf("reload: another tree")
		}
	})
}

// TestSnapBodyReadsEveryNodeKind: ephemeral, container and TTL owners
// survive the body (they are in the stat), so a learner rebuilds its
// ephemeral, container and TTL sets.
func TestSnapBodyReadsEveryNodeKind(t *testing.T) {
	h := populate(t)
	ls, err := ReadSnapshotBody(bytes.NewReader(bodyBytes(t, h.tr.Snapshot(), nil)), Options{ExtendedTypes: true}, h.zxid)
	require.NoError(t, err)
	require.Equal(t, 1, ls.Tree.EphemeralCount())
	require.Equal(t, []string{"/c", "/t"}, ls.Tree.Expired(1<<40, 0))
	resp, code := ls.Tree.Read(Caller{}, 0, proto.OpGetData, &proto.GetDataRequest{Path: "/a/e"})
	require.Equal(t, proto.ErrOK, code)
	require.Equal(t, int64(9), resp.(*proto.GetDataResponse).Stat.EphemeralOwner)
}
