package zab

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// proposeData proposes data at id, as propose does with a generated payload.
func (c *cluster) proposeData(id int64, data []byte) (int64, bool) {
	c.proposed[string(data)] = true
	z, ok := c.nodes[id].p.Propose(data)
	c.handleReady(id)
	return z, ok
}

// bigPayload is a distinct payload of n bytes.
func bigPayload(i, n int) []byte {
	b := bytes.Repeat([]byte{byte(i)}, n)
	copy(b, fmt.Sprintf("big-%d-", i))
	return b
}

// heldBytes sums the payloads the in-memory log holds, independently of
// the log's own accounting.
func heldBytes(p *Peer) int64 {
	var n int64
	for _, e := range p.log.ents {
		n += int64(len(e.Data))
	}
	return n
}

// The in-memory log is bounded by bytes as well as by count: a standalone
// server taking many large writes holds no more than the byte bound once
// they are applied (issue 8 item 3: 1,500 setData of 1 MB kept 1.5 GB).
func TestLogBoundedByBytes(t *testing.T) {
	c := newCluster(t, clusterOpts{voters: 1, seed: 21})
	const size = 100 << 10
	for i := 0; i < 120; i++ { // 12 MB, far fewer entries than the count bound
		_, ok := c.proposeData(1, bigPayload(i, size))
		require.True(t, ok)
		c.stabilize()
		p := c.nodes[1].p
		limit := p.logByteLimit()
		require.LessOrEqual(t, heldBytes(p), limit, "after %d writes of %d bytes", i+1, size)
		st := p.Status()
		require.Equal(t, heldBytes(p), st.LogBytes)
		require.Equal(t, len(p.log.ents), st.LogEntries)
	}
	require.Len(t, c.nodes[1].app.ents, 120)
	// With the defaults the bound is the floor here: a third of the
	// application's 12 MB is below DefaultMinLogBytes.
	require.Equal(t, int64(DefaultMinLogBytes), c.nodes[1].p.logByteLimit())
}

// A follower further behind than the byte bound is brought up to date by a
// snapshot, even though the count bound alone would allow a DIFF.
func TestFollowerBehindByteBoundGetsSnap(t *testing.T) {
	c := newCluster(t, clusterOpts{voters: 3, seed: 22})
	l := c.awaitSynced(2000)
	f := c.ids[0]
	if f == l {
		f = c.ids[1]
	}
	c.partition([]int64{f})
	const size = 100 << 10
	var last int64
	for i := 0; i < 80; i++ { // 8 MB in 80 entries
		last, _ = c.proposeData(l, bigPayload(i, size))
		c.stabilize()
	}
	c.awaitApplied(last, []int64{l}, 2000)
	require.LessOrEqual(t, heldBytes(c.nodes[l].p), c.nodes[l].p.logByteLimit())
	diffs, snaps := c.sent[MsgDiff], c.sent[MsgSnap]
	c.healAll()
	c.awaitApplied(last, c.ids, 5000)
	require.Greater(t, c.sent[MsgSnap], snaps, "a follower 8 MB behind gets a SNAP")
	require.Equal(t, diffs, c.sent[MsgDiff])
	require.Equal(t, c.nodes[l].app.ents, c.nodes[f].app.ents)
	z, _ := c.propose(c.mustLeader())
	c.awaitApplied(z, c.ids, 3000)
}

// A follower a little behind still gets a DIFF.
func TestFollowerWithinByteBoundGetsDiff(t *testing.T) {
	c := newCluster(t, clusterOpts{voters: 3, seed: 23})
	l := c.awaitSynced(2000)
	f := c.ids[0]
	if f == l {
		f = c.ids[1]
	}
	c.partition([]int64{f})
	var last int64
	for i := 0; i < 10; i++ { // 1 MB, under the floor
		last, _ = c.proposeData(l, bigPayload(i, 100<<10))
		c.stabilize()
	}
	c.awaitApplied(last, []int64{l}, 2000)
	diffs, snaps := c.sent[MsgDiff], c.sent[MsgSnap]
	c.healAll()
	c.awaitApplied(last, c.ids, 5000)
	require.Greater(t, c.sent[MsgDiff], diffs)
	require.Equal(t, snaps, c.sent[MsgSnap])
}

// diffTooHeavy, the byte test a sync applies on top of the held log: a
// learner whose missing entries outweigh the bound gets a SNAP, but only
// when the snapshot (at the applied point) is past it.
func TestDiffTooHeavy(t *testing.T) {
	app := &testApp{}
	p := &Peer{cfg: Config{SnapshotSizeFactor: DefaultSnapshotSizeFactor, MinLogBytes: 1000}, app: app}
	for z := int64(1); z <= 10; z++ {
		p.log.append(Entry{Zxid: z, Data: make([]byte, 300)})
	}
	p.appliedAcked = 10
	require.False(t, p.diffTooHeavy(8, 8), "600 bytes to send")
	require.True(t, p.diffTooHeavy(5, 5), "1500 bytes to send")
	p.appliedAcked = 5
	require.False(t, p.diffTooHeavy(5, 5), "the snapshot would not be past the learner")
	p.appliedAcked = 10
	p.cfg.SnapshotSizeFactor = -1
	require.False(t, p.diffTooHeavy(0, 0), "no byte bound")
}
