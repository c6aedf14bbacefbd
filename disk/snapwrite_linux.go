package disk

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// snapshotPaceBytes is how much of a snapshot is written to the page cache
// before its writeback is started: pebble's bytes-per-sync idea. Without
// it a snapshot of a large tree (45 MB for 250,000 znodes) sits dirty in
// the page cache until its fsync, which then puts all of it in the disk's
// queue at once, and the txn log's fdatasyncs (every write's latency)
// wait behind it: the 3-server set p99 after a create workload was 22 ms
// against 9.6 ms on a small tree (BENCHMARKS.md "snapshot pacing"). ext4's
// ordered mode makes it worse: the first fdatasync of the segment the log
// rolls to at the snapshot commits the journal, which first writes every
// dirty data block of the snapshot file.
const snapshotPaceBytes = 512 << 10

// pacedSnapshotWriter is what a snapshot's buffered writer writes to. For
// a real file on Linux, every snapshotPaceBytes written are handed to the
// disk at once (sync_file_range SYNC_FILE_RANGE_WRITE) and the writer
// waits for the chunk before them to be on the disk, so at most two
// chunks (1 MiB) of a snapshot are ever in the disk's queue ahead of a log
// fdatasync. The final fsync still makes the file durable: sync_file_range
// guarantees nothing about metadata or the disk's cache. Other files (the
// fault-injecting and in-memory ones) are written as they are.
func pacedSnapshotWriter(f File) io.Writer {
	of, ok := f.(*os.File)
	if !ok {
		return f
	}
	return &pacedWriter{f: of, fd: int(of.Fd())}
}

// pacedWriter writes through to f and paces its writeback; see
// pacedSnapshotWriter. Errors of sync_file_range are ignored: the fsync
// that ends every snapshot reports a failed write.
type pacedWriter struct {
	f       *os.File
	fd      int
	written int64 // bytes written through f
	started int64 // writeback started for [0, started)
	waited  int64 // writeback waited for on [0, waited)
}

func (w *pacedWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.written += int64(n)
	for w.written-w.started >= snapshotPaceBytes {
		if w.started > w.waited {
			_ = unix.SyncFileRange(w.fd, w.waited, w.started-w.waited,
				unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
			w.waited = w.started
		}
		_ = unix.SyncFileRange(w.fd, w.started, snapshotPaceBytes, unix.SYNC_FILE_RANGE_WRITE)
		w.started += snapshotPaceBytes
	}
	return n, err
}
