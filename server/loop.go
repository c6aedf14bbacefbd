package server

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/zabkeeper/zabkeeper/engine"
	"github.com/zabkeeper/zabkeeper/proto"
)

type eventKind int

const (
	evConnect eventKind = iota + 1
	evRequest
	evDisconnect
	evFourLetter
)

// event is what connection goroutines hand to the event loop.
type event struct {
	kind    eventKind
	conn    engine.ConnID
	connect *engine.ConnectRequest
	req     *engine.Request
	word    string
	reply   chan string
}

// maxEventsPerBatch bounds how many inputs the loop takes before handling
// the Ready they produced, so replies keep flowing under load while writes
// from many clients still share one log append and fsync.
const maxEventsPerBatch = 256

// loop is the only goroutine that touches the Node. It feeds it inputs,
// ticks, and fsync acknowledgements, and carries out each Ready.
func (s *Server) loop(w *walWriter, persisted <-chan int64) error {
	ticker := time.NewTicker(time.Duration(s.cfg.TickTime) * time.Millisecond)
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
	arrivals := map[engine.ConnID][]time.Time{}

	for {
		select {
		case ev := <-s.events:
			s.handle(ev, arrivals)
		drain:
			for i := 1; i < maxEventsPerBatch; i++ {
				select {
				case ev := <-s.events:
					s.handle(ev, arrivals)
				default:
					break drain
				}
			}
		case z := <-persisted:
			s.node.Persisted(z)
		case <-ticker.C:
			s.node.Tick(time.Now().UnixMilli())
		case err := <-snapDone:
			snapshotting = false
			if err != nil {
				s.log.Error("snapshot failed", "err", err)
			} else if s.cfg.PurgeInterval > 0 {
				// With autopurge on, purge right after each snapshot too, so
				// a busy server never holds more than retain+1 snapshots
				// between the hourly rounds.
				s.background(s.logPurge)
			}
		case <-purge:
			s.background(s.logPurge)
		case err := <-w.failed:
			// A write we cannot make durable must never be acknowledged:
			// stop, as ZooKeeper does, rather than serve from memory.
			return fmt.Errorf("server: txn log failed: %w", err)
		case <-s.done:
			return nil
		}
		if !s.node.HasReady() {
			continue
		}
		rd := s.node.Ready()
		if len(rd.Entries) > 0 {
			w.submit(rd.Entries)
		}
		s.deliver(rd.Outputs, arrivals)
		s.node.Advance()
		sinceSnap += rd.Committed
		if sinceSnap >= snapAt && !snapshotting {
			snapshotting, sinceSnap, snapAt = true, 0, s.nextSnapThreshold()
			zxid, write := s.node.Snapshot()
			s.background(func() { snapDone <- s.writeSnapshot(zxid, write) })
		}
	}
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

// handle feeds one event to the Node.
func (s *Server) handle(ev event, arrivals map[engine.ConnID][]time.Time) {
	switch ev.kind {
	case evConnect:
		s.node.Connect(*ev.connect)
	case evRequest:
		arrivals[ev.conn] = append(arrivals[ev.conn], time.Now())
		s.stats.countOp(ev.req.Op)
		s.node.Submit(*ev.req)
	case evDisconnect:
		delete(arrivals, ev.conn)
		s.node.Disconnect(ev.conn)
	case evFourLetter:
		ev.reply <- s.fourLetterReply(ev.word)
	}
}

// deliver encodes outputs and queues them on their connections in order.
func (s *Server) deliver(outs []engine.Output, arrivals map[engine.ConnID][]time.Time) {
	now := time.Now()
	for i := range outs {
		o := &outs[i]
		c := s.conn(o.Conn)
		if c == nil {
			continue
		}
		switch o.Kind {
		case engine.OutReply:
			if q := arrivals[o.Conn]; len(q) > 0 {
				s.stats.observeLatency(now.Sub(q[0]))
				arrivals[o.Conn] = q[1:]
			}
			c.enqueue(proto.AppendRecords(nil, &o.Header, o.Body), false)
		case engine.OutEvent:
			c.enqueue(proto.AppendRecords(nil, &o.Header, o.Body), false)
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
