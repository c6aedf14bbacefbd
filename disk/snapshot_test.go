package disk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/adler32"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// snapBodyFor returns a well-formed ZooKeeper snapshot stream, different
// for each z: a session, an ACL, the root and nodes holding about n bytes of
// data, both seals and a digest (not a true tree digest: disk does not
// decode the tree).
func snapBodyFor(z int64, n int) []byte {
	r := rand.New(rand.NewPCG(uint64(z), 1))
	var b []byte
	i32 := func(v int32) { b = binary.BigEndian.AppendUint32(b, uint32(v)) }
	i64 := func(v int64) { b = binary.BigEndian.AppendUint64(b, uint64(v)) }
	str := func(s string) { i32(int32(len(s))); b = append(b, s...) }
	sum := func() { i64(int64(adler32.Checksum(b))); str("/") }
	i32(snapMagic)
	i32(snapVersion)
	i64(-1)
	i32(1) // sessions
	i64(z + 0x100)
	i32(30000)
	i32(1) // ACL cache
	i64(1)
	i32(1)
	i32(31)
	str("world")
	str("anyone")
	node := func(path string, data []byte) {
		str(path)
		if data == nil {
			i32(-1)
		} else {
			i32(int32(len(data)))
			b = append(b, data...)
		}
		i64(1)
		b = append(b, make([]byte, 60)...)
	}
	node("", nil)
	for k := 0; n > 0; k++ {
		d := make([]byte, min(n, 1+r.IntN(700)))
		for j := range d {
			d[j] = byte(r.Uint32())
		}
		node(fmt.Sprintf("/n%d", k), d)
		n -= len(d)
	}
	str("/")
	sum()
	i64(z)
	i32(2)
	i64(int64(r.Uint64()))
	sum()
	return b
}

func writeSnap(t *testing.T, fsys FS, dir string, z int64, body []byte) string {
	t.Helper()
	p, err := WriteSnapshotFS(fsys, dir, z, func(w io.Writer) error {
		for len(body) > 0 { // stream it in pieces
			n := min(len(body), 7777)
			if _, err := w.Write(body[:n]); err != nil {
				return err
			}
			body = body[n:]
		}
		return nil
	})
	require.NoError(t, err)
	return p
}

func TestSnapshotWriteListOpen(t *testing.T) {
	dir := t.TempDir()
	snaps, err := ListSnapshots(dir)
	require.NoError(t, err)
	require.Empty(t, snaps)

	zs := []int64{0x100000005, 0, 3, 0x200000001}
	for _, z := range zs {
		writeSnap(t, nil, dir, z, snapBodyFor(z, 1<<20+int(z%100)))
	}
	snaps, err = ListSnapshots(dir)
	require.NoError(t, err)
	require.Equal(t, []SnapshotInfo{
		{Path: filepath.Join(dir, "version-2", "snapshot.200000001"), Zxid: 0x200000001},
		{Path: filepath.Join(dir, "version-2", "snapshot.100000005"), Zxid: 0x100000005},
		{Path: filepath.Join(dir, "version-2", "snapshot.3"), Zxid: 3},
		{Path: filepath.Join(dir, "version-2", "snapshot.0"), Zxid: 0},
	}, snaps)
	for _, s := range snaps {
		z, body, err := OpenSnapshot(s.Path)
		require.NoError(t, err)
		require.Equal(t, s.Zxid, z)
		got, err := io.ReadAll(body)
		require.NoError(t, err)
		require.NoError(t, body.Close())
		require.True(t, bytes.Equal(snapBodyFor(z, 1<<20+int(z%100)), got))
	}
}

func TestSnapshotWriteFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	boom := errors.New("boom")
	_, err := WriteSnapshot(dir, 9, func(w io.Writer) error {
		_, _ = w.Write([]byte("partial"))
		return boom
	})
	require.ErrorIs(t, err, boom)
	names, err := OSFS{}.ReadDir(filepath.Join(dir, versionDir))
	require.NoError(t, err)
	require.Empty(t, names)

	m := NewMemFS()
	_, err = WriteSnapshotFS(WithFaults(m, FailNext(OpRename)), "/d", 9, func(io.Writer) error { return nil })
	require.ErrorIs(t, err, ErrInjected)
	names, err = m.ReadDir("/d/version-2")
	require.NoError(t, err)
	require.Empty(t, names)
}

func TestSnapshotCrashBeforeDirSync(t *testing.T) {
	m := NewMemFS()
	_, err := WriteSnapshotFS(WithFaults(m, FailNext(OpSyncDir)), "/d", 9, func(io.Writer) error { return nil })
	require.Error(t, err)
	m.Crash()
	snaps, err := ListSnapshotsFS(m, "/d")
	require.NoError(t, err)
	require.Empty(t, snaps)
}

func TestCorruptSnapshot(t *testing.T) {
	dir := t.TempDir()
	body := snapBodyFor(7, 5000)
	p := writeSnap(t, nil, dir, 7, body)
	orig, err := os.ReadFile(p)
	require.NoError(t, err)
	damage := map[string]func([]byte) []byte{
		"flipped body byte": func(b []byte) []byte { b[2000] ^= 1; return b },
		"flipped dbid":      func(b []byte) []byte { b[15] ^= 1; return b },
		"version 1":         func(b []byte) []byte { b[7] = 1; return b },
		"bad magic":         func(b []byte) []byte { b[0] = 'X'; return b },
		"truncated":         func(b []byte) []byte { return b[:len(b)-100] },
		"truncated to 10":   func(b []byte) []byte { return b[:10] },
		"truncated digest":  func(b []byte) []byte { return b[:len(b)-20] },
		"garbage digest":    func(b []byte) []byte { return append(b[:len(b)-33], 1) },
		"flipped crc":       func(b []byte) []byte { b[len(b)-1] ^= 1; return b },
		"empty":             func([]byte) []byte { return nil },
	}
	for name, f := range damage {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(p, f(bytes.Clone(orig)), 0o644))
			_, _, err := OpenSnapshot(p)
			require.ErrorIs(t, err, ErrCorrupt)
			require.Contains(t, err.Error(), p)
		})
	}
	// What ZooKeeper 3.9 appends after the digest seal is not read, and a
	// snapshot without a digest (digests disabled) is whole.
	for name, b := range map[string][]byte{
		"3.9 trailer": append(bytes.Clone(orig), 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 1, '/'),
		"no digest":   orig[:len(orig)-33],
	} {
		require.NoError(t, os.WriteFile(p, b, 0o644))
		z, body, err := OpenSnapshot(p)
		require.NoError(t, err, name)
		require.Equal(t, int64(7), z)
		got, err := io.ReadAll(body)
		require.NoError(t, err)
		require.NoError(t, body.Close())
		require.Equal(t, b, got, name)
	}
}

func TestPurgeSnapshots(t *testing.T) {
	dir := t.TempDir()
	for z := int64(1); z <= 6; z++ {
		writeSnap(t, nil, dir, z*10, snapBodyFor(z, 100))
	}
	oldest, err := PurgeSnapshots(dir, 1, nil) // at least 3 are kept
	require.NoError(t, err)
	require.Equal(t, int64(40), oldest)
	snaps, err := ListSnapshots(dir)
	require.NoError(t, err)
	require.Len(t, snaps, 3)

	// A corrupt newest snapshot does not count towards the retained ones.
	p := writeSnap(t, nil, dir, 70, snapBodyFor(7, 100))
	require.NoError(t, os.Truncate(p, 30))
	writeSnap(t, nil, dir, 5, snapBodyFor(5, 100))
	var logged bytes.Buffer
	oldest, err = PurgeSnapshots(dir, 3, slog.New(slog.NewTextHandler(&logged, nil)))
	require.NoError(t, err)
	require.Equal(t, int64(40), oldest)
	// The caller's logger hears of it, naming the file.
	require.Contains(t, logged.String(), "fails ZooKeeper's validity check")
	require.Contains(t, logged.String(), filepath.Base(p))
	snaps, err = ListSnapshots(dir)
	require.NoError(t, err)
	require.Equal(t, []int64{70, 60, 50, 40}, zxidsOf(snaps))

	oldest, err = PurgeSnapshots(dir, 10, nil) // fewer than wanted: keep all
	require.NoError(t, err)
	require.Equal(t, int64(40), oldest)
}

func zxidsOf(s []SnapshotInfo) []int64 {
	var out []int64
	for _, i := range s {
		out = append(out, i.Zxid)
	}
	return out
}

func TestEpochFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "currentEpoch")
	_, ok, err := ReadEpochFile(p)
	require.NoError(t, err)
	require.False(t, ok)
	for _, v := range []int64{0, 1, 7, 1 << 40, -1} {
		require.NoError(t, WriteEpochFile(p, v))
		got, ok, err := ReadEpochFile(p)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, v, got)
	}
	raw, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, "-1", string(raw))

	require.NoError(t, os.WriteFile(p, []byte("12\n"), 0o644)) // as ZooKeeper may leave it
	got, ok, err := ReadEpochFile(p)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, int64(12), got)
	for _, bad := range []string{"", "x", "1 2", "99999999999999999999", "+3"} {
		require.NoError(t, os.WriteFile(p, []byte(bad), 0o644))
		_, _, err := ReadEpochFile(p)
		require.ErrorIs(t, err, ErrCorrupt, "%q", bad)
		require.Contains(t, err.Error(), p)
	}
}

// TestSnapshotDigestVersion1Verifies: a version-1 digest (a hex string)
// passes the file check.
func TestSnapshotDigestVersion1Verifies(t *testing.T) {
	b := snapBodyFor(9, 500)
	b = b[:len(b)-33]
	b = binary.BigEndian.AppendUint64(b, 9)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint32(b, 6)
	b = append(b, "abc123"...)
	b = binary.BigEndian.AppendUint64(b, uint64(adler32.Checksum(b)))
	b = append(b, 0, 0, 0, 1, '/')
	p := writeSnap(t, nil, t.TempDir(), 9, b)
	_, body, err := OpenSnapshot(p)
	require.NoError(t, err)
	require.NoError(t, body.Close())
	b[len(b)-20] ^= 1 // inside the string: the seal catches it
	require.NoError(t, os.WriteFile(p, b, 0o644))
	_, _, err = OpenSnapshot(p)
	require.ErrorIs(t, err, ErrCorrupt)
}

// The writer a snapshot is serialized into asks the serializer to yield
// (tree.Yielder), and yielding writes nothing.
func TestSnapshotWriterYields(t *testing.T) {
	dir := t.TempDir()
	path, err := WriteSnapshot(dir, 7, func(w io.Writer) error {
		y, ok := w.(interface{ Yield() })
		require.True(t, ok, "%T has no Yield", w)
		if _, err := w.Write([]byte("before")); err != nil {
			return err
		}
		y.Yield()
		_, err := w.Write([]byte("after"))
		return err
	})
	require.NoError(t, err)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "beforeafter", string(b))
}
