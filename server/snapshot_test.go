package server_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"
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
// while it serves, autopurge keeps only snapRetainCount snapshots (one more
// may be in flight), and a restart recovers every write from the newest
// snapshot plus the log.
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
	waitFor(t, "several snapshots written and old ones purged", func() bool {
		snaps := snapshotFiles(t, cfg.DataDir)
		return len(snaps) >= 3 && len(snaps) <= 4
	})
	c.Close()
	stop()

	addr, _ = startServerCfg(t, cfg)
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
