package server

import "github.com/zabkeeper/zabkeeper/proto"

// Size limits derived from jute.maxbuffer, so that every layer holds what
// the client listener accepts: the leader refuses a request whose txn
// exceeds proto.TxnLimit (tree.Options.MaxTxnSize), the txn log and the
// snapshot loader read any txn up to proto.MaxTxnSize, and the limits
// below carry one.

// maxQueuedOut is how many reply bytes may wait for a client that does
// not read them: maxQueuedOutBytes, or two of the largest replies
// jute.maxbuffer allows (a getData of a node holding a txn's worth).
func (s *Server) maxQueuedOut() int {
	return max(maxQueuedOutBytes, 2*proto.TxnLimit(s.cfg.JuteMaxBuffer))
}

// peerFrameSlack covers a peer message's own fields around the txn or
// request it carries.
const peerFrameSlack = 64 << 10
