package tree

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/zabkeeper/zabkeeper/proto"
)

func multi(ops ...proto.MultiOp) *proto.MultiRequest { return &proto.MultiRequest{Ops: ops} }

func opCreate(typ proto.OpCode, path string, mode int32) proto.MultiOp {
	return proto.MultiOp{Type: typ, Req: &proto.CreateRequest{Path: path, ACL: proto.OpenACLUnsafe, Flags: mode}}
}

func TestMultiSuccess(t *testing.T) {
	h := newHarness(t, Options{})
	h.mustCreate("/x", 0)
	_, err := h.tr.Read(anyone, 1, proto.OpGetChildren, &proto.GetChildrenRequest{Path: "/", Watch: true})
	require.Equal(t, proto.ErrOK, err)
	_, err = h.tr.Read(anyone, 2, proto.OpGetData, &proto.GetDataRequest{Path: "/x", Watch: true})
	require.Equal(t, proto.ErrOK, err)
	res := h.do(anyone, proto.OpMulti, multi(
		opCreate(proto.OpCreate, "/a", 0),
		opCreate(proto.OpCreate2, "/a/b", proto.ModePersistentSequential),
		proto.MultiOp{Type: proto.OpCheck, Req: &proto.CheckVersionRequest{Path: "/x", Version: 0}},
		proto.MultiOp{Type: proto.OpSetData, Req: &proto.SetDataRequest{Path: "/x", Data: []byte("v"), Version: 0}},
		proto.MultiOp{Type: proto.OpCheck, Req: &proto.CheckVersionRequest{Path: "/x", Version: 1}},
		proto.MultiOp{Type: proto.OpDelete, Req: &proto.DeleteRequest{Path: "/a/b0000000000", Version: 0}},
	))
	require.Equal(t, proto.ErrOK, res.Err)
	z := h.zxid
	rs := res.Resp.(*proto.MultiResponse).Results
	require.Len(t, rs, 6)
	require.Equal(t, proto.MultiResult{Type: proto.OpCreate, Resp: &proto.CreateResponse{Path: "/a"}}, rs[0])
	require.Equal(t, proto.OpCreate2, rs[1].Type)
	require.Equal(t, "/a/b0000000000", rs[1].Resp.(*proto.Create2Response).Path)
	require.Equal(t, proto.MultiResult{Type: proto.OpCheck}, rs[2])
	require.Equal(t, proto.OpSetData, rs[3].Type)
	require.Equal(t, int32(1), rs[3].Resp.(*proto.SetDataResponse).Stat.Version)
	require.Equal(t, proto.MultiResult{Type: proto.OpCheck}, rs[4])
	require.Equal(t, proto.MultiResult{Type: proto.OpDelete}, rs[5])
	require.Equal(t, []Event{
		ev(1, proto.EventNodeChildrenChanged, "/", z),
		ev(2, proto.EventNodeDataChanged, "/x", z),
	}, res.Events)
	a := h.stat("/a")
	require.Equal(t, z, a.Czxid)
	require.Equal(t, int32(2), a.Cversion)
	require.Equal(t, int32(0), a.NumChildren)
}

func TestMultiFailureRollsBack(t *testing.T) {
	h := newHarness(t, Options{})
	h.mustCreate("/x", 0)
	_, err := h.tr.Read(anyone, 1, proto.OpExists, &proto.ExistsRequest{Path: "/a", Watch: true})
	require.Equal(t, proto.ErrNoNode, err)
	digest, count := h.tr.Digest(), h.tr.NodeCount()
	res := h.do(anyone, proto.OpMulti, multi(
		opCreate(proto.OpCreate, "/a", 0),
		proto.MultiOp{Type: proto.OpSetData, Req: &proto.SetDataRequest{Path: "/x", Version: -1}},
		proto.MultiOp{Type: proto.OpCheck, Req: &proto.CheckVersionRequest{Path: "/x", Version: 0}}, // now 1
		opCreate(proto.OpCreate, "/b", 0),
		proto.MultiOp{Type: proto.OpDelete, Req: &proto.DeleteRequest{Path: "/nope", Version: -1}},
	))
	require.Equal(t, proto.ErrOK, res.Err, "the header stays OK")
	require.Empty(t, res.Events)
	var codes []proto.ErrCode
	for _, r := range res.Resp.(*proto.MultiResponse).Results {
		require.Equal(t, proto.OpError, r.Type)
		require.Equal(t, &proto.ErrorResponse{Err: r.Err}, r.Resp)
		codes = append(codes, r.Err)
	}
	require.Equal(t, []proto.ErrCode{0, 0, proto.ErrBadVersion, proto.ErrRuntimeInconsistency, proto.ErrRuntimeInconsistency}, codes)
	require.Equal(t, digest, h.tr.Digest())
	require.Equal(t, count, h.tr.NodeCount())
	require.Zero(t, h.tr.PendingCount())
	require.Equal(t, int32(0), h.stat("/x").Version)

	// The rolled-back creates are not visible to the next prepare either.
	txn1 := h.prepare(anyone, proto.OpMulti, multi(opCreate(proto.OpCreate, "/a", 0), opCreate(proto.OpCreate, "/a", 0)))
	txn2 := h.prepare(anyone, proto.OpCreate, &proto.CreateRequest{Path: "/a", ACL: proto.OpenACLUnsafe})
	require.Equal(t, proto.OpError, txn1.Ops[0].Type)
	require.Equal(t, proto.ErrNodeExists, txn1.Ops[1].Err)
	require.Equal(t, proto.OpCreate, txn2.Type)

	// Read ops are not allowed in multi.
	txn3 := h.prepare(anyone, proto.OpMulti, multi(proto.MultiOp{Type: proto.OpGetData, Req: &proto.GetDataRequest{Path: "/"}}))
	require.Equal(t, proto.ErrUnimplemented, txn3.Ops[0].Err)

	// Empty multi.
	res = h.do(anyone, proto.OpMulti, multi())
	require.Equal(t, &proto.MultiResponse{Results: []proto.MultiResult{}}, res.Resp)
}

func TestMultiRead(t *testing.T) {
	h := newHarness(t, Options{})
	h.create(anyone, "/a", "data", 0)
	h.mustCreate("/a/b", 0)
	resp, err := h.tr.Read(anyone, 5, proto.OpMultiRead, multi(
		proto.MultiOp{Type: proto.OpGetChildren, Req: &proto.GetChildrenRequest{Path: "/a", Watch: true}},
		proto.MultiOp{Type: proto.OpGetData, Req: &proto.GetDataRequest{Path: "/nope"}},
		proto.MultiOp{Type: proto.OpGetData, Req: &proto.GetDataRequest{Path: "/a", Watch: true}},
	))
	require.Equal(t, proto.ErrOK, err)
	rs := resp.(*proto.MultiResponse).Results
	require.Equal(t, proto.MultiResult{Type: proto.OpGetChildren, Resp: &proto.GetChildrenResponse{Children: []string{"b"}}}, rs[0])
	require.Equal(t, proto.MultiResult{Type: proto.OpError, Err: proto.ErrNoNode, Resp: &proto.ErrorResponse{Err: proto.ErrNoNode}}, rs[1])
	require.Equal(t, []byte("data"), rs[2].Resp.(*proto.GetDataResponse).Data)
	require.Equal(t, map[WatcherID][]string{5: {"/a"}}, h.tr.WatchesByWatcher())
	require.Equal(t, 2, h.tr.WatchCount())
	_, err = h.tr.Read(anyone, 5, proto.OpMultiRead, multi(opCreate(proto.OpCreate, "/z", 0)))
	require.Equal(t, proto.ErrMarshallingError, err)
}
