package disk

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/internal/zkreal"
)

// TestZooKeeperToolsShowOurFiles runs ZooKeeper 3.8's TxnLogToolkit (with
// detail) on a log of every txn kind zabkeeper writes, and its
// SnapshotFormatter on a snapshot of the tree they make (ephemerals, a
// container, a TTL node, sessions), and checks what they show: every txn,
// the forms ZooKeeper has no txn for shown as what ZooKeeper reads them as
// (moveSession as createSession, sync as an error txn with code 0, a
// container made by create2 as createContainer), and every node with the
// ephemeralOwner that marks containers and TTL nodes. README's migration
// section says what they do not show (the session owner after the
// TxnDigest, which no ZooKeeper tool prints, and that a move looks like a
// creation).
func TestZooKeeperToolsShowOurFiles(t *testing.T) {
	zkreal.Require(t)
	txns := ourTxns(t)
	dir := t.TempDir()
	writeOurLog(t, dir, txns)
	ns, err := listNamed(OSFS{}, filepath.Join(dir, versionDir), logPrefix)
	require.NoError(t, err)
	var all strings.Builder
	for _, n := range ns {
		out, err := zkreal.RunTool("org.apache.zookeeper.server.persistence.TxnLogToolkit", "-d", filepath.Join(dir, versionDir, n.name))
		require.NoError(t, err, "%s", out)
		require.NotContains(t, out, "Exception", "%s", out)
		all.WriteString(out)
	}
	log := all.String()
	require.Equal(t, len(txns), strings.Count(log, " zxid 0x"), "%s", log)
	for _, want := range []string{
		"zxid 0x100000008 createContainer /ours/c2,", // create2 with the container flag
		"zxid 0x100000009 createTtl /ours/ttl,t,",
		"zxid 0x10000000c multi check:",
		"zxid 0x10000000f error 0",            // sync
		"zxid 0x100000010 createSession 6000", // moveSession of 0x200000000000002 to server 3
		"zxid 0x100000012 closeSession v{'/ours/eph20000000002}",
	} {
		require.Contains(t, log, want, "%s", log)
	}

	tr := tree.New(tree.Options{ExtendedTypes: true})
	for _, x := range txns {
		tr.Apply(x)
	}
	snap := tr.Snapshot()
	p, err := WriteSnapshot(dir, snap.Zxid(), func(w io.Writer) error {
		_, err := snap.Write(w, []tree.SnapshotSession{{ID: 0x0100000000000001, Timeout: 30000}})
		return err
	})
	require.NoError(t, err)
	out, err := zkreal.RunTool("org.apache.zookeeper.server.SnapshotFormatter", "-d", p)
	require.NoError(t, err, "%s", out)
	require.NotContains(t, out, "Exception", "%s", out)
	for _, want := range []string{
		// ZooKeeper's DataTree holds the root under "" and "/": its count
		// is one more than the nodes it lists, for its own files too.
		"ZNode Details (count=" + fmt.Sprint(tr.NodeCount()+1) + "):",
		"/ours/c\n", "ephemeralOwner = 0x8000000000000000", // container
		"/ours/ttl\n", "ephemeralOwner = 0xff0000000036ee80", // TTL of an hour
		"ephemeralOwner = 0x100000000000001", // /ours/eph
		"0x100000000000001, 30000, 1",
		"Last zxid: 0x100000012",
	} {
		require.Contains(t, out, want, "%s", out)
	}
}
