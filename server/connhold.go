package server

import (
	"time"

	"github.com/zabkeeper/zabkeeper/engine"
)

// connectHoldMax bounds how long a client handshake waits for an election.
//
// A server that is not serving (its ensemble is electing a leader) would
// refuse a handshake at once, as ZooKeeper does. A client that finds every
// server electing then sleeps before it tries again (go-zookeeper/zk waits
// a second after each pass over its server list), which stretched a
// leadership handoff that takes tens of milliseconds into a pause of over
// a second. So handshakes that arrive during an election wait on the loop,
// up to this long, and are answered as soon as the server serves again (or
// refused as before when the wait runs out). go-zk and the Java client
// wait for a handshake reply for about two thirds of the session timeout,
// far longer than this.
const connectHoldMax = time.Second

// connectHold keeps the events of clients whose handshake waits for an
// election, in arrival order.
type connectHold struct {
	events []event
	conns  map[engine.ConnID]bool
	// expire fires connectHoldMax after the first held handshake.
	expire <-chan time.Time
}

// holds reports whether ev must wait: a handshake while an ensemble member
// is not serving (nor read-only), or anything else from a connection whose
// handshake waits. It keeps ev if so.
func (s *Server) hold(h *connectHold, ev event) bool {
	switch {
	case ev.kind == evConnect:
		if len(s.cfg.Servers) == 0 || s.node.Serving() || s.node.ReadOnly() {
			return false
		}
	case h.conns[ev.conn]:
	default:
		return false
	}
	if len(h.events) == 0 {
		h.expire = time.After(connectHoldMax)
		h.conns = map[engine.ConnID]bool{}
	}
	h.conns[ev.conn] = true
	h.events = append(h.events, ev)
	return true
}

// releaseHeld hands the held events to the Node once it serves (or is
// read-only), or when expired is set.
func (s *Server) releaseHeld(h *connectHold, expired bool, arrivals map[engine.ConnID][]arrival) {
	if len(h.events) == 0 || !(expired || s.node.Serving() || s.node.ReadOnly()) {
		return
	}
	evs := h.events
	*h = connectHold{}
	for _, ev := range evs {
		s.handle(ev, arrivals)
	}
}
