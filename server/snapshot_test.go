package server_test

import (
	"fmt"
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

	before, err := disk.ListSnapshots(cfg.DataDir) // newest first
	require.NoError(t, err)
	addr, _ = startServerCfg(t, cfg)
	// The purge at start keeps the newest 3 (a snapshot taken at start may
	// add one) and deletes the others.
	waitFor(t, "the purge at start", func() bool {
		snaps := snapshotFiles(t, cfg.DataDir)
		return len(snaps) >= 3 && len(snaps) <= 4
	})
	after := snapshotFiles(t, cfg.DataDir)
	for _, sn := range before[:3] {
		require.Contains(t, after, filepath.Base(sn.Path), "one of the 3 newest snapshots")
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
