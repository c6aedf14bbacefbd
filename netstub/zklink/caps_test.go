package zklink

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// handshakeCaps runs FOLLOWERINFO, LEADERINFO and ACKEPOCH for epoch 5
// between a learner (2) and a leader (1) that announce the caps given
// (nonces 22 and 11), and returns the links and the two handshake
// messages as decoded.
func handshakeCaps(t *testing.T, learnerCaps, leaderCaps zab.Caps) (learner, leader *Link, fi, li zab.Message, fiPkt, liPkt quorum.Packet) {
	t.Helper()
	learner = NewLearnerLink(2, 1)
	learner.Announce(learnerCaps, 22)
	leader = NewLeaderLink(1, 2, testConfig)
	leader.Announce(leaderCaps, 11)
	pkts, got := send(t, learner, leader, zab.Message{Type: zab.MsgFollowerInfo, Epoch: 4})
	require.Len(t, got, 1)
	fi, fiPkt = got[0], pkts[0]
	pkts, got = send(t, leader, learner, zab.Message{Type: zab.MsgLeaderInfo, Epoch: 5})
	require.Len(t, got, 1)
	li, liPkt = got[0], pkts[0]
	_, got = send(t, learner, leader, zab.Message{Type: zab.MsgAckEpoch, Epoch: 4, Zxid: zab.MakeZxid(4, 1)})
	require.Len(t, got, 1)
	return learner, leader, fi, li, fiPkt, liPkt
}

func TestCapsNegotiatedOnHandshake(t *testing.T) {
	learner, leader, fi, li, fiPkt, liPkt := handshakeCaps(t, zab.AllCaps, zab.AllCaps)
	require.Len(t, fiPkt.Data, 20+quorum.HelloLen, "LearnerInfo, then the hello")
	require.Len(t, liPkt.Data, 4+quorum.HelloLen, "the protocol version, then the hello")
	require.Equal(t, zab.AllCaps, fi.Caps, "stamped on MsgFollowerInfo")
	require.Equal(t, zab.AllCaps, li.Caps, "stamped on MsgLeaderInfo")
	require.Equal(t, zab.AllCaps, learner.Caps())
	require.Equal(t, zab.AllCaps, leader.Caps())
	h, ok := leader.PeerHello()
	require.True(t, ok)
	require.Equal(t, quorum.Hello{Version: quorum.HelloVersion, Caps: uint64(zab.AllCaps), Nonce: 22}, h)
	h, ok = learner.PeerHello()
	require.True(t, ok)
	require.Equal(t, int64(11), h.Nonce)
	require.Equal(t, "zabkeeper", leader.PeerKind())
	require.Contains(t, leader.Describe(), "link caps transfer|stream-snap|move-request")

	// Each side has what both announced.
	learner, leader, fi, li, _, _ = handshakeCaps(t, zab.CapTransfer|zab.CapStreamSnap, zab.CapStreamSnap|zab.CapMoveRequest)
	require.Equal(t, zab.CapStreamSnap, fi.Caps)
	require.Equal(t, zab.CapStreamSnap, li.Caps)
	require.Equal(t, learner.Caps(), leader.Caps())
}

// TestZeroCapsBehaveAsZooKeeper: an end that announces nothing sends
// exactly ZooKeeper's handshake packets; a zabkeeper peer then sees a
// ZooKeeper peer and the link has no capabilities either way.
func TestZeroCapsBehaveAsZooKeeper(t *testing.T) {
	// A ZooKeeper-like learner under a zabkeeper leader.
	learner, leader, fi, li, fiPkt, liPkt := handshakeCaps(t, 0, zab.AllCaps)
	require.Equal(t, quorum.NewLearnerInfo(false, 4, quorum.LearnerInfo{Sid: 2, ProtocolVersion: quorum.LearnerProtocol}), fiPkt,
		"byte for byte ZooKeeper's FOLLOWERINFO")
	require.Zero(t, fi.Caps)
	require.Zero(t, li.Caps)
	require.Zero(t, leader.Caps())
	require.Equal(t, "ZooKeeper", leader.PeerKind())
	require.Contains(t, leader.Describe(), "Apache ZooKeeper")
	require.Len(t, liPkt.Data, 4+quorum.HelloLen, "a zabkeeper leader always announces itself: ZooKeeper ignores it")
	require.Equal(t, "zabkeeper", learner.PeerKind(), "the learner knows its leader, though it uses nothing")

	// A zabkeeper learner under a ZooKeeper-like leader.
	learner, leader, fi, li, _, liPkt = handshakeCaps(t, zab.AllCaps, 0)
	require.Equal(t, quorum.NewLeaderInfo(5), liPkt, "byte for byte ZooKeeper's LEADERINFO")
	require.Zero(t, fi.Caps)
	require.Zero(t, li.Caps)
	require.Zero(t, learner.Caps())
	require.Equal(t, "ZooKeeper", learner.PeerKind())
	require.Equal(t, "zabkeeper", leader.PeerKind())
}

func TestTimeoutNowOnlyWithCapTransfer(t *testing.T) {
	learner, leader, _, _, _, _ := handshakeCaps(t, zab.AllCaps, zab.AllCaps)
	tn := zab.Message{Type: zab.MsgTimeoutNow, To: 2, Epoch: 5, Zxid: zab.MakeZxid(5, 9),
		Vote: zab.Vote{Leader: 2, Zxid: zab.MakeZxid(5, 9), PeerEpoch: 5}}
	pkts, got := send(t, leader, learner, tn)
	require.Equal(t, quorum.TimeoutNow, pkts[0].Type)
	require.Equal(t, []zab.Message{{Type: zab.MsgTimeoutNow, From: 1, To: 2, Epoch: 5, Zxid: zab.MakeZxid(5, 9),
		Vote: zab.Vote{Leader: 2, Zxid: zab.MakeZxid(5, 9), PeerEpoch: 5}}}, got)
	stale := tn
	stale.Epoch = 4
	pkts, err := leader.Encode(stale)
	require.NoError(t, err)
	require.Empty(t, pkts, "another epoch's: not for this link")

	// Without the capability: dropped with ErrNotNegotiated, the link goes
	// on.
	for _, caps := range [][2]zab.Caps{{0, zab.AllCaps}, {zab.CapStreamSnap | zab.CapMoveRequest, zab.AllCaps}} {
		learner, leader, _, _, _, _ := handshakeCaps(t, caps[0], caps[1])
		pkts, err := leader.Encode(tn)
		require.ErrorIs(t, err, ErrNotNegotiated)
		require.Empty(t, pkts)
		_, got := send(t, leader, learner, zab.Message{Type: zab.MsgPing, Epoch: 5, Zxid: zab.MakeZxid(5, 0)})
		require.Equal(t, zab.MsgPing, got[0].Type, "the link still works")
		// And a learner without it refuses the packet.
		_, err = learner.Decode(quorum.NewTimeoutNow(1, 2, 5))
		require.ErrorIs(t, err, quorum.ErrMalformed)
	}
	// A learner never sends one; a leader link refuses it.
	_, leader, _, _, _, _ = handshakeCaps(t, zab.AllCaps, zab.AllCaps)
	_, err = leader.Decode(quorum.NewTimeoutNow(1, 2, 5))
	require.ErrorIs(t, err, quorum.ErrMalformed)
}

func TestMoveRequestOnlyWithCapMoveRequest(t *testing.T) {
	move := zab.Message{Type: zab.MsgApp, To: 1, Epoch: 5, Payload: quorum.NewRequest(quorum.Forwarded{
		Session: 0x77, Cxid: -1, Op: opMoveSession, Body: binary.BigEndian.AppendUint32(nil, 20000)}).Encode()}
	create := zab.Message{Type: zab.MsgApp, To: 1, Epoch: 5, Payload: quorum.NewRequest(quorum.Forwarded{
		Session: 0x77, Cxid: 1, Op: proto.OpCreateSession, Body: binary.BigEndian.AppendUint32(nil, 20000)}).Encode()}

	learner, leader, _, _, _, _ := handshakeCaps(t, zab.AllCaps, zab.AllCaps)
	pkts, got := send(t, learner, leader, move)
	require.Equal(t, quorum.Request, pkts[0].Type)
	require.Equal(t, move.Payload, got[0].Payload)

	for _, caps := range [][2]zab.Caps{{zab.AllCaps, 0}, {zab.AllCaps, zab.CapTransfer | zab.CapStreamSnap}} {
		learner, leader, _, _, _, _ := handshakeCaps(t, caps[0], caps[1])
		pkts, err := learner.Encode(move)
		require.ErrorIs(t, err, ErrNotNegotiated, "a ZooKeeper leader would never answer it")
		require.Empty(t, pkts)
		_, got := send(t, learner, leader, create)
		require.Equal(t, create.Payload, got[0].Payload, "other requests go on")
	}
}

// TestConnsAnnounce: a table's announcement goes on every connection it
// opens, both sides, and it keeps each link's capabilities.
func TestConnsAnnounce(t *testing.T) {
	lt := NewConns(2, nil)
	lt.Announce(zab.AllCaps, 22)
	ld := NewConns(1, testConfig)
	ld.Announce(zab.CapTransfer, 11)
	require.Empty(t, ld.SetRole(zab.Leading, 1))

	c, _ := lt.Dial(1)
	pkts, err := c.Link.Encode(zab.Message{Type: zab.MsgFollowerInfo, Epoch: 1})
	require.NoError(t, err)
	h, ok := quorum.PacketHello(&pkts[0])
	require.True(t, ok)
	require.Equal(t, int64(22), h.Nonce)

	a, _, msgs, err := ld.AcceptFirst(2, pkts[0])
	require.NoError(t, err)
	require.Equal(t, zab.CapTransfer, msgs[0].Caps)
	caps, ok := ld.Caps(2)
	require.True(t, ok)
	require.Equal(t, zab.CapTransfer, caps)
	_, ok = ld.Caps(3)
	require.False(t, ok)

	pkts, err = a.Link.Encode(zab.Message{Type: zab.MsgLeaderInfo, Epoch: 2})
	require.NoError(t, err)
	got, err := c.Link.Decode(pkts[0])
	require.NoError(t, err)
	require.Equal(t, zab.CapTransfer, got[0].Caps)
	caps, _ = lt.Caps(1)
	require.Equal(t, zab.CapTransfer, caps)

	// Accept (the simulator's path) announces too.
	b, _ := ld.Accept(3)
	pkts, err = b.Link.Encode(zab.Message{Type: zab.MsgLeaderInfo, Epoch: 2})
	require.NoError(t, err)
	_, ok = quorum.PacketHello(&pkts[0])
	require.True(t, ok)

	// The default announces nothing.
	plain := NewConns(2, nil)
	c, _ = plain.Dial(1)
	pkts, err = c.Link.Encode(zab.Message{Type: zab.MsgFollowerInfo, Epoch: 1})
	require.NoError(t, err)
	require.Len(t, pkts[0].Data, 20)
}

func TestCapsString(t *testing.T) {
	require.Equal(t, "none", CapsString(0))
	require.Equal(t, "transfer|stream-snap|move-request", CapsString(zab.AllCaps))
	require.Equal(t, "stream-snap|0x10", CapsString(zab.CapStreamSnap|0x10))
}
