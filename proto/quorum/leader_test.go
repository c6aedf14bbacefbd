package quorum_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// TestInteropGoLeader: the reverse of TestInteropGoVoter. In a two-voter
// ensemble of ZooKeeper 3.8 (sid 1) and a Go peer (sid 4), the Go peer's
// vote wins (same epoch and zxid, higher sid), ZooKeeper follows it, and a
// go-zk client connected to ZooKeeper has its session and its create
// forwarded to the Go leader in REQUESTs, proposed back as ZooKeeper txns,
// ACKed (one ACK per proposal, in order), COMMITted and answered. The txn
// records are written with jute primitives (propose).
func TestInteropGoLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Apache ZooKeeper")
	}
	// Multi-address on: ZooKeeper sends the V2 initial message (and still
	// takes our V1).
	v := startTwoVoters(t, map[string]string{"multiAddress.enabled": "true"})
	require.Equal(t, quorum.InitialMessage{Protocol: quorum.ProtocolV2, Sid: 1,
		Addrs: []string{fmt.Sprintf("127.0.0.1:%d", v.zk.electionPort)}}, v.theirs)
	capture(t, "initial-message-v2-from-1.bin", v.theirsRaw)

	// Election: ZooKeeper's vote, ours, until it adopts ours.
	config := v.winElection(t, 0)

	// Discovery and sync, as the leader.
	const epoch = 1
	l, lastZxid, currentEpoch := v.acceptFollower(t, epoch, config)
	require.Equal(t, int64(0), lastZxid)
	require.Equal(t, int32(0), currentEpoch)
	diff, err := quorum.NewSyncStart(quorum.Diff, 0)
	require.NoError(t, err)
	l.send(diff)
	l.finishSync()

	// Broadcast: PINGs every tickTime/2, the client's requests proposed.
	c, ev, err := zk.Connect([]string{fmt.Sprintf("127.0.0.1:%d", v.zk.clientPort)}, 20*time.Second,
		zk.WithLogger(quietLog{}), zk.WithLogInfo(false))
	require.NoError(t, err)
	defer c.Close()
	created := make(chan error, 1)
	go func() {
		// Connect returns at once. Create only once the session is up:
		// the follower may refuse the first connection (it serves a moment
		// after UPTODATE), and go-zk fails the requests queued on it.
		for e := range ev {
			if e.State == zk.StateHasSession {
				break
			}
		}
		_, err := c.Create("/fromgo", []byte("led by Go"), 0, zk.WorldACL(zk.PermAll))
		created <- err
	}()
	touched := func() bool { _, ok := l.touches[c.SessionID()]; return ok && c.SessionID() != 0 }
	l.serve("the create and a touch of the client's session", func() bool {
		return l.acked[l.proposed[proto.OpCreate]] && touched()
	})
	require.True(t, l.upToDateAcked, "the follower ACKs UPTODATE")
	require.Equal(t, int32(20000), l.touches[c.SessionID()])
	createZxid := l.proposed[proto.OpCreate]
	var createErr error
	l.serve("the client's create returning", func() bool {
		select {
		case createErr = <-created:
			return true
		default:
			return false
		}
	})
	require.NoError(t, createErr)
	data, st, err := c.Get("/fromgo")
	require.NoError(t, err)
	require.Equal(t, []byte("led by Go"), data)
	require.Equal(t, createZxid, st.Czxid)
	t.Logf("ZooKeeper followed the Go leader: session 0x%x touched in PINGs, /fromgo created at 0x%x", c.SessionID(), st.Czxid)
}
