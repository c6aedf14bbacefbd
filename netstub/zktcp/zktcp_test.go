package zktcp

import (
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("ZABKEEPER_TEST_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// cluster starts n transports on loopback, each knowing the others.
func cluster(t *testing.T, n int) []*Transport {
	t.Helper()
	return clusterWith(t, n, nil)
}

// clusterWith is cluster with each Config changed by mutate.
func clusterWith(t *testing.T, n int, mutate func(*Config)) []*Transport {
	t.Helper()
	var ts []*Transport
	peers := map[int64]Peer{}
	for i := 1; i <= n; i++ {
		el, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ql, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		cfg := Config{
			ID: int64(i), ElectionListener: el, QuorumListener: ql,
			Config:   []byte("version=0"),
			TickTime: 100 * time.Millisecond, InitLimit: 20, SyncLimit: 10,
			SpoolDir: t.TempDir(), Logger: testLogger(t),
		}
		if mutate != nil {
			mutate(&cfg)
		}
		tr, err := New(cfg)
		require.NoError(t, err)
		t.Cleanup(func() { _ = tr.Close() })
		ts = append(ts, tr)
		peers[int64(i)] = Peer{QuorumAddr: ql.Addr().String(), ElectionAddr: el.Addr().String()}
	}
	for _, tr := range ts {
		tr.SetPeers(peers)
	}
	return ts
}

// recv waits for the next message on tr that is not a notification (or is
// one, when want is MsgNotification).
func recv(t *testing.T, tr *Transport, want zab.MsgType) zab.Message {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-tr.Recv():
			if m.Type == want {
				return m
			}
			if m.Type != zab.MsgNotification && m.Type != zab.MsgPing {
				t.Fatalf("server %d: got %v (from %d) while waiting for %v", tr.id, m.Type, m.From, want)
			}
		case <-deadline:
			t.Fatalf("server %d: no %v within 10s", tr.id, want)
		}
	}
}

func TestZKTCPElectionBothDirections(t *testing.T) {
	ts := cluster(t, 3)
	// Every ordered pair: toward a larger id the sender knocks and the
	// larger one connects back; only one connection per pair survives.
	for _, from := range ts {
		for _, to := range ts {
			if from == to {
				continue
			}
			v := zab.Vote{Leader: from.id, Zxid: zab.MakeZxid(1, from.id), PeerEpoch: 1, Round: 7, State: zab.Looking}
			from.Send(zab.Message{Type: zab.MsgNotification, To: to.id, Vote: v})
			m := recv(t, to, zab.MsgNotification)
			for m.From != from.id || m.Vote != v {
				m = recv(t, to, zab.MsgNotification) // a re-sent older vote
			}
			require.Equal(t, to.id, m.To)
		}
	}
	require.Eventually(t, func() bool {
		for _, tr := range ts {
			for _, p := range tr.el {
				if p.current() == nil {
					return false
				}
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond, "each pair keeps a connection")
}

// snapBody is the smallest SNAP body ZooKeeper writes: no sessions, no
// ACLs, the root node, "/", the signature.
func snapBody() []byte {
	b := binary.BigEndian.AppendUint32(nil, 0)       // sessions
	b = binary.BigEndian.AppendUint32(b, 0)          // ACL cache
	b = binary.BigEndian.AppendUint32(b, 0)          // path ""
	b = binary.BigEndian.AppendUint32(b, 0)          // data
	b = binary.BigEndian.AppendUint64(b, ^uint64(0)) // acl id -1
	b = append(b, make([]byte, 60)...)               // StatPersisted
	b = binary.BigEndian.AppendUint32(b, 1)
	b = append(b, '/')
	b = binary.BigEndian.AppendUint32(b, uint32(len(quorum.SnapSignature)))
	return append(b, quorum.SnapSignature...)
}

func TestZKTCPLeaderLearnerLink(t *testing.T) {
	ts := cluster(t, 2)
	leader, learner := ts[0], ts[1]
	leader.SetRole(zab.Leading, 1)

	learner.Send(zab.Message{Type: zab.MsgFollowerInfo, To: 1, Epoch: 3, Zxid: 99})
	learner.SetRole(zab.Following, 1)
	m := recv(t, leader, zab.MsgFollowerInfo)
	require.Equal(t, zab.Message{Type: zab.MsgFollowerInfo, From: 2, To: 1, Epoch: 3}, m)

	leader.Send(zab.Message{Type: zab.MsgLeaderInfo, To: 2, Epoch: 4})
	require.Equal(t, int64(4), recv(t, learner, zab.MsgLeaderInfo).Epoch)
	learner.Send(zab.Message{Type: zab.MsgAckEpoch, To: 1, Epoch: 3, Zxid: zab.MakeZxid(3, 5)})
	m = recv(t, leader, zab.MsgAckEpoch)
	require.Equal(t, zab.MakeZxid(3, 5), m.Zxid)

	body := snapBody()
	leader.Send(zab.Message{Type: zab.MsgSnap, To: 2, Epoch: 4, Zxid: zab.MakeZxid(3, 7), Snapshot: zab.SnapshotBytes(body)})
	leader.Send(zab.Message{Type: zab.MsgProposal, To: 2, Epoch: 4, Entry: zab.Entry{Zxid: zab.MakeZxid(4, 1), Data: []byte("txn")}})
	leader.Send(zab.Message{Type: zab.MsgNewLeader, To: 2, Epoch: 4, Zxid: zab.MakeZxid(4, 0)})
	m = recv(t, learner, zab.MsgSnap)
	require.Equal(t, zab.MakeZxid(3, 7), m.Zxid)
	got, err := zab.ReadSnapshot(m.Snapshot)
	require.NoError(t, err)
	require.Equal(t, body, got, "the SNAP body arrives byte for byte, spooled")
	require.Equal(t, int64(4), m.Epoch)
	m = recv(t, learner, zab.MsgProposal)
	require.Equal(t, zab.Entry{Zxid: zab.MakeZxid(4, 1), Data: []byte("txn")}, m.Entry)
	recv(t, learner, zab.MsgNewLeader)

	learner.Send(zab.Message{Type: zab.MsgAck, To: 1, Epoch: 4, Zxid: zab.MakeZxid(4, 0)})
	require.Equal(t, zab.MakeZxid(4, 0), recv(t, leader, zab.MsgAck).Zxid)
	require.Equal(t, zab.MakeZxid(4, 1), recv(t, leader, zab.MsgAck).Zxid, "the synced proposal's own ACK")

	leader.Send(zab.Message{Type: zab.MsgUpToDate, To: 2, Epoch: 4, Zxid: zab.MakeZxid(4, 1)})
	require.Equal(t, zab.MakeZxid(4, 1), recv(t, learner, zab.MsgCommit).Zxid)
	recv(t, learner, zab.MsgUpToDate)

	// The leader goes away: the learner's engine hears MsgLinkDown.
	require.NoError(t, leader.Close())
	m = recv(t, learner, zab.MsgLinkDown)
	require.Equal(t, int64(1), m.From)
}

func TestZKTCPLearnerLinkClosedByRoleIsQuiet(t *testing.T) {
	ts := cluster(t, 2)
	leader, learner := ts[0], ts[1]
	leader.SetRole(zab.Leading, 1)
	learner.Send(zab.Message{Type: zab.MsgFollowerInfo, To: 1, Epoch: 1})
	learner.SetRole(zab.Following, 1)
	recv(t, leader, zab.MsgFollowerInfo)
	learner.SetRole(zab.Looking, 0)
	// The leader sees the learner go; the learner, which left, hears
	// nothing about it.
	require.Equal(t, int64(2), recv(t, leader, zab.MsgLinkDown).From)
	select {
	case m := <-learner.Recv():
		require.NotEqual(t, zab.MsgLinkDown, m.Type, "%+v", m)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestZKTCPBadInputClosesOnlyThatLink(t *testing.T) {
	ts := cluster(t, 2)
	leader, learner := ts[0], ts[1]
	leader.SetRole(zab.Leading, 1)

	expectClosed := func(addr net.Addr, payload []byte) {
		t.Helper()
		c, err := net.Dial("tcp", addr.String())
		require.NoError(t, err)
		defer c.Close()
		_, _ = c.Write(payload)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		requireClosed(t, c)
	}
	// Quorum port: a packet too large, a first packet that is not
	// FOLLOWERINFO, a bad protocol version. (An unknown server id is no
	// bad input: it syncs without a vote, stranger_test.go.)
	tooLarge := binary.BigEndian.AppendUint32(nil, uint32(quorum.FollowerInfo))
	tooLarge = binary.BigEndian.AppendUint64(tooLarge, 0)
	tooLarge = binary.BigEndian.AppendUint32(tooLarge, 1<<30)
	expectClosed(leader.QuorumAddr(), tooLarge)
	expectClosed(leader.QuorumAddr(), quorum.NewPing(1).Encode())
	expectClosed(leader.QuorumAddr(), quorum.NewLearnerInfo(false, 1, quorum.LearnerInfo{Sid: 2, ProtocolVersion: 1}).Encode())
	// Election port: a bad protocol version, a frame too large after a
	// good initial message (an unknown id's, kept as ZooKeeper keeps it).
	expectClosed(leader.ElectionAddr(), binary.BigEndian.AppendUint64(nil, uint64(0xffffffff00000000)))
	im := quorum.InitialMessage{Protocol: quorum.ProtocolV1, Sid: 9, Addrs: []string{"127.0.0.1:1"}}
	b, err := im.Encode()
	require.NoError(t, err)
	expectClosed(leader.ElectionAddr(), binary.BigEndian.AppendUint32(b, quorum.MaxFrame+1))

	// The real learner still gets through.
	learner.Send(zab.Message{Type: zab.MsgFollowerInfo, To: 1, Epoch: 1})
	require.Equal(t, int64(2), recv(t, leader, zab.MsgFollowerInfo).From)
	leader.Send(zab.Message{Type: zab.MsgNotification, To: 2, Vote: zab.Vote{Leader: 1, State: zab.Leading}})
	require.Equal(t, int64(1), recv(t, learner, zab.MsgNotification).Vote.Leader)
}

func TestZKTCPFollowerRefusesLearners(t *testing.T) {
	ts := cluster(t, 3)
	ts[0].SetRole(zab.Following, 3)
	c, err := net.Dial("tcp", ts[0].QuorumAddr().String())
	require.NoError(t, err)
	defer c.Close()
	_, _ = c.Write(quorum.NewLearnerInfo(false, 1, quorum.LearnerInfo{Sid: 2, ProtocolVersion: quorum.LearnerProtocol}).Encode())
	requireClosed(t, c)
	select {
	case m := <-ts[0].Recv():
		require.NotEqual(t, zab.MsgFollowerInfo, m.Type)
	case <-time.After(100 * time.Millisecond):
	}
}

// requireClosed checks that the server closed c (EOF or reset), rather
// than leaving it open until the read deadline.
func requireClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.ReadAll(c)
	if err != nil {
		require.ErrorIs(t, err, syscall.ECONNRESET, "the server closes the connection, not a timeout")
	}
}

// TestZKTCPElectionLinkDownWhileLooking: a broken election link tells the
// engine only while it is Looking; a follower of a live leader must not
// leave it because an idle election socket broke.
func TestZKTCPElectionLinkDownWhileLooking(t *testing.T) {
	for _, role := range []zab.Role{zab.Looking, zab.Following} {
		ts := cluster(t, 2)
		ts[1].Send(zab.Message{Type: zab.MsgNotification, To: 1, Vote: zab.Vote{Leader: 2}})
		recv(t, ts[0], zab.MsgNotification)
		ts[0].SetRole(role, 2)
		require.NoError(t, ts[1].Close())
		if role == zab.Looking {
			require.Equal(t, int64(2), recv(t, ts[0], zab.MsgLinkDown).From)
			continue
		}
		select {
		case m := <-ts[0].Recv():
			require.NotEqual(t, zab.MsgLinkDown, m.Type, "a follower's engine hears nothing of the election link")
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// TestZKTCPLeaderStepsDown: when the leader's engine leaves Leading, the
// learners' links close (the learners see the break) and its own engine
// hears no MsgLinkDown for them.
func TestZKTCPLeaderStepsDown(t *testing.T) {
	ts := cluster(t, 2)
	leader, learner := ts[0], ts[1]
	leader.SetRole(zab.Leading, 1)
	learner.Send(zab.Message{Type: zab.MsgFollowerInfo, To: 1, Epoch: 1})
	learner.SetRole(zab.Following, 1)
	recv(t, leader, zab.MsgFollowerInfo)
	leader.Send(zab.Message{Type: zab.MsgLeaderInfo, To: 2, Epoch: 2})
	recv(t, learner, zab.MsgLeaderInfo)
	leader.SetRole(zab.Looking, 0)
	require.Equal(t, int64(1), recv(t, learner, zab.MsgLinkDown).From)
	select {
	case m := <-leader.Recv():
		require.NotEqual(t, zab.MsgLinkDown, m.Type)
	case <-time.After(300 * time.Millisecond):
	}
}

// handshakeToAckEpoch makes leader (server 1) lead and learner (server 2)
// follow it through FOLLOWERINFO (accepted epoch 3), LEADERINFO (epoch 4)
// and ACKEPOCH with lastZxid; it returns the FOLLOWERINFO and LEADERINFO
// as the engines got them.
func handshakeToAckEpoch(t *testing.T, leader, learner *Transport, lastZxid int64) (fi, li zab.Message) {
	t.Helper()
	leader.SetRole(zab.Leading, 1)
	learner.Send(zab.Message{Type: zab.MsgFollowerInfo, To: 1, Epoch: 3})
	learner.SetRole(zab.Following, 1)
	fi = recv(t, leader, zab.MsgFollowerInfo)
	leader.Send(zab.Message{Type: zab.MsgLeaderInfo, To: 2, Epoch: 4})
	li = recv(t, learner, zab.MsgLeaderInfo)
	learner.Send(zab.Message{Type: zab.MsgAckEpoch, To: 1, Epoch: 3, Zxid: lastZxid})
	recv(t, leader, zab.MsgAckEpoch)
	return fi, li
}
