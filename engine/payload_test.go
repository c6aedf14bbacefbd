package engine

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// Peer payloads are ZooKeeper quorum packets (forward.go).

// appPackets returns, decoded, the MsgApp payloads that pass through the
// cluster from now on.
func (c *cluster) appPackets() *[]quorum.Packet {
	var got []quorum.Packet
	prev := c.mangle
	c.mangle = func(m *zab.Message) {
		if prev != nil {
			prev(m)
		}
		if m.Type == zab.MsgApp {
			p, err := decodePacket(m.Payload, quorum.Limits{})
			require.NoError(c.t, err)
			got = append(got, p)
		}
	}
	return &got
}

func TestForwardedRequestsAreZooKeeperRequests(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.waitLeader()
	follower, _ := c.followers(leader)
	pkts := c.appPackets()

	sid := c.connect(follower, 1)
	require.Len(t, *pkts, 1)
	f, err := quorum.DecodeRequest(&(*pkts)[0])
	require.NoError(t, err)
	require.Equal(t, quorum.Forwarded{Session: sid, Cxid: internalCxid, Op: proto.OpCreateSession,
		Body: binary.BigEndian.AppendUint32(nil, 1000)}, f, "createSession: an int32 timeout, no time, no password")

	c.nodes[follower].Submit(Request{Conn: 1, Xid: 1, Op: proto.OpAuth, Body: &proto.AuthPacket{Scheme: "digest", Auth: []byte("u:p")}, Time: c.now})
	c.settle()
	*pkts = nil
	create := &proto.CreateRequest{Path: "/a", Data: []byte("x"), ACL: proto.OpenACLUnsafe}
	o := c.call(follower, 1, 2, proto.OpCreate, create)
	require.Equal(t, proto.ErrOK, o.Header.Err)
	require.Len(t, *pkts, 1)
	p := (*pkts)[0]
	require.Equal(t, quorum.Request, p.Type)
	require.Equal(t, int64(-1), p.Zxid)
	f, err = quorum.DecodeRequest(&p)
	require.NoError(t, err)
	require.Equal(t, sid, f.Session)
	require.Equal(t, int32(2), f.Cxid)
	require.Equal(t, proto.OpCreate, f.Op)
	require.Equal(t, proto.Marshal(create), f.Body, "the record after the RequestHeader")
	require.Contains(t, f.Auth, proto.Id{Scheme: "digest", ID: tree.DigestID("u", "p")}, "auth in authinfo")

	*pkts = nil
	o = c.call(follower, 1, 3, proto.OpCloseSession, &proto.EmptyRecord{})
	require.Equal(t, proto.ErrOK, o.Header.Err)
	require.Len(t, *pkts, 1)
	f, err = quorum.DecodeRequest(&(*pkts)[0])
	require.NoError(t, err)
	require.Equal(t, proto.OpCloseSession, f.Op)
	require.Empty(t, f.Body, "closeSession: empty body")
}

// A payload that does not decode, or that the receiver does not take, is
// dropped and reported, never applied.
func TestMalformedPeerPayloadIsDropped(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.waitLeader()
	follower, _ := c.followers(leader)
	l := c.nodes[leader]
	epoch := l.Status().Epoch
	before := l.LastZxid()
	good := encodeRequest(&forwarded{session: 1, cxid: 1, op: proto.OpCreateSession, timeout: 1000})
	bad := map[string][]byte{
		"garbage":            []byte{1, 2, 3},
		"trailing bytes":     append(append([]byte{}, good...), 0),
		"truncated":          good[:len(good)-2],
		"short request":      quorum.Packet{Type: quorum.Request, Data: []byte{1, 2}}.Encode(),
		"createSession body": quorum.NewRequest(quorum.Forwarded{Session: 1, Op: proto.OpCreateSession, Body: []byte{1}}).Encode(),
		"ping of 5 bytes":    quorum.Packet{Type: quorum.Ping, Data: []byte{1, 2, 3, 4, 5}}.Encode(),
		"SYNC to a leader":   quorum.NewSync().Encode(),
		"UPTODATE":           quorum.NewUpToDate().Encode(),
	}
	for name, payload := range bad {
		l.Step(zab.Message{Type: zab.MsgApp, From: follower, To: leader, Epoch: epoch, Payload: payload})
		c.settle()
		errs := l.PeerErrors()
		require.Len(t, errs, 1, name)
		require.ErrorIs(t, errs[0].Err, errBadPayload, name)
		require.Equal(t, follower, errs[0].From, name)
		require.Equal(t, before, l.LastZxid(), "%s: nothing proposed", name)
	}
	require.Equal(t, int64(len(bad)), l.PeerErrorCount())
	require.Empty(t, l.PeerErrors(), "handed out once")

	// A learner refuses a packet only a leader takes.
	c.nodes[follower].Step(zab.Message{Type: zab.MsgApp, From: leader, To: follower, Epoch: epoch, Payload: good})
	c.settle()
	require.Len(t, c.nodes[follower].PeerErrors(), 1)

	// The good one is led.
	l.Step(zab.Message{Type: zab.MsgApp, From: follower, To: leader, Epoch: epoch, Payload: good})
	c.settle()
	require.Empty(t, l.PeerErrors())
	require.Greater(t, l.LastZxid(), before)
}

// Learners report live sessions in a PING with each session's timeout, and
// the leader resets the session's expiry for that timeout.
func TestTouchesCarryTimeouts(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.waitLeader()
	follower, _ := c.followers(leader)
	sid := c.connect(follower, 1)
	pkts := c.appPackets()
	c.nodes[follower].Touch(1, c.now)
	c.tick()
	var touches []quorum.Touch
	for _, p := range *pkts {
		if p.Type == quorum.Ping {
			ts, err := quorum.DecodeTouches(&p)
			require.NoError(t, err)
			touches = append(touches, ts...)
		}
	}
	require.Equal(t, []quorum.Touch{{Session: sid, Timeout: 1000}}, touches)

	l := c.nodes[leader]
	cfg := l.cfg
	s := l.sessions[sid]
	ping := quorum.NewPingReply(&quorum.Packet{Type: quorum.Ping}, []quorum.Touch{{Session: sid, Timeout: 4000}}).Encode()
	l.Step(zab.Message{Type: zab.MsgApp, From: follower, To: leader, Epoch: l.Status().Epoch, Payload: ping})
	require.Equal(t, l.tick+ticksFor(4000, cfg.TickMs, cfg.TicksPerTickTime), s.expireTick)
	require.Empty(t, l.PeerErrors())
}

// FuzzPeerPayload: whatever a peer puts in a MsgApp, the leader and a
// learner, native or compat, neither panic nor stop serving; what does not
// decode is reported.
func FuzzPeerPayload(f *testing.F) {
	f.Add(false, encodeRequest(&forwarded{session: 1, cxid: 1, op: proto.OpCreate, body: proto.Marshal(&proto.CreateRequest{Path: "/a", ACL: proto.OpenACLUnsafe})}))
	f.Add(true, encodeRequest(&forwarded{session: 1, cxid: 1, op: proto.OpSync, body: proto.Marshal(&proto.SyncRequest{Path: "/"})}))
	f.Add(true, quorum.NewRevalidate(1, 1000).Encode())
	f.Add(true, quorum.NewRevalidateReply(-1, 1, true).Encode())
	f.Add(true, quorum.NewSync().Encode())
	f.Add(false, encodeTouches([]quorum.Touch{{Session: 1, Timeout: 1000}}))
	f.Add(false, []byte{0, 0, 0, 1, 0xff})
	f.Fuzz(func(t *testing.T, compat bool, payload []byte) {
		c := newCluster(t, 3)
		if compat {
			c.linkCaps = zooKeeperLinks
		}
		leader := c.waitLeader()
		a, _ := c.followers(leader)
		epoch := c.nodes[leader].Status().Epoch
		before := c.nodes[leader].PeerErrorCount() + c.nodes[a].PeerErrorCount()
		c.nodes[leader].Step(zab.Message{Type: zab.MsgApp, From: a, To: leader, Epoch: epoch, Payload: payload})
		c.nodes[a].Step(zab.Message{Type: zab.MsgApp, From: leader, To: a, Epoch: epoch, Payload: payload})
		c.settle()
		if _, err := decodePacket(payload, quorum.Limits{}); err != nil {
			require.Greater(t, c.nodes[leader].PeerErrorCount()+c.nodes[a].PeerErrorCount(), before+1)
		}
		require.True(t, c.nodes[leader].Serving())
		require.True(t, c.nodes[a].Serving())
	})
}

// TestForwardEncodingUnchanged: a learner's REQUEST, its record marshalled
// into the node's scratch and the packet built in one buffer, is byte for
// byte the packet NewRequest encodes with the marshalled record (what the
// leader and a ZooKeeper leader read), in one allocation.
func TestForwardEncodingUnchanged(t *testing.T) {
	n := &Node{}
	auth := []proto.Id{{Scheme: "ip", ID: "127.0.0.1"}, {Scheme: "digest", ID: "u:h"}}
	big := &proto.SetDataRequest{Path: "/big", Data: make([]byte, maxFwdBody+1), Version: -1}
	for _, tc := range []struct {
		f   forwarded
		rec proto.Record
	}{
		{forwarded{session: 1, cxid: 2, op: proto.OpSetData, auth: auth}, &proto.SetDataRequest{Path: "/a", Data: []byte("x"), Version: -1}},
		{forwarded{session: 1, cxid: 3, op: proto.OpCreate}, &proto.CreateRequest{Path: "/b", ACL: proto.OpenACLUnsafe}},
		{forwarded{session: 1, cxid: 4, op: proto.OpSetData, auth: auth[:1]}, big},
		{forwarded{session: 1, cxid: 5, op: proto.OpSetData, auth: []proto.Id{}}, &proto.SetDataRequest{Path: "/c", Version: 3}},
		{forwarded{session: 1, cxid: 6, op: proto.OpCloseSession}, &proto.EmptyRecord{}},
		{forwarded{session: 2, cxid: internalCxid, op: proto.OpCreateSession, timeout: 4000}, nil},
		{forwarded{session: 1, cxid: 7, op: proto.OpSync, body: proto.Marshal(&proto.SyncRequest{Path: "/"})}, nil},
	} {
		body := tc.f.body
		switch {
		case hasTimeoutBody(tc.f.op):
			body = binary.BigEndian.AppendUint32(nil, uint32(tc.f.timeout))
		case tc.rec != nil && tc.f.op != proto.OpCloseSession:
			body = proto.Marshal(tc.rec)
		}
		want := quorum.NewRequest(quorum.Forwarded{Session: tc.f.session, Cxid: tc.f.cxid, Op: tc.f.op, Body: body, Auth: tc.f.auth}).Encode()
		f := tc.f
		got := n.encodeForward(&f, tc.rec)
		require.Equal(t, want, got, "%v", tc.f.op)
		require.Equal(t, len(got), cap(got), "one exactly sized buffer")
		require.LessOrEqual(t, cap(n.fwdBody.Bytes()), maxFwdBody, "the scratch keeps no huge buffer")
	}
	f := forwarded{session: 1, cxid: 2, op: proto.OpSetData, auth: auth}
	rec := &proto.SetDataRequest{Path: "/a", Data: []byte("x"), Version: -1}
	require.Equal(t, 1.0, testing.AllocsPerRun(100, func() { _ = n.encodeForward(&f, rec) }))
}

// TestForwardedAuthShared: the leader decodes a REQUEST in place and takes
// its Ids from one decoding per distinct authinfo encoding, shared read-only
// (full, so an append copies); the Ids are the ones the learner sent.
func TestForwardedAuthShared(t *testing.T) {
	n := &Node{}
	req := func(session int64, auth []proto.Id) []byte {
		return encodeRequest(&forwarded{session: session, cxid: 1, op: proto.OpDelete, body: proto.Marshal(&proto.DeleteRequest{Path: "/a", Version: -1}), auth: auth})
	}
	decode := func(b []byte) forwarded {
		p, err := decodePacket(b, quorum.Limits{})
		require.NoError(t, err)
		f, rec, recErr, err := n.decodeForwarded(&p)
		require.NoError(t, err)
		require.NoError(t, recErr)
		require.Equal(t, &proto.DeleteRequest{Path: "/a", Version: -1}, rec)
		return f
	}
	ip := []proto.Id{{Scheme: "ip", ID: "127.0.0.1"}}
	a, b := decode(req(1, ip)), decode(req(2, []proto.Id{{Scheme: "ip", ID: "127.0.0.1"}}))
	require.Equal(t, ip, a.auth)
	require.Same(t, &a.auth[0], &b.auth[0], "one decoding for the same authinfo")
	require.Equal(t, len(a.auth), cap(a.auth))
	two := []proto.Id{{Scheme: "ip", ID: "127.0.0.1"}, {Scheme: "digest", ID: "u:h"}}
	require.Equal(t, two, decode(req(3, two)).auth)
	require.Nil(t, decode(req(4, nil)).auth)
	require.Equal(t, []proto.Id{}, decode(req(5, []proto.Id{})).auth)
	for i := range 3 * maxFwdAuth {
		id := []proto.Id{{Scheme: "ip", ID: fmt.Sprintf("10.0.0.%d", i)}}
		require.Equal(t, id, decode(req(6, id)).auth)
		require.LessOrEqual(t, len(n.fwdAuth), maxFwdAuth)
	}
	raw := req(7, ip)
	require.Equal(t, 0.0, testing.AllocsPerRun(100, func() {
		p, _ := decodePacket(raw, quorum.Limits{})
		_ = n.forwardedAuth(&p)
	}), "a known authinfo costs nothing")
}
