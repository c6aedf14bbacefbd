package engine

import (
	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/engine/zab"
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
	// Verified is the caller's verdict on an OpAuth whose scheme the
	// engine does not verify itself (SchemeOIDC); nil otherwise.
	Verified *VerifiedAuth
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
	// TransportIDs are identities the connection proved before its
	// handshake, e.g. x509:<subject> (and super:<subject> for the x509
	// super user) from a TLS client certificate, as ZooKeeper's
	// X509AuthenticationProvider adds them. They join the connection's
	// ids after ip:<addr>.
	TransportIDs []proto.Id
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

// Entry is one transaction to append to the durable log: the protocol's
// own entry, whose Data is the txn encoded once by the leader (TxnHeader
// first), passed on as it is all the way to the log file.
type Entry = zab.Entry

// Ready is a batch of work for the caller. Batches must be handled strictly
// in order, each with these obligations, in order:
//  1. make HardState durable (the acceptedEpoch and currentEpoch files);
//  2. if Truncate is set, discard log entries with zxid > *Truncate, durably;
//  3. if Snapshot is set, write it as a snapshot file (the Node has already
//     installed it);
//  4. send Messages to their servers — only after 1–3;
//  5. append Entries to the log, and once they are fsynced report the last
//     zxid with Persisted (the fsync may run alongside 4–6: nothing that
//     depends on it is sent before Persisted reports it);
//  6. write Outputs to their connections, in order per connection;
//  7. call Advance.
//
// Ready.Handle carries out 1–6 in this order on a ReadyHandler: callers
// implement the obligations, never the order.
type Ready struct {
	// HardState is the protocol's epochs, to persist first.
	HardState *zab.HardState
	// Truncate discards a divergent log tail (ZAB's TRUNC).
	Truncate *int64
	// Snapshot is a state received from the leader (ZAB's SNAP); Data is an
	// engine snapshot as Node.Snapshot writes it.
	Snapshot *zab.SnapshotInstall
	// Entries must be made durable before Persisted reports them.
	Entries []Entry
	// Messages go to other servers of the ensemble.
	Messages []zab.Message
	// Outputs are replies, events and connection actions, in delivery order.
	Outputs []Output
	// Committed counts txns applied to the tree in this batch, so the
	// caller can schedule snapshots.
	Committed int
	// DigestMismatch is set when the tree, once the log was replayed to
	// the zxid a fuzzy snapshot (Apache ZooKeeper's) recorded its digest
	// at, does not hash to that digest. ZooKeeper logs this and goes on
	// (DataTree.compareDigest); the caller logs it.
	DigestMismatch *DigestMismatch
	// Config is set when this server activated a new configuration
	// (reconfig.go): the caller records it (ZooKeeper's dynamic config
	// file) and connects to its members (ConfigHandler) before it sends
	// the batch's messages.
	Config *ConfigChange
}

// DigestMismatch reports a tree digest that differs from the one recorded.
type DigestMismatch struct {
	Zxid     int64
	Expected uint64
	Actual   uint64
}

// Caller re-exported for callers that build auth contexts.
type Caller = tree.Caller
