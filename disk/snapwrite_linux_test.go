package disk

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A snapshot written through pacedSnapshotWriter reaches the file whole,
// and its writeback is started for every whole chunk written and waited
// for on all but the last one started, whatever the sizes of the writes.
func TestPacedSnapshotWriter(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "snap"))
	require.NoError(t, err)
	defer f.Close()
	w, ok := pacedSnapshotWriter(f).(*pacedWriter)
	require.True(t, ok, "an *os.File is paced")

	rng := rand.New(rand.NewPCG(1, 2))
	want := make([]byte, 5*snapshotPaceBytes/2+123)
	for i := range want {
		want[i] = byte(rng.IntN(256))
	}
	for rest := want; len(rest) > 0; {
		n := min(len(rest), 1+rng.IntN(300<<10)) // pieces smaller and larger than a chunk
		k, err := w.Write(rest[:n])
		require.NoError(t, err)
		require.Equal(t, n, k)
		rest = rest[n:]
		require.Less(t, w.written-w.started, int64(snapshotPaceBytes), "a whole chunk left unstarted")
		require.True(t, w.waited == 0 && w.started <= snapshotPaceBytes || w.waited == w.started-snapshotPaceBytes,
			"waited %d, started %d", w.waited, w.started)
	}
	require.Equal(t, int64(2*snapshotPaceBytes), w.started)
	require.Equal(t, int64(snapshotPaceBytes), w.waited)
	require.NoError(t, f.Sync())
	got, err := os.ReadFile(f.Name())
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, got), "the file holds what was written")

	mf, err := NewMemFS().OpenFile("x", os.O_CREATE|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	_, isPaced := pacedSnapshotWriter(mf).(*pacedWriter)
	require.False(t, isPaced, "files without a descriptor are written as they are")
}
