package disk

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// segmentSeeds returns real segment files produced by the log, whole and
// damaged, for the fuzz corpus.
func segmentSeeds(t testing.TB) [][]byte {
	m := NewMemFS()
	l, err := OpenLog("/s", LogOptions{FS: m, Logger: quiet()})
	require.NoError(t, err)
	require.NoError(t, l.Append(recs(1, 4)...))
	require.NoError(t, l.Append(Record{Zxid: 1<<32 | 1, Data: txnPayload(1<<32|1, nil)}))
	require.NoError(t, l.Close())
	f, err := m.OpenFile("/s/version-2/log.1", os.O_RDONLY, 0)
	require.NoError(t, err)
	size, _ := fileSize(f)
	whole := make([]byte, size)
	_, err = f.ReadAt(whole, 0)
	require.NoError(t, err)
	flipped := bytes.Clone(whole)
	flipped[40] ^= 1
	noEOR := bytes.Clone(whole)
	noEOR[len(noEOR)-1] = 0
	return [][]byte{whole, whole[:len(whole)-3], whole[:logHeaderSize], flipped, noEOR,
		append(bytes.Clone(whole), make([]byte, 4096)...)}
}

// FuzzLogSegment opens arbitrary bytes as the only segment of a log. It must
// not panic, and when it succeeds what remains on disk must be a prefix of
// the input made of valid records.
func FuzzLogSegment(f *testing.F) {
	for _, s := range segmentSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m := NewMemFS()
		require.NoError(t, m.MkdirAll("/db/version-2", 0o755))
		w, err := m.OpenFile("/db/version-2/log.1", os.O_WRONLY|os.O_CREATE, 0o644)
		require.NoError(t, err)
		_, err = w.Write(data)
		require.NoError(t, err)
		require.NoError(t, w.Sync())
		require.NoError(t, m.SyncDir("/db/version-2"))

		l, err := OpenLog("/db", LogOptions{FS: m, Logger: quiet()})
		if err != nil {
			require.ErrorIs(t, err, ErrCorrupt)
			require.Contains(t, err.Error(), "log.1")
			return
		}
		defer l.Close()
		var got []Record
		require.NoError(t, l.ReadFrom(0, func(r Record) error {
			got = append(got, r)
			return nil
		}))
		if len(got) == 0 {
			names, err := m.ReadDir("/db/version-2")
			require.NoError(t, err)
			require.Empty(t, names)
			return
		}
		require.Equal(t, int64(1), got[0].Zxid)
		enc := logHeader()
		for i, r := range got {
			if i > 0 {
				require.Greater(t, r.Zxid, got[i-1].Zxid)
			}
			enc = append(enc, encodeRecord(r)...)
		}
		// The header's dbid (bytes 8-15) is not checked, as ZooKeeper does.
		require.Equal(t, enc[:8], data[:8], "magic and version")
		require.True(t, bytes.HasPrefix(data[logHeaderSize:], enc[logHeaderSize:]), "recovered records are not a prefix of the input")
		require.Equal(t, got[len(got)-1].Zxid, l.LastZxid())
	})
}

func snapshotSeeds(t testing.TB) [][]byte {
	m := NewMemFS()
	var out [][]byte
	for i, body := range [][]byte{nil, []byte("hello"), snapBodyFor(3, 300), snapBodyFor(4, 0)} {
		p, err := WriteSnapshotCompressedFS(m, "/d", 3, []string{"", "gz", "snappy", ""}[i], func(w io.Writer) error {
			_, err := w.Write(body)
			return err
		})
		require.NoError(t, err)
		out = append(out, readMemT(t, m, p))
	}
	return append(out, out[2][:20], snapBodyFor(5, 100)[:200])
}

func readMemT(t testing.TB, m *MemFS, path string) []byte {
	f, err := m.OpenFile(path, os.O_RDONLY, 0)
	require.NoError(t, err)
	defer f.Close()
	size, _ := fileSize(f)
	b := make([]byte, size)
	if size > 0 {
		_, err = f.ReadAt(b, 0)
		require.NoError(t, err)
	}
	return b
}

// FuzzSnapshotHeader opens arbitrary bytes as a snapshot, uncompressed,
// gzip and snappy. It must not panic; a snapshot that verifies reads back
// as the bytes written (decompressed), and corruption wraps ErrCorrupt and
// names the file.
func FuzzSnapshotHeader(f *testing.F) {
	for _, s := range snapshotSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m := NewMemFS()
		for _, name := range []string{"/snapshot.3", "/snapshot.3.gz", "/snapshot.3.snappy"} {
			w, err := m.OpenFile(name, os.O_WRONLY|os.O_CREATE, 0o644)
			require.NoError(t, err)
			_, err = w.Write(data)
			require.NoError(t, err)
			z, body, err := OpenSnapshotFS(m, name)
			if err != nil {
				require.ErrorIs(t, err, ErrCorrupt)
				require.Contains(t, err.Error(), name)
				continue
			}
			got, err := io.ReadAll(body)
			require.NoError(t, err)
			require.NoError(t, body.Close())
			require.Equal(t, int64(3), z)
			if name == "/snapshot.3" {
				require.Equal(t, data, got)
			}
			// What verified, written back in each format, verifies.
			for _, method := range []string{CompressNone, CompressGzip, CompressSnappy} {
				p, err := WriteSnapshotCompressedFS(m, "/d", 3, method, func(w io.Writer) error {
					_, err := w.Write(got)
					return err
				})
				require.NoError(t, err)
				_, body, err := OpenSnapshotFS(m, p)
				require.NoError(t, err)
				again, err := io.ReadAll(body)
				require.NoError(t, err)
				require.NoError(t, body.Close())
				require.Equal(t, got, again)
			}
		}
	})
}

// FuzzEpochFile parses arbitrary bytes as an epoch file: no panic, and a
// value it accepts survives a write and read back.
func FuzzEpochFile(f *testing.F) {
	for _, s := range []string{"0", "1", "12\n", "-1", "9223372036854775807", " 5 ", "x", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := parseEpoch(data)
		if err != nil {
			require.ErrorIs(t, err, ErrCorrupt)
			return
		}
		s := strings.TrimSpace(string(data))
		p, err := strconv.ParseInt(s, 10, 64)
		require.NoError(t, err)
		require.Equal(t, p, v)
		m := NewMemFS()
		require.NoError(t, WriteEpochFileFS(m, "/e", v))
		got, ok, err := ReadEpochFileFS(m, "/e")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, v, got)
	})
}

// TestWriteFuzzSeeds regenerates testdata/fuzz from real files when
// DISK_WRITE_FUZZ_SEEDS is set.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("DISK_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set DISK_WRITE_FUZZ_SEEDS=1 to regenerate testdata/fuzz")
	}
	write := func(name string, seeds [][]byte) {
		dir := filepath.Join("testdata", "fuzz", name)
		require.NoError(t, os.MkdirAll(dir, 0o755))
		for i, s := range seeds {
			content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%d", i)), []byte(content), 0o644))
		}
	}
	write("FuzzLogSegment", segmentSeeds(t))
	write("FuzzSnapshotHeader", snapshotSeeds(t))
	write("FuzzEpochFile", [][]byte{[]byte("7"), []byte("4294967296\n"), []byte("-12")})
}
