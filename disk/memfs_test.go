package disk

import (
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func readMem(t *testing.T, m *MemFS, path string) []byte {
	t.Helper()
	f, err := m.OpenFile(path, os.O_RDONLY, 0)
	require.NoError(t, err)
	defer f.Close()
	size, err := fileSize(f)
	require.NoError(t, err)
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
		require.NoError(t, err)
	}
	return b
}

func TestMemFSCrash(t *testing.T) {
	m := NewMemFS()
	require.NoError(t, m.MkdirAll("/d", 0o755))
	f, err := m.OpenFile("/d/a", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	require.NoError(t, err)
	_, err = f.Write([]byte("synced"))
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	_, err = f.Write([]byte("-lost"))
	require.NoError(t, err)
	// Not durable yet: the directory entry was never synced.
	m.Crash()
	_, err = m.OpenFile("/d/a", os.O_RDONLY, 0)
	require.ErrorIs(t, err, os.ErrNotExist)
	_, err = f.Write([]byte("x"))
	require.ErrorIs(t, err, ErrCrashed)

	f, err = m.OpenFile("/d/a", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	require.NoError(t, err)
	_, err = f.Write([]byte("synced"))
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, m.SyncDir("/d"))
	_, err = f.Write([]byte("-torn"))
	require.NoError(t, err)
	require.NoError(t, m.Rename("/d/a", "/d/b")) // not synced: undone by a crash
	m.Crash()
	require.Equal(t, []byte("synced"), readMem(t, m, "/d/a"))

	f, err = m.OpenFile("/d/a", os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write([]byte("-torn"))
	require.NoError(t, err)
	m.CrashWith(func(path string, unsynced int) int {
		require.Equal(t, "/d/a", path)
		require.Equal(t, 5, unsynced)
		return 3
	})
	require.Equal(t, []byte("synced-to"), readMem(t, m, "/d/a"))
	names, err := m.ReadDir("/d")
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, names)
}

func TestLogOnMemFSCrash(t *testing.T) {
	m := NewMemFS()
	opts := LogOptions{FS: m, SegmentSize: 200, Logger: quiet()}
	l, err := OpenLog("/db", opts)
	require.NoError(t, err)
	require.NoError(t, l.Append(recs(1, 20)...))
	d, err := l.Sync()
	require.NoError(t, err)
	require.Equal(t, int64(20), d)
	require.NoError(t, l.Append(recs(21, 40)...))
	m.Crash()

	l, err = OpenLog("/db", opts)
	require.NoError(t, err)
	requireRecords(t, recs(1, 20), readAll(t, l, 0))
	require.NoError(t, l.Append(recs(21, 25)...))
	_, err = l.Sync()
	require.NoError(t, err)
	require.NoError(t, l.Append(recs(26, 40)...))
	m.CrashWith(func(string, int) int { return 17 }) // tear every file 17 bytes in

	l, err = OpenLog("/db", opts)
	require.NoError(t, err)
	defer l.Close()
	got := readAll(t, l, 0)
	require.GreaterOrEqual(t, len(got), 25)
	requireRecords(t, recs(1, int64(len(got))), got)
}

// CleanPath and splitClean give what filepath.Clean, Dir and Base give.
func TestCleanPathMatchesFilepath(t *testing.T) {
	names := []string{"", "/", ".", "..", "a", "/a", "a/", "/a/", "//a", "/a//b", "/a/./b", "/a/../b", "../a",
		"./a", "a/.", "a/..", "/data/version-2/log.1a", "/data/version-2/", "data/version-2/snapshot.0", "/.", "/..", "/...", "/a/.b", "/a/..b/c"}
	r := rand.New(rand.NewPCG(1, 1))
	for range 5000 {
		b := make([]byte, r.IntN(9))
		for i := range b {
			b[i] = "/.ab"[r.IntN(4)]
		}
		names = append(names, string(b))
	}
	for _, p := range names {
		if got, want := CleanPath(p), filepath.Clean(p); got != want {
			t.Fatalf("CleanPath(%q) = %q, filepath.Clean says %q", p, got, want)
		}
		c := filepath.Clean(p)
		if d, b := splitClean(c); d != filepath.Dir(c) || b != filepath.Base(c) {
			t.Fatalf("splitClean(%q) = %q, %q; filepath says %q, %q", c, d, b, filepath.Dir(c), filepath.Base(c))
		}
	}
}

// BenchmarkMemFSOpenFile opens a log segment by its clean name, as the
// simulator's storage does at every fsync and restart.
func BenchmarkMemFSOpenFile(b *testing.B) {
	m := NewMemFS()
	require.NoError(b, m.MkdirAll("/data/version-2", 0o755))
	f, err := m.OpenFile("/data/version-2/log.100000001", os.O_CREATE|os.O_WRONLY, 0o644)
	require.NoError(b, err)
	require.NoError(b, f.Close())
	b.ReportAllocs()
	for range b.N {
		f, err := m.OpenFile("/data/version-2/log.100000001", os.O_RDONLY, 0)
		if err != nil {
			b.Fatal(err)
		}
		_ = f.Close()
	}
}
