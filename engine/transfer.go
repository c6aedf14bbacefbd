package engine

import "github.com/zabkeeper/zabkeeper/proto"

// heldRequest is a request the leader holds back while it hands leadership
// over.
type heldRequest struct {
	f   *forwarded
	rec proto.Record
}

// TransferLeadership starts handing leadership over to the most up-to-date
// follower, for a leader about to stop (zab/transfer.go). While the
// transfer runs the leader proposes nothing: requests wait, and session
// expiry and container reaping pause (the new leader restarts every
// session's grace period when it takes over). Once a successor is told to
// take over, this server leaves leadership and closes its clients, which
// reconnect elsewhere with their sessions. If no follower catches up within
// the configured ticks the transfer is abandoned and the held requests are
// led. It returns false, changing nothing, unless this server is an
// established leader with a synced voting follower whose link has
// zab.CapTransfer: ZooKeeper has no TIMEOUTNOW, so among ZooKeeper
// followers only the leader just stops, as a ZooKeeper leader does.
func (n *Node) TransferLeadership() bool {
	ok := n.zab.TransferLeadership()
	n.pump()
	return ok
}
