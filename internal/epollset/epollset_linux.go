//go:build linux

package epollset

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// New makes an epoll set: its descriptor (for epoll_ctl and Wait), its
// file (to close it, and to set deadlines on the wait; never call its Fd,
// which makes it blocking) and the file's RawConn (to wait in the
// netpoller).
func New() (fd int, file *os.File, raw syscall.RawConn, err error) {
	fd, err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return -1, nil, nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		_ = syscall.Close(fd)
		return -1, nil, nil, fmt.Errorf("epoll set non-blocking: %w", err)
	}
	file = os.NewFile(uintptr(fd), "epoll")
	raw, err = file.SyscallConn()
	if err != nil {
		_ = file.Close()
		return -1, nil, nil, fmt.Errorf("epoll set: %w", err)
	}
	return fd, file, raw, nil
}

// Wait is epoll_wait with a zero timeout as a raw system call: it never
// blocks, so it needs none of the runtime's entersyscall, which wakes
// sysmon when the process had gone idle. An interrupted wait returns 0.
func Wait(fd uintptr, events []syscall.EpollEvent) (int, error) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	switch errno {
	case 0:
		return int(n), nil
	case syscall.EINTR:
		return 0, nil
	}
	return 0, errno
}
