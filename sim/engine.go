package sim

import (
	"bytes"

	"github.com/zabkeeper/zabkeeper/engine"
	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
)

func init() { defaultFactory = newEngineReplica }

// engineReplica adapts engine.Node to Replica.
type engineReplica struct{ n *engine.Node }

func newEngineReplica(c ReplicaConfig, d Durable) (Replica, error) {
	n, err := engine.Restore(engine.Config{
		ServerID:          c.ServerID,
		TickMs:            c.TickMs,
		MinSessionTimeout: c.MinSessionTimeout,
		MaxSessionTimeout: c.MaxSessionTimeout,
		SessionSecret:     c.SessionSecret,
		StartTime:         c.StartTime,
		Voters:            c.Voters,
		Observers:         c.Observers,
		InitLimit:         c.InitLimit,
		SyncLimit:         c.SyncLimit,
		ElectionTicks:     c.ElectionTicks,
		FinalizeWaitMs:    c.FinalizeWaitMs,
		MaxLogEntries:     c.MaxLogEntries,
		ReadOnlyMode:      c.ReadOnlyMode,
		Seed:              c.Seed,
		Tree:              tree.Options{ConfigData: configData(c), ConfigVersion: c.ConfigVersion, SuperDigest: c.SuperDigest},
		ReconfigEnabled:   c.ReconfigEnabled,
		StandaloneEnabled: true,
	}, engine.Durable{HardState: d.HardState, SnapshotZxid: d.SnapshotZxid, Snapshot: d.Snapshot, Log: d.Log})
	if err != nil {
		return nil, err
	}
	return &engineReplica{n: n}, nil
}

// configData is the replica's /zookeeper/config: the configuration it
// last activated, else the simulated ensemble's.
func configData(c ReplicaConfig) string {
	if c.ConfigData != "" {
		return c.ConfigData
	}
	return engine.SimulatedConfigData(c.Voters, c.Observers)
}

// Configs returns the active configuration and the pending one, if any.
func (r *engineReplica) Configs() (zab.Membership, *zab.Membership) {
	return r.n.Configs()
}

func (r *engineReplica) Tick(now int64)                { r.n.Tick(now) }
func (r *engineReplica) Step(m zab.Message)            { r.n.Step(m) }
func (r *engineReplica) Disconnect(c uint64)           { r.n.Disconnect(engine.ConnID(c)) }
func (r *engineReplica) Persisted(zxid int64)          { r.n.Persisted(zxid) }
func (r *engineReplica) HasReady() bool                { return r.n.HasReady() }
func (r *engineReplica) TransferLeadership() bool      { return r.n.TransferLeadership() }
func (r *engineReplica) Advance()                      { r.n.Advance() }
func (r *engineReplica) ReuseMessages(m []zab.Message) { r.n.ReuseMessages(m) }
func (r *engineReplica) Halted() error                 { return r.n.Halted() }
func (r *engineReplica) Status() zab.Status            { return r.n.Status() }
func (r *engineReplica) StatusSummary() zab.Status {
	return r.n.StatusSummary()
}
func (r *engineReplica) StatusSummaryTo(st *zab.Status) { r.n.StatusSummaryTo(st) }
func (r *engineReplica) Role() (zab.Role, int64)        { return r.n.Role() }
func (r *engineReplica) HasLearner(id int64) bool       { return r.n.HasLearner(id) }
func (r *engineReplica) LastZxid() int64                { return r.n.LastZxid() }
func (r *engineReplica) Digest() uint64                 { return r.n.Tree().Digest() }

func (r *engineReplica) Ephemerals(session int64) []string {
	return r.n.Tree().Ephemerals(session)
}

func (r *engineReplica) Connect(c uint64, req *proto.ConnectRequest, ip string, now int64) {
	r.n.Connect(engine.ConnectRequest{Conn: engine.ConnID(c), Req: req, ClientIP: ip, Time: now})
}

func (r *engineReplica) Submit(c uint64, xid int32, op proto.OpCode, body proto.Record, now int64) {
	r.n.Submit(engine.Request{Conn: engine.ConnID(c), Xid: xid, Op: op, Body: body, Time: now})
}

func (r *engineReplica) Snapshot() (int64, []byte) {
	zxid, write := r.n.Snapshot()
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		panic("sim: snapshot to memory: " + err.Error())
	}
	return zxid, buf.Bytes()
}

func (r *engineReplica) Ready() Batch { return r.n.Ready() }
