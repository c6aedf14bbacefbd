package disk

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/internal/zkreal"
)

// dirFiles lists version-2's files with their sizes.
func dirFiles(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, versionDir))
	require.NoError(t, err)
	out := map[string]int64{}
	for _, e := range entries {
		fi, err := e.Info()
		require.NoError(t, err)
		out[e.Name()] = fi.Size()
	}
	return out
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	require.NoError(t, os.CopyFS(to, os.DirFS(from)))
}

// TestPurgeAsZooKeepersPurgeTxnLog: on the same dataDir of several log files
// and snapshots (one starting right after a snapshot's zxid, one that fails
// ZooKeeper's validity check among the newest), ZooKeeper's own PurgeTxnLog
// and ours (PurgeSnapshots, then Log.PurgeBefore the oldest kept, as the
// server's autopurge does) leave the same files.
func TestPurgeAsZooKeepersPurgeTxnLog(t *testing.T) {
	zkreal.Require(t)
	src := t.TempDir()
	l, err := OpenLog(src, LogOptions{SegmentSize: 250, NoSync: true, Logger: quiet()})
	require.NoError(t, err)
	require.NoError(t, l.Append(recs(1, 80)...))
	require.NoError(t, l.Close())
	logs, err := listNamed(OSFS{}, filepath.Join(src, versionDir), logPrefix)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(logs), 21, "enough log files to purge some")
	var firsts []int64
	for _, n := range logs {
		firsts = append(firsts, n.zxid)
	}
	slices.Sort(firsts)
	// Snapshots: the oldest kept with retain 4 is just before a file's
	// start (that file starts at Z+1: the one before it stays), the oldest
	// kept with retain 3 is at a file's start; the newest is cut short.
	snaps := []int64{firsts[2] + 1, firsts[5] - 1, firsts[8], firsts[12] - 1, firsts[16] + 1, firsts[20] + 2}
	for _, z := range snaps {
		writeSnap(t, nil, src, z, snapBodyFor(z, 200))
	}
	newest := filepath.Join(src, versionDir, SnapshotName(firsts[20]+2, ""))
	fi, err := os.Stat(newest)
	require.NoError(t, err)
	require.NoError(t, os.Truncate(newest, fi.Size()-3))

	for _, retain := range []int{3, 4} {
		zkDir, ourDir := filepath.Join(t.TempDir(), "zk"), filepath.Join(t.TempDir(), "ours")
		copyDir(t, src, zkDir)
		copyDir(t, src, ourDir)
		_, err := zkreal.RunTool("org.apache.zookeeper.server.PurgeTxnLog", zkDir, zkDir, "-n", fmt.Sprint(retain))
		require.NoError(t, err)

		oldest, err := PurgeSnapshots(ourDir, retain, nil)
		require.NoError(t, err)
		l, err := OpenLog(ourDir, LogOptions{SegmentSize: 250, NoSync: true, Logger: quiet()})
		require.NoError(t, err)
		require.NoError(t, l.PurgeBefore(oldest))
		require.NoError(t, l.Close())

		zkLeft, ourLeft := dirFiles(t, zkDir), dirFiles(t, ourDir)
		require.Equal(t, zkLeft, ourLeft, "retain %d: files left by ZooKeeper's PurgeTxnLog and by ours", retain)
		require.Less(t, len(ourLeft), len(dirFiles(t, src)), "retain %d: something was purged", retain)
		t.Logf("retain %d: %d of %d files left", retain, len(ourLeft), len(dirFiles(t, src)))
	}
}

// TestPurgeAsZooKeepersPurgeTxnLogOnItsFiles: the same on the dataDir
// ZooKeeper 3.8 wrote (testdata/zk38/standalone: five snapshots, one fuzzy,
// four log files with their zero-filled tails).
func TestPurgeAsZooKeepersPurgeTxnLogOnItsFiles(t *testing.T) {
	zkreal.Require(t)
	src := filepath.Join("testdata", "zk38", "standalone")
	zkDir, ourDir := filepath.Join(t.TempDir(), "zk"), filepath.Join(t.TempDir(), "ours")
	copyDir(t, src, zkDir)
	copyDir(t, src, ourDir)
	// The fixtures' log.<zxid>.toolkit.txt are ours, not ZooKeeper's:
	// PurgeTxnLog would take them for logs (it matches "log." and the zxid
	// after it, whatever follows); ours deletes only the log files it reads.
	for _, d := range []string{zkDir, ourDir} {
		txts, err := filepath.Glob(filepath.Join(d, versionDir, "*.toolkit.txt"))
		require.NoError(t, err)
		for _, f := range txts {
			require.NoError(t, os.Remove(f))
		}
	}
	_, err := zkreal.RunTool("org.apache.zookeeper.server.PurgeTxnLog", zkDir, zkDir, "-n", "3")
	require.NoError(t, err)
	oldest, err := PurgeSnapshots(ourDir, 3, nil)
	require.NoError(t, err)
	require.Equal(t, int64(0x12), oldest)
	l, err := OpenLog(ourDir, LogOptions{NoSync: true, Logger: quiet()})
	require.NoError(t, err)
	require.NoError(t, l.PurgeBefore(oldest))
	require.NoError(t, l.Close())
	left := dirFiles(t, ourDir)
	require.Equal(t, dirFiles(t, zkDir), left)
	require.Contains(t, left, "log.a", "the log that starts before snapshot.12")
	require.NotContains(t, left, "log.1")
}
