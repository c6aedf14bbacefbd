package zktcp

import (
	"bytes"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/netstub"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// snapBodyWith is snapBody with data in the root node, so the body takes
// several chunks.
func snapBodyWith(data []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, 0) // sessions
	b = binary.BigEndian.AppendUint32(b, 0)    // ACL cache
	b = binary.BigEndian.AppendUint32(b, 0)    // path ""
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	b = append(b, data...)
	b = binary.BigEndian.AppendUint64(b, ^uint64(0)) // acl id -1
	b = append(b, make([]byte, 60)...)               // StatPersisted
	b = binary.BigEndian.AppendUint32(b, 1)
	b = append(b, '/')
	b = binary.BigEndian.AppendUint32(b, uint32(len(quorum.SnapSignature)))
	return append(b, quorum.SnapSignature...)
}

// gatedSnapshot writes its first `at` bytes, says so on reached, and
// writes the rest once gate closes: the leader is then in the middle of
// the body.
type gatedSnapshot struct {
	body    []byte
	at      int
	reached chan struct{}
	gate    chan struct{}
}

func (g *gatedSnapshot) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(g.body[:g.at])
	if err != nil {
		return int64(n), err
	}
	close(g.reached)
	<-g.gate
	m, err := w.Write(g.body[g.at:])
	return int64(n + m), err
}

func (g *gatedSnapshot) Open() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(g.body)), nil
}

// capsPair starts a leader (1) and a learner (2) announcing the caps
// given, logging into logs, and runs the handshake to ACKEPOCH for epoch
// 4; it returns the caps stamped on MsgFollowerInfo and MsgLeaderInfo.
func capsPair(t *testing.T, leaderCaps, learnerCaps zab.Caps, logs *lockedBuffer) (leader, learner *Transport, fiCaps, liCaps zab.Caps) {
	ts := clusterWith(t, 2, func(c *Config) {
		c.Caps = leaderCaps
		if c.ID == 2 {
			c.Caps = learnerCaps
		}
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("server", c.ID)
	})
	leader, learner = ts[0], ts[1]
	fi, li := handshakeToAckEpoch(t, leader, learner, zab.MakeZxid(3, 5))
	return leader, learner, fi.Caps, li.Caps
}

// sendGatedSnap has the leader send a SNAP of body (stopped at 40 KiB, in
// its second chunk), then a proposal and NEWLEADER, then pings queued
// while the body is being written; it then lets the body finish and
// returns what the learner's engine receives, in order, up to NEWLEADER.
func sendGatedSnap(t *testing.T, leader, learner *Transport, body []byte, pings int) []zab.Message {
	snap := &gatedSnapshot{body: body, at: 40 << 10, reached: make(chan struct{}), gate: make(chan struct{})}
	leader.Send(zab.Message{Type: zab.MsgSnap, To: 2, Epoch: 4, Zxid: zab.MakeZxid(3, 7), Snapshot: snap})
	leader.Send(zab.Message{Type: zab.MsgProposal, To: 2, Epoch: 4, Entry: zab.Entry{Zxid: zab.MakeZxid(4, 1), Data: []byte("txn")}})
	leader.Send(zab.Message{Type: zab.MsgNewLeader, To: 2, Epoch: 4, Zxid: zab.MakeZxid(4, 0)})
	select {
	case <-snap.reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the leader did not start writing the SNAP body")
	}
	for range pings {
		leader.Send(zab.Message{Type: zab.MsgPing, To: 2, Epoch: 4, Zxid: zab.MakeZxid(4, 1)})
	}
	close(snap.gate)
	var got []zab.Message
	deadline := time.After(10 * time.Second)
	for len(got) == 0 || got[len(got)-1].Type != zab.MsgNewLeader {
		select {
		case m := <-learner.Recv():
			if m.Type != zab.MsgNotification {
				got = append(got, m)
			}
		case <-deadline:
			t.Fatalf("the learner got %v, not up to NEWLEADER", msgTypes(got))
		}
	}
	return got
}

func msgTypes(ms []zab.Message) []zab.MsgType {
	var out []zab.MsgType
	for _, m := range ms {
		out = append(out, m.Type)
	}
	return out
}

// TestZKTCPCapsAndStreamedSnap: two zabkeeper servers negotiate every
// capability in their hellos (stamped on MsgFollowerInfo and
// MsgLeaderInfo, logged once per link), and the leader streams a SNAP
// body in chunks with the PINGs queued meanwhile between them: the
// learner's engine hears the pings before the snapshot is whole, then the
// SNAP byte for byte, then what was queued behind it.
func TestZKTCPCapsAndStreamedSnap(t *testing.T) {
	logs := &lockedBuffer{}
	leader, learner, fiCaps, liCaps := capsPair(t, zab.AllCaps, zab.AllCaps, logs)
	require.Equal(t, zab.AllCaps, fiCaps)
	require.Equal(t, zab.AllCaps, liCaps)
	caps, ok := leader.PeerCaps(2)
	require.True(t, ok)
	require.Equal(t, zab.AllCaps, caps)
	caps, _ = learner.PeerCaps(1)
	require.Equal(t, zab.AllCaps, caps)

	body := snapBodyWith(bytes.Repeat([]byte("zabkeeper"), 12<<10)) // ~108 KiB: 4 chunks
	got := sendGatedSnap(t, leader, learner, body, 3)
	require.Equal(t, []zab.MsgType{zab.MsgPing, zab.MsgPing, zab.MsgPing, zab.MsgSnap, zab.MsgProposal, zab.MsgNewLeader}, msgTypes(got),
		"the pings overtake the snapshot being sent, nothing else does")
	snap := got[3]
	require.Equal(t, zab.MakeZxid(3, 7), snap.Zxid)
	data, err := zab.ReadSnapshot(snap.Snapshot)
	require.NoError(t, err)
	require.Equal(t, body, data)

	// TIMEOUTNOW goes on this link.
	leader.Send(zab.Message{Type: zab.MsgTimeoutNow, To: 2, Epoch: 4, Zxid: zab.MakeZxid(4, 1),
		Vote: zab.Vote{Leader: 2, Zxid: zab.MakeZxid(4, 1), PeerEpoch: 4}})
	tn := recv(t, learner, zab.MsgTimeoutNow)
	require.Equal(t, zab.Vote{Leader: 2, Zxid: zab.MakeZxid(4, 1), PeerEpoch: 4}, tn.Vote)

	out := logs.String()
	require.Contains(t, out, "learner connected: zabkeeper (announces transfer|stream-snap|move-request; link caps transfer|stream-snap|move-request)")
	require.Contains(t, out, "the leader is zabkeeper")
	require.Regexp(t, regexp.MustCompile(`received SNAP".*streamed=true chunks=4 packets_between=3`), out)
	require.NotContains(t, out, "bug:")
}

// TestZKTCPZooKeeperLikeLearner: a learner that announces nothing (as a
// ZooKeeper server) gets no capabilities, the SNAP body raw with the pings
// after it, and no TIMEOUTNOW: the leader drops it and logs the bug.
func TestZKTCPZooKeeperLikeLearner(t *testing.T) {
	logs := &lockedBuffer{}
	leader, learner, fiCaps, liCaps := capsPair(t, zab.AllCaps, 0, logs)
	require.Zero(t, fiCaps)
	require.Zero(t, liCaps)
	caps, ok := leader.PeerCaps(2)
	require.True(t, ok)
	require.Zero(t, caps)

	body := snapBodyWith(bytes.Repeat([]byte("zookeeper"), 12<<10))
	got := sendGatedSnap(t, leader, learner, body, 2)
	require.Equal(t, []zab.MsgType{zab.MsgSnap, zab.MsgProposal, zab.MsgNewLeader}, msgTypes(got), "raw: nothing overtakes the body")
	data, err := zab.ReadSnapshot(got[0].Snapshot)
	require.NoError(t, err)
	require.Equal(t, body, data)
	require.Equal(t, zab.MsgPing, recv(t, learner, zab.MsgPing).Type, "the pings follow the stream")

	leader.Send(zab.Message{Type: zab.MsgTimeoutNow, To: 2, Epoch: 4, Zxid: zab.MakeZxid(4, 1), Vote: zab.Vote{Leader: 2}})
	leader.Send(zab.Message{Type: zab.MsgPing, To: 2, Epoch: 4, Zxid: zab.MakeZxid(4, 2)})
	for m := recv(t, learner, zab.MsgPing); m.Zxid != zab.MakeZxid(4, 2); m = recv(t, learner, zab.MsgPing) {
	}
	out := logs.String()
	require.Contains(t, out, "learner connected: Apache ZooKeeper (no hello)")
	require.Contains(t, out, "bug: the engine sent what this link's capabilities forbid")
	require.Regexp(t, regexp.MustCompile(`received SNAP".*sessions=0\n`), out, "the raw path's log line")
}

// dialLearner connects to tr's quorum port as learner sid with a hello
// carrying nonce, and returns the connection.
func dialLearner(t *testing.T, tr *Transport, sid, nonce int64) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", tr.QuorumAddr().String())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	p := quorum.NewLearnerInfoHello(false, 1, quorum.LearnerInfo{Sid: sid, ProtocolVersion: quorum.LearnerProtocol},
		quorum.Hello{Caps: uint64(zab.AllCaps), Nonce: nonce})
	_, err = c.Write(p.Encode())
	require.NoError(t, err)
	return c
}

// TestZKTCPDuplicateLearnerID: the leader applies the duplicate-id rule to
// learners' hello nonces. Two live processes with id 2 take turns
// replacing each other's connection; at the third comeback the leader
// logs the proof, refuses the newcomer and closes the other, and refuses
// id 2 from then on. A restart of server 3 (a new nonce) just replaces
// its old connection.
func TestZKTCPDuplicateLearnerID(t *testing.T) {
	logs := &lockedBuffer{}
	ts := clusterWith(t, 3, func(c *Config) {
		c.Caps = zab.AllCaps
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	leader := ts[0]
	leader.SetRole(zab.Leading, 1)
	accepted := func() {
		t.Helper()
		require.Equal(t, int64(2), recv(t, leader, zab.MsgFollowerInfo).From)
	}
	const a, b = 0x0a, 0x0b
	c := []net.Conn{dialLearner(t, leader, 2, a)}
	accepted()
	for i, nonce := range []int64{b, a, b} { // a new nonce, then two comebacks
		c = append(c, dialLearner(t, leader, 2, nonce))
		accepted()
		requireClosed(t, c[i]) // replaced
	}
	third := dialLearner(t, leader, 2, a)
	requireClosed(t, third)
	requireClosed(t, c[3])
	require.Equal(t, int64(2), recv(t, leader, zab.MsgLinkDown).From, "the engine loses learner 2")
	require.Contains(t, logs.String(), "two servers are running with id 2")
	require.Equal(t, []int64{2}, leader.DuplicateIDs())
	requireClosed(t, dialLearner(t, leader, 2, b))

	// A restart: a new nonce replaces the old connection, no alarm.
	old := dialLearner(t, leader, 3, 0x3a)
	require.Equal(t, int64(3), recv(t, leader, zab.MsgFollowerInfo).From)
	_ = dialLearner(t, leader, 3, 0x3b)
	require.Equal(t, int64(3), recv(t, leader, zab.MsgFollowerInfo).From)
	requireClosed(t, old)
	require.Equal(t, []int64{2}, leader.DuplicateIDs())
	require.NotContains(t, logs.String(), "running with id 3")
}

// snapChunks returns the SNAPCHUNK packets a leader streams body in.
func snapChunks(t *testing.T, zxid int64, body []byte) []quorum.Packet {
	var out []quorum.Packet
	_, err := netstub.StreamSnapshot(zab.SnapshotBytes(body), func(payload []byte) error {
		out = append(out, quorum.Packet{Type: quorum.SnapChunk, Zxid: zxid, Data: append([]byte(nil), payload...)})
		return nil
	}, nil)
	require.NoError(t, err)
	return out
}

// TestZKTCPBadStreamedSnapClosesTheLink: a zabkeeper learner whose leader
// (played by the test, every capability announced) breaks the chunked
// SNAP stream drops the link (the engine hears MsgLinkDown) and keeps no
// spool file: a packet other than PING or TIMEOUTNOW between chunks, a
// chunk of another SNAP, an end that disagrees with the bytes sent, a body
// that is not a SNAP body.
func TestZKTCPBadStreamedSnapClosesTheLink(t *testing.T) {
	const zxid = 0x300000007
	good := snapChunks(t, zxid, snapBodyWith(bytes.Repeat([]byte("z"), 70<<10)))
	require.Len(t, good, 4, "three chunks and the end")
	badEnd := append([]quorum.Packet(nil), good...)
	end := append([]byte(nil), badEnd[3].Data...)
	end[len(end)-1]++
	badEnd[3].Data = end
	otherZxid := append([]quorum.Packet(nil), good...)
	otherZxid[1].Zxid++
	proposal := append(append([]quorum.Packet(nil), good[:2]...),
		quorum.Packet{Type: quorum.Proposal, Zxid: zab.MakeZxid(4, 1), Data: []byte("txn")})
	proposal = append(proposal, good[2:]...)
	cases := map[string][]quorum.Packet{
		"proposal between chunks":  proposal,
		"chunk of another SNAP":    otherZxid,
		"end with a wrong length":  badEnd,
		"not a SNAP body":          snapChunks(t, zxid, bytes.Repeat([]byte{0xff}, 50<<10)),
		"control: the good stream": good,
	}
	for name, stream := range cases {
		t.Run(name, func(t *testing.T) {
			spool := t.TempDir()
			ts := clusterWith(t, 2, func(c *Config) {
				c.Caps = zab.AllCaps
				c.SpoolDir = spool
			})
			learner := ts[1]
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			defer ln.Close()
			learner.SetPeers(map[int64]Peer{1: {QuorumAddr: ln.Addr().String(), ElectionAddr: ts[0].ElectionAddr().String()}})
			learner.Send(zab.Message{Type: zab.MsgFollowerInfo, To: 1, Epoch: 3})
			learner.SetRole(zab.Following, 1)
			_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
			c, err := ln.Accept()
			require.NoError(t, err)
			defer c.Close()
			fi, err := quorum.ReadPacket(c, quorum.Limits{})
			require.NoError(t, err)
			_, ok := quorum.PacketHello(&fi)
			require.True(t, ok, "the learner announces itself")

			var b []byte
			b = quorum.NewLeaderInfoHello(4, quorum.Hello{Caps: uint64(zab.AllCaps), Nonce: 1}).Append(b)
			b = quorum.Packet{Type: quorum.Snap, Zxid: zxid}.Append(b)
			b = quorum.NewPing(zab.MakeZxid(4, 0)).Append(b) // a PING may come anywhere in the stream
			for _, p := range stream {
				b = p.Append(b)
			}
			_, err = c.Write(b)
			require.NoError(t, err)
			require.Equal(t, zab.AllCaps, recv(t, learner, zab.MsgLeaderInfo).Caps)
			if name == "control: the good stream" {
				m := recv(t, learner, zab.MsgSnap)
				require.NoError(t, m.Snapshot.(*netstub.SpooledSnapshot).Close())
				return
			}
			require.Equal(t, int64(1), recv(t, learner, zab.MsgLinkDown).From, "the learner drops the link")
			entries, err := os.ReadDir(spool)
			require.NoError(t, err)
			require.Empty(t, entries, "no spool file outlives the broken stream")
		})
	}
}
