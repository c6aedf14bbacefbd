package disk

import "syscall"

// syncData makes a log segment's data durable. On Linux an os.File gets
// fdatasync, as ZooKeeper's FileChannel.force(false): the file's size is
// flushed when it changed (preallocation), its times are not.
func syncData(f File) error {
	if fd, ok := f.(interface{ Fd() uintptr }); ok {
		for {
			err := syscall.Fdatasync(int(fd.Fd()))
			if err != syscall.EINTR {
				return err
			}
		}
	}
	return f.Sync()
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
