// Package nbwrite writes on a TCP socket from the caller's goroutine without
// ever blocking: a goroutine that must not wait on a slow peer (the server's
// event loop) writes a frame itself when nothing else is writing on that
// socket, instead of waking the connection's writer goroutine, and hands the
// writer only what the socket's buffer did not take.
package nbwrite

import (
	"net"
	"syscall"
)

// Raw returns the socket of c for Write: nil unless c is a plain TCP
// connection (not TLS) on a platform with non-blocking writes.
func Raw(c net.Conn) syscall.RawConn {
	tc, ok := c.(*net.TCPConn)
	if !ok || !Supported {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// Write writes as much of b on raw as the socket takes now and returns how
// many bytes that was; it never waits for the socket to drain. err is a
// failed write (not "would block") or a closed socket. The caller must be
// the only writer of the socket meanwhile.
func Write(raw syscall.RawConn, b []byte) (n int, err error) {
	var werr error
	err = raw.Write(func(fd uintptr) bool {
		n, werr = writeFD(fd, b)
		return true // never wait for the socket to drain
	})
	if err == nil {
		err = werr
	}
	return n, err
}
