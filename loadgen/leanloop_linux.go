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

	"github.com/go-zookeeper/zk"

	"github.com/zabkeeper/zabkeeper/internal/batchio"
	"github.com/zabkeeper/zabkeeper/internal/epollset"
	"github.com/zabkeeper/zabkeeper/proto"
)

// A leanDriver runs the closed loops of a share of a run's lean sessions
// (in the watch workload: all of them, writer and watchers) on one
// goroutine, from a level-triggered epoll set of their sockets, as the
// server's connection poller reads its connections (server/poller_linux.go).
//
// A goroutine per session costs, per request, a write, a read that finds
// nothing yet (EAGAIN), a park and a wake-up through Go's netpoller, and
// the read of the reply: about 20 µs of CPU on this project's 2-core
// machine, where a system call costs about 1 µs (kernel page-table
// isolation), more than the server spends answering a get. The driver
// waits for all its sessions at once, reads a socket only when epoll says
// it has bytes, and sends the next requests of every session answered in a
// turn together: the waits are shared, and a read and a send per request
// remain, and each turn's reads and sends go to the kernel as one batch
// each (internal/batchio: one io_uring_enter). The epoll set's own
// descriptor is polled by Go's netpoller, so the driver parks like any
// goroutine while its requests are outstanding.
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
	// deadline is ep's read deadline, set while sessions are paused or a
	// round's alarm runs.
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

	// fan is the watch workload's round, nil in the closed loops.
	fan *leanFan
	// alarm, when not zero, is the fan-out round's timeout.
	alarm time.Time
	// wake is an eventfd in the epoll set (token wakeToken) that the run's
	// end makes readable, for a loop with nothing outstanding (a round
	// awaiting its notifications); -1 when there is none.
	wake int
	done chan struct{} // closed when the loop with a wake eventfd is gone
}

// wakeToken is the wake eventfd's token in the epoll set.
const wakeToken = -1

// startLeanDrivers runs the closed loops of the run's lean sessions on
// GOMAXPROCS/2 event loops (the watch workload on one) and returns true, or returns false (nothing
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
	// Half the Ps: the load generator shares the machine with the servers
	// it drives, and fewer loops have more sessions each, so a turn reads
	// more replies per wait (2 cores, 64 sessions, against the batching
	// server: one loop spent 4.4-7.3 µs per request where two spent
	// 5.2-8.5; BENCHMARKS.md, leanloop).
	n := min(max(1, runtime.GOMAXPROCS(0)/2), len(r.workers))
	fan := r.cfg.Workload == WatchFanout
	if fan {
		n = 1 // a round's state is one loop's
	}
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
		ls := newLeanSess(r, w)
		if fan {
			ls.role, ls.counts = fmt.Sprintf("watcher %d", w.id), false
			if i == 0 {
				ls.role, ls.counts = "writer", true
			}
		}
		if err := d.add(ls, fds[i], rcs[i]); err != nil {
			r.cfg.Logger.Warn("loadgen: lean event loop unavailable; a goroutine per session", "err", err)
			for _, d := range drivers {
				d.close()
			}
			return false
		}
	}
	if fan {
		d := drivers[0]
		if err := d.addWake(); err != nil {
			r.cfg.Logger.Warn("loadgen: lean event loop unavailable; a goroutine per session", "err", err)
			d.close()
			return false
		}
		d.fan = &leanFan{watchers: len(r.workers) - 1, path: r.fanPath()}
		d.done = make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-r.stop
			d.signal()
			<-d.done
			_ = syscall.Close(d.wake) // only once the loop is gone
		}()
	}
	r.leanLoops = n
	for _, d := range drivers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.run()
			d.close()
			if d.done != nil {
				close(d.done)
			}
		}()
	}
	return true
}

func newLeanDriver(r *runner) (*leanDriver, error) {
	fd, ep, raw, err := epollset.New()
	if err != nil {
		return nil, err
	}
	d := &leanDriver{r: r, epfd: fd, ep: ep, raw: raw, io: batchio.New(), wake: -1}
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
	d.events = append(d.events, syscall.EpollEvent{}, syscall.EpollEvent{}) // and one for the wake eventfd
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

// addWake adds the wake eventfd to the epoll set.
func (d *leanDriver) addWake() error {
	fd, _, errno := syscall.RawSyscall(syscall.SYS_EVENTFD2, 0, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errno != 0 {
		return fmt.Errorf("eventfd: %w", errno)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: wakeToken}
	if err := syscall.EpollCtl(d.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev); err != nil {
		_ = syscall.Close(int(fd))
		return fmt.Errorf("epoll_ctl add eventfd: %w", err)
	}
	d.wake = int(fd)
	return nil
}

// signal makes the wake eventfd readable.
func (d *leanDriver) signal() {
	one := [8]byte{1}
	_, _ = syscall.Write(d.wake, one[:])
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
			if _, _, err := s.received(now); err != nil {
				d.drop(t)
				continue
			}
		}
		if d.fan == nil || t > 0 {
			d.due = append(d.due, t) // (the writer waits for the watches)
		}
	}
	if d.fan != nil {
		d.alarm = now.Add(d.r.fanRoundTimeout())
	}
	for {
		d.sendTurn()
		if d.fan != nil {
			if d.r.stopped() && d.inflight == 0 {
				return
			}
		} else if d.inflight == 0 && (len(d.paused) == 0 || d.r.stopped()) {
			return
		}
		if !d.wait() {
			return
		}
		d.readTurn()
		if d.fan != nil && !d.alarm.IsZero() && !time.Now().Before(d.alarm) {
			d.fan.timedOut(d)
			return
		}
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
		if s := d.sess[t]; !d.dropped[t] && d.next(t, s) {
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
			d.failed(t, fmt.Errorf("loadgen: lean client: write: %w", opError("write", s, op.Err)))
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
				d.failed(t, fmt.Errorf("loadgen: lean client: write: epoll_ctl: %w", err))
				continue
			}
			d.out[t] = want
			if want {
				d.r.leanShortSends.Add(1)
			}
		}
	}
}

// failed ends session t, whose request is outstanding, on a failed send:
// counted as the session's fail counts it, and no longer in flight.
func (d *leanDriver) failed(t int, err error) {
	s := d.sess[t]
	if s.busy {
		d.inflight--
	}
	_ = s.fail(time.Now(), err)
	d.drop(t)
}

// wait waits for ready sockets, or for the first paused session's time
// or the alarm, and makes the paused sessions whose time has come due.
func (d *leanDriver) wait() bool {
	d.nev, d.werr = 0, nil
	if len(d.paused) > 0 || !d.alarm.IsZero() {
		first := d.alarm
		for _, t := range d.paused {
			if at := d.sess[t].resumeAt; first.IsZero() || at.Before(first) {
				first = at
			}
		}
		if now := time.Now(); !first.After(now) {
			d.poll() // a paused session (or the alarm) is due: no wait
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
	d.nev, d.werr = epollset.Wait(uintptr(d.epfd), d.events)
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
		if t == wakeToken {
			// The run has ended: the loop sees it; stop watching the
			// eventfd, which stays readable.
			_ = syscall.EpollCtl(d.epfd, syscall.EPOLL_CTL_DEL, d.wake, nil)
			continue
		}
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
			var result error
			answered, result, err = s.received(now)
			switch {
			case err != nil:
			case d.fan != nil:
				err = d.fan.received(d, t, s, answered, result, now)
			case answered:
				s.answer(now, result)
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
	if d.fan != nil {
		d.fan.advance(d, now)
	}
}

// next begins session t's next request: its closed loop's, or in the watch
// workload the watch or the write its round is due for.
func (d *leanDriver) next(t int, s *leanSess) bool {
	if d.fan != nil {
		return d.fan.next(d, t, s)
	}
	return s.next()
}

// opError is a failed read or write as the net package reports it on the
// session's conn.
func opError(op string, s *leanSess, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: s.c.nc.LocalAddr(), Addr: s.c.nc.RemoteAddr(),
		Err: os.NewSyscallError(op, err)}
}

// leanFan is the watch workload's round on an event loop: session 0 is the
// writer, the others the watchers. As with a goroutine per session
// (startFanout): every watcher sets its watch (a getData with a watch);
// once all are set the writer sets the znode; the round's latency runs from
// just before that write until the last watcher has its notification (the
// loop's clock after the read that brought it); and only once the round is
// over (the write answered too) do the watchers set their next watch.
type leanFan struct {
	watchers int
	path     string
	armed    int  // watchers whose watch of this round is set
	writing  bool // the round's write was sent: notifications count
	written  bool // and answered
	notified int
	last     time.Time // when the last notification so far was read
}

// next begins session t's request: a watcher's watch, or the round's write.
func (f *leanFan) next(d *leanDriver, t int, s *leanSess) bool {
	r := d.r
	if t > 0 {
		if r.stopped() {
			s.idle = true
			return false
		}
		s.request(proto.OpGetData, f.path, true)
		return true
	}
	if f.writing {
		return false // queued twice (resumed after a failed write, and by advance)
	}
	goOn, measured := r.begin()
	if !goOn {
		s.idle = true
		return false
	}
	s.request(proto.OpSetData, f.path, false)
	s.measured = measured
	f.writing, f.written, f.notified = true, false, 0
	d.alarm = time.Time{}
	return true
}

// received handles what session t read by now: its request's answer (if
// answered, with result) and the notifications it holds.
func (f *leanFan) received(d *leanDriver, t int, s *leanSess, answered bool, result error, now time.Time) error {
	r := d.r
	if t == 0 {
		s.c.events = s.c.events[:0] // the writer watches nothing
		if !answered {
			return nil
		}
		if result != nil {
			// No notification will come: the watches stay set, and the
			// writer writes again after the pause.
			r.account(s.w, s.measured, now.Sub(s.start), result)
			f.writing = false
			s.resumeAt = now.Add(errorPause)
			d.paused = append(d.paused, t)
			return nil
		}
		f.written = true
		d.alarm = now.Add(r.fanRoundTimeout())
		return nil
	}
	for _, ev := range s.c.events {
		if ev.Type != int32(zk.EventNodeDataChanged) {
			err := fmt.Errorf("loadgen: watcher %d: unexpected event %v", s.w.id, zk.EventType(ev.Type))
			r.fail(err)
			s.busy, s.idle = false, true
			return err
		}
		if f.writing {
			f.notified++
			f.last = now
		}
	}
	s.c.events = s.c.events[:0]
	if answered {
		if result != nil {
			r.failed.Add(1)
			s.resumeAt = now.Add(errorPause)
			d.paused = append(d.paused, t)
		} else {
			f.armed++
		}
	}
	return nil
}

// advance starts the round's write once every watch is set, and ends the
// round once every watcher is notified and the write answered.
func (f *leanFan) advance(d *leanDriver, now time.Time) {
	r := d.r
	if !f.writing && f.armed == f.watchers && !d.sess[0].busy && d.sess[0].resumeAt.IsZero() {
		d.due = append(d.due, 0)
		return
	}
	if !f.writing || !f.written || f.notified < f.watchers {
		return
	}
	r.total.Add(1)
	if w := d.sess[0]; w.measured {
		w.w.record(f.last.Sub(w.start))
		r.complete()
	}
	f.writing, f.written, f.notified, f.armed = false, false, 0, 0
	d.alarm = now.Add(r.fanRoundTimeout())
	for t := 1; t < len(d.sess); t++ {
		d.due = append(d.due, t)
	}
}

// timedOut ends the run: a round's watches or notifications did not all
// come within the round's timeout.
func (f *leanFan) timedOut(d *leanDriver) {
	n, what := f.armed, "set their watch"
	if f.writing {
		n, what = f.notified, "were notified"
	}
	d.r.fail(fmt.Errorf("loadgen: watch fan-out: only %d of %d watchers %s within %v", n, f.watchers, what, d.r.fanRoundTimeout()))
}
