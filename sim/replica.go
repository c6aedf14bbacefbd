package sim

import (
	"github.com/zabkeeper/zabkeeper/engine"
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
	// Role is Status's Role and Leader, without building a Status.
	Role() (zab.Role, int64)
	// LastZxid is the zxid of the newest applied txn.
	LastZxid() int64
	// Digest is the data tree's digest at LastZxid.
	Digest() uint64
	// Ephemerals lists the ephemerals a session owns in the tree.
	Ephemerals(session int64) []string
	// Snapshot serializes the applied state (at LastZxid).
	Snapshot() (zxid int64, data []byte)
	// TransferLeadership starts handing leadership over, for a leader
	// about to stop (engine.Node.TransferLeadership).
	TransferLeadership() bool
}

// Batch is one Ready of a Replica: engine.Ready itself, with its
// obligations, carried out by engine.Ready.Handle.
type Batch = engine.Ready

// Output is one thing for a client connection (engine.Output).
type Output = engine.Output

// Output kinds (engine's).
const (
	OutReply   = engine.OutReply
	OutEvent   = engine.OutEvent
	OutConnect = engine.OutConnect
	OutClose   = engine.OutClose
)

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
	// ReadOnlyMode is readonlymode.enabled.
	ReadOnlyMode bool
	Seed         uint64
	// ReconfigEnabled, SuperDigest, ConfigData and ConfigVersion are
	// Options.Reconfig's (reconfig.go): reconfig on, the operator's
	// credentials, and the configuration the server last activated ("":
	// the initial one).
	ReconfigEnabled bool
	SuperDigest     string
	ConfigData      string
	ConfigVersion   int64
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
