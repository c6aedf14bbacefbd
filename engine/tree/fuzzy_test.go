package tree

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/zabkeeper/zabkeeper/proto"
)

// TestReplayOverFuzzySnapshot: ZooKeeper's snapshots are fuzzy (taken
// while txns apply), so a snapshot named for zxid Z may hold the effect of
// txns after Z, and restore replays the log from Z+1 over it. For a
// snapshot of the state after every txn k of a history, named for the
// history's start, replaying the whole history on it gives the tree that
// applying it once gives: creates of nodes already there, deletes of nodes
// already gone, and setData/setACL again change nothing ZooKeeper would not.
func TestReplayOverFuzzySnapshot(t *testing.T) {
	h := newHarness(t, Options{ExtendedTypes: true})
	h.mustCreate("/base", 0)
	start := h.zxid
	base := h.tr.Snapshot()

	var txns []*Txn
	run := func(c Caller, op proto.OpCode, req proto.Record) {
		txn := h.prepare(c, op, req)
		b, err := UnmarshalTxn(txn.Marshal())
		require.NoError(t, err)
		txns = append(txns, b)
		h.tr.Apply(txn)
	}
	open := proto.OpenACLUnsafe
	run(anyone, proto.OpCreate, &proto.CreateRequest{Path: "/base/a", Data: []byte("1"), ACL: open})
	run(anyone, proto.OpCreate2, &proto.CreateRequest{Path: "/base/b", ACL: open})
	run(anyone, proto.OpSetData, &proto.SetDataRequest{Path: "/base/a", Data: []byte("2"), Version: -1})
	run(anyone, proto.OpDelete, &proto.DeleteRequest{Path: "/base/b", Version: -1})
	run(anyone, proto.OpCreate, &proto.CreateRequest{Path: "/base/b", Data: []byte("again"), ACL: open})
	run(anyone, proto.OpSetACL, &proto.SetACLRequest{Path: "/base/a", ACL: proto.ReadACLUnsafe, Version: -1})
	run(anyone, proto.OpCreate, &proto.CreateRequest{Path: "/base/s", ACL: open, Flags: proto.ModePersistentSequential})
	run(Caller{SessionID: 7}, proto.OpCreate, &proto.CreateRequest{Path: "/base/e", ACL: open, Flags: proto.ModeEphemeral})
	run(anyone, proto.OpMulti, &proto.MultiRequest{Ops: []proto.MultiOp{
		{Type: proto.OpCreate, Req: &proto.CreateRequest{Path: "/base/m", ACL: open}},
		{Type: proto.OpSetData, Req: &proto.SetDataRequest{Path: "/base/b", Data: []byte("m"), Version: -1}},
	}})
	run(anyone, proto.OpDelete, &proto.DeleteRequest{Path: "/base/m", Version: -1})
	h.zxid++
	closeTxn := &Txn{Zxid: h.zxid, SessionID: 7, Type: proto.OpCloseSession, Time: h.now, Paths: []string{"/base/e"}}
	txns = append(txns, closeTxn)
	h.tr.Apply(closeTxn)
	final := h.tr

	states := []*Snapshot{base}
	replay := New(Options{ExtendedTypes: true})
	var buf bytes.Buffer
	_, err := base.Write(&buf, nil)
	require.NoError(t, err)
	replay, err = load(buf.Bytes(), Options{ExtendedTypes: true})
	require.NoError(t, err)
	for _, txn := range txns {
		replay.Apply(txn)
		states = append(states, replay.Snapshot())
	}
	requireSameTrees(t, final, replay)

	for k, st := range states {
		var buf bytes.Buffer
		_, err := st.Write(&buf, nil)
		require.NoError(t, err)
		ls, err := ReadSnapshot(bytes.NewReader(buf.Bytes()), Options{ExtendedTypes: true}, start)
		require.NoError(t, err)
		require.Equal(t, k > 0, ls.PendingDigest, "the digest is for a later zxid than the name's")
		tr := ls.Tree
		for _, txn := range txns {
			tr.Apply(txn)
		}
		requireSameTrees(t, final, tr)
		require.Equal(t, ls.Digest.Digest, digestAt(t, txns, base, ls.Digest.Zxid), "state %d", k)
	}
}

// digestAt returns the digest of base with txns applied up to zxid.
func digestAt(t *testing.T, txns []*Txn, base *Snapshot, zxid int64) uint64 {
	var buf bytes.Buffer
	_, err := base.Write(&buf, nil)
	require.NoError(t, err)
	tr, err := load(buf.Bytes(), Options{ExtendedTypes: true})
	require.NoError(t, err)
	for _, txn := range txns {
		if txn.Zxid > zxid {
			break
		}
		tr.Apply(txn)
	}
	return tr.Digest()
}
