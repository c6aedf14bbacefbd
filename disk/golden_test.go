package disk

import (
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata")

// TestLogGolden pins the bytes of a log file the Log writes: ZooKeeper's
// FileHeader, then per record the Adler32, the length, the payload and
// 'B', then the zeros of one 64 KiB preallocation (go test ./disk -run
// TestLogGolden -update rewrites it after a deliberate change; the
// payloads' own encoding is pinned by engine/tree's TestTxnGolden).
func TestLogGolden(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenLog(dir, LogOptions{PreallocSize: 64 << 10, NoSync: true})
	require.NoError(t, err)
	e2 := int64(2) << 32
	require.NoError(t, l.Append(rec(1), rec(2), rec(3)))
	require.NoError(t, l.Append(rec(e2+1)))
	require.NoError(t, l.Close())
	b, err := os.ReadFile(filepath.Join(dir, versionDir, "log.1"))
	require.NoError(t, err)
	require.Equal(t, logHeaderSize+64<<10, len(b), "16 + one preallocation, as ZooKeeper's")
	offs := offsets(b)
	end := offs[len(offs)-1] + recordOverhead + int64(len(rec(e2+1).Data))
	require.True(t, allZeroBytes(b[end:]), "zeros after the last record")
	var sb strings.Builder
	sb.WriteString(hex.EncodeToString(b[:logHeaderSize]) + "\n")
	for i, off := range offs {
		next := end
		if i+1 < len(offs) {
			next = offs[i+1]
		}
		sb.WriteString(hex.EncodeToString(b[off:next]) + "\n")
	}
	const path = "testdata/log-golden.txt"
	if *updateGolden {
		require.NoError(t, os.WriteFile(path, []byte(sb.String()), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), sb.String())
}
