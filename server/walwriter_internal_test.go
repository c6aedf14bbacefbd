package server

import (
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/disk"
	"github.com/zabkeeper/zabkeeper/engine"
	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/proto"
)

// createEntry is the log entry of a create of a 100-byte znode, encoded
// once as the leader does.
func createEntry(zxid int64) engine.Entry {
	txn := tree.Txn{Zxid: zxid, SessionID: 1, Cxid: int32(zxid), Time: 1, Type: proto.OpCreate,
		Path: "/bench/n" + strings.Repeat("0", 10), Data: make([]byte, 100),
		ACL: []proto.ACL{{Perms: proto.PermAll, Id: proto.Id{Scheme: "world", ID: "anyone"}}}, ParentCversion: 1}
	return engine.Entry{Zxid: zxid, Data: txn.Marshal()}
}

// TestWALWriterSharesFsyncs: batches the loop hands over while an fsync
// runs share the next one, nothing is reported before the fsync covering
// it, and everything reported is in the log.
func TestWALWriterSharesFsyncs(t *testing.T) {
	var fsyncs, synced atomic.Int64
	var lastAppended atomic.Int64
	fsys := disk.WithFaults(disk.OSFS{}, func(op disk.Op, path string) error {
		if op == disk.OpSync && strings.HasPrefix(filepath.Base(path), "log.") {
			fsyncs.Add(1)
			time.Sleep(2 * time.Millisecond) // a slow disk: batches queue up behind it
			synced.Store(lastAppended.Load())
		}
		return nil
	})
	dir := t.TempDir()
	wal, err := disk.OpenLog(dir, disk.LogOptions{FS: fsys})
	require.NoError(t, err)
	persisted := make(chan int64, 1)
	w := newWALWriter(wal, persisted, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)

	const n = 400
	for z := int64(1); z <= n; z++ {
		lastAppended.Store(z) // submitted before any fsync can cover it
		w.submit([]engine.Entry{createEntry(z)})
		select {
		case d := <-persisted:
			// Reported durable only once an fsync that started after the
			// entry was submitted has returned.
			require.LessOrEqual(t, d, synced.Load())
		default:
		}
	}
	require.NoError(t, w.flush())
	w.close()
	require.Less(t, fsyncs.Load(), int64(n/4), "fsyncs are shared by the batches queued behind one")
	t.Logf("%d batches, %d fsyncs", n, fsyncs.Load())
	require.Equal(t, int64(n), wal.DurableZxid())
	require.NoError(t, wal.Close())

	wal, err = disk.OpenLog(dir, disk.LogOptions{})
	require.NoError(t, err)
	defer wal.Close()
	next := int64(1)
	require.NoError(t, wal.ReadFrom(0, func(r disk.Record) error {
		require.Equal(t, next, r.Zxid)
		require.Equal(t, createEntry(next).Data, r.Data, "the bytes the leader encoded, as they are")
		next++
		return nil
	}))
	require.Equal(t, int64(n+1), next)
}

// BenchmarkWritePath is the server's write path below the engine, on real
// files with fsync: encode a create txn once (as the leader does), hand it
// to the log writer as the loop does, and wait for it to be reported
// durable, with 64 writes outstanding (64 sessions of `zabkeeper bench`).
// One op is one txn.
func BenchmarkWritePath(b *testing.B) {
	wal, err := disk.OpenLog(b.TempDir(), disk.LogOptions{})
	require.NoError(b, err)
	persisted := make(chan int64, 1)
	w := newWALWriter(wal, persisted, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	const inflight = 64
	z, durable := int64(0), int64(0)
	b.ReportAllocs()
	for b.Loop() {
		for z-durable >= inflight {
			durable = <-persisted
		}
		z++
		w.submit([]engine.Entry{createEntry(z)})
	}
	for durable < z {
		durable = <-persisted
	}
	w.close()
	require.NoError(b, wal.Close())
	b.ReportMetric(float64(z)/b.Elapsed().Seconds(), "txns/s")
}
