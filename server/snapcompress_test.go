package server_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/zabkeeper/zabkeeper/server"
)

// TestCompressedSnapshotsRecover: with snapshot.compression.method set the
// server writes snapshot.<zxid>.gz or .snappy, as ZooKeeper names them, and
// a restart recovers from them.
func TestCompressedSnapshotsRecover(t *testing.T) {
	for _, method := range []string{"gz", "snappy"} {
		t.Run(method, func(t *testing.T) {
			parsed, err := server.ParseConfig(strings.NewReader("dataDir=/x\nsnapshot.compression.method="+method+"\n"), nil)
			require.NoError(t, err)
			require.Equal(t, method, parsed.SnapshotCompression)

			cfg := testConfig(t)
			cfg.SnapCount = 20
			cfg.SnapshotCompression = parsed.SnapshotCompression
			addr, stop := startServerCfg(t, cfg)
			c := connect(t, addr)
			const n = 100
			for i := 0; i < n; i++ {
				mustCreate(t, c, fmt.Sprintf("/k%03d", i), []byte(fmt.Sprint(i)), 0)
			}
			waitFor(t, "a compressed snapshot", func() bool {
				for _, s := range snapshotFiles(t, cfg.DataDir) {
					if strings.HasSuffix(s, "."+method) {
						return true
					}
				}
				return false
			})
			c.Close()
			stop()

			addr, _ = startServerCfg(t, cfg)
			c = connect(t, addr)
			children, _, err := c.Children("/")
			require.NoError(t, err)
			require.Len(t, children, n+1)
			data, _, err := c.Get("/k042")
			require.NoError(t, err)
			require.Equal(t, "42", string(data))
		})
	}
}
