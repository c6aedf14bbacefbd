// Package rawread reads a plain TCP socket with raw read system calls,
// waiting in Go's netpoller only when nothing is there.
//
// net.Conn's Read enters the system call through the runtime's
// entersyscall, and an entersyscall while the process had gone idle wakes
// sysmon from its deep sleep with the bet that it will soon need to retake
// a P from a long system call: it then wakes every 20 µs for a millisecond
// or more. A server that goes idle between every few packets (a ZAB peer
// link on a quiet or a 1-P server) keeps sysmon at that pace: 13-14% of a
// server's CPU in a 3-server write benchmark (BENCHMARKS.md, batchio). A
// read of a non-blocking socket never blocks, so it needs none of that.
package rawread

import (
	"io"
	"net"
	"os"
	"syscall"
)

// Reader reads a socket as its net.Conn would, deadlines included (set
// them on the conn), without entersyscall. One goroutine at a time.
type Reader struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool // made once: a closure per Read would allocate
	p   []byte
	n   int
	err error
}

// New returns a Reader of c, or c itself when c is not a plain TCP
// connection (TLS, a pipe in tests) or the platform has no raw reads.
func New(c net.Conn) io.Reader {
	tc, ok := c.(*net.TCPConn)
	if !ok || !supported {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	r := &Reader{rc: rc}
	r.fn = r.read
	return r
}

// Read reads what the socket holds into p, waiting (in the netpoller, up
// to the conn's read deadline) only while it holds nothing.
func (r *Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.p, r.n, r.err = p, 0, nil
	err := r.rc.Read(r.fn)
	n, rerr := r.n, r.err
	r.p, r.err = nil, nil
	if err != nil {
		return 0, err // closed, or the deadline passed
	}
	return n, rerr
}

// read is one attempt: true when it has an answer (bytes, the end of the
// stream, an error), false to wait for the socket.
func (r *Reader) read(fd uintptr) bool {
	for {
		n, errno := readFD(fd, r.p)
		switch errno {
		case 0:
			r.n = n
			if n == 0 {
				r.err = io.EOF
			}
			return true
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			r.err = &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", errno)}
			return true
		}
	}
}
