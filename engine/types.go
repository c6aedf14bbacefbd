package engine

import (
	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/proto"
)

// ConnID names one client connection on this server. The caller assigns it
// (never 0) and uses it to route outputs back to the socket.
type ConnID uint64

// Request is one client request as it arrived on a connection.
type Request struct {
	// Conn is the connection the request arrived on.
	Conn ConnID
	// Xid is echoed in the reply.
	Xid int32
	// Op is the request type.
	Op proto.OpCode
	// Body is the decoded request record (proto.DecodeRequest).
	Body proto.Record
	// Time is the caller's wall clock in ms at arrival; the leader stamps it
	// into txns as ctime/mtime.
	Time int64
}

// ConnectRequest is a client handshake on a new connection.
type ConnectRequest struct {
	// Conn is the new connection.
	Conn ConnID
	// Req is the decoded handshake frame.
	Req *proto.ConnectRequest
	// ClientIP is the peer address without port; it becomes the connection's
	// ip:<addr> identity for ACLs.
	ClientIP string
	// Time is the caller's wall clock in ms.
	Time int64
}

// OutputKind says what an Output carries.
type OutputKind int

// Output kinds.
const (
	// OutReply is a reply to a request: Header + Body (Body nil = header only).
	OutReply OutputKind = iota + 1
	// OutEvent is a watch notification: Header (xid -1) + Body (*proto.WatcherEvent).
	OutEvent
	// OutConnect is the handshake reply: Connect. A reply with TimeOut 0 and
	// SessionID 0 tells the client its session expired; Close follows.
	OutConnect
	// OutClose asks the caller to close the connection after writing every
	// earlier output for it.
	OutClose
)

// Output is one thing to write to a client connection. Outputs for one
// connection must be written in the order Ready lists them.
type Output struct {
	Conn    ConnID
	Kind    OutputKind
	Header  proto.ReplyHeader
	Body    proto.Record
	Connect *proto.ConnectResponse
	// Reason explains an OutClose, for the log.
	Reason string
}

// Entry is one transaction to append to the durable log.
type Entry struct {
	Zxid int64
	Data []byte
}

// Ready is a batch of work for the caller. Obligations, in order:
//  1. append Entries to the log and fsync them, then report with Persisted;
//  2. write Outputs to their connections, in order per connection;
//  3. call Advance.
type Ready struct {
	// Entries must be made durable before Persisted reports them.
	Entries []Entry
	// Outputs are replies, events and connection actions, in delivery order.
	Outputs []Output
	// Committed counts txns applied to the tree since the last Ready, so the
	// caller can schedule snapshots.
	Committed int
}

// Caller re-exported for callers that build auth contexts.
type Caller = tree.Caller
