package server

import (
	"time"

	"github.com/zabkeeper/zabkeeper/engine/zab"
)

// handoffTimeout bounds how long a stopping leader waits for a follower to
// catch up and for the election of its successor before it stops anyway.
const handoffTimeout = 2 * time.Second

// handoff is the graceful-stop state shared by Serve and the loop.
type handoff struct {
	// request is closed by Serve when the server should stop: the loop then
	// hands leadership over if it leads.
	request chan struct{}
	// done is closed by the loop once there is nothing more to wait for.
	done chan struct{}
}

func newHandoff() handoff {
	return handoff{request: make(chan struct{}), done: make(chan struct{})}
}

// handoffRun is the loop's side of a graceful stop.
type handoffRun struct {
	active bool // a transfer is under way
	start  time.Time
	closed bool // done was closed
}

// begin starts the handoff on the loop: a leader with a synced follower
// starts a leadership transfer; any other server has nothing to wait for.
func (s *Server) beginHandoff(h *handoffRun) {
	st := s.node.Status()
	if st.Role == zab.Leading && s.node.TransferLeadership() {
		s.log.Info("stopping: handing leadership over to the most up-to-date follower")
		h.active, h.start = true, time.Now()
		return
	}
	s.finishHandoff(h)
}

// checkHandoff ends the handoff once this server handed leadership over and
// the election of its successor is decided here (its vote helped every
// server decide without waiting), or once the transfer was abandoned.
func (s *Server) checkHandoff(h *handoffRun) {
	if !h.active || h.closed {
		return
	}
	st := s.node.Status()
	switch {
	case st.HandedOver && st.Role != zab.Looking:
		s.log.Info("leadership handed over", "newLeader", st.Leader, "took", time.Since(h.start))
	case !st.HandedOver && !st.Transferring:
		s.log.Warn("leadership transfer abandoned; stopping anyway", "took", time.Since(h.start))
	default:
		return
	}
	s.finishHandoff(h)
}

func (s *Server) finishHandoff(h *handoffRun) {
	if !h.closed {
		h.closed = true
		close(s.handoff.done)
	}
}

// LeadershipHandedOver reports whether this server, stopping as leader,
// handed leadership over to a follower. Call it only after Serve returned.
func (s *Server) LeadershipHandedOver() bool { return s.node.Status().HandedOver }
