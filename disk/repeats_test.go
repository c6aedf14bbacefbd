package disk

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLogReadsZooKeeperRepeatedDiffOnce: Apache ZooKeeper 3.8's learner
// logs the txns of a DIFF sync twice in one file (at NEWLEADER and again
// after UPTODATE), and its own recovery reads past the repeats; seen in
// make interop-swap, where zabkeeper could not start on the dataDir of a
// ZooKeeper follower synced by DIFF. The log opens, each zxid is read
// once, the file's tail is where the last record ends, appends go on after
// the highest zxid, TRUNC below the repeats drops them, and ScanLogFile
// counts them. A first record at or below the previous segment's end is
// still refused.
func TestLogReadsZooKeeperRepeatedDiffOnce(t *testing.T) {
	dir := t.TempDir()
	vd := filepath.Join(dir, versionDir)
	require.NoError(t, os.MkdirAll(vd, 0o755))
	data := append([]byte{}, logHeader()...)
	for _, r := range append(append(recs(1, 5), recs(3, 5)...), recs(6, 7)...) {
		data = append(data, encodeRecord(r)...)
	}
	path := filepath.Join(vd, "log.1")
	require.NoError(t, os.WriteFile(path, data, 0o644))

	end, err := ScanLogFile(nil, path, nil)
	require.NoError(t, err)
	require.Equal(t, 7, end.Records)
	require.Equal(t, 3, end.Repeats)
	require.Equal(t, int64(7), end.Last)
	require.Equal(t, int64(len(data)), end.Offset)

	w := &warnings{}
	l, err := OpenLog(dir, LogOptions{Logger: w.logger()})
	require.NoError(t, err)
	requireRecords(t, recs(1, 7), readAll(t, l, 0))
	require.NoError(t, l.Append(rec(8)))
	_, err = l.Sync()
	require.NoError(t, err)
	requireRecords(t, recs(1, 8), readAll(t, l, 0))
	require.NoError(t, l.Close())
	w.mu.Lock()
	require.True(t, strings.Contains(strings.Join(w.msgs, ""), "repeats=3"), "%v", w.msgs)
	w.mu.Unlock()

	l, err = OpenLog(dir, LogOptions{Logger: quiet()})
	require.NoError(t, err)
	requireRecords(t, recs(1, 8), readAll(t, l, 0))
	require.NoError(t, l.TruncateAfter(4))
	requireRecords(t, recs(1, 4), readAll(t, l, 0))
	require.NoError(t, l.Close())

	// A segment whose first record repeats the previous segment's is not
	// that pattern: refused as before.
	bad := append([]byte{}, logHeader()...)
	bad = append(bad, encodeRecord(rec(4))...)
	require.NoError(t, os.WriteFile(filepath.Join(vd, "log.5"), bad, 0o644))
	_, err = OpenLog(dir, LogOptions{Logger: quiet()})
	require.ErrorIs(t, err, ErrCorrupt)
}
