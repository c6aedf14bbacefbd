package server

import (
	"sync"

	"github.com/zabkeeper/zabkeeper/internal/batchio"
)

// sendBatch gathers frames whose connections' write sides were claimed
// (claimRawWrite) and writes them all with one batchio call: on this
// machine a system call costs about a microsecond before it does anything,
// so replies to many sessions, or a fan-out's events, go out in one
// io_uring_enter instead of one write each (internal/batchio).
type sendBatch struct {
	b     *batchio.Batcher
	sends []batchSend
	ops   []batchio.Op
}

// batchSend is one claimed frame of a batch; in, when set, is the intake
// whose reply buffer frame is, given back once the frame is written whole.
type batchSend struct {
	c     *clientConn
	frame []byte
	in    *intake
}

// add adds a frame whose connection's write side the caller claimed and
// returns its index in the batch.
func (sb *sendBatch) add(c *clientConn, frame []byte, in *intake) int {
	sb.sends = append(sb.sends, batchSend{c: c, frame: frame, in: in})
	return len(sb.sends) - 1
}

// joinMax is the largest frame more replies may join (fastRead): past it
// they are queued, where the queue's bound on a connection that does not
// read applies.
const joinMax = 64 << 10

// joinable tells whether the frame at i may take another reply.
func (sb *sendBatch) joinable(i int) bool { return len(sb.sends[i].frame) < joinMax }

// flush writes the batch's frames and gives each connection's write side
// back (what a socket did not take is queued for its writer goroutine).
func (sb *sendBatch) flush() {
	if len(sb.sends) == 0 {
		return
	}
	writeBatch(sb.b, sb.sends, &sb.ops)
	clear(sb.sends)
	sb.sends = sb.sends[:0]
}

// writeBatch writes sends with b, ops being the caller's reusable slice of
// operations.
func writeBatch(b *batchio.Batcher, sends []batchSend, ops *[]batchio.Op) {
	o := (*ops)[:0]
	for i := range sends {
		o = append(o, batchio.Op{Conn: sends[i].c.raw, Buf: sends[i].frame})
	}
	b.Send(o)
	for i := range sends {
		s := &sends[i]
		queued := s.c.finishClaimedWrite(s.frame, o[i].N, o[i].Err)
		if s.in != nil {
			s.in.batched = -1
			if !queued && cap(s.frame) <= reuseFrameMax && s.in.reply == nil {
				s.in.reply = s.frame[:0]
			}
		}
	}
	clear(o)
	*ops = o[:0]
}

// batcherPool keeps the Batchers of the goroutines that write batches (the
// loop, the pollers, a fan-out's helpers): each holds a ring, a descriptor
// and two mappings, so they are reused, and closed when the server stops.
type batcherPool struct {
	mu     sync.Mutex
	free   []*batchio.Batcher
	closed bool
}

// batcherPoolKeep is how many idle Batchers the pool keeps.
const batcherPoolKeep = 8

func (p *batcherPool) get() *batchio.Batcher {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free = p.free[:n-1]
		return b
	}
	return batchio.New()
}

func (p *batcherPool) put(b *batchio.Batcher) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.free) >= batcherPoolKeep {
		_ = b.Close()
		return
	}
	p.free = append(p.free, b)
}

// close closes the idle Batchers; those handed out are closed when put.
func (p *batcherPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, b := range p.free {
		_ = b.Close()
	}
	p.free = nil
}
