package server_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/disk"
	"github.com/zabkeeper/zabkeeper/server"
)

// TestEnsembleFollowerFarBehindSyncsBySnapshot: a follower that misses more
// txns than the leader keeps for DIFF (commitLogCount) is brought up to date
// with a snapshot streamed over its peer link; it writes it as a snapshot of
// its own, serves the data, and leaves nothing in its spool directory.
func TestEnsembleFollowerFarBehindSyncsBySnapshot(t *testing.T) {
	ms := startEnsembleWith(t, 3, func(c *server.Config) { c.CommitLogCount = 20 })
	leader := waitServing(t, ms)
	var lagging *member
	for _, m := range ms {
		if m != leader {
			lagging = m
			break
		}
	}
	lagging.stop(t)

	c := connect(t, leader.addr)
	value := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 4096) }
	const n = 300 // ~1.2 MiB of data: the snapshot takes many chunks
	for i := 0; i < n; i++ {
		mustCreate(t, c, fmt.Sprintf("/big%03d", i), value(i), 0)
	}
	_, stat, err := c.Exists(fmt.Sprintf("/big%03d", n-1))
	require.NoError(t, err)
	c.Close()

	lagging.open(t)
	exchangeAddrs(ms)
	lagging.serve(t)
	waitServing(t, ms)

	snaps, err := disk.ListSnapshots(lagging.cfg.DataDir)
	require.NoError(t, err)
	require.NotEmpty(t, snaps, "the follower wrote the leader's snapshot as its own")
	require.GreaterOrEqual(t, snaps[0].Zxid, stat.Mzxid, "its newest snapshot covers the writes it missed")

	lc := connect(t, lagging.addr)
	for i := 0; i < n; i += 37 {
		data, _, err := lc.Get(fmt.Sprintf("/big%03d", i))
		require.NoError(t, err)
		require.Equal(t, value(i), data)
	}
	kids, _, err := lc.Children("/")
	require.NoError(t, err)
	require.Len(t, kids, n+1, "every node and /zookeeper")

	spool, err := os.ReadDir(filepath.Join(lagging.cfg.DataDir, "incoming"))
	require.NoError(t, err)
	require.Empty(t, spool, "the spooled snapshot is removed once installed")
}

// TestEnsembleBigNodeSyncsBySnapshot: under jute.maxbuffer=8 MiB a 5 MB znode
// outweighs the leader's in-memory log (its byte bound), so a follower that
// missed it is synced by a snapshot holding it, streamed over the peer link
// and loaded with every reader's limit at least what the writer accepted
// (issue 8 items 3 and 4).
func TestEnsembleBigNodeSyncsBySnapshot(t *testing.T) {
	ms := startEnsembleWith(t, 3, func(c *server.Config) {
		c.JuteMaxBuffer = 8 << 20
		c.MaxSessionTimeout = int(bigSessionTimeout.Milliseconds())
		// Megabytes per proposal under the race detector on busy cores
		// can hold heartbeats up for seconds: what is tested here is the
		// size limits, not the heartbeat timeouts.
		c.InitLimit, c.SyncLimit = 100, 50
	})
	leader := waitServing(t, ms)
	var lagging *member
	for _, m := range ms {
		if m != leader {
			lagging = m
			break
		}
	}
	lagging.stop(t)

	const size = 5_000_000
	data := bigData(size)
	c := connectBig(t, leader.addr, size)
	mustCreate(t, c, "/big", data, 0)
	mustCreate(t, c, "/small", []byte("s"), 0)
	c.Close()

	lagging.open(t)
	exchangeAddrs(ms)
	lagging.serve(t)
	waitServing(t, ms)

	snaps, err := disk.ListSnapshots(lagging.cfg.DataDir)
	require.NoError(t, err)
	require.NotEmpty(t, snaps, "the follower was synced by SNAP")
	require.Greater(t, snaps[0].Zxid, int64(0), "the follower wrote the leader's snapshot, not only the one of its start")
	lc := connectBig(t, lagging.addr, size)
	_, err = lc.Sync("/big")
	require.NoError(t, err)
	got, _, err := lc.Get("/big")
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "the big node on the follower")

	// A write of the same size through the follower: forwarded to the
	// leader and proposed back over the peer links.
	mustCreate(t, lc, "/big2", data, 0)
	c = connectBig(t, leader.addr, size)
	_, err = c.Sync("/big2")
	require.NoError(t, err)
	got, _, err = c.Get("/big2")
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "the big node written through the follower, on the leader")
}
