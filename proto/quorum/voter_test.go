package quorum_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// TestInteropGoVoter: a two-voter ensemble of one Apache ZooKeeper 3.8
// server (sid 1) and a Go peer (sid 4) that speaks only package quorum.
// ZooKeeper cannot elect itself or commit anything without the Go peer's
// vote and ACKs, so every step it takes proves it decoded what the peer
// sent: the election notification, FOLLOWERINFO, ACKEPOCH, the NEWLEADER
// ACK, PING replies and the ACK that commits a client's write.
func TestInteropGoVoter(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Apache ZooKeeper")
	}
	v := startTwoVoters(t, nil)
	require.Equal(t, int64(1), v.theirs.Sid)
	// Our quorum port is named in the config, never dialed: we follow.
	zkS, myQuorum, myElection := v.zk, v.quorumPort(), v.electionPort()

	// Its queued LOOKING vote arrives on our connection.
	vote := v.readVote(t)
	for vote.State != quorum.Looking {
		vote = v.readVote(t)
	}
	t.Logf("ZooKeeper's vote: leader %d zxid 0x%x round %d peerEpoch %d, config %q", vote.Leader, vote.Zxid, vote.ElectionEpoch, vote.PeerEpoch, vote.Config)
	require.Equal(t, int64(1), vote.Leader)
	require.Contains(t, string(vote.Config), fmt.Sprintf("server.%d=127.0.0.1:%d:%d:participant", goSid, myQuorum, myElection))

	// We agree: its vote from us, in its round, with its own config.
	v.vote(t, quorum.Notification{State: quorum.Looking, Leader: vote.Leader, Zxid: vote.Zxid, ElectionEpoch: vote.ElectionEpoch,
		PeerEpoch: vote.PeerEpoch, Version: quorum.NotificationVersion, Config: vote.Config})

	// With our vote it has a quorum and leads; we follow on its quorum port.
	var qc net.Conn
	var err error
	require.Eventually(t, func() bool {
		qc, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", zkS.quorumPort))
		return err == nil
	}, 30*time.Second, 100*time.Millisecond, "ZooKeeper did not start leading after our vote")
	defer qc.Close()
	o := &observerConn{t: t, conn: qc, r: bufio.NewReader(qc), rec: &bytes.Buffer{}}
	o.send(quorum.NewLearnerInfo(false, 0, quorum.LearnerInfo{Sid: goSid, ProtocolVersion: quorum.LearnerProtocol}))
	li := o.next()
	newEpoch, _, err := quorum.DecodeLeaderInfo(&li)
	require.NoError(t, err)
	require.Equal(t, int64(1), newEpoch, "1 + the highest accepted epoch of the quorum (0)")
	o.send(quorum.NewAckEpoch(0, 0))
	start := o.next()
	require.Equal(t, quorum.Diff, start.Type, "both histories are empty: %s", start)
	o.syncToUpToDate(newEpoch)

	waitMode(t, zkS.clientPort, "leader", "ZooKeeper leads with the Go follower")
	t.Logf("ZooKeeper leads epoch %d with the Go follower", newEpoch)

	// A write needs our ACK: hold it and the client waits.
	c, _, err := zk.Connect([]string{fmt.Sprintf("127.0.0.1:%d", zkS.clientPort)}, 20*time.Second,
		zk.WithLogger(quietLog{}), zk.WithLogInfo(false))
	require.NoError(t, err)
	defer c.Close()
	done := make(chan error, 1)
	go func() {
		_, err := c.Create("/voter", []byte("v"), 0, zk.WorldACL(zk.PermAll))
		done <- err
	}()
	var p quorum.Packet
	for {
		p = o.next()
		require.Equal(t, quorum.Proposal, p.Type, "%s", p)
		x, err := decodeTxn(p.Data)
		require.NoError(t, err)
		if x.path == "/voter" {
			break
		}
		// The createSession before it: ack and let it commit.
		o.send(quorum.NewAck(p.Zxid))
		cm := o.next()
		require.Equal(t, quorum.Commit, cm.Type)
		require.Equal(t, p.Zxid, cm.Zxid)
	}
	select {
	case err := <-done:
		t.Fatalf("the create returned (%v) before the Go voter acked it", err)
	case <-time.After(time.Second):
	}
	o.send(quorum.NewAck(p.Zxid))
	cm := o.next()
	require.Equal(t, quorum.Commit, cm.Type)
	require.Equal(t, p.Zxid, cm.Zxid)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("the create did not return after our ACK committed it")
	}
	_, st, err := c.Get("/voter")
	require.NoError(t, err)
	require.Equal(t, p.Zxid, st.Czxid)
	require.Equal(t, newEpoch, quorum.EpochOf(st.Czxid))
	t.Logf("create /voter committed at 0x%x by the Go voter's ACK; %d PINGs answered", p.Zxid, o.pings)
}
