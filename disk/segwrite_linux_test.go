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

// The segment being written holds real zeros (allocated blocks, no hole)
// from its records' end to at least zeroFillAhead past it, so records
// never land in a hole; the rest of the preallocation stays a hole; and
// the log reads back as written, also after a reopen.
func TestLogZeroFillsAheadOfTheRecords(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenLog(dir, LogOptions{Logger: quiet()})
	require.NoError(t, err)
	payload := make([]byte, 500)
	var want []Record
	seg := func() string {
		names, err := os.ReadDir(filepath.Join(dir, versionDir))
		require.NoError(t, err)
		require.Len(t, names, 1)
		return filepath.Join(dir, versionDir, names[0].Name())
	}
	checkZeroed := func(end int64) {
		t.Helper()
		f, err := os.Open(seg())
		require.NoError(t, err)
		defer f.Close()
		hole, err := f.Seek(0, 4) // SEEK_HOLE: the first hole
		require.NoError(t, err)
		require.GreaterOrEqual(t, hole, end+zeroFillAhead, "zeros written at least zeroFillAhead past the records")
		require.Less(t, hole, end+zeroFillAhead+zeroFillChunk+4096, "not much more than one chunk ahead")
		fi, err := f.Stat()
		require.NoError(t, err)
		require.Equal(t, int64(logHeaderSize+DefaultPreallocSize), fi.Size(), "the preallocated size, as ZooKeeper's")
	}
	z := int64(0)
	for round := range 6 {
		// About 300 KB a round: the zeros move ahead in chunks.
		for range 600 {
			z++
			r := Record{Zxid: z, Data: txnPayload(z, payload)}
			require.NoError(t, l.Append(r))
			want = append(want, r)
		}
		_, err := l.Sync()
		require.NoError(t, err)
		fi, err := os.Stat(seg())
		require.NoError(t, err)
		require.Equal(t, int64(logHeaderSize+DefaultPreallocSize), fi.Size())
		checkZeroed(logHeaderSize + int64(round+1)*600*int64(recordOverhead+len(want[0].Data)))
	}
	requireRecords(t, want, readAll(t, l, 0))
	require.NoError(t, l.Close())
	l, err = OpenLog(dir, LogOptions{Logger: quiet()})
	require.NoError(t, err)
	requireRecords(t, want, readAll(t, l, 0))
	require.NoError(t, l.Close())
}
