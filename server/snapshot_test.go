package server_test

import (
	"encoding/binary"
	"fmt"
	"github.com/zabkeeper/zabkeeper/server"
	"hash/adler32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"
	"github.com/zabkeeper/zabkeeper/disk"
)

func snapshotFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "version-2"))
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "snapshot.") {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestSnapshotsPurgeAndRecovery: with a small snapCount the server snapshots
// while it serves; autopurge runs only on its timer (at start and every
// autopurge.purgeInterval hours), as ZooKeeper's DatadirCleanupManager does,
// so snapshots pile up while the server runs, and the purge at the next start
// keeps snapRetainCount of them; that restart recovers every write from the
// newest snapshot plus the log.
func TestSnapshotsPurgeAndRecovery(t *testing.T) {
	cfg := testConfig(t)
	cfg.SnapCount = 20
	cfg.PurgeInterval = 1
	cfg.SnapRetainCount = 3
	addr, stop := startServerCfg(t, cfg)
	c := connect(t, addr)
	const n = 400
	for i := 0; i < n; i++ {
		mustCreate(t, c, fmt.Sprintf("/k%03d", i), []byte(fmt.Sprint(i)), 0)
	}
	// 400 txns at snapCount 20 make a snapshot every 10..19 txns: far more
	// than retain+1, and none is purged before the hourly timer fires.
	waitFor(t, "many snapshots written and none purged", func() bool {
		return len(snapshotFiles(t, cfg.DataDir)) >= 8
	})
	c.Close()
	stop()

	// autopurge.purgeInterval=0 (the default): never purged, at start
	// either.
	off := cfg
	off.PurgeInterval = 0
	piled := len(snapshotFiles(t, cfg.DataDir))
	addr, stop = startServerCfg(t, off)
	connect(t, addr).Close()
	stop()
	require.GreaterOrEqual(t, len(snapshotFiles(t, cfg.DataDir)), piled, "purgeInterval 0 purges nothing")

	before, err := disk.ListSnapshots(cfg.DataDir) // newest first
	require.NoError(t, err)
	addr, _ = startServerCfg(t, cfg)
	// The purge at start keeps the newest 3 and deletes the others, one
	// file at a time. The start may snapshot before or after the purge
	// runs: what is left is the newest 3 of the old ones, or the start's
	// and the newest 2.
	var after []disk.SnapshotInfo
	waitFor(t, "the purge at start", func() bool {
		after, err = disk.ListSnapshots(cfg.DataDir)
		require.NoError(t, err)
		if len(after) < 3 || len(after) > 4 {
			return false
		}
		for _, sn := range after {
			if sn.Zxid <= before[0].Zxid && sn.Zxid < before[2].Zxid {
				return false // older than the newest 3: not deleted yet
			}
		}
		return true
	})
	for _, sn := range before[:2] {
		require.Contains(t, after, sn, "one of the 2 newest snapshots")
	}
	c = connect(t, addr)
	children, _, err := c.Children("/")
	require.NoError(t, err)
	require.Len(t, children, n+1, "every znode and /zookeeper")
	for _, i := range []int{0, n / 2, n - 1} {
		data, _, err := c.Get(fmt.Sprintf("/k%03d", i))
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint(i), string(data))
	}
	_, err = c.Create("/after-restart", nil, 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
}

// TestDigestMismatchCounted: a fuzzy snapshot (named for an earlier zxid than
// its content) whose recorded digest differs from the tree once the log is
// replayed up to it is reported at start, and mntr counts it as ZooKeeper's
// zk_digest_mismatches_count; a clean start counts none.
func TestDigestMismatchCounted(t *testing.T) {
	cfg := testConfig(t)
	cfg.SnapCount = 2
	cfg.FourLetterWords = map[string]bool{"mntr": true}
	addr, stop := startServerCfg(t, cfg)
	c := connect(t, addr)
	for i := 0; i < 6; i++ {
		mustCreate(t, c, fmt.Sprintf("/d%d", i), []byte("x"), 0)
	}
	waitFor(t, "a snapshot past the first txns", func() bool {
		snaps, err := disk.ListSnapshots(cfg.DataDir)
		require.NoError(t, err)
		return len(snaps) > 0 && snaps[0].Zxid > 2
	})
	c.Close()
	stop()
	mntrAfterStart(t, cfg, "zk_digest_mismatches_count\t0\n")

	snaps, err := disk.ListSnapshots(cfg.DataDir)
	require.NoError(t, err)
	newest := snaps[0]
	for _, s := range snaps[1:] {
		require.NoError(t, os.Remove(s.Path))
	}
	// The digest recorded for newest.Zxid, off by one and resealed (the
	// file ends: digest zxid, digest, Adler32 of all before, "/").
	b, err := os.ReadFile(newest.Path)
	require.NoError(t, err)
	d := b[len(b)-21 : len(b)-13]
	binary.BigEndian.PutUint64(d, binary.BigEndian.Uint64(d)+1)
	binary.BigEndian.PutUint64(b[len(b)-13:], uint64(adler32.Checksum(b[:len(b)-13])))
	// Named for one zxid earlier: the log replays that last txn on top.
	require.NoError(t, os.Remove(newest.Path))
	require.NoError(t, os.WriteFile(filepath.Join(filepath.Dir(newest.Path), disk.SnapshotName(newest.Zxid-1, "")), b, 0o644))
	mntrAfterStart(t, cfg, "zk_digest_mismatches_count\t1\n")
}

// mntrAfterStart starts a server on cfg's dataDir, waits until its mntr
// shows want (the start-up replay is reported on the event loop, soon after
// the listener opens), then stops it.
func mntrAfterStart(t *testing.T, cfg server.Config, want string) {
	t.Helper()
	addr, stop := startServerCfg(t, cfg)
	defer stop()
	var out string
	waitFor(t, "mntr showing "+strings.TrimSpace(want), func() bool {
		out = fourLetter(t, addr, "mntr")
		return strings.Contains(out, want)
	})
}
