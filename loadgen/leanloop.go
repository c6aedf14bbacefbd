package loadgen

import (
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/zabkeeper/zabkeeper/proto"
)

// A leanSess is one lean session of a closed-loop workload (create, set,
// get, mixed) run by an event loop (leanloop_linux.go) instead of its own
// goroutine: the loop sends its request, reads the bytes of its reply when
// they come and hands them to received, which checks and records the reply
// and says whether the session goes on. The requests, their paths and
// values, the checks of the replies and what a run counts are those of
// leanLoop; only who waits for the socket differs.
type leanSess struct {
	r *runner
	w *worker
	c *leanConn
	// enc builds the session's requests in c.out's storage, made once.
	enc *proto.Encoder
	// pending is the rest of the request not sent yet (a short send),
	// sent before anything else of the session.
	pending []byte
	// in holds bytes read and not yet handled, from in[0].
	in []byte
	// busy: a request is outstanding, of op, begun at start (just before
	// its send) and measured or not.
	busy     bool
	op       proto.OpCode
	start    time.Time
	measured bool
	// own is the session's znode (set, get, mixed).
	own string
	// prefix is the session's create paths up to their sequence number
	// (createPath's "dir/c<id>-"), path the outstanding create's.
	prefix, path []byte
	// resumeAt, when not zero, is when a session whose request failed on
	// the server sends its next one (leanLoop sleeps errorPause).
	resumeAt time.Time
	// idle: the run gave the session no more requests.
	idle bool
	// role names the session in the error that ends the run ("session 3",
	// "watcher 3", "writer"); counts: its requests are the run's ops.
	role   string
	counts bool
}

// newLeanSess makes worker w's session ready for an event loop.
func newLeanSess(r *runner, w *worker) *leanSess {
	s := &leanSess{r: r, w: w, c: w.lean, in: make([]byte, 0, 4096), role: fmt.Sprintf("session %d", w.id), counts: true}
	s.enc = proto.NewEncoder(s.c.out[:0])
	s.own = r.ownPath(w.id)
	s.prefix = fmt.Appendf(nil, "%s/c%d-", r.dir, w.id)
	if n := s.c.br.Buffered(); n > 0 {
		// Read ahead with the handshake: handled before anything read.
		ahead, _ := s.c.br.Peek(n)
		s.in = append(s.in, ahead...)
		_, _ = s.c.br.Discard(n)
	}
	return s
}

// next begins the session's next request and leaves its frame in pending;
// false when the run gives it none (it has ended, or its ops are all
// handed out).
func (s *leanSess) next() bool {
	goOn, measured := s.r.begin()
	if !goOn {
		s.idle = true
		return false
	}
	r, w := s.r, s.w
	op := r.cfg.Workload
	if op == Mixed {
		op = Set
		if w.rng.Float64() < r.cfg.ReadRatio {
			op = Get
		}
	}
	switch op {
	case Create:
		s.path = strconv.AppendInt(append(s.path[:0], s.prefix...), w.created, 10)
		w.created++
		s.request(proto.OpCreate, "", false)
	case Set:
		s.request(proto.OpSetData, s.own, false)
	default: // Get
		s.request(proto.OpGetData, s.own, false)
	}
	s.measured = measured
	return true
}

// request begins a request of op on path (create: on s.path), a getData
// with a watch if watch, and leaves its frame in pending.
func (s *leanSess) request(op proto.OpCode, path string, watch bool) {
	r, c, e := s.r, s.c, s.enc
	c.xid++
	e.Reset()
	e.WriteInt(0) // the length, patched by finishFrame
	e.WriteInt(c.xid)
	e.WriteInt(int32(op))
	s.op = op
	switch op {
	case proto.OpCreate:
		e.WriteBuffer(s.path) // a non-empty buffer is encoded as a string is
		appendCreateTail(e, r.value)
	case proto.OpSetData:
		e.WriteString(path)
		appendSetTail(e, r.value)
	default: // getData
		e.WriteString(path)
		e.WriteBool(watch)
	}
	s.pending = finishFrame(e)
	s.busy = true
}

// received handles the whole frames at the front of s.in, read by now, and
// keeps the rest; watch notifications go to s.c.events. It returns whether
// the outstanding request was answered and with what: nil, or the server's
// error code (a proto.ErrCode), which does not end the session. Anything
// else ends it (a broken or out-of-step connection, as leanLoop's): fail
// has counted it and the run ends with it, returned as err.
func (s *leanSess) received(now time.Time) (answered bool, result, err error) {
	b := s.in
	for {
		frame, n, need, err := leanNextFrame(b)
		if err != nil {
			return answered, result, s.fail(now, fmt.Errorf("loadgen: lean client: read: %w", err))
		}
		if n == 0 {
			if need > cap(s.in) {
				grown := make([]byte, len(b), need)
				copy(grown, b)
				s.in = grown
				return answered, result, nil
			}
			break
		}
		b = b[n:]
		body, xid, err := replyXid(frame)
		if err != nil {
			return answered, result, s.fail(now, err)
		}
		if xid == proto.XidNotification {
			ev, err := decodeEvent(body)
			if err != nil {
				return answered, result, s.fail(now, err)
			}
			s.c.events = append(s.c.events, ev)
			continue
		}
		if !s.busy {
			return answered, result, s.fail(now, fmt.Errorf("%w (%d with no request outstanding)", errLeanXid, xid))
		}
		rest, err := s.c.reply(body, xid)
		if err == nil {
			switch s.op {
			case proto.OpCreate:
				err = checkCreated(s.path, rest)
			case proto.OpSetData:
				err = checkSet(rest)
			default:
				err = checkGot(rest, len(s.r.value))
			}
		}
		if err != nil && !isServerError(err) {
			return answered, result, s.fail(now, err)
		}
		s.busy, answered, result = false, true, err
	}
	switch {
	case len(b) == 0 && cap(s.in) > 64<<10:
		s.in = make([]byte, 0, 4096) // a large frame's buffer goes
	default:
		s.in = s.in[:copy(s.in, b)]
	}
	return answered, result, nil
}

// answer counts a closed-loop session's answered request, as leanLoop's
// finish does, and pauses the session after a server's error.
func (s *leanSess) answer(now time.Time, result error) {
	s.r.account(s.w, s.measured, now.Sub(s.start), result)
	if result != nil {
		s.resumeAt = now.Add(errorPause)
	}
}

// fail ends the session with err: the error that ends the run, prefixed
// with the session's role, and for a session whose requests are the run's
// ops (not a watcher's getData) the outcome of the request outstanding
// (or of the one it would send next), as leanLoop counts it. It returns
// err.
func (s *leanSess) fail(now time.Time, err error) error {
	if s.counts && (s.busy || !s.idle) {
		lat := time.Duration(0)
		if s.busy {
			lat = now.Sub(s.start)
		}
		s.r.account(s.w, s.busy && s.measured, lat, err)
	}
	s.busy, s.idle, s.pending = false, true, nil
	s.r.fail(fmt.Errorf("loadgen: %s: %w", s.role, err))
	return err
}

// eof is the error of a connection the server closed: io.EOF between
// frames, io.ErrUnexpectedEOF inside one (proto.ReadFrame's).
func (s *leanSess) eof() error {
	err := io.EOF
	if len(s.in) > 0 {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("loadgen: lean client: read: %w", err)
}

// leanNextFrame splits the reply frame at the front of b, a stream of
// length-prefixed frames as proto.ReadFrame reads them: its body and the
// bytes it takes (prefix included); n is 0 when b holds no whole frame yet,
// need then the frame's whole size once its prefix is in (else 0). A
// length over leanMaxFrame or negative is a *proto.FrameTooLargeError.
func leanNextFrame(b []byte) (body []byte, n, need int, err error) {
	if len(b) < 4 {
		return nil, 0, 0, nil
	}
	size := int64(int32(binary.BigEndian.Uint32(b)))
	if size < 0 || size > leanMaxFrame {
		return nil, 0, 0, &proto.FrameTooLargeError{Len: size, Max: leanMaxFrame}
	}
	if int64(len(b)-4) < size {
		return nil, 0, 4 + int(size), nil
	}
	return b[4 : 4+size], 4 + int(size), 0, nil
}
