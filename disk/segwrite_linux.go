package disk

import (
	"io"
	"os"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// segmentWriter is what a segment's buffered writer writes to. For a real
// file on Linux it issues write(2) as a raw system call: an os.File's Write
// tells the Go scheduler it entered a system call, and a buffered write of
// a batch of records into the page cache takes 20-40 µs here, past one
// tick of the runtime's sysmon, which then retakes the writing thread's P,
// wakes another thread to run it and goes back to polling every 20 µs
// (a quarter of a standalone server's context switches under writes,
// BENCHMARKS.md "rawwrite"). The write copies into the page cache and does
// not wait for the disk (fdatasync does, through the Syncer); the cost is
// that this thread's P runs nothing else for the write's few microseconds.
// Other files (the fault-injecting and in-memory ones) are written as
// they are.
func segmentWriter(f File) io.Writer {
	of, ok := f.(*os.File)
	if !ok {
		return f
	}
	return &rawFileWriter{f: of, fd: of.Fd()}
}

// rawFileWriter writes to f's descriptor at its file offset, as f.Write
// does, with raw write(2) calls. The Log keeps f open while it writes
// (every write and every close of a segment happens under Log.mu, or after
// its last flush).
type rawFileWriter struct {
	f  *os.File
	fd uintptr
}

func (w *rawFileWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, w.fd, uintptr(unsafe.Pointer(&p[n])), uintptr(len(p)-n))
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			runtime.KeepAlive(w.f)
			return n, &os.PathError{Op: "write", Path: w.f.Name(), Err: errno}
		}
		if k == 0 {
			runtime.KeepAlive(w.f)
			return n, &os.PathError{Op: "write", Path: w.f.Name(), Err: io.ErrShortWrite}
		}
		n += int(k)
	}
	runtime.KeepAlive(w.f)
	return n, nil
}

// startWriteback asks the kernel to start writing f's bytes [off, off+n)
// to the disk without waiting (sync_file_range SYNC_FILE_RANGE_WRITE): the
// zeros written ahead of the records are on their way before the next
// fdatasync, which would otherwise carry them. Best effort: a failure
// shows at that fdatasync.
func startWriteback(f File, off, n int64) {
	if of, ok := f.(*os.File); ok {
		_ = unix.SyncFileRange(int(of.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
	}
}
