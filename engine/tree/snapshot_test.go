package tree

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/zabkeeper/zabkeeper/proto"
)

// recomputeDigest hashes every node from scratch.
func recomputeDigest(t *Tree) uint64 {
	var d uint64
	for p, n := range t.nodes {
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
	for p := range want.nodes {
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

func TestSnapshotRoundTrip(t *testing.T) {
	h := populate(t)
	require.Equal(t, recomputeDigest(h.tr), h.tr.Digest())
	snap := h.tr.Snapshot()
	var buf bytes.Buffer
	n, err := snap.WriteTo(&buf)
	require.NoError(t, err)
	require.Equal(t, int64(buf.Len()), n)
	var again bytes.Buffer
	_, err = h.tr.Snapshot().WriteTo(&again)
	require.NoError(t, err)
	require.Equal(t, buf.Bytes(), again.Bytes(), "deterministic")

	loaded, err := Load(bytes.NewReader(buf.Bytes()), Options{ExtendedTypes: true})
	require.NoError(t, err)
	require.Equal(t, h.zxid, loaded.LastZxid())
	requireSameTrees(t, h.tr, loaded)
	require.Equal(t, []string{"/a/e"}, loaded.Ephemerals(9))
	require.Equal(t, []string{"/c", "/t"}, loaded.Expired(1<<40, 0))
	// The loaded tree keeps working (sequence numbers included).
	h2 := &harness{t: t, tr: loaded, zxid: h.zxid, now: h.now}
	require.Equal(t, "/a/s0000000004", h2.mustCreate("/a/s", proto.ModePersistentSequential).Path)

	// Load reads exactly the snapshot's bytes.
	r := bytes.NewReader(append(buf.Bytes(), "trailer"...))
	_, err = Load(r, Options{})
	require.NoError(t, err)
	require.Equal(t, 7, r.Len())

	// Every truncation and a flipped byte anywhere are errors.
	for i := 0; i < buf.Len(); i++ {
		_, err := Load(bytes.NewReader(buf.Bytes()[:i]), Options{})
		require.Error(t, err, "truncated at %d", i)
	}
	for i := 0; i < buf.Len(); i++ {
		b := bytes.Clone(buf.Bytes())
		b[i] ^= 0x41
		_, err := Load(bytes.NewReader(b), Options{})
		require.Error(t, err, "flipped at %d", i)
	}
}

// TestSnapshotWhileApplying writes a snapshot on another goroutine while the
// tree goes on changing; run under -race.
func TestSnapshotWhileApplying(t *testing.T) {
	h := populate(t)
	for i := range 200 {
		h.create(anyone, fmt.Sprintf("/n%03d", i), "x", 0)
	}
	snap := h.tr.Snapshot()
	want := snap.Digest()
	done := make(chan []byte)
	go func() {
		var buf bytes.Buffer
		_, err := snap.WriteTo(&buf)
		if err != nil {
			done <- nil
			return
		}
		done <- buf.Bytes()
	}()
	for i := range 200 {
		p := fmt.Sprintf("/n%03d", i)
		h.do(anyone, proto.OpSetData, &proto.SetDataRequest{Path: p, Data: []byte("changed"), Version: -1})
		h.do(anyone, proto.OpSetACL, &proto.SetACLRequest{Path: p, ACL: proto.ReadACLUnsafe, Version: -1})
		if i%2 == 0 {
			h.do(anyone, proto.OpDelete, &proto.DeleteRequest{Path: p, Version: -1})
		}
		h.mustCreate(fmt.Sprintf("/m%03d", i), 0)
	}
	b := <-done
	require.NotNil(t, b)
	loaded, err := Load(bytes.NewReader(b), Options{})
	require.NoError(t, err)
	require.Equal(t, want, loaded.Digest())
	require.NotEqual(t, want, h.tr.Digest())
	require.Equal(t, recomputeDigest(h.tr), h.tr.Digest())
}

func TestLoadRejectsBadStructure(t *testing.T) {
	write := func(nodes map[string]*node) []byte {
		var d uint64
		for p, n := range nodes {
			d += nodeHash(p, n)
		}
		var buf bytes.Buffer
		_, err := (&Snapshot{nodes: nodes, digest: d}).WriteTo(&buf)
		require.NoError(t, err)
		return buf.Bytes()
	}
	cases := map[string]map[string]*node{
		"no root":           {"/a": {}},
		"orphan":            {"/": {}, "/a/b": {}},
		"ephemeral parent":  {"/": {}, "/e": {kind: kindEphemeral, owner: 1}, "/e/x": {}},
		"bad path":          {"/": {}, "/a/": {}},
		"owner on non-eph":  {"/": {}, "/a": {owner: 3}},
		"unknown kind":      {"/": {}, "/a": {kind: kindLimit}},
		"ttl on persistent": {"/": {}, "/a": {ttl: 3}},
	}
	for name, nodes := range cases {
		_, err := Load(bytes.NewReader(write(nodes)), Options{})
		require.ErrorIs(t, err, ErrBadSnapshot, name)
	}
	_, err := Load(bytes.NewReader(write(map[string]*node{"/": {}, "/a": {kind: kindTTL, ttl: 4}})), Options{})
	require.NoError(t, err)
}

// TestLoadGivesSystemNodesEmptyData: a snapshot written when the system
// nodes held null data loads with the empty data a fresh tree has.
func TestLoadGivesSystemNodesEmptyData(t *testing.T) {
	old := New(Options{})
	for _, p := range []string{rootPath, procPath, quotaPath, configPath} {
		cp := *old.nodes[p]
		cp.data = nil
		old.putNode(p, &cp)
	}
	var buf bytes.Buffer
	_, err := old.Snapshot().WriteTo(&buf)
	require.NoError(t, err)
	got, err := Load(&buf, Options{})
	require.NoError(t, err)
	require.Equal(t, New(Options{}).Digest(), got.Digest())
	require.Equal(t, recomputeDigest(got), got.Digest())
	for _, p := range []string{rootPath, procPath, quotaPath, configPath} {
		resp, code := got.Read(Caller{}, 0, proto.OpGetData, &proto.GetDataRequest{Path: p})
		require.Equal(t, proto.ErrOK, code)
		require.NotNil(t, resp.(*proto.GetDataResponse).Data, p)
	}
}
