package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/zabkeeper/zabkeeper/internal/batchio"
	"github.com/zabkeeper/zabkeeper/internal/epollset"
	"github.com/zabkeeper/zabkeeper/proto"
)

// A poller reads the request frames of many plain-TCP connections on one
// goroutine, from a level-triggered epoll set of their sockets.
//
// A reader goroutine per connection costs, per request with one request
// outstanding (what a ZooKeeper client does most), a read that finds the
// frame, a second read that finds nothing (EAGAIN), and a park and wake-up
// through Go's netpoller. The poller reads a socket only when epoll says it
// has bytes, and waits for all its connections at once: one read per
// request, and the waits shared. The epoll set's own descriptor is polled by
// Go's netpoller, so the poller parks like any goroutine when all its
// connections are quiet.
//
// A connection goes to a poller once its session is established (before, its
// reader goroutine reads the handshake and four-letter words) and only over
// plain TCP (TLS reads stay on the goroutine, which owns the TLS state).
// Each connection's frames are still handled one after another, in order, by
// the same code (intake.frame). A turn reads all the sockets epoll reported
// in one batch and writes the replies it answered itself in another
// (internal/batchio: one io_uring_enter each instead of a read and a write
// per request; a system call costs ~1 µs before any work on the machines we
// measure), each send non-blocking, the rest left to the connection's
// writer goroutine, so a client that does not read never holds the poller.
// The connection's reader goroutine waits for the poller to give the
// connection back, ended, and then closes it as it would have.
type poller struct {
	s    *Server
	epfd int             // the epoll set
	ep   *os.File        // epfd's file (never its Fd, which blocks it)
	raw  syscall.RawConn // ep's, to wait for it in Go's netpoller

	mu    sync.Mutex
	conns map[uint64]*polled // by token, the connection's id

	// Used by run's goroutine only: bb receives the turn's sockets in one
	// batch and batch writes the replies the turn answered, in one more
	// (internal/batchio: a system call costs ~1 µs before any work here).
	bb    *batchio.Batcher
	turn  []turnConn
	recv  []batchio.Op
	batch sendBatch
}

// turnConn is a connection epoll reported ready in this turn.
type turnConn struct {
	t  uint64
	pc *polled
}

// polled is one connection a poller reads.
type polled struct {
	c  *clientConn
	rc syscall.RawConn // the socket's
	in *intake
	// buf holds bytes read and not yet handled, from buf[0].
	buf []byte
	// lastRead is when bytes last came; with the session timeout, it
	// closes a silent connection as the goroutine's read deadline does.
	lastRead time.Time
	// done receives why the connection ended, once, and ends its serve.
	done chan error
	// mu is held while the poller handles the connection's bytes, and by
	// remove, so nothing of the connection reaches the loop after its
	// reader goroutine returned.
	mu   sync.Mutex
	gone bool
}

// pollerSweep is how often at most the poller looks for connections silent
// past their session timeout (the goroutine's deadline fires up to an eighth
// of the timeout late; this adds up to pollerSweep).
const pollerSweep = 100 * time.Millisecond

// startProcs is GOMAXPROCS as the process started: the number of pollers.
// The server's command lowers GOMAXPROCS while the load is light
// (cmd/zabkeeper/procs.go); the pollers are made once, for the most Ps.
var startProcs = runtime.GOMAXPROCS(0)

// pollerMaxEvents is how many ready sockets one epoll_wait returns at most.
const pollerMaxEvents = 128

// pollerFor returns the poller that is to read c's frames, nil when c is
// read by its goroutine: over TLS, without a raw socket, with the poller
// switched off, or with oidc issuers configured (checking a token may fetch
// a key set, which must not hold up other connections' requests).
func (s *Server) pollerFor(c *clientConn) *poller {
	if s.noPoller.Load() || s.cfg.NoConnectionPoller || s.oidc != nil || c.rw != c.nc {
		return nil
	}
	c.mu.Lock()
	raw := c.raw
	c.mu.Unlock()
	if raw == nil {
		return nil
	}
	s.pollerOnce.Do(func() {
		// One per P: a single poller answering every connection's reads
		// serializes them (on 2 cores, 64 sessions of gets: 46k ops/s
		// with one poller, 55-60k with two, 45-49k with a goroutine per
		// connection; BENCHMARKS.md, readpath).
		n := max(1, startProcs)
		for range n {
			p, err := newPoller(s)
			if err != nil {
				s.log.Warn("connection poller unavailable; each connection is read by its own goroutine", "err", err)
				s.pollers = nil
				return
			}
			s.pollers = append(s.pollers, p)
			s.background(p.run)
		}
	})
	if len(s.pollers) == 0 {
		return nil
	}
	return s.pollers[uint64(c.id)%uint64(len(s.pollers))]
}

func newPoller(s *Server) (*poller, error) {
	fd, ep, raw, err := epollset.New()
	if err != nil {
		return nil, err
	}
	return &poller{s: s, epfd: fd, ep: ep, raw: raw, conns: map[uint64]*polled{}}, nil
}

// serve hands c to the poller, with what br read ahead, and waits until the
// connection ends; it returns why, as readLoop does.
func (p *poller) serve(c *clientConn, br *bufio.Reader) error {
	tc, ok := c.nc.(*net.TCPConn)
	if !ok {
		return errors.New("poller: not a TCP connection")
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	pc := &polled{c: c, rc: rc, in: newIntake(c), lastRead: time.Now(), done: make(chan error, 1)}
	pc.buf = make([]byte, 0, max(4<<10, br.Buffered()))
	ahead, _ := br.Peek(br.Buffered())
	pc.buf = append(pc.buf, ahead...)
	token := uint64(c.id)
	p.mu.Lock()
	p.conns[token] = pc
	p.mu.Unlock()
	// Bytes read ahead are handled by the poller before any it reads:
	// it takes the connection's lock first, and the epoll set reports the
	// socket again while it has bytes (level-triggered).
	if len(pc.buf) > 0 {
		pc.mu.Lock()
		err := p.frames(pc)
		pc.mu.Unlock()
		if err != nil {
			p.remove(token, pc)
			return err
		}
	}
	var cerr error
	err = rc.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP}
		putToken(&ev, token)
		cerr = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		p.remove(token, pc)
		return fmt.Errorf("poller: epoll_ctl add: %w", err)
	}
	select {
	case err := <-pc.done:
		return err
	case <-c.closed:
	case <-p.s.done:
	}
	p.remove(token, pc)
	return net.ErrClosed
}

// remove takes the connection out of the poller; after it returns the
// poller handles none of its bytes. True for the call that took it out.
func (p *poller) remove(token uint64, pc *polled) bool {
	pc.mu.Lock()
	first := !pc.gone
	if first {
		pc.gone = true
		_ = pc.rc.Control(func(fd uintptr) {
			_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
		})
	}
	pc.mu.Unlock()
	p.mu.Lock()
	if p.conns[token] == pc {
		delete(p.conns, token)
	}
	p.mu.Unlock()
	return first
}

// end gives a connection back to its reader goroutine with why it ended.
func (p *poller) end(token uint64, pc *polled, err error) {
	if p.remove(token, pc) {
		pc.done <- err
	}
}

// putToken and token keep a connection's id in the event's 8 bytes of user
// data (Fd and Pad in Go's layout of epoll_event).
func putToken(ev *syscall.EpollEvent, t uint64) {
	ev.Fd = int32(uint32(t))
	ev.Pad = int32(uint32(t >> 32))
}

func token(ev *syscall.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// run waits for ready sockets and handles their bytes until the server
// stops.
func (p *poller) run() {
	defer p.ep.Close()
	p.bb = p.s.batchers.get()
	p.batch.b = p.bb
	defer p.s.batchers.put(p.bb)
	events := make([]syscall.EpollEvent, pollerMaxEvents)
	var sweptAt, armedAt time.Time
	var n int
	var werr error
	// wait is made once: a closure per wait would be an allocation.
	wait := func(fd uintptr) bool {
		n, werr = epollset.Wait(fd, events)
		return n > 0 || werr != nil
	}
	for {
		select {
		case <-p.s.done:
			return
		default:
		}
		now := time.Now()
		if now.Sub(armedAt) >= pollerSweep/2 {
			// Wake up for the sweep even when every connection is quiet.
			armedAt = now
			_ = p.ep.SetReadDeadline(now.Add(pollerSweep))
		}
		n, werr = 0, nil
		err := p.raw.Read(wait)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
		case err != nil:
			p.s.log.Error("connection poller stopped", "err", err)
			p.failAll(err)
			return
		case werr != nil:
			p.s.log.Error("connection poller stopped: epoll_wait", "err", werr)
			p.failAll(werr)
			return
		}
		if n > 0 {
			turn := p.turn[:0]
			p.mu.Lock()
			for i := range n {
				t := token(&events[i])
				if pc := p.conns[t]; pc != nil {
					turn = append(turn, turnConn{t, pc})
				}
			}
			p.mu.Unlock()
			p.readTurn(turn)
			clear(turn)
			p.turn = turn[:0]
			// Let the P's other goroutines run. A poller whose clients
			// keep it busy finds sockets ready at every epoll_wait and
			// never parks, so on fewer Ps than pollers (the server runs
			// on one P, cmd/zabkeeper/procs.go, with a poller made per
			// CPU) the other pollers waited in the run queue for the
			// scheduler's 10 ms time slice: 64 sessions of gets, p99
			// 10.4 ms without this, 0.7-0.8 ms with it (BENCHMARKS.md,
			// "procs probe").
			runtime.Gosched()
		}
		if now = time.Now(); now.Sub(sweptAt) >= pollerSweep {
			sweptAt = now
			p.sweep(now)
		}
	}
}

// readTurn reads the sockets epoll reported ready, all in one batch,
// handles their frames, and then writes the replies answered on the way,
// in one more.
func (p *poller) readTurn(turn []turnConn) {
	ops := p.recv[:0]
	k := 0
	for _, tc := range turn {
		pc := tc.pc
		pc.mu.Lock() // held until its bytes are handled
		if pc.gone {
			pc.mu.Unlock()
			continue
		}
		if len(pc.buf) == cap(pc.buf) {
			// A frame larger than the buffer (frames checks its
			// length): room for at least as much again.
			pc.buf = append(pc.buf, make([]byte, cap(pc.buf))...)[:len(pc.buf)]
		}
		turn[k] = tc
		k++
		ops = append(ops, batchio.Op{Conn: pc.rc, Buf: pc.buf[len(pc.buf):cap(pc.buf)]})
	}
	turn = turn[:k]
	p.bb.Recv(ops)
	now := time.Now()
	for i, tc := range turn {
		p.received(tc.t, tc.pc, ops[i].N, ops[i].Err, now)
		tc.pc.mu.Unlock()
	}
	clear(ops)
	p.recv = ops[:0]
	p.batch.flush()
}

// received handles what one read of a ready socket returned: n bytes, or
// why none (err). The caller holds pc.mu.
func (p *poller) received(t uint64, pc *polled, n int, err error, now time.Time) {
	var errno syscall.Errno
	switch {
	case err != nil && !errors.As(err, &errno):
		// The socket was closed (shutdown): its goroutine sees closed.
		return
	case errno == syscall.EAGAIN:
		return
	case err != nil:
		p.endLocked(t, pc, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", errno)})
		return
	case n == 0:
		p.endLocked(t, pc, io.EOF)
		return
	}
	pc.buf = pc.buf[:len(pc.buf)+n]
	pc.lastRead = now
	pc.in.batch = &p.batch
	err = p.frames(pc)
	pc.in.batch = nil
	if err != nil {
		p.endLocked(t, pc, err)
	}
}

// endLocked is end for a connection whose lock the caller holds.
func (p *poller) endLocked(t uint64, pc *polled, err error) {
	pc.mu.Unlock()
	p.end(t, pc, err)
	pc.mu.Lock()
}

// frames handles the whole frames at the front of pc.buf and keeps the
// rest; an error (a frame over jute.maxbuffer, a short header) ends the
// connection.
func (p *poller) frames(pc *polled) error {
	maxBuf := p.s.cfg.JuteMaxBuffer
	b := pc.buf
	now := pc.lastRead
	for {
		body, n, need, err := nextFrame(b, maxBuf)
		if err != nil {
			var tooLarge *proto.FrameTooLargeError
			if errors.As(err, &tooLarge) {
				pc.c.log.Warn("closing connection: frame exceeds jute.maxbuffer", "len", tooLarge.Len, "max", tooLarge.Max)
			}
			return err
		}
		if n == 0 {
			if need > cap(pc.buf) {
				// Room for the whole frame, so the next reads complete it.
				grown := make([]byte, len(b), need)
				copy(grown, b)
				pc.buf = grown
				return nil
			}
			break
		}
		// Decoding copies what it keeps: the buffer is reused.
		if err := pc.in.frame(body, now, true); err != nil {
			return err
		}
		b = b[n:]
	}
	switch {
	case len(b) == 0 && cap(pc.buf) > reuseFrameMax:
		pc.buf = make([]byte, 0, 4<<10) // a large frame's buffer goes
	default:
		pc.buf = pc.buf[:copy(pc.buf, b)]
	}
	return nil
}

// sweep ends the connections silent for longer than their session timeout
// and an eighth, as the goroutine's read deadline does.
func (p *poller) sweep(now time.Time) {
	type silent struct {
		t  uint64
		pc *polled
	}
	var ended []silent
	p.mu.Lock()
	for t, pc := range p.conns {
		if ms := pc.c.timeoutMs.Load(); ms > 0 {
			timeout := time.Duration(ms) * time.Millisecond
			pc.mu.Lock()
			last := pc.lastRead
			pc.mu.Unlock()
			if now.Sub(last) > timeout+timeout/8 {
				ended = append(ended, silent{t, pc})
			}
		}
	}
	p.mu.Unlock()
	for _, e := range ended {
		p.end(e.t, e.pc, &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded})
	}
}

// failAll ends every connection when the poller cannot go on; their
// clients reconnect, and new connections are read by their goroutines.
func (p *poller) failAll(err error) {
	p.s.noPoller.Store(true)
	p.mu.Lock()
	all := make(map[uint64]*polled, len(p.conns))
	for t, pc := range p.conns {
		all[t] = pc
	}
	p.mu.Unlock()
	for t, pc := range all {
		p.end(t, pc, fmt.Errorf("connection poller: %w", err))
	}
}
