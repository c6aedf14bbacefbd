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
// the only writer of the socket meanwhile. It allocates a closure per call;
// a Writer does not.
func Write(raw syscall.RawConn, b []byte) (n int, err error) {
	var w Writer
	return w.Write(raw, b)
}

// Writer is Write without an allocation per call, for a socket written
// often: it keeps the function raw.Write calls, made once. The zero value
// is ready; one goroutine at a time may use it (whoever owns the socket's
// write side).
type Writer struct {
	fn   func(fd uintptr) bool
	b    []byte
	n    int
	werr error
}

// Write is the package's Write.
func (w *Writer) Write(raw syscall.RawConn, b []byte) (n int, err error) {
	if w.fn == nil {
		w.fn = w.write
	}
	w.b, w.n, w.werr = b, 0, nil
	err = raw.Write(w.fn)
	n, werr := w.n, w.werr
	w.b, w.werr = nil, nil // keep neither the frame nor the error alive
	if err == nil {
		err = werr
	}
	return n, err
}

func (w *Writer) write(fd uintptr) bool {
	w.n, w.werr = WriteFD(fd, w.b)
	return true // never wait for the socket to drain
}
