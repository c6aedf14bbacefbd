package zktcp

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// Servers outside the peer set ("strangers": a server about to join, a
// removed one) are served as ZooKeeper serves any id: their election
// connections are kept or answered by a connect-back, their notifications
// reach the engine, a leader syncs them as learners, and nothing of them
// stays once their connections end.

// elPeerOf returns tr's election link with id, nil if none.
func elPeerOf(tr *Transport, id int64) *elPeer {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.el[id]
}

// nativeKnown reports whether tr remembers id's kind (notePeerKind).
func nativeKnown(tr *Transport, id int64) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	_, ok := tr.native[id]
	return ok
}

// addrOf is tr's Peer entry as another transport would configure it.
func addrOf(tr *Transport) Peer {
	return Peer{QuorumAddr: tr.QuorumAddr().String(), ElectionAddr: tr.ElectionAddr().String()}
}

// noteFrom waits for a notification on tr from from whose vote is v.
func noteFrom(t *testing.T, tr *Transport, from int64, v zab.Vote) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-tr.Recv():
			if m.Type == zab.MsgNotification && m.From == from && m.Vote == v {
				return
			}
		case <-deadline:
			t.Fatalf("server %d: no notification %+v from %d within 10s", tr.id, v, from)
		}
	}
}

// A joiner with the larger id connects to a member that does not know it:
// the connection is kept, its notification reaches the engine, the
// engine's answer goes back on it; when the joiner goes, so does its link.
// Once the id is added (AddPeers), its link outlives the connection.
func TestZKTCPStrangerLargerIDKept(t *testing.T) {
	ts := cluster(t, 3)
	s1, s3 := ts[0], ts[2]
	s1.SetPeers(map[int64]Peer{2: addrOf(ts[1])}) // 1 knows 2 only
	v := zab.Vote{Leader: 3, Zxid: zab.MakeZxid(1, 3), PeerEpoch: 1, Round: 4, State: zab.Looking}
	s3.Send(zab.Message{Type: zab.MsgNotification, To: 1, Vote: v})
	noteFrom(t, s1, 3, v)
	require.NotNil(t, elPeerOf(s1, 3), "the stranger has a link while connected")
	answer := zab.Vote{Leader: 2, Zxid: zab.MakeZxid(1, 9), PeerEpoch: 1, Round: 3, State: zab.Following}
	s1.Send(zab.Message{Type: zab.MsgNotification, To: 3, Vote: answer})
	noteFrom(t, s3, 1, answer)

	require.NoError(t, s3.Close())
	require.Eventually(t, func() bool { return elPeerOf(s1, 3) == nil }, 10*time.Second, 5*time.Millisecond,
		"the stranger's link is dropped with its connection")
	s1.Send(zab.Message{Type: zab.MsgNotification, To: 3, Vote: answer}) // dropped, no link

	// A stranger added as a peer keeps its link when the connection ends.
	s4 := clusterWith(t, 1, func(c *Config) { c.ID = 4 })[0]
	s4.SetPeers(map[int64]Peer{1: addrOf(s1)})
	v4 := zab.Vote{Leader: 4, Zxid: zab.MakeZxid(1, 4), PeerEpoch: 1, Round: 5, State: zab.Looking}
	s4.Send(zab.Message{Type: zab.MsgNotification, To: 1, Vote: v4})
	noteFrom(t, s1, 4, v4)
	p := elPeerOf(s1, 4)
	require.NotNil(t, p)
	s1.AddPeers(map[int64]Peer{4: addrOf(s4)})
	require.Same(t, p, elPeerOf(s1, 4), "AddPeers adopts the stranger's link")
	require.NoError(t, s4.Close())
	require.Eventually(t, func() bool { return p.current() == nil }, 10*time.Second, 5*time.Millisecond)
	require.Same(t, p, elPeerOf(s1, 4), "a peer's link outlives its connection")
}

// A joiner with the smaller id knocks: the member connects back to the
// election address its initial message carries, and the two exchange
// notifications on that connection.
func TestZKTCPStrangerSmallerIDConnectedBack(t *testing.T) {
	ts := cluster(t, 3)
	s1, s2, s3 := ts[0], ts[1], ts[2]
	s2.SetPeers(map[int64]Peer{3: addrOf(s3)})
	s3.SetPeers(map[int64]Peer{2: addrOf(s2)}) // neither knows 1
	v := zab.Vote{Leader: 1, Zxid: zab.MakeZxid(1, 1), PeerEpoch: 1, Round: 6, State: zab.Looking}
	s1.Send(zab.Message{Type: zab.MsgNotification, To: 3, Vote: v})
	noteFrom(t, s3, 1, v)
	answer := zab.Vote{Leader: 3, Zxid: zab.MakeZxid(1, 7), PeerEpoch: 1, Round: 2, State: zab.Leading}
	s3.Send(zab.Message{Type: zab.MsgNotification, To: 1, Vote: answer})
	noteFrom(t, s1, 3, answer)
	require.NoError(t, s1.Close())
	require.Eventually(t, func() bool { return elPeerOf(s3, 1) == nil }, 10*time.Second, 5*time.Millisecond)
}

// The connect-back goes to the address in the knock, and a knock whose
// address answers nothing leaves no link behind.
func TestZKTCPStrangerKnockAddress(t *testing.T) {
	s3 := clusterWith(t, 3, nil)[2]
	knock := func(addr string) {
		t.Helper()
		c, err := net.Dial("tcp", s3.ElectionAddr().String())
		require.NoError(t, err)
		defer c.Close()
		im := quorum.InitialMessage{Protocol: quorum.ProtocolV1, Sid: 1, Addrs: []string{addr}}
		b, err := im.Encode()
		require.NoError(t, err)
		_, err = c.Write(b)
		require.NoError(t, err)
	}
	s3.SetPeers(map[int64]Peer{2: {QuorumAddr: "127.0.0.1:1", ElectionAddr: "127.0.0.1:1"}})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	knock(ln.Addr().String())
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	back, err := ln.Accept()
	require.NoError(t, err, "server 3 connects back to the knock's address")
	im, err := quorum.ReadInitialMessage(bufio.NewReader(back))
	require.NoError(t, err)
	require.Equal(t, int64(3), im.Sid)
	require.NotNil(t, elPeerOf(s3, 1))
	require.NoError(t, back.Close())
	require.Eventually(t, func() bool { return elPeerOf(s3, 1) == nil }, 10*time.Second, 5*time.Millisecond,
		"the connect-back's end drops the stranger")

	// A knock from an address nobody listens on: one attempt, then gone.
	dropped := make(chan int64, 4)
	hook := func(ev hookEvent, peer int64) {
		if ev == hookStrangerDropped {
			dropped <- peer
		}
	}
	s3.testHook.Store(&hook)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadAddr := dead.Addr().String()
	require.NoError(t, dead.Close())
	knock(deadAddr)
	select {
	case id := <-dropped:
		require.Equal(t, int64(1), id)
	case <-time.After(10 * time.Second):
		t.Fatal("a stranger whose knock address refuses is not dropped")
	}
	require.Nil(t, elPeerOf(s3, 1))
}

// A leader accepts FOLLOWERINFO from a server outside its peer set, as
// ZooKeeper's LearnerHandler does: the learner syncs without a vote (the
// engine never counts it); its link's end is reported as any learner's
// and leaves nothing of it behind.
func TestZKTCPLeaderAcceptsStrangerLearner(t *testing.T) {
	ts := cluster(t, 3)
	leader, joiner := ts[0], ts[2]
	leader.SetPeers(map[int64]Peer{2: addrOf(ts[1])})
	leader.SetRole(zab.Leading, 1)
	joiner.Send(zab.Message{Type: zab.MsgFollowerInfo, To: 1, Epoch: 3})
	joiner.SetRole(zab.Following, 1)
	fi := recv(t, leader, zab.MsgFollowerInfo)
	require.Equal(t, int64(3), fi.From)
	leader.Send(zab.Message{Type: zab.MsgLeaderInfo, To: 3, Epoch: 4})
	require.Equal(t, int64(4), recv(t, joiner, zab.MsgLeaderInfo).Epoch)
	joiner.Send(zab.Message{Type: zab.MsgAckEpoch, To: 1, Epoch: 3, Zxid: zab.MakeZxid(3, 2)})
	require.Equal(t, zab.MakeZxid(3, 2), recv(t, leader, zab.MsgAckEpoch).Zxid)
	require.True(t, nativeKnown(leader, 3))

	require.NoError(t, joiner.Close())
	require.Equal(t, int64(3), recv(t, leader, zab.MsgLinkDown).From)
	require.Eventually(t, func() bool { return !nativeKnown(leader, 3) }, 10*time.Second, 5*time.Millisecond)
}

// With quorum TLS a server outside the peer set still authenticates: its
// certificate goes through VerifyPeer with the id it claims, and one
// refused gets neither an election link nor a learner link; one accepted
// gets both.
func TestZKTCPStrangerAuthenticatesOverTLS(t *testing.T) {
	pt := testPeerTLS(t)
	var refuse atomic.Bool
	refuse.Store(true)
	verifying := *pt
	verifying.VerifyPeer = func(peer int64, _ net.Addr, _ tls.ConnectionState) error {
		if peer == 3 && refuse.Load() {
			return errors.New("not the certificate of server 3")
		}
		return nil
	}
	ts := clusterWith(t, 3, func(c *Config) { c.TLS = &verifying })
	leader, joiner := ts[0], ts[2]
	leader.SetPeers(map[int64]Peer{2: addrOf(ts[1])})
	leader.SetRole(zab.Leading, 1)

	v := zab.Vote{Leader: 3, Zxid: zab.MakeZxid(1, 3), PeerEpoch: 1, Round: 4, State: zab.Looking}
	joiner.Send(zab.Message{Type: zab.MsgNotification, To: 1, Vote: v})
	joiner.Send(zab.Message{Type: zab.MsgFollowerInfo, To: 1, Epoch: 3})
	joiner.SetRole(zab.Following, 1)
	// The learner link's refusal comes back to the joiner as its end.
	require.Equal(t, int64(1), recv(t, joiner, zab.MsgLinkDown).From)
	select {
	case m := <-leader.Recv():
		t.Fatalf("a refused stranger's %v reached the engine", m.Type)
	case <-time.After(300 * time.Millisecond):
	}
	require.Nil(t, elPeerOf(leader, 3))

	refuse.Store(false)
	joiner.Send(zab.Message{Type: zab.MsgFollowerInfo, To: 1, Epoch: 3})
	require.Equal(t, int64(3), recv(t, leader, zab.MsgFollowerInfo).From)
	v.Round++
	joiner.Send(zab.Message{Type: zab.MsgNotification, To: 1, Vote: v})
	noteFrom(t, leader, 3, v)
}
