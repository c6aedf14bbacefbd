package disk

import (
	"syscall"

	"github.com/zabkeeper/zabkeeper/internal/batchio"
)

// syncData makes a log segment's data durable. On Linux an os.File gets
// fdatasync, as ZooKeeper's FileChannel.force(false): the file's size is
// flushed when it changed (preallocation), its times are not. It goes
// through the log's io_uring Syncer where the kernel allows one, so the
// flush does not hold a thread and its P in a system call (which keeps
// Go's sysmon waking every 20 µs: batchio.Syncer), else straight to the
// kernel.
func (l *Log) syncData(f File) error {
	fd, ok := f.(interface{ Fd() uintptr })
	if !ok {
		return f.Sync()
	}
	l.syncerOnce.Do(func() {
		if s, err := batchio.NewSyncer(); err == nil {
			l.syncer = s
		} else {
			l.logger.Debug("disk: fsync without io_uring", "err", err)
		}
	})
	if l.syncer != nil {
		return l.syncer.Datasync(fd.Fd())
	}
	for {
		err := syscall.Fdatasync(int(fd.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}

// closeSyncer releases the log's Syncer; no fsync runs (Close holds syncMu
// and mu).
func (l *Log) closeSyncer() {
	if l.syncer != nil {
		_ = l.syncer.Close()
		l.syncer = nil
	}
}

// nextData returns the offset of the first byte at or after off that may
// hold data: holes (what preallocation leaves: ZooKeeper grows a file by
// writing its last byte) are skipped with lseek(SEEK_DATA). ok is false
// when nothing but holes follows. Files that cannot tell return off.
func nextData(f any, off int64) (next int64, ok bool) {
	fd, isFD := f.(interface{ Fd() uintptr })
	if !isFD {
		return off, true
	}
	const seekData = 3 // SEEK_DATA
	p, err := syscall.Seek(int(fd.Fd()), off, seekData)
	if err == syscall.ENXIO {
		return 0, false
	}
	if err != nil || p < off {
		return off, true
	}
	return p, true
}
