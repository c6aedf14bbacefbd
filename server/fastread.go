package server

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zabkeeper/zabkeeper/engine"
	"github.com/zabkeeper/zabkeeper/proto"
)

// Reads answered on the connection's own goroutine.
//
// A read that registers no watch, on a connection with no request in flight
// (every request it handed the loop has had its reply queued), is answered
// by the connection's reader goroutine itself with Node.ReadNow, under
// nodeMu held for reading, and its reply queued behind everything the loop
// queued before, or, when nothing is queued, written by the reader too: it
// skips the loop's hand-off and batch, and often the writer's wake-up.
// The order of the connection's replies holds because nothing of it is in
// flight; a session sees no older state than before, because every reply
// it had came from the same tree, which only moves forward; and the loop
// holds nodeMu for the whole of each turn, so the watch events a change
// fires are queued before any read can see the change.
// Everything else goes through the loop as before.

// fastStats serializes the statistics updates of reads answered by
// connection goroutines; the loop updates them holding nodeMu for writing,
// which excludes those.
var fastStatsMu sync.Mutex

// touchEvery is how often, at most, a connection whose reads are answered
// by ReadNow tells the loop its session is alive: a fraction of the
// shortest session timeout (two tickTimes).
func touchEvery(tickTime int) time.Duration {
	return time.Duration(tickTime) * time.Millisecond / 4
}

// readLatency caches the request-latency histogram's child of each op
// (indexed by opcode, all but createSession and closeSession below 128),
// for the reads connection goroutines answer and the loop's replies:
// looking a child up by its label hashes the label on every reply. A child
// is created on first use, as WithLabelValues does, so /metrics shows no
// series for an op never served.
type readLatency [128]atomic.Pointer[prometheus.Observer]

// opLatency returns the histogram child of op.
func (s *Server) opLatency(op proto.OpCode) prometheus.Observer {
	if op < 0 || int(op) >= len(s.readLatency) {
		return s.metrics.RequestLatency.WithLabelValues(opLabel(op))
	}
	p := &s.readLatency[op]
	if o := p.Load(); o != nil {
		return *o
	}
	o := s.metrics.RequestLatency.WithLabelValues(opLabel(op))
	p.Store(&o)
	return o
}

// fastRead answers r on the calling goroutine if it can; false when r must
// be posted to the loop. start is when r was read off the socket.
// nonBlocking: the reply is written, if at all, with one non-blocking write,
// the rest left to the writer goroutine (a poller calls it so). The reply
// is encoded into in's buffer, which is reused for the next reply unless
// the frame was queued for the writer goroutine.
func (in *intake) fastRead(r *engine.Request, start time.Time, nonBlocking bool) bool {
	c := in.c
	if c.inflight.Load() != 0 {
		return false
	}
	switch r.Op {
	case proto.OpGetData, proto.OpExists, proto.OpGetChildren, proto.OpGetChildren2, proto.OpGetACL:
	default:
		return false
	}
	if r.Body == nil {
		return false
	}
	s := c.srv
	s.nodeMu.RLock()
	out, ok := s.node.ReadNow(*r)
	if !ok {
		s.nodeMu.RUnlock()
		return false
	}
	if in.batch != nil && in.batched >= 0 && in.batch.joinable(in.batched) && c.nothingQueued() {
		// The connection's earlier reply of this turn waits in the
		// poller's batch with nothing queued behind it: this reply
		// joins its frame, to go out in the same send. Checked under
		// nodeMu, as a claim is: the loop cannot queue meanwhile.
		f := &in.batch.sends[in.batched].frame
		n := len(*f)
		*f = in.enc.Append(*f, out.Header, out.Body)
		in.countFast(r.Op, start, len(*f)-n)
		return true
	}
	buf := in.reply
	if need := replyCap(out.Body); cap(buf) < need {
		buf = make([]byte, 0, need)
	}
	buf = in.enc.Append(buf[:0], out.Header, out.Body)
	// Nothing queued for the connection: the reply goes out from here,
	// sparing the writer goroutine's wake-up. It takes its place now,
	// while the loop cannot queue anything; it is written once the lock is
	// released, so a slow client never holds the loop up.
	var direct bool
	if nonBlocking {
		direct = c.claimRawWrite()
	} else {
		direct = c.claimWrite()
	}
	if !direct {
		c.enqueue(buf, false)
	}
	in.countFast(r.Op, start, len(buf))
	queued := !direct
	switch {
	case direct && nonBlocking && in.batch != nil:
		// The poller writes it with the turn's other replies; the
		// buffer comes back once written whole (writeBatch).
		in.batched = in.batch.add(c, buf, in)
		in.reply = nil
		return true
	case direct && nonBlocking:
		queued = c.writeClaimedNow(buf)
	case direct:
		c.writeClaimed(buf) // copies buf into the connection's bufio.Writer
	}
	switch {
	case queued || cap(buf) > reuseFrameMax:
		in.reply = nil // the writer goroutine owns it now, or it is too big to keep
	default:
		in.reply = buf[:0]
	}
	return true
}

// countFast counts a fast read's reply of frameLen bytes (length prefix
// included) in the statistics, and releases nodeMu, which the caller took
// for the read.
func (in *intake) countFast(op proto.OpCode, start time.Time, frameLen int) {
	s := in.c.srv
	d := time.Since(start)
	fastStatsMu.Lock()
	s.stats.countOp(op)
	s.stats.observeLatency(d)
	s.stats.observeResponse(frameLen - 4)
	fastStatsMu.Unlock()
	s.nodeMu.RUnlock()
	s.opLatency(op).Observe(d.Seconds())
}

// replyCap is a capacity for a reply frame that fits most replies without
// growing: length, header and Stat, plus the data of a getData.
func replyCap(body proto.Record) int {
	if r, ok := body.(*proto.GetDataResponse); ok {
		return 128 + len(r.Data)
	}
	return 128
}
