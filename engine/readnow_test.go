package engine

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/proto"
)

func TestReadNowAnswersWatchlessReads(t *testing.T) {
	h := newHarness(t)
	h.connect(1, 1000)
	h.submit(1, 1, proto.OpCreate, &proto.CreateRequest{Path: "/a", Data: []byte("x"), ACL: proto.OpenACLUnsafe})
	h.persistAll()
	h.take(1)

	out, ok := h.n.ReadNow(Request{Conn: 1, Xid: 2, Op: proto.OpGetData, Body: &proto.GetDataRequest{Path: "/a"}})
	require.True(t, ok)
	require.Equal(t, OutReply, out.Kind)
	require.Equal(t, int32(2), out.Header.Xid)
	require.Equal(t, h.n.LastZxid(), out.Header.Zxid)
	require.Equal(t, []byte("x"), out.Body.(*proto.GetDataResponse).Data)

	out, ok = h.n.ReadNow(Request{Conn: 1, Xid: 3, Op: proto.OpExists, Body: &proto.ExistsRequest{Path: "/none"}})
	require.True(t, ok)
	require.Equal(t, proto.ErrNoNode, out.Header.Err)
	require.Nil(t, out.Body)
	require.False(t, h.n.HasReady(), "ReadNow changes nothing and produces no Ready")
}

func TestReadNowRefusesWhatMustGoInTurn(t *testing.T) {
	h := newHarness(t)
	h.connect(1, 1000)
	h.connect(2, 1000)
	h.submit(1, 1, proto.OpCreate, &proto.CreateRequest{Path: "/a", ACL: proto.OpenACLUnsafe})
	h.persistAll()
	h.take(1)

	// A watch is state: it goes through Submit.
	_, ok := h.n.ReadNow(Request{Conn: 1, Xid: 2, Op: proto.OpGetData, Body: &proto.GetDataRequest{Path: "/a", Watch: true}})
	require.False(t, ok)
	// So are writes and unknown connections.
	_, ok = h.n.ReadNow(Request{Conn: 1, Xid: 2, Op: proto.OpDelete, Body: &proto.DeleteRequest{Path: "/a", Version: -1}})
	require.False(t, ok)
	_, ok = h.n.ReadNow(Request{Conn: 9, Xid: 2, Op: proto.OpExists, Body: &proto.ExistsRequest{Path: "/a"}})
	require.False(t, ok)

	// A connection with a write in flight: its read must wait its turn.
	h.submit(2, 1, proto.OpSetData, &proto.SetDataRequest{Path: "/a", Data: []byte("y"), Version: -1})
	_, ok = h.n.ReadNow(Request{Conn: 2, Xid: 2, Op: proto.OpGetData, Body: &proto.GetDataRequest{Path: "/a"}})
	require.False(t, ok, "a read may not overtake the session's pending write")
	h.persistAll()
	h.take(2)
	out, ok := h.n.ReadNow(Request{Conn: 2, Xid: 3, Op: proto.OpGetData, Body: &proto.GetDataRequest{Path: "/a"}})
	require.True(t, ok)
	require.Equal(t, []byte("y"), out.Body.(*proto.GetDataResponse).Data)

	// A watcher whose authentication changed since its watches were set:
	// Read records the new one, so the read goes in turn.
	h.submit(1, 3, proto.OpExists, &proto.ExistsRequest{Path: "/a", Watch: true})
	h.take(1)
	h.submit(1, 4, proto.OpAuth, &proto.AuthPacket{Scheme: "digest", Auth: []byte("user:pw")})
	h.take(1)
	_, ok = h.n.ReadNow(Request{Conn: 1, Xid: 5, Op: proto.OpExists, Body: &proto.ExistsRequest{Path: "/a"}})
	require.False(t, ok)
	h.submit(1, 6, proto.OpExists, &proto.ExistsRequest{Path: "/a"})
	h.take(1)
	_, ok = h.n.ReadNow(Request{Conn: 1, Xid: 7, Op: proto.OpExists, Body: &proto.ExistsRequest{Path: "/a"}})
	require.True(t, ok, "once recorded, reads go fast again")
}

// A session whose only activity is reads answered by ReadNow stays alive
// as long as the caller reports it with Touch.
func TestTouchKeepsAReadOnlySessionAlive(t *testing.T) {
	h := newHarness(t)
	sid := h.connect(1, 400) // 4 ticks of 100 ms
	for range 20 {
		h.now += 100
		h.n.Touch(1, h.now)
		h.n.Tick(h.now)
		h.persistAll()
	}
	require.Contains(t, h.n.SessionIDs(), sid, "touched sessions do not expire")
	for range 10 {
		h.now += 100
		h.n.Tick(h.now)
		h.persistAll()
	}
	require.NotContains(t, h.n.SessionIDs(), sid, "an untouched session expires")
}

// With several Ticks per tickTime, session timeouts keep their length in
// milliseconds.
func TestFineTicksKeepSessionTimeouts(t *testing.T) {
	cfg := testConfig()
	cfg.TicksPerTickTime = 4 // 25 ms ticks
	n, err := Restore(cfg, Durable{})
	require.NoError(t, err)
	h := &harness{t: t, now: 1_700_000_000_000, n: n}
	h.collect()
	sid := h.connect(1, 400)
	ticks := 0
	for h.n.SessionCount() > 0 && ticks < 100 {
		h.now += 25
		h.n.Tick(h.now)
		h.persistAll()
		ticks++
	}
	require.NotContains(t, h.n.SessionIDs(), sid)
	// 400 ms is 16 ticks of 25 ms; expiry runs once per tickTime (4 ticks),
	// so the session goes between 16 and 24 ticks after its last touch.
	require.GreaterOrEqual(t, ticks, 16)
	require.LessOrEqual(t, ticks, 24)
}
