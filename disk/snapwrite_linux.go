package disk

import (
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// snapshotFileWriter returns the buffered writer a snapshot is written to f
// through, and the function that releases it once the snapshot is flushed.
// A real file is written with O_DIRECT (directWriter) where its file
// system allows it, and otherwise through the page cache, its writeback
// paced (pacedSnapshotWriter). The fault-injecting and in-memory files are
// written as they are, through a buffer.
func snapshotFileWriter(f File) (snapFileWriter, func()) {
	if of, ok := f.(*os.File); ok {
		if w := newDirectWriter(of); w != nil {
			return w, w.release
		}
	}
	return bufferedSnapshotWriter(pacedSnapshotWriter(f))
}

// snapshotPaceBytes is how much of a snapshot is written to the page cache
// before its writeback is started: pebble's bytes-per-sync idea. Without
// it a snapshot of a large tree (45 MB for 250,000 znodes) sits dirty in
// the page cache until its fsync, which then puts all of it in the disk's
// queue at once, and the txn log's fdatasyncs (every write's latency)
// wait behind it: the 3-server set p99 after a create workload was 22 ms
// against 9.6 ms on a small tree (BENCHMARKS.md "snapshot pacing"). ext4's
// ordered mode makes it worse: the first fdatasync of the segment the log
// rolls to at the snapshot commits the journal, which first writes every
// dirty data block of the snapshot file. It is also the size of each
// write of a snapshot written with O_DIRECT (directWriter), which leaves
// nothing dirty but its last few KB.
const snapshotPaceBytes = 512 << 10

// pacedSnapshotWriter is what a snapshot's buffered writer writes to when
// the file is not written with O_DIRECT (its file system refuses the
// flag; see directWriter). For a real file, every snapshotPaceBytes
// written are handed to the disk at once (sync_file_range
// SYNC_FILE_RANGE_WRITE) and the writer waits for the chunk before them
// to be on the disk, so at most two chunks (1 MiB) of a snapshot are ever
// in the disk's queue ahead of a log fdatasync. The final fsync still makes the file durable: sync_file_range
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

// directIOAlign is the alignment O_DIRECT asks of a write's memory, file
// offset and length: the disk's logical block size, of which 4096 is the
// largest in use (512 the most common).
const directIOAlign = 4096

// directWriter writes a snapshot file with O_DIRECT, from two aligned
// buffers of snapshotPaceBytes: while one is filled, the other is written
// on a goroutine of its own, one write(2) that goes from the buffer to
// the disk and returns once the disk has it. The snapshot then costs no
// copy into the page cache and no writeback by the kernel's threads (the
// page cache path was a third of a snapshot's CPU in a server's profile,
// and its writeback more outside the process), at most one buffer of it
// is ever in the disk's queue ahead of a log fdatasync (pacedWriter
// allows two), and serializing goes on while the disk writes. Flush
// writes the unaligned tail through the page cache after clearing
// O_DIRECT; the fsync that ends every snapshot makes all of it durable,
// as before (O_DIRECT says nothing of the disk's cache or the file's
// metadata).
//
// A write O_DIRECT refuses (EINVAL: a file system that takes the flag and
// not the alignment) clears the flag and is done again through the page
// cache, as is everything after it.
type directWriter struct {
	f    *os.File
	fd   int
	bufs [2]*[]byte // aligned, of snapshotPaceBytes
	cur  int        // the buffer being filled
	n    int        // bytes in it
	off  int64      // the file offset of its first byte
	// pending is the result of the write in flight, or nil. The writing
	// goroutine may clear direct; it is read only once that write is
	// waited for.
	pending chan error
	direct  bool // the descriptor has O_DIRECT
}

// directBufs recycles directWriter buffers.
var directBufs = sync.Pool{New: func() any {
	b := alignedBuffer(snapshotPaceBytes)
	return &b
}}

// alignedBuffer returns n bytes starting at a multiple of directIOAlign.
func alignedBuffer(n int) []byte {
	b := make([]byte, n+directIOAlign)
	k := int(uintptr(unsafe.Pointer(&b[0])) & (directIOAlign - 1))
	if k != 0 {
		k = directIOAlign - k
	}
	return b[k : k+n : k+n]
}

// newDirectWriter sets O_DIRECT on f, which must be empty, and returns its
// writer, or nil when the file system refuses the flag.
func newDirectWriter(f *os.File) *directWriter {
	fd := int(f.Fd())
	if setDirectIO(fd, true) != nil {
		return nil
	}
	return &directWriter{
		f: f, fd: fd, direct: true,
		bufs: [2]*[]byte{directBufs.Get().(*[]byte), directBufs.Get().(*[]byte)},
	}
}

// setDirectIO sets or clears O_DIRECT on the descriptor fd (fcntl F_SETFL).
// Tests replace it to refuse.
var setDirectIO = func(fd int, on bool) error {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return err
	}
	if on {
		fl |= unix.O_DIRECT
	} else {
		fl &^= unix.O_DIRECT
	}
	_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl)
	return err
}

func (w *directWriter) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		buf := *w.bufs[w.cur]
		k := copy(buf[w.n:], p)
		w.n += k
		p = p[k:]
		if w.n == len(buf) {
			if err := w.submit(); err != nil {
				return total - len(p), err
			}
		}
	}
	return total, nil
}

// submit waits for the write in flight and starts writing the buffer
// filled, then fills the other one.
func (w *directWriter) submit() error {
	if err := w.wait(); err != nil {
		return err
	}
	buf, off := (*w.bufs[w.cur])[:w.n], w.off
	done := make(chan error, 1)
	go func() { done <- w.writeAt(buf, off) }()
	w.pending = done
	w.cur ^= 1
	w.off += int64(w.n)
	w.n = 0
	return nil
}

// wait waits for the write in flight, if any, and returns its error.
func (w *directWriter) wait() error {
	if w.pending == nil {
		return nil
	}
	err := <-w.pending
	w.pending = nil
	return err
}

// Flush writes what is buffered: its aligned part with O_DIRECT, the rest
// after clearing O_DIRECT, through the page cache; it returns once all of
// it is written and leaves the file's offset at its end. Writes after it
// go through the page cache too.
func (w *directWriter) Flush() error {
	if err := w.wait(); err != nil {
		return err
	}
	buf := (*w.bufs[w.cur])[:w.n]
	if w.direct {
		aligned := len(buf) &^ (directIOAlign - 1)
		if err := w.writeAt(buf[:aligned], w.off); err != nil {
			return err
		}
		buf = buf[aligned:]
		w.off += int64(aligned)
		if len(buf) > 0 && w.direct {
			if err := w.buffered(); err != nil {
				return err
			}
		}
	}
	if err := w.writeAt(buf, w.off); err != nil {
		return err
	}
	w.off += int64(len(buf))
	w.n = 0
	_, err := w.f.Seek(w.off, io.SeekStart)
	return err
}

// writeAt writes all of p at off, or returns an error.
func (w *directWriter) writeAt(p []byte, off int64) error {
	for len(p) > 0 {
		k, err := w.f.WriteAt(p, off)
		p, off = p[k:], off+int64(k)
		if err == nil {
			return nil
		}
		if !w.direct || !errors.Is(err, syscall.EINVAL) {
			return err
		}
		if err := w.buffered(); err != nil {
			return err
		}
	}
	return nil
}

// buffered clears O_DIRECT: what follows goes through the page cache.
func (w *directWriter) buffered() error {
	if err := setDirectIO(w.fd, false); err != nil {
		return &os.PathError{Op: "fcntl", Path: w.f.Name(), Err: err}
	}
	w.direct = false
	return nil
}

// release waits for the write in flight and gives the buffers back; the
// writer is not used again.
func (w *directWriter) release() {
	_ = w.wait()
	for i, b := range w.bufs {
		if b != nil {
			directBufs.Put(b)
			w.bufs[i] = nil
		}
	}
}
