package server

import (
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/zabkeeper/zabkeeper/engine"
	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
)

type eventKind int

const (
	evConnect eventKind = iota + 1
	evRequest
	evDisconnect
	evFourLetter
	evAdmin
	// evTouch: the connection's session was active (reads it answered
	// itself, fastread.go) at time at (ms).
	evTouch
)

// event is what connection goroutines hand to the event loop.
type event struct {
	kind    eventKind
	conn    engine.ConnID
	connect *engine.ConnectRequest
	req     *engine.Request
	word    string
	mask    int64 // stmk's new trace mask
	reply   chan string
	admin   chan commandInput // buffered: the loop never waits on it
	at      int64             // evTouch's time, ms
}

// arrival is when a request reached the loop, for its latency.
type arrival struct {
	at time.Time
	op proto.OpCode
	// audit is what the audit log records at the reply (audit.go).
	audit *auditPending
}

// maxEventsPerBatch bounds how many inputs the loop takes before handling
// the Ready they produced, so replies keep flowing under load while writes
// from many clients still share one log append and fsync.
const maxEventsPerBatch = 256

// engineTickMs is about how often the loop ticks the Node: finely enough
// that the election (ZooKeeper's 200 ms finalize wait and notification
// timeout) and failover run on milliseconds whatever the tickTime, while the
// Node keeps initLimit, syncLimit and session expiry in whole tickTimes.
const engineTickMs = 50

// ticksPerTickTime is how many engine ticks make one tickTime.
func ticksPerTickTime(tickTime int) int { return max(1, tickTime/engineTickMs) }

// engineTick is the period of the loop's ticker: an exact fraction of
// tickTime.
func engineTick(tickTime int) time.Duration {
	return time.Duration(tickTime) * time.Millisecond / time.Duration(ticksPerTickTime(tickTime))
}

// loop is the only goroutine that touches the Node. It feeds it inputs,
// ticks, and fsync acknowledgements, and carries out each Ready.
func (s *Server) loop(w *walWriter, persisted <-chan int64) error {
	ticker := time.NewTicker(engineTick(s.cfg.TickTime))
	defer ticker.Stop()
	var purge <-chan time.Time
	if s.cfg.PurgeInterval > 0 {
		t := time.NewTicker(time.Duration(s.cfg.PurgeInterval) * time.Hour)
		defer t.Stop()
		purge = t.C
		s.background(s.logPurge)
	}
	snapDone := make(chan error, 1)
	snapshotting := false
	sinceSnap, snapAt := 0, s.nextSnapThreshold()
	arrivals := map[engine.ConnID][]arrival{}
	peerRecv := s.peerRecv()
	roles := roleLog{since: time.Now()}
	var timer roleTimer
	var commits commitTimer
	handoffReq := s.handoff.request
	var handing handoffRun
	var held connectHold
	var received zab.SnapshotData // of the SNAP stepped last, until persisted

	// Each turn holds nodeMu from its input to the end of its Ready
	// batches: connection goroutines answer reads only in between.
	locked := false
	lock := func() { s.nodeMu.Lock(); locked = true }
	defer func() {
		if locked {
			s.nodeMu.Unlock()
		}
		s.flushLoopSends()
	}()
	for {
		if locked {
			s.nodeMu.Unlock()
			locked = false
		}
		// The replies this turn claimed go out now, outside nodeMu.
		s.flushLoopSends()
		select {
		case ev := <-s.events:
			lock()
			s.handleOrHold(&held, ev, arrivals)
		drain:
			for i := 1; i < maxEventsPerBatch; i++ {
				select {
				case ev := <-s.events:
					s.handleOrHold(&held, ev, arrivals)
				default:
					break drain
				}
			}
		case z := <-persisted:
			lock()
			s.node.Persisted(z)
		case m := <-peerRecv:
			lock()
			// What arrived meanwhile is stepped in the same turn (the
			// ACKs a follower's one write carried): one Ready then
			// answers them all, and its COMMITs go out in one write. A
			// SNAP ends the turn, so its spooled copy is released after
			// the Ready that installs it.
			received = s.stepPeer(m)
		drainPeers:
			for i := 1; i < maxEventsPerBatch && received == nil; i++ {
				select {
				case m, ok := <-peerRecv:
					if !ok {
						break drainPeers
					}
					received = s.stepPeer(m)
				default:
					break drainPeers
				}
			}
		case <-ticker.C:
			lock()
			s.node.Tick(time.Now().UnixMilli())
		case err := <-snapDone:
			lock()
			snapshotting = false
			if err != nil {
				// Autopurge runs only on its timer (at start and every
				// autopurge.purgeInterval hours), as ZooKeeper's
				// DatadirCleanupManager: never right after a snapshot.
				s.log.Error("snapshot failed", "err", err)
			}
		case <-purge:
			lock()
			s.background(s.logPurge)
		case err := <-w.failed:
			// A write we cannot make durable must never be acknowledged:
			// stop, as ZooKeeper does, rather than serve from memory.
			return fmt.Errorf("server: txn log failed: %w", err)
		case <-held.expire:
			lock()
			s.releaseHeld(&held, true, arrivals)
		case <-handoffReq:
			lock()
			handoffReq = nil
			s.beginHandoff(&handing)
		case <-s.done:
			return nil
		}
		s.releaseHeld(&held, false, arrivals)
		h := readyHandler{s: s, w: w, commits: &commits, arrivals: arrivals}
		for s.node.HasReady() {
			rd := s.node.Ready()
			if err := rd.Handle(h); err != nil {
				return err
			}
			s.logQuotaWarnings()
			s.node.Advance()
			// deliver encoded every output and kept none of them.
			s.node.ReuseOutputs(rd.Outputs)
			sinceSnap += rd.Committed
			if m := rd.DigestMismatch; m != nil {
				s.stats.digestMismatches.Add(1)
				s.log.Error("tree digest differs from the one the snapshot recorded", "zxid", fmt.Sprintf("0x%x", m.Zxid),
					"expected", int64(m.Expected), "actual", int64(m.Actual))
			}
		}
		if err := s.node.Halted(); err != nil {
			// The recovered tree may never be served: stop with why, the
			// files left as they are for the operator.
			return err
		}
		if received != nil {
			// Installed and written as a snapshot of ours by now, if the
			// protocol took it at all: the spooled copy can go.
			if c, ok := received.(io.Closer); ok {
				if err := c.Close(); err != nil {
					s.log.Warn("removing a received snapshot", "err", err)
				}
			}
			received = nil
		}
		// One status per turn for everything that watches the role: the
		// summary, which none of them needs more than (Status builds a
		// leader's followers list, an allocation per turn).
		now := time.Now()
		var st zab.Status
		if len(s.cfg.Servers) > 0 {
			s.node.StatusSummaryTo(&st)
			roles.observe(s, st, now)
			timer.observe(s, st, now)
		}
		commits.committed(s.node.LastZxid(), now, s.metrics.ProposalCommit)
		s.publish(st, now)
		s.checkHandoff(&handing)
		if sinceSnap >= snapAt && !snapshotting {
			snapshotting, sinceSnap, snapAt = true, 0, s.nextSnapThreshold()
			zxid, write := s.node.Snapshot()
			s.background(func() { snapDone <- s.writeSnapshot(zxid, write) })
		}
	}
}

// stepPeer steps a peer's message and returns the snapshot it carried, if
// a SNAP (to be released once installed).
func (s *Server) stepPeer(m zab.Message) zab.SnapshotData {
	s.node.Step(m)
	// The engine drops a payload it cannot take and has no logger: say
	// which peer sent it and why.
	for _, pe := range s.node.PeerErrors() {
		s.log.Warn("refused a peer's payload", "peer", pe.From, "err", pe.Err)
	}
	if m.Type != zab.MsgSnap {
		return nil
	}
	if err := s.node.SnapshotError(); err != nil {
		s.log.Error("refused the leader's snapshot", "err", err)
	}
	return m.Snapshot
}

// nextSnapThreshold spreads snapshots as ZooKeeper does (snapCount/2 plus a
// random share of it), so servers of an ensemble do not snapshot together.
func (s *Server) nextSnapThreshold() int {
	half := max(1, s.cfg.SnapCount/2)
	return half + rand.IntN(half)
}

func (s *Server) logPurge() {
	if err := s.purge(); err != nil {
		s.log.Error("autopurge failed", "err", err)
	}
}

// handleOrHold feeds one event to the Node, unless it must wait for an
// election (connectHold).
func (s *Server) handleOrHold(h *connectHold, ev event, arrivals map[engine.ConnID][]arrival) {
	if !s.hold(h, ev) {
		s.handle(ev, arrivals)
	}
}

// handle feeds one event to the Node.
func (s *Server) handle(ev event, arrivals map[engine.ConnID][]arrival) {
	switch ev.kind {
	case evConnect:
		s.node.Connect(*ev.connect)
	case evRequest:
		ap := s.auditRequest(ev.req)
		arrivals[ev.conn] = append(arrivals[ev.conn], arrival{at: time.Now(), op: ev.req.Op, audit: ap})
		s.stats.countOp(ev.req.Op)
		s.node.Submit(*ev.req)
		s.auditSubmitted(ap, ev.conn)
	case evDisconnect:
		s.auditAbandoned(arrivals[ev.conn])
		delete(arrivals, ev.conn)
		s.node.Disconnect(ev.conn)
	case evFourLetter:
		ev.reply <- s.fourLetterReply(ev.word, ev.mask)
	case evAdmin:
		ev.admin <- commandInput{info: s.serverInfo(ev.word), leader: s.node.Status().Leader}
	case evTouch:
		s.node.Touch(ev.conn, ev.at)
	}
}

// deliver encodes outputs and queues them on their connections in order.
// It keeps no reference to outs or their elements: the loop hands the array
// back to the Node (ReuseOutputs).
func (s *Server) deliver(outs []engine.Output, arrivals map[engine.ConnID][]arrival) {
	now := time.Now()
	var events sharedEvent
	var enc proto.ReplyEncoder // one per turn, not one per reply
	for i := range outs {
		o := &outs[i]
		c := s.conn(o.Conn)
		if c == nil {
			continue
		}
		switch o.Kind {
		case engine.OutReply:
			if q := arrivals[o.Conn]; len(q) > 0 {
				d := now.Sub(q[0].at)
				s.stats.observeLatency(d)
				s.opLatency(q[0].op).Observe(d.Seconds())
				s.auditReply(q[0].audit, o.Header.Err)
				if len(q) == 1 {
					arrivals[o.Conn] = q[:0] // the next request reuses the array
				} else {
					arrivals[o.Conn] = q[1:]
				}
			}
			buf := enc.Append(make([]byte, 0, replyCap(o.Body)), o.Header, o.Body)
			s.stats.observeResponse(len(buf) - 4)
			c.send(buf)
			c.inflight.Add(-1)
		case engine.OutEvent:
			// A change watched by 1,000 sessions costs 1,000 socket
			// writes after the turn, not also 1,000 writer wake-ups.
			c.send(events.frame(o))
		case engine.OutConnect:
			if o.Connect.TimeOut > 0 {
				c.established(o.Connect.SessionID, o.Connect.TimeOut)
			}
			c.enqueue(proto.AppendRecords(nil, o.Connect), false)
		case engine.OutClose:
			c.log.Debug("engine closes connection", "reason", o.Reason)
			c.enqueue(nil, true)
		}
	}
}

// sharedEvent encodes a watch notification once for every connection it
// goes to: the watchers of one change get the same event one after another,
// so a fan-out to N watchers costs one encoding and one buffer, not N.
// Frames are never changed once queued, so connections share the bytes.
type sharedEvent struct {
	hdr proto.ReplyHeader
	ev  proto.WatcherEvent
	buf []byte
}

// frame returns the encoded frame of an OutEvent output.
func (e *sharedEvent) frame(o *engine.Output) []byte {
	ev, ok := o.Body.(*proto.WatcherEvent)
	if !ok {
		return proto.AppendRecords(nil, &o.Header, o.Body)
	}
	if e.buf != nil && e.hdr == o.Header && e.ev == *ev {
		return e.buf
	}
	e.hdr, e.ev = o.Header, *ev
	// Length prefix, ReplyHeader (16), WatcherEvent (type, state, path).
	e.buf = proto.AppendRecords(make([]byte, 0, 4+16+12+len(ev.Path)), &o.Header, ev)
	return e.buf
}

// opLabel names an operation for the latency histogram; opcodes without a
// name share one label, so a client sending garbage opcodes cannot grow the
// metric without bound.
func opLabel(op proto.OpCode) string {
	name := op.String()
	if strings.HasPrefix(name, "op(") {
		return "unknown"
	}
	return name
}

// countSyncs counts how this leader brings learners up to date (ZooKeeper's
// diff_count and snap_count).
func (s *Server) countSyncs(msgs []zab.Message) {
	for i := range msgs {
		switch msgs[i].Type {
		case zab.MsgDiff:
			s.metrics.DiffCount.Inc()
		case zab.MsgTrunc:
			s.metrics.TruncCount.Inc()
		case zab.MsgSnap:
			s.metrics.SnapCount.Inc()
		}
	}
}

// roleLog logs each change of this server's role in the ensemble, with how
// long the previous state lasted: the time from "looking" to "leading" or
// "following, established" is the election and sync time. Entering and
// leaving read-only mode are logged the same way.
type roleLog struct {
	last     zab.Status
	readOnly bool
	since    time.Time
}

func (r *roleLog) observe(s *Server, st zab.Status, now time.Time) {
	ro := s.node.ReadOnly()
	if st.Role == r.last.Role && st.Leader == r.last.Leader && st.Epoch == r.last.Epoch &&
		st.Established == r.last.Established && ro == r.readOnly {
		return
	}
	attrs := []any{"role", st.Role.String(), "leader", st.Leader, "epoch", st.Epoch,
		"established", st.Established, "read_only", ro, "zxid", fmt.Sprintf("0x%x", st.LastZxid),
		"previous", r.last.Role.String(), "took", now.Sub(r.since)}
	if st.Role == zab.Looking && st.Why != "" {
		attrs = append(attrs, "why", st.Why)
	}
	s.log.Info("role changed", attrs...)
	r.last, r.readOnly, r.since = st, ro, now
}
