//go:build unix

package nbwrite

import "syscall"

// Supported tells whether Write can write without blocking here.
const Supported = true

func writeFD(fd uintptr, b []byte) (n int, err error) {
	for n < len(b) {
		k, err := syscall.Write(int(fd), b[n:])
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n += k
	}
	return n, nil
}
