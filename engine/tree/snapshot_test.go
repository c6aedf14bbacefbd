package tree

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/adler32"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/zabkeeper/zabkeeper/proto"
	"pgregory.net/rapid"
)

// recomputeDigest hashes every node from scratch.
func recomputeDigest(t *Tree) uint64 {
	var d uint64
	for p, n := range t.allNodes() {
		d += nodeHash(p, n)
	}
	return d
}

// requireSameTrees compares two trees through their public reads.
func requireSameTrees(t require.TestingT, want, got *Tree) {
	require.Equal(t, want.Digest(), got.Digest())
	require.Equal(t, want.NodeCount(), got.NodeCount())
	require.Equal(t, want.ApproximateDataSize(), got.ApproximateDataSize())
	require.Equal(t, want.EphemeralCount(), got.EphemeralCount())
	require.Equal(t, want.Expired(1<<40, 0), got.Expired(1<<40, 0))
	super := Caller{Auth: []proto.Id{{Scheme: "super"}}}
	for p := range want.allNodes() {
		for _, r := range []struct {
			op  proto.OpCode
			req proto.Record
		}{
			{proto.OpGetData, &proto.GetDataRequest{Path: p}},
			{proto.OpGetChildren2, &proto.GetChildren2Request{Path: p}},
			{proto.OpGetACL, &proto.GetACLRequest{Path: p}},
		} {
			a, errA := want.Read(super, 0, r.op, r.req)
			b, errB := got.Read(super, 0, r.op, r.req)
			require.Equal(t, errA, errB, "%v %s", r.op, p)
			require.Equal(t, a, b, "%v %s", r.op, p)
		}
	}
	for s := range want.ephemerals {
		require.Equal(t, want.Ephemerals(s), got.Ephemerals(s))
	}
}

// populate builds a tree holding every kind of node.
func populate(t testing.TB) *harness {
	h := newHarness(t, Options{ExtendedTypes: true})
	h.mustCreate("/a", 0)
	h.create(anyone, "/a/data", "some bytes", 0)
	h.mustCreate("/a/s", proto.ModePersistentSequential)
	h.mustCreate("/a/s", proto.ModePersistentSequential)
	require.Equal(t, proto.ErrOK, h.create(Caller{SessionID: 9}, "/a/e", "eph", proto.ModeEphemeral).Err)
	h.mustCreate("/c", proto.ModeContainer)
	h.mustCreate("/c/x", 0)
	h.do(anyone, proto.OpDelete, &proto.DeleteRequest{Path: "/c/x", Version: -1})
	require.Equal(t, proto.ErrOK, h.do(anyone, proto.OpCreateTTL, &proto.CreateTTLRequest{Path: "/t", ACL: proto.OpenACLUnsafe, Flags: proto.ModePersistentWithTTL, TTL: 5}).Err)
	digest := []proto.ACL{{Perms: proto.PermRead, Id: proto.Id{Scheme: "digest", ID: DigestID("u", "p")}}, {Perms: 3, Id: proto.Id{Scheme: "ip", ID: "10.0.0.0/8"}}}
	require.Equal(t, proto.ErrOK, h.do(anyone, proto.OpCreate, &proto.CreateRequest{Path: "/acl", Data: []byte{}, ACL: digest}).Err)
	h.do(anyone, proto.OpSetData, &proto.SetDataRequest{Path: "/a", Data: []byte("v2"), Version: -1})
	return h
}

// snapBytes writes s with no sessions.
func snapBytes(t testing.TB, s *Snapshot) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := s.Write(&buf, nil)
	require.NoError(t, err)
	require.Equal(t, int64(buf.Len()), n)
	return buf.Bytes()
}

// digestZxidOf returns the zxid of the digest a snapshot ends with (33
// bytes from the end: zxid, version, digest, seal), or 0: a snapshot file
// is named for it when the snapshot is exact.
func digestZxidOf(b []byte) int64 {
	if len(b) < 33 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(b[len(b)-33:]))
}

// load reads a snapshot as if its file were named for its digest's zxid.
func load(b []byte, opts Options) (*Tree, error) {
	ls, err := ReadSnapshot(bytes.NewReader(b), opts, digestZxidOf(b))
	if err != nil {
		return nil, err
	}
	return ls.Tree, nil
}

func TestSnapshotRoundTrip(t *testing.T) {
	h := populate(t)
	require.Equal(t, recomputeDigest(h.tr), h.tr.Digest())
	b := snapBytes(t, h.tr.Snapshot())
	require.Equal(t, b, snapBytes(t, h.tr.Snapshot()), "deterministic")

	ls, err := ReadSnapshot(bytes.NewReader(b), Options{ExtendedTypes: true}, h.zxid)
	require.NoError(t, err)
	require.True(t, ls.HasDigest)
	require.False(t, ls.PendingDigest)
	require.Equal(t, SnapshotDigest{Zxid: h.zxid, Version: DigestVersion, Digest: h.tr.Digest()}, ls.Digest)
	loaded := ls.Tree
	require.Equal(t, h.zxid, loaded.LastZxid())
	requireSameTrees(t, h.tr, loaded)
	require.Equal(t, []string{"/a/e"}, loaded.Ephemerals(9))
	require.Equal(t, []string{"/c", "/t"}, loaded.Expired(1<<40, 0))
	// The loaded tree keeps working (sequence numbers included).
	h2 := &harness{t: t, tr: loaded, zxid: h.zxid, now: h.now}
	require.Equal(t, "/a/s0000000004", h2.mustCreate("/a/s", proto.ModePersistentSequential).Path)

	// Bytes after the digest seal (ZooKeeper 3.9's lastProcessedZxid) are
	// not read.
	_, err = load(append(bytes.Clone(b), 0, 0, 0, 0, 0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 1, '/'), Options{})
	require.NoError(t, err)

	// A snapshot without the digest (ZooKeeper with digests off) reads;
	// every other truncation and a flipped byte anywhere are errors.
	noDigest := len(b) - 33
	for i := 0; i < len(b); i++ {
		ls, err := ReadSnapshot(bytes.NewReader(b[:i]), Options{}, h.zxid)
		if i == noDigest {
			require.NoError(t, err)
			require.False(t, ls.HasDigest)
			requireSameTrees(t, h.tr, ls.Tree)
			continue
		}
		require.ErrorIs(t, err, ErrBadSnapshot, "truncated at %d", i)
	}
	for i := 0; i < len(b); i++ {
		c := bytes.Clone(b)
		c[i] ^= 0x41
		_, err := ReadSnapshot(bytes.NewReader(c), Options{}, h.zxid)
		require.ErrorIs(t, err, ErrBadSnapshot, "flipped at %d", i)
	}
}

// TestSnapshotWhileApplying writes a snapshot on another goroutine while the
// tree goes on changing (run under -race): setData that leaves the arena
// chunks mostly dead, so they are compacted under the writer; deletes whose
// ids the creates after them reuse; setACL that frees and reuses metas. The
// writer stops at its first write until the first round of changes is
// applied (so it reads most nodes after they changed), then runs beside the
// rest. The bytes written are those of a snapshot written before any
// change.
func TestSnapshotWhileApplying(t *testing.T) {
	h := populate(t)
	for i := range 200 {
		h.create(anyone, fmt.Sprintf("/n%03d", i), strings.Repeat("x", 3000), 0)
	}
	var before bytes.Buffer
	_, err := h.tr.Snapshot().Write(&before, nil)
	require.NoError(t, err)
	snap := h.tr.Snapshot()
	want := snap.Digest()
	done := make(chan []byte)
	gate := make(chan struct{})
	go func() {
		var buf bytes.Buffer
		_, err := snap.Write(&gatedWriter{w: &buf, gate: gate}, nil)
		if err != nil {
			done <- nil
			return
		}
		done <- buf.Bytes()
	}()
	chunks := len(h.tr.st.chunks)
	for round := range 3 {
		for i := range 200 {
			p := fmt.Sprintf("/n%03d", i)
			h.do(anyone, proto.OpSetData, &proto.SetDataRequest{Path: p, Data: []byte(strings.Repeat("y", 3000+round)), Version: -1})
			if round == 0 {
				h.do(anyone, proto.OpSetACL, &proto.SetACLRequest{Path: p, ACL: proto.ReadACLUnsafe, Version: -1})
				if i%2 == 0 {
					h.do(anyone, proto.OpDelete, &proto.DeleteRequest{Path: p, Version: -1})
				}
				h.mustCreate(fmt.Sprintf("/m%03d", i), 0)
			}
		}
		if round == 0 {
			close(gate)
		}
	}
	b := <-done
	require.NotNil(t, b)
	require.Equal(t, before.Bytes(), b, "the snapshot holds the tree as it was when taken")
	loaded, err := load(b, Options{})
	require.NoError(t, err)
	require.Equal(t, want, loaded.Digest())
	require.NotEqual(t, want, h.tr.Digest())
	require.Equal(t, recomputeDigest(h.tr), h.tr.Digest())
	dropped := 0
	for i, c := range h.tr.st.chunks[:chunks] {
		if c == nil || !sameBytes(c, snap.v.chunks[i]) {
			dropped++
		}
	}
	require.Positive(t, dropped, "chunks were compacted while the snapshot was written")
}

// gatedWriter waits for gate to close before its first write, then lets
// other goroutines run between writes.
type gatedWriter struct {
	w      io.Writer
	gate   chan struct{}
	opened bool
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	if !g.opened {
		<-g.gate
		g.opened = true
	}
	runtime.Gosched()
	return g.w.Write(p)
}

func TestLoadRejectsBadStructure(t *testing.T) {
	write := func(nodes map[string]*node) []byte {
		var d uint64
		for p, n := range nodes {
			d += nodeHash(p, n)
		}
		return snapBytes(t, snapshotOf(nodes, 5, d))
	}
	cases := map[string]map[string]*node{
		"no root":          {"/a": {}},
		"orphan":           {"/": {}, "/a/b": {}},
		"ephemeral parent": {"/": {}, "/e": {kind: kindEphemeral, owner: 1}, "/e/x": {}},
		"bad path":         {"/": {}, "/a/": {}},
	}
	for name, nodes := range cases {
		_, err := load(write(nodes), Options{})
		require.ErrorIs(t, err, ErrBadSnapshot, name)
	}
	tr, err := load(write(map[string]*node{"/": {}, "/a": {kind: kindTTL, owner: 4}}), Options{})
	require.NoError(t, err)
	require.Equal(t, []string{"/a"}, tr.Expired(1<<40, 0))

	// A digest for the snapshot's own zxid that does not match the tree,
	// sealed correctly: loaded and reported, as ZooKeeper does (its own
	// fuzzy snapshots can record that); the seals catch damage.
	good := New(Options{}).Snapshot()
	good.zxid = 7
	good.digest++
	ls, err := ReadSnapshot(bytes.NewReader(snapBytes(t, good)), Options{}, 7)
	require.NoError(t, err)
	require.True(t, ls.DigestMismatch)
	require.Equal(t, good.digest, ls.Digest.Digest)
	require.Equal(t, good.digest-1, ls.Tree.Digest())
}

// TestLoadGivesSystemNodesEmptyData: a snapshot written when the system
// nodes held null data loads with the empty data a fresh tree has.
func TestLoadGivesSystemNodesEmptyData(t *testing.T) {
	old := New(Options{})
	for _, p := range []string{rootPath, procPath, quotaPath, configPath} {
		cp := *old.node(p)
		cp.data = nil
		old.putNode(p, &cp)
	}
	got, err := load(snapBytes(t, old.Snapshot()), Options{})
	require.NoError(t, err)
	require.Equal(t, New(Options{}).Digest(), got.Digest())
	require.Equal(t, recomputeDigest(got), got.Digest())
	for _, p := range []string{rootPath, procPath, quotaPath, configPath} {
		resp, code := got.Read(Caller{}, 0, proto.OpGetData, &proto.GetDataRequest{Path: p})
		require.Equal(t, proto.ErrOK, code)
		require.NotNil(t, resp.(*proto.GetDataResponse).Data, p)
	}
}

func TestPathOrderIsDepthFirst(t *testing.T) {
	paths := []string{"/a-c", "/b", "/a/b/c", "/", "/a", "/a/b", "/a/a", "/zookeeper/quota", "/zookeeper"}
	slices.SortFunc(paths, pathOrder)
	require.Equal(t, []string{"/", "/a", "/a/a", "/a/b", "/a/b/c", "/a-c", "/b", "/zookeeper", "/zookeeper/quota"}, paths)
}

// TestSnapshotDigestVersion1: ZooKeeper's first digest trailers (version
// 1) carry the digest as a hex string; they read, and are not checked
// (another digest version).
func TestSnapshotDigestVersion1(t *testing.T) {
	h := populate(t)
	b := snapBytes(t, h.tr.Snapshot())
	b = b[:len(b)-33]
	b = binary.BigEndian.AppendUint64(b, uint64(h.zxid))
	b = binary.BigEndian.AppendUint32(b, 1)
	hex := fmt.Sprintf("%x", h.tr.Digest()+5)
	b = binary.BigEndian.AppendUint32(b, uint32(len(hex)))
	b = append(b, hex...)
	b = binary.BigEndian.AppendUint64(b, uint64(adler32.Checksum(b)))
	b = append(b, 0, 0, 0, 1, '/')
	ls, err := ReadSnapshot(bytes.NewReader(b), Options{}, h.zxid)
	require.NoError(t, err)
	require.True(t, ls.HasDigest)
	require.Equal(t, SnapshotDigest{Zxid: h.zxid, Version: 1, Digest: h.tr.Digest() + 5}, ls.Digest)
	require.False(t, ls.PendingDigest)
}

// TestLoadSharesACLs checks that a loaded tree's nodes share their ACL lists
// through the tree's ACL cache: loaded nodes with equal lists, and a node
// created after the load with an equal list, hold the same list.
func TestLoadSharesACLs(t *testing.T) {
	h := populate(t)
	digest := []proto.ACL{{Perms: proto.PermRead, Id: proto.Id{Scheme: "digest", ID: DigestID("u", "p")}}, {Perms: 3, Id: proto.Id{Scheme: "ip", ID: "10.0.0.0/8"}}}
	require.Equal(t, proto.ErrOK, h.do(anyone, proto.OpCreate, &proto.CreateRequest{Path: "/acl2", Data: []byte{}, ACL: digest}).Err)
	tr, err := load(snapBytes(t, h.tr.Snapshot()), Options{ExtendedTypes: true})
	require.NoError(t, err)
	require.Same(t, tr.node("/acl").meta.acl, tr.node("/acl2").meta.acl)
	require.Same(t, tr.node("/a").meta.acl, tr.node("/a/data").meta.acl)

	h2 := &harness{t: t, tr: tr, now: h.now}
	h2.zxid = h.zxid
	require.Equal(t, proto.ErrOK, h2.do(anyone, proto.OpCreate, &proto.CreateRequest{Path: "/acl3", Data: []byte{}, ACL: slices.Clone(digest)}).Err)
	require.Same(t, tr.node("/acl").meta.acl, tr.node("/acl3").meta.acl)
	require.Equal(t, proto.ErrOK, h2.do(anyone, proto.OpCreate, &proto.CreateRequest{Path: "/open", Data: []byte{}, ACL: slices.Clone(proto.OpenACLUnsafe)}).Err)
	require.Same(t, tr.node("/a").meta.acl, tr.node("/open").meta.acl)
	require.Equal(t, digest, tr.node("/acl3").acl())
}

// TestSnapshotOrderFromRecords checks that the order a snapshot writes its
// nodes in, worked out from the frozen records when it is written, is the
// order of the tree's sorted child lists when the snapshot was taken,
// whatever the tree did afterwards: random creates and deletes on three
// levels, with names that tie on their first 8 bytes, and sequential ones.
func TestSnapshotOrderFromRecords(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		tr := New(Options{})
		c := Caller{SessionID: 1}
		zxid := int64(0)
		name := func() string {
			switch rapid.IntRange(0, 2).Draw(rt, "kind") {
			case 0:
				return fmt.Sprintf("seq-%010d", rapid.IntRange(0, 300).Draw(rt, "seq"))
			case 1:
				return fmt.Sprintf("c1-1234%d", rapid.IntRange(0, 300).Draw(rt, "tie"))
			}
			return fmt.Sprintf("n%d", rapid.IntRange(0, 30).Draw(rt, "n"))
		}
		step := func() {
			path := ""
			for range rapid.IntRange(1, 3).Draw(rt, "depth") {
				path += "/" + name()
			}
			zxid++
			op, req := proto.OpCreate, proto.Record(&proto.CreateRequest{Path: path, Data: []byte("v"), ACL: proto.OpenACLUnsafe})
			if rapid.IntRange(0, 3).Draw(rt, "delete") == 0 {
				op, req = proto.OpDelete, &proto.DeleteRequest{Path: path, Version: -1}
			}
			tr.Apply(tr.Prepare(Txn{Zxid: zxid, SessionID: 1}, c, op, req))
		}
		for range rapid.IntRange(0, 600).Draw(rt, "before") {
			step()
		}
		snap := tr.Snapshot()
		want := tr.preorder()
		require.Equal(rt, want, snap.v.preorder(func() {}))
		for range rapid.IntRange(0, 600).Draw(rt, "after") {
			step()
		}
		require.Equal(rt, want, snap.v.preorder(func() {}), "after the tree changed")
	})
}

// preorder returns the ids of the nodes depth first, parents before
// children, siblings by name, walking the tree's sorted child lists: the
// reference for storeView.preorder, which works the order out from the
// frozen records (it ran on the event loop until the snapshot took 10 ms
// there for 250,000 znodes).
func (t *Tree) preorder() []int32 {
	out := make([]int32, 0, t.st.count)
	root := t.st.find(rootPath)
	if root < 0 {
		return out
	}
	stack := []int32{root}
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		out = append(out, id)
		if set := t.kids[id]; set != nil {
			for i := len(set.chunks) - 1; i >= 0; i-- {
				c := set.chunks[i]
				for j := len(c) - 1; j >= 0; j-- {
					stack = append(stack, c[j])
				}
			}
		}
	}
	return out
}

// sortByName sorts as slices.SortFunc by name does, whether it sorts a
// short list at once or radix-sorts a long one on the names' 8-byte keys
// (names tying on their keys, and on every 16-bit digit but one), and
// yields along the way on long lists.
func TestSortByName(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(0, 4*yieldEvery).Draw(rt, "n")
		seed := rapid.Uint64().Draw(rt, "seed")
		rng := rand.New(rand.NewPCG(seed, 1))
		names := make([][]byte, n)
		seen := map[string]bool{}
		for i := range names {
			for {
				var name string
				switch rng.IntN(4) {
				case 0: // ties on the key: the same first 8 bytes
					name = fmt.Sprintf("c12-3456%d", rng.IntN(10*n+1))
				case 1: // sequential znodes
					name = fmt.Sprintf("q%010d", rng.IntN(10*n+1))
				case 2: // short names, keys zero-padded
					name = fmt.Sprintf("%x", rng.IntN(10*n+1))
				default:
					name = fmt.Sprintf("n%d-%d", rng.IntN(50), rng.IntN(10*n+1))
				}
				if !seen[name] {
					seen[name] = true
					names[i] = []byte(name)
					break
				}
			}
		}
		keys := make([]uint64, n)
		c := make([]int32, n)
		for i := range c {
			keys[i] = nameKey(names[i])
			c[i] = int32(i)
		}
		byName := func(a, b int32) int { return bytes.Compare(names[a], names[b]) }
		want := slices.Clone(c)
		slices.SortFunc(want, byName)
		yields := 0
		sortByName(c, keys, byName, func() { yields++ })
		require.Equal(rt, want, c)
		if n > yieldEvery {
			require.GreaterOrEqual(rt, yields, n/yieldEvery, "yields while sorting %d", n)
		}
	})
}

// yieldCounter is a Yielder over a buffer.
type yieldCounter struct {
	bytes.Buffer
	yields int
}

func (y *yieldCounter) Yield() { y.yields++ }

// A snapshot written to a Yielder yields along its passes and writes the
// same bytes as to any writer.
func TestSnapshotWriteYields(t *testing.T) {
	tr := New(Options{})
	c := Caller{SessionID: 1}
	for i := range 3 * yieldEvery {
		path := fmt.Sprintf("/q%07d", (i*7919)%(3*yieldEvery)) // one parent, out of name order
		txn := tr.Prepare(Txn{Zxid: int64(i + 1), SessionID: 1}, c, proto.OpCreate,
			&proto.CreateRequest{Path: path, Data: []byte("v"), ACL: proto.OpenACLUnsafe})
		require.Equal(t, proto.ErrOK, tr.Apply(txn).Err)
	}
	snap := tr.Snapshot()
	var plain bytes.Buffer
	_, err := snap.Write(&plain, nil)
	require.NoError(t, err)
	var y yieldCounter
	_, err = snap.Write(&y, nil)
	require.NoError(t, err)
	require.Equal(t, plain.Bytes(), y.Bytes())
	require.GreaterOrEqual(t, y.yields, 3*3, "the order, the ACL numbering and the nodes each yield")
}
