package engine

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/proto"
)

// A caller that hands every delivered batch's Outputs back (ReuseOutputs,
// as the server does) still gets each reply intact and in order, also with
// several requests outstanding on one connection, writes and reads mixed,
// so that answered requests' records are reused while others still wait.
func TestReusedOutputsAndRequestsKeepReplies(t *testing.T) {
	h := newHarness(t)
	h.connect(1, 1000)
	h.connect(2, 1000)
	var got []Output // copies, as a caller that delivers before Advance sees them
	collect := func() {
		for h.n.HasReady() {
			rd := h.n.Ready()
			h.log = append(h.log, rd.Entries...)
			got = append(got, rd.Outputs...)
			h.n.Advance()
			h.n.ReuseOutputs(rd.Outputs)
		}
	}
	persist := func() {
		collect()
		h.n.Persisted(h.log[len(h.log)-1].Zxid)
		collect()
	}
	for round := range 3 {
		base := int32(10 * round)
		h.n.Submit(Request{Conn: 1, Xid: base + 1, Op: proto.OpCreate, Time: h.now,
			Body: &proto.CreateRequest{Path: "/r" + string(rune('a'+round)), Data: []byte("v"), ACL: proto.OpenACLUnsafe}})
		h.n.Submit(Request{Conn: 1, Xid: base + 2, Op: proto.OpGetData, Time: h.now,
			Body: &proto.GetDataRequest{Path: "/r" + string(rune('a'+round))}})
		h.n.Submit(Request{Conn: 2, Xid: base + 3, Op: proto.OpExists, Time: h.now,
			Body: &proto.ExistsRequest{Path: "/"}})
		collect()
		h.n.Submit(Request{Conn: 1, Xid: base + 4, Op: proto.OpSetData, Time: h.now,
			Body: &proto.SetDataRequest{Path: "/r" + string(rune('a'+round)), Data: []byte("w"), Version: -1}})
		persist()
	}
	var xids1, xids2 []int32
	for _, o := range got {
		require.Equal(t, OutReply, o.Kind)
		require.Equal(t, proto.ErrOK, o.Header.Err, "xid %d", o.Header.Xid)
		switch o.Conn {
		case 1:
			xids1 = append(xids1, o.Header.Xid)
			switch o.Header.Xid % 10 {
			case 1:
				require.IsType(t, &proto.CreateResponse{}, o.Body)
			case 2:
				// The read waited for the create before it on the session.
				require.Equal(t, []byte("v"), o.Body.(*proto.GetDataResponse).Data)
			case 4:
				require.Equal(t, int32(1), o.Body.(*proto.SetDataResponse).Stat.Version)
			}
		case 2:
			xids2 = append(xids2, o.Header.Xid)
			require.IsType(t, &proto.ExistsResponse{}, o.Body)
		}
	}
	require.Equal(t, []int32{1, 2, 4, 11, 12, 14, 21, 22, 24}, xids1, "replies in request order")
	require.Equal(t, []int32{3, 13, 23}, xids2)
}
