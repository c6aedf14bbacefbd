package main

import (
	"io"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/disk"
	"github.com/zabkeeper/zabkeeper/internal/fuzzysnap"
	"github.com/zabkeeper/zabkeeper/internal/testserver"
)

// TestDatadirVerifyFuzzySnapshotMissingACL: a snapshot whose ACL cache
// lacks the list of a node created after the zxid it is named for (as
// ZooKeeper's fuzzy snapshots can) verifies when the log after it holds
// that create; named for the last txn, with nothing left to replay, it is
// a problem naming the node.
func TestDatadirVerifyFuzzySnapshotMissingACL(t *testing.T) {
	cfg := testserver.Config(t, 0)
	srv := testserver.Start(t, cfg)
	c, _, err := zk.Connect([]string{srv.Addr}, 10*time.Second, zk.WithLogInfo(false))
	require.NoError(t, err)
	guarded := zk.DigestACL(zk.PermRead, "u", "p")
	_, err = c.Create("/a", nil, 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	_, err = c.Create("/a/b", nil, 0, guarded)
	require.NoError(t, err)
	c.Close()
	srv.Stop()

	// Drop ACL 2 ("/a" is 1, "/a/b" 2) from the cache.
	b, createA, last := fuzzysnap.FromLog(t, cfg.DataLogDir, "/a", 2, guarded)
	write := func(zxid int64) {
		_, err := disk.WriteSnapshot(cfg.DataDir, zxid, func(w io.Writer) error {
			_, err := w.Write(b)
			return err
		})
		require.NoError(t, err)
	}

	write(createA)
	code, out := verifyOut(t, cfg.DataDir)
	require.Equal(t, 0, code, out)
	require.Regexp(t, `replay from snapshot\.[0-9a-f]+: \d+ txns applied .* all equal`, out)

	write(last)
	code, out = verifyOut(t, cfg.DataDir)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, `PROBLEM: 0 txns applied; tree: node refers to an ACL the ACL cache lacks: node "/a/b" refers to ACL 2`)
}
