package loadgen

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/zabkeeper/zabkeeper/internal/batchio"
)

// A leanDriver runs the closed loops of a share of a run's lean sessions
// on one goroutine, from a level-triggered epoll set of their sockets, as
// the server's connection poller reads its connections
// (server/poller_linux.go).
//
// A goroutine per session costs, per request, a write, a read that finds
// nothing yet (EAGAIN), a park and a wake-up through Go's netpoller, and
// the read of the reply: about 20 µs of CPU on this project's 2-core
// machine, where a system call costs about 1 µs (kernel page-table
// isolation), more than the server spends answering a get. The driver
// waits for all its sessions at once, reads a socket only when epoll says
// it has bytes, and sends the next requests of every session answered in a
// turn together: the waits are shared, and a read and a send per request
// remain. The epoll set's own descriptor is polled by Go's netpoller, so
// the driver parks like any goroutine while its requests are outstanding.
//
// The workload is the same as with a goroutine per session: each session
// has one request outstanding, its next one sent once its reply is in, and
// a request's latency runs from just before its send (the turn's clock
// before its sends) to its reply being read (the turn's clock after its
// reads).
type leanDriver struct {
	r    *runner
	sess []*leanSess // by token, the index in the epoll events
	fds  []int       // the sessions' sockets, by token
	rcs  []syscall.RawConn
	// io sends and receives a turn's batch with one system call each
	// (io_uring) where the kernel allows it.
	io *batchio.Batcher
	// out marks the sessions whose socket is watched for room to send
	// (a short send's rest is pending).
	out []bool
	// dropped marks the sessions taken out of the epoll set (failed).
	dropped []bool

	epfd int             // the epoll set
	ep   *os.File        // epfd's file (never its Fd, which blocks it)
	raw  syscall.RawConn // ep's, to wait for it in Go's netpoller
	// deadline is ep's read deadline, set while sessions are paused.
	deadline time.Time

	events []syscall.EpollEvent
	nev    int
	werr   error
	// waitFn polls the epoll set without blocking: made once, so a wait
	// allocates no closure.
	waitFn func(fd uintptr) bool

	// The turn's work, reused: sessions due to send their next request,
	// with a short send's rest to finish, paused after a server error;
	// the I/O of the turn and whose it is.
	due, flush, paused []int
	recv, send         []batchio.Op
	recvOf, sendOf     []int
	inflight           int // sessions with a request outstanding
}

// startLeanDrivers runs the closed loops of the run's lean sessions on
// GOMAXPROCS event loops and returns true, or returns false (nothing
// started) where they cannot run: over TLS, or without the sockets' raw
// descriptors or an epoll set; the sessions then run on their own
// goroutines.
func (r *runner) startLeanDrivers(wg *sync.WaitGroup) bool {
	if r.cfg.TLS != nil || len(r.workers) == 0 || r.noLeanLoops {
		return false
	}
	fds := make([]int, len(r.workers))
	rcs := make([]syscall.RawConn, len(r.workers))
	for i, w := range r.workers {
		if w.lean == nil {
			return false
		}
		tc, ok := w.lean.nc.(*net.TCPConn)
		if !ok {
			return false
		}
		rc, err := tc.SyscallConn()
		if err != nil {
			return false
		}
		rcs[i] = rc
		// The descriptor is used without the conn's lock: the conn stays
		// open until the drivers are done (closeAll runs after drive).
		if err := rc.Control(func(fd uintptr) { fds[i] = int(fd) }); err != nil {
			return false
		}
	}
	n := min(max(1, runtime.GOMAXPROCS(0)), len(r.workers))
	drivers := make([]*leanDriver, 0, n)
	for range n {
		d, err := newLeanDriver(r)
		if err != nil {
			r.cfg.Logger.Warn("loadgen: lean event loop unavailable; a goroutine per session", "err", err)
			for _, d := range drivers {
				d.close()
			}
			return false
		}
		drivers = append(drivers, d)
	}
	for i, w := range r.workers {
		d := drivers[i%n]
		if err := d.add(newLeanSess(r, w), fds[i], rcs[i]); err != nil {
			r.cfg.Logger.Warn("loadgen: lean event loop unavailable; a goroutine per session", "err", err)
			for _, d := range drivers {
				d.close()
			}
			return false
		}
	}
	r.leanLoops = n
	for _, d := range drivers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer d.close()
			d.run()
		}()
	}
	return true
}

func newLeanDriver(r *runner) (*leanDriver, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		_ = syscall.Close(fd)
		return nil, fmt.Errorf("epoll set non-blocking: %w", err)
	}
	ep := os.NewFile(uintptr(fd), "epoll")
	raw, err := ep.SyscallConn()
	if err != nil {
		_ = ep.Close()
		return nil, fmt.Errorf("epoll set: %w", err)
	}
	d := &leanDriver{r: r, epfd: fd, ep: ep, raw: raw, io: batchio.New()}
	d.waitFn = func(fd uintptr) bool {
		d.poll()
		return d.nev > 0 || d.werr != nil
	}
	return d, nil
}

// add gives the driver session s on socket fd (rc's).
func (d *leanDriver) add(s *leanSess, fd int, rc syscall.RawConn) error {
	t := len(d.sess)
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(t)}
	if err := syscall.EpollCtl(d.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl add: %w", err)
	}
	d.sess = append(d.sess, s)
	d.fds = append(d.fds, fd)
	d.rcs = append(d.rcs, rc)
	d.out = append(d.out, false)
	d.dropped = append(d.dropped, false)
	d.events = append(d.events, syscall.EpollEvent{})
	return nil
}

// close takes the sockets out of the epoll set (they go back to their
// goroutine-driven conns, to close their sessions) and closes it.
func (d *leanDriver) close() {
	for t := range d.sess {
		d.drop(t)
	}
	_ = d.ep.Close()
	_ = d.io.Close()
}

// drop takes session t's socket out of the epoll set.
func (d *leanDriver) drop(t int) {
	if !d.dropped[t] {
		d.dropped[t] = true
		_ = syscall.EpollCtl(d.epfd, syscall.EPOLL_CTL_DEL, d.fds[t], nil)
	}
}

// run drives the sessions until the run has ended and no request of
// theirs is outstanding.
func (d *leanDriver) run() {
	now := time.Now()
	for t, s := range d.sess {
		if len(s.in) > 0 { // read ahead with the handshake
			if _, err := s.received(now); err != nil {
				d.drop(t)
				continue
			}
		}
		d.due = append(d.due, t)
	}
	for {
		d.sendTurn()
		if d.inflight == 0 && (len(d.paused) == 0 || d.r.stopped()) {
			return
		}
		if !d.wait() {
			return
		}
		d.readTurn()
	}
}

// sendTurn finishes the short sends epoll found room for and sends the
// next request of every session due, all at once.
func (d *leanDriver) sendTurn() {
	d.send, d.sendOf = d.send[:0], d.sendOf[:0]
	for _, t := range d.flush {
		if s := d.sess[t]; len(s.pending) > 0 {
			d.send = append(d.send, batchio.Op{Conn: d.rcs[t], Buf: s.pending})
			d.sendOf = append(d.sendOf, t)
		}
	}
	d.flush = d.flush[:0]
	fresh := len(d.send)
	for _, t := range d.due {
		if s := d.sess[t]; !d.dropped[t] && s.next() {
			d.inflight++
			d.send = append(d.send, batchio.Op{Conn: d.rcs[t], Buf: s.pending})
			d.sendOf = append(d.sendOf, t)
		}
	}
	d.due = d.due[:0]
	if len(d.send) == 0 {
		return
	}
	start := time.Now()
	for _, t := range d.sendOf[fresh:] {
		d.sess[t].start = start
	}
	d.io.Send(d.send)
	for i := range d.send {
		op, t := &d.send[i], d.sendOf[i]
		s := d.sess[t]
		if op.Err != nil {
			_ = s.fail(time.Now(), fmt.Errorf("loadgen: lean client: write: %w", opError("write", s, op.Err)))
			d.drop(t)
			continue
		}
		s.pending = s.pending[op.N:]
		want := len(s.pending) > 0
		if !want {
			s.pending = nil
		}
		if want != d.out[t] {
			// Watch for room to send the rest, or stop watching.
			events := uint32(syscall.EPOLLIN | syscall.EPOLLRDHUP)
			if want {
				events |= syscall.EPOLLOUT
			}
			ev := syscall.EpollEvent{Events: events, Fd: int32(t)}
			if err := syscall.EpollCtl(d.epfd, syscall.EPOLL_CTL_MOD, d.fds[t], &ev); err != nil {
				_ = s.fail(time.Now(), fmt.Errorf("loadgen: lean client: write: epoll_ctl: %w", err))
				d.drop(t)
				continue
			}
			d.out[t] = want
			if want {
				d.r.leanShortSends.Add(1)
			}
		}
	}
}

// wait waits for ready sockets, or for the first paused session's time,
// and makes the paused sessions whose time has come due.
func (d *leanDriver) wait() bool {
	d.nev, d.werr = 0, nil
	if len(d.paused) > 0 {
		first := d.sess[d.paused[0]].resumeAt
		for _, t := range d.paused[1:] {
			if at := d.sess[t].resumeAt; at.Before(first) {
				first = at
			}
		}
		if now := time.Now(); !first.After(now) {
			d.poll() // a paused session is due: no wait
			d.resume(now)
			return d.ok(nil)
		}
		if !first.Equal(d.deadline) {
			d.deadline = first
			_ = d.ep.SetReadDeadline(first)
		}
	} else if !d.deadline.IsZero() {
		d.deadline = time.Time{}
		_ = d.ep.SetReadDeadline(time.Time{})
	}
	err := d.raw.Read(d.waitFn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// An expired deadline fails every wait until it is moved.
		d.deadline = time.Time{}
		_ = d.ep.SetReadDeadline(time.Time{})
		d.resume(time.Now())
		return true
	}
	return d.ok(err)
}

// ok ends the run if waiting failed (err, or epoll_wait's error).
func (d *leanDriver) ok(err error) bool {
	if err == nil {
		err = d.werr
	}
	if err != nil {
		d.r.fail(fmt.Errorf("loadgen: lean event loop: epoll_wait: %w", err))
		return false
	}
	return true
}

// poll is one epoll_wait that does not block.
func (d *leanDriver) poll() {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(d.epfd),
		uintptr(unsafe.Pointer(&d.events[0])), uintptr(len(d.events)), 0, 0, 0)
	switch errno {
	case 0:
		d.nev = int(n)
	case syscall.EINTR:
		d.nev = 0
	default:
		d.nev, d.werr = 0, errno
	}
}

// resume makes the paused sessions whose time has come by now due.
func (d *leanDriver) resume(now time.Time) {
	kept := d.paused[:0]
	for _, t := range d.paused {
		if s := d.sess[t]; !s.resumeAt.After(now) {
			s.resumeAt = time.Time{}
			d.due = append(d.due, t)
		} else {
			kept = append(kept, t)
		}
	}
	d.paused = kept
}

// readTurn reads every socket epoll reported, handles the replies and
// makes their sessions due (or paused, after a server error).
func (d *leanDriver) readTurn() {
	d.recv, d.recvOf = d.recv[:0], d.recvOf[:0]
	for i := range d.nev {
		ev := &d.events[i]
		t := int(ev.Fd)
		if d.dropped[t] {
			continue
		}
		s := d.sess[t]
		if ev.Events&syscall.EPOLLOUT != 0 && len(s.pending) > 0 {
			d.flush = append(d.flush, t)
		}
		if ev.Events&(syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLERR|syscall.EPOLLHUP) == 0 {
			continue
		}
		if len(s.in) == cap(s.in) {
			s.in = append(s.in, make([]byte, cap(s.in))...)[:len(s.in)]
		}
		d.recv = append(d.recv, batchio.Op{Conn: d.rcs[t], Buf: s.in[len(s.in):cap(s.in)]})
		d.recvOf = append(d.recvOf, t)
	}
	if len(d.recv) == 0 {
		return
	}
	d.io.Recv(d.recv)
	now := time.Now()
	for i := range d.recv {
		op, t := &d.recv[i], d.recvOf[i]
		s := d.sess[t]
		busy := s.busy
		var err error
		switch {
		case op.Err == syscall.EAGAIN:
			continue
		case op.Err != nil:
			err = s.fail(now, fmt.Errorf("loadgen: lean client: read: %w", opError("read", s, op.Err)))
		case op.N == 0:
			err = s.fail(now, s.eof())
		default:
			s.in = s.in[:len(s.in)+op.N]
			var answered bool
			if answered, err = s.received(now); answered && err == nil {
				if s.resumeAt.IsZero() {
					d.due = append(d.due, t)
				} else {
					d.paused = append(d.paused, t)
				}
			}
		}
		if busy && !s.busy {
			d.inflight--
		}
		if err != nil { // counted by the session's fail
			d.drop(t)
		}
	}
}

// opError is a failed read or write as the net package reports it on the
// session's conn.
func opError(op string, s *leanSess, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: s.c.nc.LocalAddr(), Addr: s.c.nc.RemoteAddr(),
		Err: os.NewSyscallError(op, err)}
}
