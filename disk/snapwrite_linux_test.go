package disk

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
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

// randomBytes returns n bytes drawn from rng.
func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// writeInPieces writes want to w in pieces of random sizes, smaller and
// larger than a buffer, and flushes it.
func writeInPieces(t *testing.T, rng *rand.Rand, w snapFileWriter, want []byte) {
	for rest := want; len(rest) > 0; {
		n := min(len(rest), 1+rng.IntN(700<<10))
		k, err := w.Write(rest[:n])
		require.NoError(t, err)
		require.Equal(t, n, k)
		rest = rest[n:]
	}
	require.NoError(t, w.Flush())
}

// isDirect reports whether f's descriptor has O_DIRECT.
func isDirect(t *testing.T, f *os.File) bool {
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	require.NoError(t, err)
	return fl&unix.O_DIRECT != 0
}

// A real file is written with O_DIRECT where its file system takes it: the
// file holds what was written, the aligned part written directly and the
// unaligned tail after O_DIRECT was cleared, whatever the sizes of the
// writes; an empty snapshot and one of whole buffers too.
func TestDirectSnapshotWriter(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, size := range []int{0, 100, directIOAlign, 4 * snapshotPaceBytes, 5*snapshotPaceBytes/2 + 123} {
		f, err := os.Create(filepath.Join(t.TempDir(), "snap"))
		require.NoError(t, err)
		sw, release := snapshotFileWriter(f)
		w, ok := sw.(*directWriter)
		if !ok {
			t.Skipf("the file system of %s refuses O_DIRECT (tmpfs before Linux 6.6)", f.Name())
		}
		require.True(t, isDirect(t, f))
		want := randomBytes(rng, size)
		writeInPieces(t, rng, w, want)
		require.Equal(t, size%directIOAlign == 0, isDirect(t, f), "O_DIRECT is cleared for an unaligned tail only")
		release()
		require.NoError(t, f.Sync())
		require.NoError(t, f.Close())
		got, err := os.ReadFile(f.Name())
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, got), "size %d: the file holds what was written", size)
	}
}

// A write O_DIRECT refuses (here the kernel's EINVAL for a buffer not
// aligned in memory) is done again through the page cache, as is the rest.
func TestDirectSnapshotWriterFallsBackOnEINVAL(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "snap"))
	require.NoError(t, err)
	defer f.Close()
	w := newDirectWriter(f)
	if w == nil {
		t.Skipf("the file system of %s refuses O_DIRECT (tmpfs before Linux 6.6)", f.Name())
	}
	for i := range w.bufs {
		misaligned := make([]byte, snapshotPaceBytes+1)[1:]
		w.bufs[i] = &misaligned
	}
	rng := rand.New(rand.NewPCG(5, 6))
	want := randomBytes(rng, 3*snapshotPaceBytes+77)
	writeInPieces(t, rng, w, want)
	require.False(t, w.direct, "O_DIRECT is cleared after EINVAL")
	require.False(t, isDirect(t, f))
	require.NoError(t, f.Sync())
	got, err := os.ReadFile(f.Name())
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, got), "the file holds what was written")
}

// A file whose file system refuses O_DIRECT (a character device here, a
// real refusal by the kernel) is written through the page cache, as are
// the in-memory file system's files.
func TestSnapshotWriterWithoutDirectIO(t *testing.T) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	require.NoError(t, err)
	defer f.Close()
	require.Nil(t, newDirectWriter(f))
	require.False(t, isDirect(t, f))
	sw, release := snapshotFileWriter(f)
	_, ok := sw.(*bufio.Writer)
	require.True(t, ok, "not written with O_DIRECT")
	release()

	mf, err := NewMemFS().OpenFile("x", os.O_CREATE|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	sw, release = snapshotFileWriter(mf)
	_, ok = sw.(*bufio.Writer)
	require.True(t, ok, "an in-memory file is written through a buffer")
	release()
}

// WriteSnapshot writes the same bytes with O_DIRECT as through the page
// cache (when the file system refuses O_DIRECT, which setDirectIO stands
// in for), for each compression.
func TestSnapshotSameBytesWithoutDirectIO(t *testing.T) {
	body := snapBodyFor(7, 3<<20+5)
	write := func(method string) []byte {
		p, err := WriteSnapshotCompressedFS(nil, t.TempDir(), 7, method, func(w io.Writer) error {
			for rest := body; len(rest) > 0; { // in the tree's 64 KiB pieces
				n := min(len(rest), 64<<10+3)
				if _, err := w.Write(rest[:n]); err != nil {
					return err
				}
				rest = rest[n:]
			}
			return nil
		})
		require.NoError(t, err)
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		return b
	}
	for _, method := range []string{CompressNone, CompressGzip, CompressSnappy} {
		direct := write(method)
		if method == CompressNone {
			require.True(t, bytes.Equal(body, direct))
		}
		refuse := setDirectIO
		var refused int
		setDirectIO = func(fd int, on bool) error {
			refused++
			return syscall.EINVAL
		}
		buffered := write(method)
		setDirectIO = refuse
		require.Equal(t, 1, refused, "O_DIRECT asked for once and refused")
		require.True(t, bytes.Equal(direct, buffered), "method %q: the same bytes either way", method)
	}
}
