package sim

import (
	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
)

// Replica is what the simulator drives: the caller-facing shape of
// engine.Node. engine.go adapts the real Node; tests may plug in others.
type Replica interface {
	Tick(nowMs int64)
	Step(m zab.Message)
	Connect(conn uint64, req *proto.ConnectRequest, clientIP string, nowMs int64)
	Submit(conn uint64, xid int32, op proto.OpCode, body proto.Record, nowMs int64)
	Disconnect(conn uint64)
	Persisted(zxid int64)
	HasReady() bool
	Ready() Batch
	Advance()
	Status() zab.Status
	// LastZxid is the zxid of the newest applied txn.
	LastZxid() int64
	// Digest is the data tree's digest at LastZxid.
	Digest() uint64
	// Ephemerals lists the ephemerals a session owns in the tree.
	Ephemerals(session int64) []string
	// Snapshot serializes the applied state (at LastZxid).
	Snapshot() (zxid int64, data []byte)
}

// OutKind says what an Output carries (mirrors engine.OutputKind).
type OutKind int

// Output kinds.
const (
	OutReply OutKind = iota + 1
	OutEvent
	OutConnect
	OutClose
)

// Output is one thing for a client connection.
type Output struct {
	Conn    uint64
	Kind    OutKind
	Header  proto.ReplyHeader
	Body    proto.Record
	Connect *proto.ConnectResponse
	Reason  string
}

// Batch is one Ready of a Replica, with engine.Ready's obligations.
type Batch struct {
	HardState *zab.HardState
	Truncate  *int64
	Snapshot  *zab.SnapshotInstall
	Entries   []zab.Entry
	Messages  []zab.Message
	Outputs   []Output
	Committed int
}

// ReplicaConfig is the part of engine.Config the simulator chooses.
type ReplicaConfig struct {
	ServerID          int64
	TickMs            int
	MinSessionTimeout int
	MaxSessionTimeout int
	SessionSecret     []byte
	StartTime         int64
	Voters            []int64
	Observers         []int64
	InitLimit         int
	SyncLimit         int
	ElectionTicks     int
	// FinalizeWaitMs is engine.Config.FinalizeWaitMs.
	FinalizeWaitMs int
	// MaxLogEntries bounds the in-memory log for DIFF syncs; small values
	// force SNAP syncs.
	MaxLogEntries int
	Seed          uint64
}

// Durable is what a replica restarts from (mirrors engine.Durable).
type Durable struct {
	HardState    zab.HardState
	SnapshotZxid int64
	Snapshot     []byte
	Log          []zab.Entry
}

// Factory builds a replica from its configuration and durable state.
type Factory func(cfg ReplicaConfig, d Durable) (Replica, error)

// defaultFactory is the real engine.Node (set by engine.go).
var defaultFactory Factory
