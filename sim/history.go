package sim

import (
	"github.com/zabkeeper/zabkeeper/proto"
)

// opRecord is one client operation as the client saw it: what it asked,
// when, and what came back. Return is -1 when the outcome is unknown (the
// connection died before the reply).
type opRecord struct {
	Client  int
	Session int64
	Server  int64
	Op      proto.OpCode
	Xid     int32
	Req     proto.Record
	Call    int64 // virtual µs
	Return  int64 // virtual µs, or -1
	Err     proto.ErrCode
	Resp    proto.Record
	// Zxid is the reply header's zxid.
	Zxid int64
	// SyncFloor, for a sync, is the newest zxid any client had seen
	// acknowledged when it was called: the sync's reply must not be below.
	SyncFloor int64
}

// sessionRecord is one client session's life as its client knows it.
type sessionRecord struct {
	Client  int
	Session int64
	// Start is when the handshake reply arrived.
	Start int64
	// End is when the client learned it ended (expired or closed), or -1.
	End int64
	// LastHeard is the last time the session was known alive (a reply).
	LastHeard int64
	Expired   bool
	Closed    bool
}

// history is everything clients did.
type history struct {
	ops      []*opRecord
	sessions []*sessionRecord
}
