package zklink

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

var testConfig = []byte("server.1=127.0.0.1:2888:3888:participant\nserver.2=127.0.0.1:2889:3889:participant\nversion=0")

// wire sends the packets through their byte encoding and decodes them on
// the other link, as a connection would.
func wire(t *testing.T, pkts []quorum.Packet, to *Link) []zab.Message {
	t.Helper()
	var buf bytes.Buffer
	for i := range pkts {
		require.NoError(t, quorum.WritePacket(&buf, &pkts[i]))
	}
	var out []zab.Message
	for buf.Len() > 0 {
		p, err := quorum.ReadPacket(&buf, quorum.Limits{})
		require.NoError(t, err)
		ms, err := to.Decode(p)
		require.NoError(t, err)
		out = append(out, ms...)
	}
	return out
}

// decoded returns p as ReadPacket reads its encoding (a raw packet in
// decoded form).
func decoded(t *testing.T, p quorum.Packet) quorum.Packet {
	t.Helper()
	q, err := quorum.ReadPacket(bytes.NewReader(p.Encode()), quorum.Limits{})
	require.NoError(t, err)
	return q
}

// send encodes m on from and decodes it on to. It encodes with
// EncodeAppend onto a slice already holding a packet, which must stay as
// it was: every round trip of the tests checks what EncodeAppend appends
// (Encode is EncodeAppend onto nil).
func send(t *testing.T, from, to *Link, m zab.Message) ([]quorum.Packet, []zab.Message) {
	t.Helper()
	marker := quorum.NewPing(-42)
	out, err := from.EncodeAppend([]quorum.Packet{marker}, m)
	require.NoError(t, err)
	require.Equal(t, marker, out[0], "EncodeAppend keeps the caller's packets")
	pkts := out[1:]
	if len(pkts) == 0 {
		pkts = nil // what Encode returns for nothing to send
	}
	return pkts, wire(t, pkts, to)
}

func types(pkts []quorum.Packet) (out []quorum.PacketType, zxids []int64) {
	for _, p := range pkts {
		out = append(out, p.Type)
		zxids = append(zxids, p.Zxid)
	}
	return out, zxids
}

// handshake runs FOLLOWERINFO, LEADERINFO and ACKEPOCH for epoch 5.
func handshake(t *testing.T, observer bool) (learner, leader *Link) {
	learner = NewLearnerLink(2, 1)
	leader = NewLeaderLink(1, 2, testConfig)
	pkts, got := send(t, learner, leader, zab.Message{Type: zab.MsgFollowerInfo, From: 2, To: 1, Epoch: 4, Zxid: zab.MakeZxid(4, 9), Observer: observer})
	want := quorum.FollowerInfo
	if observer {
		want = quorum.ObserverInfo
	}
	require.Equal(t, want, pkts[0].Type)
	require.Equal(t, zab.MakeZxid(4, 0), pkts[0].Zxid, "FOLLOWERINFO carries acceptedEpoch<<32, no last zxid")
	li, err := quorum.DecodeLearnerInfo(&pkts[0])
	require.NoError(t, err)
	require.Equal(t, quorum.LearnerInfo{Sid: 2, ProtocolVersion: quorum.LearnerProtocol}, li)
	require.Equal(t, []zab.Message{{Type: zab.MsgFollowerInfo, From: 2, To: 1, Epoch: 4, Zxid: 0, Observer: observer}}, got)

	pkts, got = send(t, leader, learner, zab.Message{Type: zab.MsgLeaderInfo, Epoch: 5})
	require.Equal(t, quorum.NewLeaderInfo(5), pkts[0])
	require.Equal(t, []zab.Message{{Type: zab.MsgLeaderInfo, From: 1, To: 2, Epoch: 5}}, got)

	pkts, got = send(t, learner, leader, zab.Message{Type: zab.MsgAckEpoch, Epoch: -1, Zxid: zab.MakeZxid(4, 9)})
	require.Equal(t, quorum.NewAckEpoch(zab.MakeZxid(4, 9), -1), pkts[0])
	require.Equal(t, []zab.Message{{Type: zab.MsgAckEpoch, From: 2, To: 1, Epoch: -1, Zxid: zab.MakeZxid(4, 9)}}, got)
	return learner, leader
}

// handshakeOnly returns a learner link that went through the handshake.
func handshakeOnly(t *testing.T) *Link {
	learner, _ := handshake(t, false)
	return learner
}

func proposal(z int64) zab.Message {
	return zab.Message{Type: zab.MsgProposal, Epoch: 5, Entry: zab.Entry{Zxid: z, Data: []byte{byte(z)}}}
}

func TestZklinkSyncAndBroadcastRoundTrip(t *testing.T) {
	learner, leader := handshake(t, false)
	z := func(e, c int64) int64 { return zab.MakeZxid(e, c) }

	// DIFF with two synced proposals, committed in one cumulative COMMIT.
	pkts, got := send(t, leader, learner, zab.Message{Type: zab.MsgDiff, Epoch: 5, Zxid: z(4, 9)})
	require.Equal(t, quorum.Packet{Type: quorum.Diff, Zxid: z(4, 9)}, pkts[0])
	require.Equal(t, []zab.Message{{Type: zab.MsgDiff, From: 1, To: 2, Epoch: 5, Zxid: z(4, 9)}}, got)
	// A ZooKeeper leader's DIFF names its newest committed zxid; so does
	// the engine's (zab.MsgDiff): it passes as it is.
	got = wire(t, []quorum.Packet{{Type: quorum.Diff, Zxid: z(4, 12)}}, handshakeOnly(t))
	require.Equal(t, z(4, 12), got[0].Zxid)
	for _, c := range []int64{10, 11, 12} {
		_, got = send(t, leader, learner, proposal(z(4, c)))
		require.Equal(t, zab.Entry{Zxid: z(4, c), Data: []byte{byte(z(4, c))}}, got[0].Entry)
		require.Equal(t, int64(5), got[0].Epoch)
	}
	pkts, got = send(t, leader, learner, zab.Message{Type: zab.MsgCommit, Epoch: 5, Zxid: z(4, 11)})
	ty, zx := types(pkts)
	require.Equal(t, []quorum.PacketType{quorum.Commit, quorum.Commit}, ty)
	require.Equal(t, []int64{z(4, 10), z(4, 11)}, zx, "one COMMIT per proposal, in order")
	require.Len(t, got, 2)
	require.Equal(t, []int64{z(4, 12)}, leader.Pending())
	require.Equal(t, []int64{z(4, 10), z(4, 11), z(4, 12)}, learner.Pending(), "committed proposals are acked too")

	// NEWLEADER carries the config; its ACK is followed by the ACKs of
	// the proposals that came before it.
	require.False(t, learner.Synced())
	pkts, got = send(t, leader, learner, zab.Message{Type: zab.MsgNewLeader, Epoch: 5, Zxid: z(5, 0)})
	require.Equal(t, quorum.NewNewLeader(5, testConfig), pkts[0])
	require.Equal(t, zab.MsgNewLeader, got[0].Type)
	require.True(t, learner.Synced())
	pkts, got = send(t, learner, leader, zab.Message{Type: zab.MsgAck, Epoch: 5, Zxid: z(5, 0)})
	ty, zx = types(pkts)
	require.Equal(t, []quorum.PacketType{quorum.Ack, quorum.Ack, quorum.Ack, quorum.Ack}, ty)
	require.Equal(t, []int64{z(5, 0), z(4, 10), z(4, 11), z(4, 12)}, zx, "NEWLEADER's ACK first (ZooKeeper checks it), then the synced proposals'")
	require.Len(t, got, 4)
	require.True(t, leader.Synced())

	// UPTODATE commits the rest first, and says -1 as ZooKeeper's does.
	pkts, got = send(t, leader, learner, zab.Message{Type: zab.MsgUpToDate, Epoch: 5, Zxid: z(4, 12)})
	ty, zx = types(pkts)
	require.Equal(t, []quorum.PacketType{quorum.Commit, quorum.UpToDate}, ty)
	require.Equal(t, []int64{z(4, 12), -1}, zx)
	require.Equal(t, zab.MsgCommit, got[0].Type)
	require.Equal(t, zab.Message{Type: zab.MsgUpToDate, From: 1, To: 2, Epoch: 5, Zxid: z(5, 0)}, got[1])

	// Broadcast: three proposals, one cumulative ack, one cumulative
	// commit.
	for _, c := range []int64{1, 2, 3} {
		send(t, leader, learner, proposal(z(5, c)))
	}
	pkts, _ = send(t, learner, leader, zab.Message{Type: zab.MsgAck, Epoch: 5, Zxid: z(5, 2)})
	_, zx = types(pkts)
	require.Equal(t, []int64{z(5, 1), z(5, 2)}, zx)
	pkts, _ = send(t, learner, leader, zab.Message{Type: zab.MsgAck, Epoch: 5, Zxid: z(5, 2)})
	require.Empty(t, pkts, "an ack of nothing new sends nothing")
	pkts, _ = send(t, leader, learner, zab.Message{Type: zab.MsgCommit, Epoch: 5, Zxid: z(5, 3)})
	_, zx = types(pkts)
	require.Equal(t, []int64{z(5, 1), z(5, 2), z(5, 3)}, zx)
	pkts, _ = send(t, learner, leader, zab.Message{Type: zab.MsgAck, Epoch: 5, Zxid: z(5, 3)})
	_, zx = types(pkts)
	require.Equal(t, []int64{z(5, 3)}, zx, "a proposal committed before the learner acked still gets its ACK, in order")

	// Pings both ways; the learner's reply has empty, not null, data.
	_, got = send(t, leader, learner, zab.Message{Type: zab.MsgPing, Epoch: 5, Zxid: z(5, 3)})
	require.Equal(t, []zab.Message{{Type: zab.MsgPing, From: 1, To: 2, Epoch: 5, Zxid: z(5, 3)}}, got)
	pkts, got = send(t, learner, leader, zab.Message{Type: zab.MsgPing, Epoch: 5, Zxid: z(5, 3)})
	require.NotNil(t, pkts[0].Data)
	require.Empty(t, pkts[0].Data)
	require.Equal(t, []zab.Message{{Type: zab.MsgPing, From: 2, To: 1, Epoch: 5, Zxid: z(5, 3)}}, got)

	// Messages of another epoch are dropped on encode.
	pkts, err := leader.Encode(zab.Message{Type: zab.MsgPing, Epoch: 4})
	require.NoError(t, err)
	require.Empty(t, pkts)
	pkts, err = learner.Encode(zab.Message{Type: zab.MsgAck, Epoch: 6, Zxid: z(6, 1)})
	require.NoError(t, err)
	require.Empty(t, pkts)
}

func TestZklinkSyncModes(t *testing.T) {
	for _, tc := range []struct {
		m    zab.Message
		want quorum.PacketType
	}{
		{zab.Message{Type: zab.MsgTrunc, Epoch: 5, Zxid: 7}, quorum.Trunc},
		{zab.Message{Type: zab.MsgSnap, Epoch: 5, Zxid: 8, Snapshot: zab.SnapshotBytes("x")}, quorum.Snap},
	} {
		learner, leader := handshake(t, false)
		pkts, got := send(t, leader, learner, tc.m)
		require.Equal(t, []quorum.Packet{{Type: tc.want, Zxid: tc.m.Zxid}}, pkts)
		want := tc.m
		want.From, want.To, want.Snapshot = 1, 2, nil
		require.Equal(t, []zab.Message{want}, got, "the caller reads the SNAP body and sets Snapshot")
	}
	_, leader := handshake(t, false)
	_, err := leader.Encode(zab.Message{Type: zab.MsgSnap, Epoch: 5, Zxid: 8})
	require.Error(t, err)
}

func TestZklinkObserverInform(t *testing.T) {
	learner, leader := handshake(t, true)
	send(t, leader, learner, zab.Message{Type: zab.MsgDiff, Epoch: 5, Zxid: 1})
	send(t, leader, learner, proposal(zab.MakeZxid(4, 2)))
	send(t, leader, learner, zab.Message{Type: zab.MsgNewLeader, Epoch: 5, Zxid: zab.MakeZxid(5, 0)})
	pkts, _ := send(t, learner, leader, zab.Message{Type: zab.MsgAck, Epoch: 5, Zxid: zab.MakeZxid(5, 0)})
	require.Equal(t, []quorum.Packet{quorum.NewAck(zab.MakeZxid(5, 0))}, pkts, "an observer acks NEWLEADER only")
	pkts, got := send(t, leader, learner, zab.Message{Type: zab.MsgInform, Epoch: 5, Entry: zab.Entry{Zxid: zab.MakeZxid(5, 1), Data: []byte("txn")}})
	defer func() {
		pkts, err := learner.Encode(zab.Message{Type: zab.MsgAck, Epoch: 5, Zxid: zab.MakeZxid(5, 1)})
		require.NoError(t, err)
		require.Empty(t, pkts)
	}()
	require.Equal(t, []quorum.Packet{{Type: quorum.Inform, Zxid: zab.MakeZxid(5, 1), Data: []byte("txn")}}, pkts)
	require.Equal(t, zab.Entry{Zxid: zab.MakeZxid(5, 1), Data: []byte("txn")}, got[0].Entry)
	require.Equal(t, zab.MsgInform, got[0].Type)
}

func TestZklinkAppPackets(t *testing.T) {
	learner, leader := handshake(t, false)
	app := func(p quorum.Packet) zab.Message {
		return zab.Message{Type: zab.MsgApp, Epoch: 5, Payload: p.Encode()}
	}
	req := quorum.NewRequest(quorum.Forwarded{Session: 7, Cxid: 3, Op: proto.OpCreate, Body: []byte{1, 2}, Auth: []proto.Id{{Scheme: "ip", ID: "127.0.0.1"}}})
	touches := quorum.NewPingReply(&quorum.Packet{Type: quorum.Ping, Zxid: 9}, []quorum.Touch{{Session: 7, Timeout: 4000}})
	for _, p := range []quorum.Packet{req, quorum.NewRevalidate(7, 4000), touches} {
		m := app(p)
		pkts, got := send(t, learner, leader, m)
		require.Len(t, pkts, 1)
		require.Equal(t, p.Encode(), pkts[0].Encode(), "as is")
		require.Equal(t, []quorum.Packet{p}, []quorum.Packet{decoded(t, pkts[0])})
		require.Same(t, &m.Payload[0], &pkts[0].Raw[0], "the payload's bytes, not a copy")
		if p.Type == quorum.Ping {
			require.Len(t, got, 2, "a PING with touches is liveness and touches")
			require.Equal(t, zab.Message{Type: zab.MsgPing, From: 2, To: 1, Epoch: 5, Zxid: 9}, got[0])
			got = got[1:]
		}
		require.Equal(t, []zab.Message{{Type: zab.MsgApp, From: 2, To: 1, Epoch: 5, Payload: p.Encode()}}, got)
	}
	for _, p := range []quorum.Packet{quorum.NewRevalidateReply(-1, 7, true), quorum.NewSync()} {
		pkts, got := send(t, leader, learner, app(p))
		require.Len(t, pkts, 1)
		require.Equal(t, []quorum.Packet{p}, []quorum.Packet{decoded(t, pkts[0])})
		require.Equal(t, []zab.Message{{Type: zab.MsgApp, From: 1, To: 2, Epoch: 5, Payload: p.Encode()}}, got)
	}
	// A touch-less PING inside MsgApp goes out with empty data.
	pkts, err := learner.Encode(app(quorum.Packet{Type: quorum.Ping, Zxid: 1}))
	require.NoError(t, err)
	require.Equal(t, []byte{}, pkts[0].Data)

	// Anything else inside MsgApp is a bug.
	for _, bad := range []zab.Message{
		app(quorum.NewCommit(1)),
		app(quorum.NewSync()), // the leader's packet, from a learner
		{Type: zab.MsgApp, Epoch: 5, Payload: []byte{1, 2}},
		{Type: zab.MsgApp, Epoch: 5, Payload: append(req.Encode(), 0)},
		app(quorum.Packet{Type: quorum.Request, Zxid: -1, Data: []byte{1}}),
		app(quorum.Packet{Type: quorum.Ping, Data: []byte{1, 2, 3}}),
	} {
		_, err := learner.Encode(bad)
		require.Error(t, err, "%x", bad.Payload)
	}
	_, err = leader.Encode(app(req))
	require.Error(t, err)
}

func TestZklinkDecodeRefuses(t *testing.T) {
	fresh := func() (*Link, *Link) { return NewLearnerLink(2, 1), NewLeaderLink(1, 2, testConfig) }
	info := quorum.NewLearnerInfo(false, 1, quorum.LearnerInfo{Sid: 2, ProtocolVersion: quorum.LearnerProtocol})
	for name, tc := range map[string]struct {
		leaderSide bool
		before     []quorum.Packet
		p          quorum.Packet
		want       error
	}{
		"first from leader not LEADERINFO": {p: quorum.NewPing(1), want: quorum.ErrMalformed},
		"old leader protocol":              {p: quorum.Packet{Type: quorum.LeaderInfo, Zxid: 1 << 32, Data: []byte{0, 0, 0, 1}}, want: quorum.ErrVersion},
		"second LEADERINFO":                {before: []quorum.Packet{quorum.NewLeaderInfo(1)}, p: quorum.NewLeaderInfo(2), want: quorum.ErrMalformed},
		"short COMMITANDACTIVATE":          {before: []quorum.Packet{quorum.NewLeaderInfo(1)}, p: quorum.Packet{Type: quorum.CommitAndActivate, Zxid: 5, Data: []byte{1}}, want: quorum.ErrMalformed},
		"short INFORMANDACTIVATE":          {before: []quorum.Packet{quorum.NewLeaderInfo(1)}, p: quorum.Packet{Type: quorum.InformAndActivate, Zxid: 5, Data: []byte{1}}, want: quorum.ErrMalformed},
		"unknown type":                     {before: []quorum.Packet{quorum.NewLeaderInfo(1)}, p: quorum.Packet{Type: 42}, want: quorum.ErrMalformed},
		"REQUEST from leader":              {before: []quorum.Packet{quorum.NewLeaderInfo(1)}, p: quorum.NewRequest(quorum.Forwarded{Session: 1}), want: quorum.ErrMalformed},
		"short REVALIDATE reply":           {before: []quorum.Packet{quorum.NewLeaderInfo(1)}, p: quorum.Packet{Type: quorum.Revalidate, Data: []byte{1}}, want: quorum.ErrMalformed},
		"PROPOSAL without txn":             {before: []quorum.Packet{quorum.NewLeaderInfo(1)}, p: quorum.Packet{Type: quorum.Proposal, Zxid: 1}, want: quorum.ErrMalformed},
		"first from learner not INFO":      {leaderSide: true, p: quorum.NewAck(1), want: quorum.ErrMalformed},
		"learner lies about its id":        {leaderSide: true, p: quorum.NewLearnerInfo(false, 1, quorum.LearnerInfo{Sid: 3, ProtocolVersion: quorum.LearnerProtocol}), want: quorum.ErrMalformed},
		"pre-3.4 learner":                  {leaderSide: true, p: quorum.NewLearnerInfo(false, 1, quorum.LearnerInfo{Sid: 2, ProtocolVersion: 1}), want: quorum.ErrVersion},
		"short LearnerInfo":                {leaderSide: true, p: quorum.Packet{Type: quorum.FollowerInfo, Data: []byte{1}}, want: quorum.ErrMalformed},
		"second FOLLOWERINFO":              {leaderSide: true, before: []quorum.Packet{info}, p: info, want: quorum.ErrMalformed},
		"bad touches":                      {leaderSide: true, before: []quorum.Packet{info}, p: quorum.Packet{Type: quorum.Ping, Data: []byte{1}}, want: quorum.ErrMalformed},
		"short REQUEST":                    {leaderSide: true, before: []quorum.Packet{info}, p: quorum.Packet{Type: quorum.Request, Data: []byte{1}}, want: quorum.ErrMalformed},
		"short ACKEPOCH":                   {leaderSide: true, before: []quorum.Packet{info}, p: quorum.Packet{Type: quorum.AckEpoch}, want: quorum.ErrMalformed},
		"PROPOSAL from learner":            {leaderSide: true, before: []quorum.Packet{info}, p: quorum.NewCommit(1), want: quorum.ErrMalformed},
		"reconfig to leader":               {leaderSide: true, before: []quorum.Packet{info}, p: quorum.NewCommitAndActivate(1, 1), want: quorum.ErrMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			l, d := fresh()
			if tc.leaderSide {
				l = d
			}
			for _, p := range tc.before {
				_, err := l.Decode(p)
				require.NoError(t, err)
			}
			_, err := l.Decode(tc.p)
			require.Error(t, err)
			require.True(t, errors.Is(err, tc.want), "%v", err)
		})
	}
}

func TestZklinkEncodeRefuses(t *testing.T) {
	learner, leader := handshake(t, false)
	for _, m := range []zab.Message{
		{Type: zab.MsgTimeoutNow, Epoch: 5},
		{Type: zab.MsgNotification},
		{Type: zab.MsgProposal, Epoch: 5}, // a leader's message, on a learner link
	} {
		_, err := learner.Encode(m)
		require.Error(t, err, "%v", m.Type)
	}
	for _, m := range []zab.Message{
		{Type: zab.MsgTimeoutNow, Epoch: 5},
		{Type: zab.MsgAck, Epoch: 5},
		{Type: zab.MsgLeaderInfo, Epoch: 1 << 33},
	} {
		_, err := leader.Encode(m)
		require.Error(t, err, "%v", m.Type)
	}
	_, err := NewLearnerLink(2, 1).Encode(zab.Message{Type: zab.MsgFollowerInfo, Epoch: -2})
	require.Error(t, err)
}

func TestZklinkNotificationRoundTrip(t *testing.T) {
	for _, st := range []zab.Role{zab.Looking, zab.Following, zab.Leading, zab.Observing} {
		m := zab.Message{Type: zab.MsgNotification, From: 3, To: 1, Vote: zab.Vote{
			Leader: 3, Zxid: zab.MakeZxid(2, 7), PeerEpoch: 2, Round: 9, State: st,
		}}
		b, err := EncodeNotification(m, testConfig)
		require.NoError(t, err)
		n, err := quorum.DecodeNotification(b)
		require.NoError(t, err)
		require.Equal(t, quorum.NotificationVersion, n.Version)
		require.Equal(t, testConfig, n.Config)
		require.Equal(t, quorum.ServerState(st), n.State)
		got, err := DecodeNotification(3, 1, b)
		require.NoError(t, err)
		c, err := ParseConfig(testConfig)
		require.NoError(t, err)
		m.Payload = zab.AppendConfigs(nil, c, nil) // the config string, for the engine's reconfig
		require.Equal(t, m, got)
	}
	// The older forms a 3.5+ server reads decode too.
	old := quorum.Notification{State: quorum.Following, Leader: 2, Zxid: zab.MakeZxid(3, 1), ElectionEpoch: 4, Short28: true}
	b, err := old.Encode()
	require.NoError(t, err)
	got, err := DecodeNotification(2, 1, b)
	require.NoError(t, err)
	require.Equal(t, zab.Vote{Leader: 2, Zxid: zab.MakeZxid(3, 1), PeerEpoch: 3, Round: 4, State: zab.Following}, got.Vote)

	bad := quorum.Notification{State: 7, Version: 2}
	b, err = bad.Encode()
	require.NoError(t, err)
	_, err = DecodeNotification(2, 1, b)
	require.ErrorIs(t, err, quorum.ErrMalformed)
	_, err = DecodeNotification(2, 1, b[:20])
	require.ErrorIs(t, err, quorum.ErrMalformed)
	_, err = EncodeNotification(zab.Message{Type: zab.MsgNotification, Vote: zab.Vote{State: 9}}, nil)
	require.Error(t, err)
	_, err = EncodeNotification(zab.Message{Type: zab.MsgPing}, nil)
	require.Error(t, err)
}

func TestZklinkConfigString(t *testing.T) {
	got := ConfigString([]Member{
		{ID: 3, Host: "zk3", QuorumPort: 2888, ElectionPort: 3888, Observer: true},
		{ID: 1, Host: "127.0.0.1", QuorumPort: 2888, ElectionPort: 3888, ClientAddr: "0.0.0.0:2181"},
		{ID: 2, Host: "::1", QuorumPort: 2889, ElectionPort: 3889},
	}, 0)
	require.Equal(t, "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n"+
		"server.2=[::1]:2889:3889:participant\n"+
		"server.3=zk3:2888:3888:observer\n"+
		"version=0", string(got))
}

// A learner that left its leader and rejoined it within the epoch, holding
// proposals the leader committed meanwhile, is DIFFed to the leader's
// commit point with no COMMIT for them: UPTODATE commits its log up to the
// DIFF's zxid, as ZooKeeper's learner, which applied its log when it left
// (the simulator's seed 600, TestSimRejoinSameLeaderWithinEpoch). Up to a
// TRUNC's zxid likewise.
func TestZklinkUpToDateCommitsToTheSyncPoint(t *testing.T) {
	z := func(e, c int64) int64 { return zab.MakeZxid(e, c) }
	for _, sync := range []quorum.PacketType{quorum.Diff, quorum.Trunc} {
		learner, leader := handshake(t, false)
		got := wire(t, []quorum.Packet{{Type: sync, Zxid: z(5, 10)}}, learner)
		require.Equal(t, z(5, 10), got[0].Zxid)
		send(t, leader, learner, zab.Message{Type: zab.MsgNewLeader, Epoch: 5, Zxid: z(5, 0)})
		_, got = send(t, leader, learner, zab.Message{Type: zab.MsgUpToDate, Epoch: 5, Zxid: z(5, 10)})
		require.Equal(t, []zab.Message{{Type: zab.MsgUpToDate, From: 1, To: 2, Epoch: 5, Zxid: z(5, 10)}}, got, "after %s", sync)
	}
	// A sync point of an older epoch commits no less than the epoch's
	// history before it.
	learner, leader := handshake(t, false)
	wire(t, []quorum.Packet{{Type: quorum.Diff, Zxid: z(4, 9)}}, learner)
	send(t, leader, learner, zab.Message{Type: zab.MsgNewLeader, Epoch: 5, Zxid: z(5, 0)})
	_, got := send(t, leader, learner, zab.Message{Type: zab.MsgUpToDate, Epoch: 5, Zxid: z(4, 9)})
	require.Equal(t, z(5, 0), got[0].Zxid)
}

// TestZklinkForwardedRequestRaw: a learner's REQUEST read in raw form
// (quorum.DecodeWholeRaw, as zktcp reads one) reaches the leader's engine
// as the same payload as decoded and re-encoded (the bytes ZooKeeper's
// learner sent, which are canonical), without a copy; one that is
// malformed is refused with the same error in both forms.
func TestZklinkForwardedRequestRaw(t *testing.T) {
	reqs := []quorum.Packet{
		quorum.NewRequest(quorum.Forwarded{Session: 7, Cxid: 3, Op: proto.OpSetData, Body: []byte{0, 0, 0, 2, '/', 'a'}, Auth: []proto.Id{{Scheme: "ip", ID: "127.0.0.1"}, {Scheme: "digest", ID: "u:h"}}}),
		quorum.NewRequest(quorum.Forwarded{Session: 8, Op: proto.OpCloseSession}),
		quorum.NewRequest(quorum.Forwarded{Session: 9, Op: proto.OpCreateSession, Body: []byte{0, 0, 0x0f, 0xa0}, Auth: []proto.Id{}}),
	}
	for _, p := range reqs {
		wire := p.Encode()
		_, leader := handshake(t, false)
		want, err := leader.Decode(decoded(t, p))
		require.NoError(t, err)
		require.Equal(t, wire, want[0].Payload)

		_, leader = handshake(t, false)
		raw, n, ok := quorum.DecodeWholeRaw(append(wire, 9, 9), quorum.Limits{})
		require.True(t, ok)
		require.Equal(t, len(wire), n)
		got, err := leader.Decode(raw)
		require.NoError(t, err)
		require.Equal(t, want, got)
		require.Same(t, &raw.Raw[0], &got[0].Payload[0], "the packet's bytes, not a copy")
	}
	for name, data := range map[string][]byte{"nil": nil, "short": {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0}} {
		p := quorum.Packet{Type: quorum.Request, Zxid: -1, Data: data, Auth: []proto.Id{{Scheme: "ip", ID: "h"}}}
		_, leader := handshake(t, false)
		_, want := leader.Decode(decoded(t, p))
		require.ErrorIs(t, want, quorum.ErrMalformed, name)
		_, leader = handshake(t, false)
		raw, _, ok := quorum.DecodeWholeRaw(p.Encode(), quorum.Limits{})
		require.True(t, ok)
		_, err := leader.Decode(raw)
		require.EqualError(t, err, want.Error(), name)
	}
}
