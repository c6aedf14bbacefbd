//go:build unix

package batchio

import (
	"syscall"
	"unsafe"

	"github.com/zabkeeper/zabkeeper/internal/nbwrite"
)

// sendFD writes b on a non-blocking socket until it would block
// (nbwrite.WriteFD: raw system calls, which never block).
func sendFD(fd uintptr, b []byte) (int, error) { return nbwrite.WriteFD(fd, b) }

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
