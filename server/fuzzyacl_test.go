package server_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/disk"
	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/internal/fuzzysnap"
	"github.com/zabkeeper/zabkeeper/server"
)

// startWithGuardedChild starts a server on cfg and creates /a (open) and
// /a/b with the returned digest ACL, a list of its own in the ACL cache
// (entry 2): the data the fuzzy snapshots below are made of.
func startWithGuardedChild(t *testing.T, cfg server.Config) (c *zk.Conn, stop func(), guarded []zk.ACL) {
	t.Helper()
	addr, stop := startServerCfg(t, cfg)
	c = connect(t, addr)
	guarded = zk.DigestACL(zk.PermRead|zk.PermAdmin, "u", "p")
	_, err := c.Create("/a", []byte("a"), 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	_, err = c.Create("/a/b", []byte("b"), 0, guarded)
	require.NoError(t, err)
	return c, stop, guarded
}

// TestRecoversFuzzySnapshotMissingACL: the newest snapshot in the data
// directory is fuzzy as ZooKeeper's can be: named for the create of /a, it
// holds /a/b too, created after it with a new ACL list, which its ACL
// cache lacks. The server starts (it refused to before), the log's create
// of /a/b gives the node its list, and clients read it with its Stat.
func TestRecoversFuzzySnapshotMissingACL(t *testing.T) {
	cfg := testConfig(t)
	c, stop, guarded := startWithGuardedChild(t, cfg)
	require.NoError(t, c.AddAuth("digest", []byte("super:admin")))
	_, wantStat, err := c.GetACL("/a/b")
	require.NoError(t, err)
	c.Close()
	stop()

	// The tree after every logged txn, named for the create of /a,
	// without ACL 2 ("/a" is 1, "/a/b" 2) in its cache.
	b, createA, _ := fuzzysnap.FromLog(t, cfg.DataLogDir, "/a", 2, guarded)
	ls, err := tree.ReadSnapshot(bytes.NewReader(b), tree.Options{ExtendedTypes: true}, createA)
	require.NoError(t, err)
	require.ErrorIs(t, ls.Tree.CheckACLs(), tree.ErrMissingACL, "the snapshot is the fuzzy one")
	_, err = disk.WriteSnapshot(cfg.DataDir, createA, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
	require.NoError(t, err)
	snaps, err := disk.ListSnapshots(cfg.DataDir)
	require.NoError(t, err)
	require.Equal(t, createA, snaps[0].Zxid, "it is the newest")

	addr, _ := startServerCfg(t, cfg)
	c = connect(t, addr)
	require.NoError(t, c.AddAuth("digest", []byte("super:admin")))
	got, st, err := c.GetACL("/a/b")
	require.NoError(t, err)
	require.Equal(t, guarded, got)
	require.Equal(t, *wantStat, *st)
	data, _, err := c.Get("/a/b")
	require.NoError(t, err)
	require.Equal(t, []byte("b"), data)
}

// TestFuzzySnapshotUnresolvedACLStopsWithAnError: the same fuzzy snapshot,
// named for the log's last txn, so no replayed create gives /a/b its list:
// the server refuses to start with an error naming the node (it panicked
// once it served), and its files are left as they were. In an ensemble
// the loop stops with the same error once synced (engine.Node.Halted).
func TestFuzzySnapshotUnresolvedACLStopsWithAnError(t *testing.T) {
	cfg := testConfig(t)
	c, stop, guarded := startWithGuardedChild(t, cfg)
	c.Close()
	stop()

	b, _, last := fuzzysnap.FromLog(t, cfg.DataLogDir, "/a", 2, guarded)
	_, err := disk.WriteSnapshot(cfg.DataDir, last, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
	require.NoError(t, err)

	_, err = server.New(cfg, newServerLogger(t))
	require.ErrorIs(t, err, tree.ErrMissingACL)
	require.ErrorContains(t, err, `node "/a/b" refers to ACL 2`)
	snaps, err := disk.ListSnapshots(cfg.DataDir)
	require.NoError(t, err)
	require.Equal(t, last, snaps[0].Zxid, "the snapshot is left for the operator")
}
