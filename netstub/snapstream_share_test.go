package netstub

import (
	"math/rand/v2"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
)

// TestStreamSnapshotIntoSpool: the payloads StreamSnapshot cuts, carried
// any way, rebuild the snapshot in a SnapshotSpool; between runs after
// every chunk (where a transport writes its heartbeats).
func TestStreamSnapshotIntoSpool(t *testing.T) {
	dir := t.TempDir()
	body := randomBytes(5*snapChunk/2, 3)
	spool := NewSnapshotSpool(dir, 1<<20)
	hdr := zab.Message{Type: zab.MsgSnap, From: 2, Zxid: 9}
	require.NoError(t, spool.Begin(hdr))
	var (
		payloads, betweens int
		got                zab.Message
		done               bool
	)
	n, err := StreamSnapshot(zab.SnapshotBytes(body), func(p []byte) error {
		payloads++
		var err error
		got, done, err = spool.Chunk(p)
		return err
	}, func() error { betweens++; return nil })
	require.NoError(t, err)
	require.Equal(t, int64(len(body)), n)
	require.True(t, done)
	require.Equal(t, 4, payloads, "three chunks and the end")
	require.Equal(t, 3, betweens, "after each chunk")
	require.False(t, spool.Active())
	require.Equal(t, hdr.Zxid, got.Zxid)
	data, err := zab.ReadSnapshot(got.Snapshot)
	require.NoError(t, err)
	require.Equal(t, body, data)
	require.NoError(t, got.Snapshot.(*SpooledSnapshot).Close())
	require.Empty(t, spoolFiles(t, dir))

	// Bad payloads: empty, an unknown tag, a chunk outside a stream, an
	// end that disagrees with what arrived, a snapshot over the limit.
	_, _, err = spool.Chunk(nil)
	require.Error(t, err)
	_, _, err = spool.Chunk([]byte{0x7f, 1})
	require.Error(t, err)
	_, _, err = spool.Chunk([]byte{tagChunk, 1})
	require.Error(t, err, "no snapshot begun")
	require.NoError(t, spool.Begin(hdr))
	_, _, err = spool.Chunk([]byte{tagChunk, 1, 2})
	require.NoError(t, err)
	_, _, err = spool.Chunk([]byte{tagEnd, 0, 0, 0, 0, 0, 0, 0, 3})
	require.Error(t, err)
	spool.Abort()
	require.Empty(t, spoolFiles(t, dir), "Abort removes the file")
	small := NewSnapshotSpool(dir, 10)
	require.NoError(t, small.Begin(hdr))
	_, _, err = small.Chunk(append([]byte{tagChunk}, make([]byte, 11)...))
	require.Error(t, err)
	small.Abort()
	require.Empty(t, spoolFiles(t, dir))
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func spoolFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
