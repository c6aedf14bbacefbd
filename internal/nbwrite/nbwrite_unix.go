//go:build unix

package nbwrite

import (
	"syscall"
	"unsafe"
)

// Supported tells whether Write can write without blocking here.
const Supported = true

// WriteFD writes b on a non-blocking socket until it would block. The write
// is a raw system call, without the runtime's entersyscall/exitsyscall: it
// never blocks, and a P marked in a system call lets sysmon retake it and
// keeps sysmon waking every 20 µs (BENCHMARKS.md, getpath).
func WriteFD(fd uintptr, b []byte) (n int, err error) {
	for n < len(b) {
		k, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[n])), uintptr(len(b)-n))
		switch errno {
		case 0:
			n += int(k)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return n, nil
		default:
			return n, errno
		}
	}
	return n, nil
}
