//go:build unix

package batchio

import (
	"syscall"
	"unsafe"
)

// sendFD writes b on a non-blocking socket until it would block, with raw
// system calls (they never block, so the P is never handed off).
func sendFD(fd uintptr, b []byte) (n int, err error) {
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

// recvFD reads once from a non-blocking socket into b.
func recvFD(fd uintptr, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, syscall.EINVAL
	}
	for {
		k, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		switch errno {
		case 0:
			return int(k), nil
		case syscall.EINTR:
		default:
			return 0, errno
		}
	}
}
