package disk

import (
	"errors"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// memBytes returns a MemFS file's bytes.
func memBytes(t *testing.T, m *MemFS, name string) []byte {
	t.Helper()
	f, err := m.OpenFile(name, os.O_RDONLY, 0)
	require.NoError(t, err)
	size, err := fileSize(f)
	require.NoError(t, err)
	b := make([]byte, size)
	_, err = f.ReadAt(b, 0)
	require.NoError(t, err)
	return b
}

// Abandon writes nothing of what the log buffers, and the log refuses
// further use.
func TestLogAbandonWritesNothing(t *testing.T) {
	m := NewMemFS()
	l, err := OpenLog("/s", LogOptions{FS: m, Logger: quiet()})
	require.NoError(t, err)
	require.NoError(t, l.Append(recs(1, 4)...))
	_, err = l.Sync()
	require.NoError(t, err)
	before := memBytes(t, m, "/s/version-2/log.1")
	require.NoError(t, l.Append(recs(5, 6)...)) // buffered, not written
	l.Abandon()
	require.Equal(t, before, memBytes(t, m, "/s/version-2/log.1"))
	require.True(t, errors.Is(l.Append(recs(7, 7)...), ErrClosed))
}
