//go:build unix

package zktcp

import "syscall"

// writeNonblock writes b on the non-blocking socket fd, as much as it takes
// now: n bytes, and an error other than "would block".
func writeNonblock(fd uintptr, b []byte) (n int, err error) {
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

// directWrites tells whether trySendLocked may write from the sender.
const directWrites = true
