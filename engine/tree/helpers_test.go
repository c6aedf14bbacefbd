package tree

import (
	"github.com/stretchr/testify/require"
	"github.com/zabkeeper/zabkeeper/proto"
)

// harness drives a Tree through Prepare and Apply with increasing zxids and
// a fake clock.
type harness struct {
	t    require.TestingT
	tr   *Tree
	zxid int64
	now  int64
}

func newHarness(t require.TestingT, opts Options) *harness {
	return &harness{t: t, tr: New(opts), now: 1000}
}

var anyone = Caller{SessionID: 1}

// prepare prepares one request with the next zxid.
func (h *harness) prepare(c Caller, op proto.OpCode, req proto.Record) *Txn {
	h.zxid++
	h.now += 10
	return h.tr.Prepare(Txn{Zxid: h.zxid, SessionID: c.SessionID, Cxid: int32(h.zxid), Time: h.now}, c, op, req)
}

// do prepares and applies one request.
func (h *harness) do(c Caller, op proto.OpCode, req proto.Record) Result {
	alone := h.tr.PendingCount() == 0
	txn := h.prepare(c, op, req)
	// Every txn must survive the log.
	back, err := UnmarshalTxn(txn.Marshal())
	require.NoError(h.t, err)
	require.Equal(h.t, txn, back)
	// The digest the leader puts in the txn is the tree's after it.
	want := h.tr.PendingDigest()
	res := h.tr.Apply(back)
	if alone {
		require.Equal(h.t, want, h.tr.Digest(), "PendingDigest before Apply is the digest after it")
	}
	return res
}

func (h *harness) create(c Caller, path string, data string, mode int32) Result {
	return h.do(c, proto.OpCreate2, &proto.CreateRequest{Path: path, Data: []byte(data), ACL: proto.OpenACLUnsafe, Flags: mode})
}

func (h *harness) mustCreate(path string, mode int32) *proto.Create2Response {
	res := h.create(anyone, path, "", mode)
	require.Equal(h.t, proto.ErrOK, res.Err, "create %s", path)
	return res.Resp.(*proto.Create2Response)
}

func (h *harness) stat(path string) proto.Stat {
	resp, err := h.tr.Read(anyone, 0, proto.OpExists, &proto.ExistsRequest{Path: path})
	require.Equal(h.t, proto.ErrOK, err, "exists %s", path)
	return resp.(*proto.ExistsResponse).Stat
}

func (h *harness) children(path string) []string {
	resp, err := h.tr.Read(anyone, 0, proto.OpGetChildren, &proto.GetChildrenRequest{Path: path})
	require.Equal(h.t, proto.ErrOK, err, "getChildren %s", path)
	return resp.(*proto.GetChildrenResponse).Children
}

func (h *harness) exists(path string) bool {
	_, err := h.tr.Read(anyone, 0, proto.OpExists, &proto.ExistsRequest{Path: path})
	return err == proto.ErrOK
}

func ev(w WatcherID, typ int32, path string, zxid int64) Event {
	return Event{Watcher: w, Event: proto.WatcherEvent{Type: typ, State: proto.StateSyncConnected, Path: path}, Zxid: zxid}
}
