package zktcp

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
)

// syncLearner takes learner (server id) through FOLLOWERINFO, LEADERINFO,
// ACKEPOCH, SNAP, NEWLEADER and UPTODATE with leader (server 1, epoch 4),
// so the link carries broadcast traffic.
func syncLearner(t *testing.T, leader, learner *Transport) {
	t.Helper()
	id := learner.id
	learner.Send(zab.Message{Type: zab.MsgFollowerInfo, To: 1, Epoch: 3})
	learner.SetRole(zab.Following, 1)
	recv(t, leader, zab.MsgFollowerInfo)
	leader.Send(zab.Message{Type: zab.MsgLeaderInfo, To: id, Epoch: 4})
	recv(t, learner, zab.MsgLeaderInfo)
	learner.Send(zab.Message{Type: zab.MsgAckEpoch, To: 1, Epoch: 3, Zxid: zab.MakeZxid(3, 7)})
	recv(t, leader, zab.MsgAckEpoch)
	leader.Send(zab.Message{Type: zab.MsgSnap, To: id, Epoch: 4, Zxid: zab.MakeZxid(3, 7), Snapshot: zab.SnapshotBytes(snapBody())})
	leader.Send(zab.Message{Type: zab.MsgNewLeader, To: id, Epoch: 4, Zxid: zab.MakeZxid(4, 0)})
	recv(t, learner, zab.MsgSnap)
	recv(t, learner, zab.MsgNewLeader)
	learner.Send(zab.Message{Type: zab.MsgAck, To: 1, Epoch: 4, Zxid: zab.MakeZxid(4, 0)})
	require.Equal(t, zab.MakeZxid(4, 0), recv(t, leader, zab.MsgAck).Zxid)
	leader.Send(zab.Message{Type: zab.MsgUpToDate, To: id, Epoch: 4, Zxid: zab.MakeZxid(4, 0)})
	recv(t, learner, zab.MsgUpToDate)
}

// linkTo returns tr's quorum link with peer.
func linkTo(t *testing.T, tr *Transport, peer int64) *qLink {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	l := tr.ql[tr.zk.Route(peer)]
	require.NotNil(t, l, "server %d has a quorum link with %d", tr.id, peer)
	return l
}

// resting waits until l's writer rests, so the next batch is written by
// the sender, and returns l's direct-write counts then.
func resting(t *testing.T, l *qLink) (writes, packets int) {
	t.Helper()
	require.Eventually(t, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		// No wake-up pending either: a stale one would take the writer
		// out of its rest a moment later.
		return l.idle && len(l.out) == 0 && len(l.wake) == 0
	}, 10*time.Second, time.Millisecond, "the writer of the link with %d rests", l.peer)
	return directCounts(l)
}

func directCounts(l *qLink) (writes, packets int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.direct, l.directPackets
}

// recvZxids receives n messages on tr (notifications and pings skipped)
// and returns them as "TYPE zxid" strings.
func recvSeq(t *testing.T, tr *Transport, n int) []string {
	t.Helper()
	var got []string
	deadline := time.After(10 * time.Second)
	for len(got) < n {
		select {
		case m := <-tr.Recv():
			if m.Type == zab.MsgNotification || m.Type == zab.MsgPing {
				continue
			}
			z := m.Zxid
			if m.Type == zab.MsgProposal {
				z = m.Entry.Zxid
			}
			got = append(got, fmt.Sprintf("%v %x", m.Type, z))
		case <-deadline:
			t.Fatalf("server %d: %d of %d messages within 10s: %v", tr.id, len(got), n, got)
		}
	}
	return got
}

func seq(typ ...zab.MsgType) func(i int) []string {
	return func(i int) []string {
		var out []string
		for _, ty := range typ {
			out = append(out, fmt.Sprintf("%v %x", ty, zab.MakeZxid(4, int64(i))))
		}
		return out
	}
}

// TestZKTCPBatchOneWritePerLink: a leader's batch of PROPOSALs and
// COMMITs for two learners, interleaved and with a notification among
// them, goes to each learner in one write and arrives in order; a
// learner's batch of ACKs goes to the leader in one write.
func TestZKTCPBatchOneWritePerLink(t *testing.T) {
	ts := cluster(t, 3)
	leader := ts[0]
	leader.SetRole(zab.Leading, 1)
	syncLearner(t, leader, ts[1])
	syncLearner(t, leader, ts[2])
	l2, l3 := linkTo(t, leader, 2), linkTo(t, leader, 3)
	w2, p2 := resting(t, l2)
	w3, p3 := resting(t, l3)

	const n = 40
	var batch []zab.Message
	want := seq(zab.MsgProposal, zab.MsgCommit)
	for i := 1; i <= n; i++ {
		z := zab.MakeZxid(4, int64(i))
		for _, to := range []int64{2, 3} {
			batch = append(batch, zab.Message{Type: zab.MsgProposal, To: to, Epoch: 4, Entry: zab.Entry{Zxid: z, Data: []byte("txn")}})
		}
		if i == n/2 {
			batch = append(batch, zab.Message{Type: zab.MsgNotification, To: 2, Vote: zab.Vote{Leader: 1, State: zab.Leading}})
		}
		for _, to := range []int64{3, 2} {
			batch = append(batch, zab.Message{Type: zab.MsgCommit, To: to, Epoch: 4, Zxid: z})
		}
	}
	leader.SendBatch(batch)
	for _, learner := range ts[1:] {
		var exp []string
		for i := 1; i <= n; i++ {
			exp = append(exp, want(i)...)
		}
		require.Equal(t, exp, recvSeq(t, learner, 2*n), "learner %d gets the batch in order", learner.id)
	}
	w, p := directCounts(l2)
	require.Equal(t, [2]int{w2 + 1, p2 + 2*n}, [2]int{w, p}, "one write carried the 2n packets to learner 2")
	w, p = directCounts(l3)
	require.Equal(t, [2]int{w3 + 1, p3 + 2*n}, [2]int{w, p}, "one write carried the 2n packets to learner 3")

	// The learner side: a follower's ACKs of one fsync.
	up := linkTo(t, ts[1], 1)
	wu, pu := resting(t, up)
	var acks []zab.Message
	for i := 1; i <= n; i++ {
		acks = append(acks, zab.Message{Type: zab.MsgAck, To: 1, Epoch: 4, Zxid: zab.MakeZxid(4, int64(i))})
	}
	ts[1].SendBatch(acks)
	var exp []string
	for i := 1; i <= n; i++ {
		exp = append(exp, seq(zab.MsgAck)(i)...)
	}
	require.Equal(t, exp, recvSeq(t, leader, n))
	w, p = directCounts(up)
	require.Equal(t, [2]int{wu + 1, pu + n}, [2]int{w, p}, "one write carried the ACKs")
}

// TestZKTCPBatchWithAClosedLink: the link with one learner is gone
// when a batch for both comes; the other learner gets its share whole
// and in order, and the batch does not stop at the dead link.
func TestZKTCPBatchWithAClosedLink(t *testing.T) {
	ts := cluster(t, 3)
	leader := ts[0]
	leader.SetRole(zab.Leading, 1)
	syncLearner(t, leader, ts[1])
	syncLearner(t, leader, ts[2])
	l3 := linkTo(t, leader, 3)
	l3.close(true) // closed by this side: no MsgLinkDown, packets dropped

	const n = 10
	var batch []zab.Message
	var exp []string
	for i := 1; i <= n; i++ {
		z := zab.MakeZxid(4, int64(i))
		for _, to := range []int64{3, 2} {
			batch = append(batch, zab.Message{Type: zab.MsgProposal, To: to, Epoch: 4, Entry: zab.Entry{Zxid: z, Data: []byte("txn")}})
		}
		exp = append(exp, seq(zab.MsgProposal)(i)...)
	}
	leader.SendBatch(batch)
	require.Equal(t, exp, recvSeq(t, ts[1], n))
	l3.mu.Lock()
	defer l3.mu.Unlock()
	require.Empty(t, l3.out, "nothing is queued on the closed link")
}

// TestZKTCPBatchFollowerInfoStartsANewLink: a learner's batch holds an
// ACK for its current leader, then a FOLLOWERINFO that starts over: the
// ACK is written on the old link before the new one replaces it (the old
// link then closes quietly, and whether the leader reads the ACK before
// the reset is TCP's affair, as with Send), the FOLLOWERINFO and what
// follows it go on the new link.
func TestZKTCPBatchFollowerInfoStartsANewLink(t *testing.T) {
	ts := cluster(t, 2)
	leader, learner := ts[0], ts[1]
	leader.SetRole(zab.Leading, 1)
	syncLearner(t, leader, learner)
	leader.Send(zab.Message{Type: zab.MsgProposal, To: 2, Epoch: 4, Entry: zab.Entry{Zxid: zab.MakeZxid(4, 1), Data: []byte("txn")}})
	recv(t, learner, zab.MsgProposal) // the learner's link ACKs only what it got
	old := linkTo(t, learner, 1)
	w, p := resting(t, old)

	learner.SendBatch([]zab.Message{
		{Type: zab.MsgAck, To: 1, Epoch: 4, Zxid: zab.MakeZxid(4, 1)},
		{Type: zab.MsgFollowerInfo, To: 1, Epoch: 4},
		// For the new link, which drops it (its epoch is not known
		// before LEADERINFO) rather than send it on the old one.
		{Type: zab.MsgAck, To: 1, Epoch: 5, Zxid: zab.MakeZxid(5, 1)},
	})
	w2, p2 := directCounts(old)
	require.Equal(t, [2]int{w + 1, p + 1}, [2]int{w2, p2}, "the ACK was written on the old link, alone")
	old.mu.Lock()
	require.True(t, old.closed && old.quiet, "the old link closed quietly")
	old.mu.Unlock()
	require.NotSame(t, old, linkTo(t, learner, 1), "the learner's link was replaced")
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-leader.Recv():
			switch m.Type {
			case zab.MsgNotification, zab.MsgPing, zab.MsgLinkDown:
				continue
			case zab.MsgAck:
				require.Equal(t, zab.MakeZxid(4, 1), m.Zxid, "only the old link's ACK, before the FOLLOWERINFO")
				continue
			}
			require.Equal(t, zab.MsgFollowerInfo, m.Type)
			require.Equal(t, int64(4), m.Epoch)
			l := linkTo(t, learner, 1)
			l.mu.Lock()
			defer l.mu.Unlock()
			require.Empty(t, l.out, "the new link dropped the ACK of an epoch it does not know")
			return
		case <-deadline:
			t.Fatal("no FOLLOWERINFO on the new link within 10s")
		}
	}
}

// TestZKTCPBatchOverTLS: over TLS the sender does not write on the
// socket itself; a batch is queued for the writer whole and arrives in
// order.
func TestZKTCPBatchOverTLS(t *testing.T) {
	pt := testPeerTLS(t)
	ts := clusterWith(t, 2, func(c *Config) { c.TLS = pt })
	leader, learner := ts[0], ts[1]
	leader.SetRole(zab.Leading, 1)
	syncLearner(t, leader, learner)

	const n = 30
	var batch []zab.Message
	var exp []string
	for i := 1; i <= n; i++ {
		z := zab.MakeZxid(4, int64(i))
		batch = append(batch,
			zab.Message{Type: zab.MsgProposal, To: 2, Epoch: 4, Entry: zab.Entry{Zxid: z, Data: []byte("txn")}},
			zab.Message{Type: zab.MsgCommit, To: 2, Epoch: 4, Zxid: z})
		exp = append(exp, seq(zab.MsgProposal, zab.MsgCommit)(i)...)
	}
	leader.SendBatch(batch)
	require.Equal(t, exp, recvSeq(t, learner, 2*n))
	w, _ := directCounts(linkTo(t, leader, 2))
	require.Zero(t, w, "no direct write over TLS")
}
