package disk

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// A real file's segment writer writes at the file offset as os.File.Write
// does (so preallocation's WriteAt past the end leaves it where records
// go), in full, and a failed write says which file and why.
func TestSegmentWriterRawWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seg")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	require.NoError(t, err)
	defer f.Close()
	w := segmentWriter(f)
	require.IsType(t, &rawFileWriter{}, w)
	_, err = f.WriteAt([]byte{0}, 1<<20-1) // preallocation
	require.NoError(t, err)
	big := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320,000 bytes
	n, err := w.Write([]byte("head"))
	require.NoError(t, err)
	require.Equal(t, 4, n)
	n, err = w.Write(big)
	require.NoError(t, err)
	require.Equal(t, len(big), n)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Len(t, got, 1<<20, "the preallocated size stays")
	require.Equal(t, append([]byte("head"), big...), got[:4+len(big)])
	require.Equal(t, make([]byte, 1<<20-4-len(big)), got[4+len(big):])

	ro, err := os.Open(path)
	require.NoError(t, err)
	defer ro.Close()
	_, err = segmentWriter(ro).Write([]byte("x"))
	var pe *os.PathError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, path, pe.Path)
	require.True(t, errors.Is(err, syscall.EBADF), "%v", err)

	// Files that are not *os.File are written as they are.
	var mem memWriter
	require.Equal(t, io.Writer(&mem), segmentWriter(&mem))
}

// memWriter is a File that is not an *os.File.
type memWriter struct{ File }
