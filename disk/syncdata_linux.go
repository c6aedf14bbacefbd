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
