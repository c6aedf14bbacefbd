package zktcp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
)

// A learner that counted the votes first dials its leader a moment before
// that server leads: the connection is held until it does (ZooKeeper's
// learner would retry the refused connect within initLimit), not closed,
// which the learner would take for a failed leader.
func TestZKTCPLearnerDialingBeforeTheLeaderLeads(t *testing.T) {
	ts := cluster(t, 2)
	leader, learner := ts[0], ts[1]
	leader.SetRole(zab.Following, 2) // not leading yet

	learner.Send(zab.Message{Type: zab.MsgFollowerInfo, To: 1, Epoch: 3})
	learner.SetRole(zab.Following, 1)
	time.Sleep(100 * time.Millisecond) // the connection is up and waiting (no assertion rides on it)
	leader.SetRole(zab.Leading, 1)

	m := recv(t, leader, zab.MsgFollowerInfo)
	require.Equal(t, int64(2), m.From)
	leader.Send(zab.Message{Type: zab.MsgLeaderInfo, To: 2, Epoch: 4})
	require.Equal(t, int64(4), recv(t, learner, zab.MsgLeaderInfo).Epoch)
}

// A leader that steps down (a reconfig removed it) still delivers what it
// queued for its learners before the role change (the COMMITANDACTIVATE
// they act on); only then do the links close.
func TestZKTCPSteppingDownFlushesQueuedPackets(t *testing.T) {
	ts := cluster(t, 2)
	leader, learner := ts[0], ts[1]
	handshakeToAckEpoch(t, leader, learner, zab.MakeZxid(3, 5))
	leader.Send(zab.Message{Type: zab.MsgDiff, To: 2, Epoch: 4, Zxid: zab.MakeZxid(3, 5)})
	recv(t, learner, zab.MsgDiff)

	// Many proposals queued, then the role change in the same breath.
	const n = 200
	for i := 1; i <= n; i++ {
		leader.Send(zab.Message{Type: zab.MsgProposal, To: 2, Epoch: 4, Entry: zab.Entry{Zxid: zab.MakeZxid(4, int64(i)), Data: make([]byte, 4096)}})
	}
	leader.SetRole(zab.Looking, 0)
	for i := 1; i <= n; i++ {
		m := recv(t, learner, zab.MsgProposal)
		require.Equal(t, zab.MakeZxid(4, int64(i)), m.Entry.Zxid)
	}
	recv(t, learner, zab.MsgLinkDown)
}
