package tree

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/zabkeeper/zabkeeper/proto"
)

// A request whose txn would exceed MaxTxnSize fails with BadArguments before
// anything is proposed, and leaves no pending change behind.
func TestPrepareRefusesTxnOverLimit(t *testing.T) {
	h := newHarness(t, Options{MaxTxnSize: 1000})
	require.Equal(t, proto.ErrOK, h.create(anyone, "/ok", strings.Repeat("a", 800), 0).Err)
	res := h.create(anyone, "/big", strings.Repeat("b", 1000), 0)
	require.Equal(t, proto.ErrBadArguments, res.Err)
	require.Equal(t, proto.ErrOK, h.create(anyone, "/big", "small", 0).Err, "the refused create left no pending node")

	res = h.do(anyone, proto.OpSetData, &proto.SetDataRequest{Path: "/ok", Data: []byte(strings.Repeat("c", 1000)), Version: -1})
	require.Equal(t, proto.ErrBadArguments, res.Err)
	require.Equal(t, int32(0), h.stat("/ok").Version)

	// Each op fits; together they do not.
	ops := make([]proto.MultiOp, 4)
	for i := range ops {
		ops[i] = proto.MultiOp{Type: proto.OpCreate, Req: &proto.CreateRequest{
			Path: "/m" + string(rune('0'+i)), Data: []byte(strings.Repeat("d", 300)), ACL: proto.OpenACLUnsafe}}
	}
	res = h.do(anyone, proto.OpMulti, multi(ops...))
	require.Equal(t, proto.ErrBadArguments, res.Err)
	require.Equal(t, proto.ErrOK, h.create(anyone, "/m0", "", 0).Err, "the refused multi left no pending node")

	// The default follows jute.maxbuffer's default.
	h = newHarness(t, Options{})
	require.Equal(t, proto.ErrOK, h.create(anyone, "/a", strings.Repeat("a", proto.DefaultMaxBuffer), 0).Err)
	require.Equal(t, proto.ErrBadArguments, h.create(anyone, "/b", strings.Repeat("b", proto.TxnLimit(proto.DefaultMaxBuffer)), 0).Err)
}
