//go:build !unix

package rawread

import "syscall"

const supported = false

func readFD(uintptr, []byte) (int, syscall.Errno) { return 0, syscall.ENOSYS }
