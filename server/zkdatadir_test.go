package server_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"
	"github.com/zabkeeper/zabkeeper/server"
)

// TestServesZooKeeperDataDir starts zabkeeper on data directories Apache
// ZooKeeper 3.8 left after SIGKILL (disk/testdata/zk38, made by
// scripts/zk-datadirs.sh; one with dataLogDir apart): it recovers from
// ZooKeeper's log and serves the tree ZooKeeper served, then takes writes
// on top. (Until snapshots are ZooKeeper's format too, ZooKeeper's
// snapshot files are passed over and the whole log is replayed.)
func TestServesZooKeeperDataDir(t *testing.T) {
	for _, tc := range []struct{ name, data, logs string }{
		{"standalone", "standalone", "standalone"},
		{"dataLogDir", "datalogdir/data", "datalogdir/logs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.CopyFS(dir, os.DirFS("../disk/testdata/zk38")))
			addr, stop := startServer(t, func(c *server.Config) {
				c.DataDir, c.DataLogDir = filepath.Join(dir, tc.data), filepath.Join(dir, tc.logs)
			})
			defer stop()
			c := connect(t, addr)
			data, st, err := c.Get("/fx")
			require.NoError(t, err)
			require.Equal(t, "root3", string(data))
			require.Equal(t, int32(2), st.Version)
			data, _, err = c.Get("/fx/m")
			require.NoError(t, err)
			require.Equal(t, "m2", string(data), "the failed multi changed nothing")
			ok, _, err := c.Exists("/fx/e2")
			require.NoError(t, err)
			require.False(t, ok, "closed with its session")
			acl, _, err := c.GetACL("/fx/t")
			require.NoError(t, err)
			require.Equal(t, zk.WorldACL(zk.PermRead|zk.PermWrite|zk.PermAdmin), acl)
			_, st, err = c.Get("/fx/t")
			require.NoError(t, err)
			require.Equal(t, int64(0x7), st.Czxid)
			kids, _, err := c.Children("/fx")
			require.NoError(t, err)
			require.Contains(t, kids, "utf8-ü")
			_, err = c.Create("/fx/after-swap", []byte("new"), 0, zk.WorldACL(zk.PermAll))
			require.NoError(t, err)
		})
	}
}
