package zktcp

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/netstub/zklink"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// testBook gives server N the address 10.0.0.N, N <= 9, client port 2181.
func testBook(id int64) (zklink.Member, bool) {
	if id < 1 || id > 9 {
		return zklink.Member{}, false
	}
	return zklink.Member{ID: id, Host: fmt.Sprintf("10.0.0.%d", id), QuorumPort: 2888, ElectionPort: 3888,
		ClientAddr: fmt.Sprintf("10.0.0.%d:2181", id)}, true
}

// With a Book, a notification carries the engine's active configuration as
// ZooKeeper's string, byte for byte what a ZooKeeper peer reads on its
// election port (not the static Config), and the receiving transport
// gives its engine that configuration. The pending one follows only once
// a quorum-port handshake showed the peer is zabkeeper.
func TestZKTCPNotificationsCarryTheEngineConfigs(t *testing.T) {
	ts := clusterWith(t, 2, func(c *Config) { c.Book, c.Caps = testBook, zab.AllCaps })
	a, b := ts[0], ts[1]
	active := zab.Membership{Version: zab.MakeZxid(1, 0), Voters: []int64{1, 2, 3}}
	pending := zab.Membership{Version: zab.MakeZxid(1, 4), Voters: []int64{1, 2, 3}, Observers: []int64{4}}
	vote := zab.Vote{Leader: 2, Zxid: zab.MakeZxid(1, 4), PeerEpoch: 1, Round: 2, State: zab.Looking}
	note := zab.Message{Type: zab.MsgNotification, To: 1, Vote: vote, Payload: zab.AppendConfigs(nil, active, &pending)}
	recvConfigs := func() []byte {
		for {
			m := recv(t, a, zab.MsgNotification)
			if m.From == 2 && m.Vote == vote {
				return m.Payload
			}
		}
	}
	b.Send(note)
	require.Equal(t, zab.AppendConfigs(nil, active, nil), recvConfigs(), "a peer of unknown kind gets ZooKeeper's record only")

	// A quorum-port handshake with hellos: each knows the other is
	// zabkeeper.
	a.SetRole(zab.Leading, 1)
	b.Send(zab.Message{Type: zab.MsgFollowerInfo, To: 1, Epoch: 1})
	b.SetRole(zab.Following, 1)
	recv(t, a, zab.MsgFollowerInfo)
	a.Send(zab.Message{Type: zab.MsgLeaderInfo, To: 2, Epoch: 2})
	recv(t, b, zab.MsgLeaderInfo)
	vote.Round++
	note.Vote = vote
	b.Send(note)
	require.Equal(t, note.Payload, recvConfigs(), "the pending configuration too")

	// A ZooKeeper peer on the election port: a raw listener as server 1
	// (server 1 gone), to which server 2 keeps its connection.
	zk, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer zk.Close()
	require.NoError(t, a.Close())
	require.Eventually(t, func() bool {
		b.mu.Lock()
		p := b.el[1]
		b.mu.Unlock()
		return p.current() == nil
	}, 10*time.Second, 5*time.Millisecond, "server 2 sees server 1's election link break")
	b.SetPeers(map[int64]Peer{1: {QuorumAddr: "127.0.0.1:1", ElectionAddr: zk.Addr().String()}})
	vote.Round++
	note.Vote = vote
	b.Send(note)
	c, err := zk.Accept()
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	br := bufio.NewReader(c)
	im, err := quorum.ReadInitialMessage(br)
	require.NoError(t, err)
	require.Equal(t, int64(2), im.Sid)
	var frame []byte
	for {
		frame, err = quorum.ReadFrame(br)
		require.NoError(t, err)
		n, err := quorum.DecodeNotification(frame)
		require.NoError(t, err)
		if n.ElectionEpoch == vote.Round {
			break // not the last one re-sent on a new connection
		}
	}
	cfg := "server.1=10.0.0.1:2888:3888:participant;10.0.0.1:2181\nserver.2=10.0.0.2:2888:3888:participant;10.0.0.2:2181\n" +
		"server.3=10.0.0.3:2888:3888:participant;10.0.0.3:2181\nversion=100000000"
	want, err := zklink.EncodeNotification(note, []byte(cfg))
	require.NoError(t, err)
	// The peer's kind is what its last quorum-port handshake showed
	// (zabkeeper here), so the trailer follows; ZooKeeper reads the
	// record and ignores what follows it (configLength bytes only).
	require.Equal(t, want, frame[:len(want)], "ZooKeeper's record, the active configuration's string")
	n, err := quorum.DecodeNotification(frame)
	require.NoError(t, err)
	require.Equal(t, cfg, string(n.Config))
}

// With a Book, NEWLEADER carries the leader engine's last-seen
// configuration as ZooKeeper's string, and the learner's engine gets it
// (ZooKeeper's learner takes the leader's quorum verifier from NEWLEADER).
// Without one, the static Config and nothing for the engine.
func TestZKTCPNewLeaderCarriesTheLeadersConfig(t *testing.T) {
	seen := zab.Membership{Version: zab.MakeZxid(3, 9), Voters: []int64{1, 2}, Observers: []int64{5}}
	for _, book := range []zklink.Book{testBook, nil} {
		ts := clusterWith(t, 2, func(c *Config) { c.Book = book })
		leader, learner := ts[0], ts[1]
		handshakeToAckEpoch(t, leader, learner, zab.MakeZxid(3, 5))
		leader.Send(zab.Message{Type: zab.MsgDiff, To: 2, Epoch: 4, Zxid: zab.MakeZxid(3, 5)})
		leader.Send(zab.Message{Type: zab.MsgNewLeader, To: 2, Epoch: 4, Zxid: zab.MakeZxid(4, 0), Payload: zab.AppendMembership(nil, seen)})
		recv(t, learner, zab.MsgDiff)
		m := recv(t, learner, zab.MsgNewLeader)
		if book != nil {
			require.Equal(t, zab.AppendMembership(nil, seen), m.Payload)
		} else {
			require.Nil(t, m.Payload)
		}
	}
}

// A leader told its configuration version refuses a learner whose
// FOLLOWERINFO carries a newer one, closing the connection as ZooKeeper's
// LearnerHandler does ("Follower is ahead of the leader"): the learner's
// engine hears MsgLinkDown and the leader's never hears the learner. One
// at or behind the leader's version is accepted, and FOLLOWERINFO carries
// the learner's version on the wire.
func TestZKTCPLeaderRefusesALearnerAheadOfIt(t *testing.T) {
	logs := &lockedBuffer{}
	ts := clusterWith(t, 2, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("server", c.ID)
	})
	leader, learner := ts[0], ts[1]
	leader.SetConfigVersion(zab.MakeZxid(1, 0))
	leader.SetRole(zab.Leading, 1)
	learner.SetConfigVersion(zab.MakeZxid(1, 7))
	learner.Send(zab.Message{Type: zab.MsgFollowerInfo, To: 1, Epoch: 3})
	learner.SetRole(zab.Following, 1)
	require.Equal(t, int64(1), recv(t, learner, zab.MsgLinkDown).From)
	require.Contains(t, logs.String(), "reason=reconfig")
	require.Contains(t, logs.String(), "learner 2 has configuration 0x100000007, this leader 0x100000000")

	learner.SetConfigVersion(zab.MakeZxid(1, 0))
	learner.Send(zab.Message{Type: zab.MsgFollowerInfo, To: 1, Epoch: 3})
	m := recv(t, leader, zab.MsgFollowerInfo)
	require.Equal(t, int64(2), m.From, "an equal version is accepted")

	// On the wire: a raw ZooKeeper-like learner ahead of the leader gets
	// its connection closed before LEADERINFO.
	c, err := net.Dial("tcp", leader.QuorumAddr().String())
	require.NoError(t, err)
	defer c.Close()
	p := quorum.NewLearnerInfo(false, 3, quorum.LearnerInfo{Sid: 2, ProtocolVersion: quorum.LearnerProtocol, ConfigVersion: zab.MakeZxid(2, 0)})
	_, err = c.Write(p.Encode())
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = quorum.ReadPacket(c, quorum.Limits{MaxData: quorum.DefaultMaxData})
	require.ErrorIs(t, err, io.EOF, "closed, no LEADERINFO")
}
