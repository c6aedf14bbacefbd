package engine

import (
	"slices"

	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/engine/zab"
)

// Config configures a Node. Every field is plain data so the simulator can
// build nodes deterministically.
type Config struct {
	// ServerID is this server's id (myid); it fills the high byte of the
	// session ids this server creates. 0 for a standalone server.
	ServerID int64
	// TickMs is ZooKeeper's tickTime in ms: the unit of InitLimit,
	// SyncLimit, ReapIntervalTicks and the default session timeouts.
	TickMs int
	// TicksPerTickTime is how many times the caller calls Tick per TickMs:
	// a finer tick lets the election and the failure detection run on
	// millisecond settings (ElectionTimeoutMs, FinalizeWaitMs) while the
	// limits keep ZooKeeper's tick semantics. One Tick lasts
	// TickMs/TicksPerTickTime ms. Zero means 1.
	TicksPerTickTime int
	// MinSessionTimeout and MaxSessionTimeout bound negotiated session
	// timeouts, in ms. Zero means 2 and 20 ticks.
	MinSessionTimeout int
	MaxSessionTimeout int
	// Tree configures the data tree (super digest, extended types).
	Tree tree.Options
	// SessionSecret is no longer used: session passwords are derived from
	// the session id as ZooKeeper derives them (SessionPassword), so they
	// survive a swap to or from Apache ZooKeeper. Kept so callers compile.
	SessionSecret []byte
	// StartTime is the wall clock in ms when the server started; it seeds
	// session ids as ZooKeeper does, so ids differ across restarts.
	StartTime int64
	// ReapIntervalTicks is how often, in ticks, empty containers and
	// expired TTL nodes are deleted. Zero means every 60 s.
	ReapIntervalTicks int
	// MaxReapPerInterval bounds deletions per reap round. Zero means 10000.
	MaxReapPerInterval int
	// ReconfigEnabled is zoo.cfg's reconfigEnabled: with it, a member of
	// an ensemble takes reconfig requests (reconfig.go) and its membership
	// follows the reconfig txns of the log; without it a reconfig gets
	// ReconfigDisabled, as from ZooKeeper. A standalone server, and one
	// with ZooKeeper peers (ZooKeeperPeers), answer Unimplemented.
	ReconfigEnabled bool
	// StandaloneEnabled is zoo.cfg's standaloneEnabled (ZooKeeper's
	// default is true): with it a reconfig must leave at least two voters,
	// without it one.
	StandaloneEnabled bool

	// Voters are the ids of the voting servers of the ensemble. Empty means
	// a standalone server: this server is the only voter.
	Voters []int64
	// Observers are the ids of the observers of the ensemble.
	Observers []int64
	// InitLimit is how many ticks discovery and synchronization may take.
	// Zero means 10.
	InitLimit int
	// SyncLimit is how many ticks a learner may lag or be silent. Zero
	// means 5.
	SyncLimit int
	// ElectionTicks is the interval between election rounds, in Ticks;
	// it then stays fixed. Zero means ElectionTimeoutMs, doubling up to
	// MaxElectionTimeoutMs.
	ElectionTicks int
	// ElectionTimeoutMs is the first interval between election rounds
	// (ZooKeeper's notification timeout starts at 200 ms); each round
	// that did not end the election doubles it up to MaxElectionTimeoutMs.
	// Zero means 200 and 2000. Used when ElectionTicks is zero.
	ElectionTimeoutMs    int
	MaxElectionTimeoutMs int
	// FinalizeWaitMs is how long a voter whose proposal a quorum backs
	// waits for a better vote before it decides (ZooKeeper's finalizeWait,
	// 200 ms); it never waits for voters whose link is down. Zero means
	// 200; at least one Tick.
	FinalizeWaitMs int
	// MaxLogEntries bounds the txns kept in memory for DIFF syncs. Zero
	// means zab.DefaultMaxLogEntries (500, ZooKeeper's commitLogCount).
	MaxLogEntries int
	// SnapshotSizeFactor bounds the same txns by bytes, as a share of the
	// tree's data size (zab.Config.SnapshotSizeFactor). Zero means
	// zab.DefaultSnapshotSizeFactor (0.33); negative turns the byte bound
	// off.
	SnapshotSizeFactor float64
	// Seed seeds the deterministic election jitter.
	Seed uint64
	// ReadOnlyMode lets a member of an ensemble that has been looking for a
	// leader for max(2000 ms, TickMs) serve clients that allow read-only
	// access, from its own possibly stale state, until its election ends
	// (ZooKeeper's readonlymode.enabled). See readonly.go.
	ReadOnlyMode bool
}

// readOnlyDelayMs is how long a server must have been looking for a leader
// before it serves read-only clients: ZooKeeper's grace period,
// max(2000 ms, tickTime) (QuorumPeer.run, case LOOKING).
func (c *Config) readOnlyDelayMs() int64 { return max(2000, int64(c.TickMs)) }

// zabID is the id this server uses in the protocol: ZooKeeper's standalone
// server has id 0, which zab reserves, so it runs as voter 1.
func (c *Config) zabID() int64 { return max(c.ServerID, 1) }

func (c *Config) normalize() {
	if c.TickMs <= 0 {
		c.TickMs = 2000
	}
	if c.MinSessionTimeout <= 0 {
		c.MinSessionTimeout = 2 * c.TickMs
	}
	if c.MaxSessionTimeout <= 0 {
		c.MaxSessionTimeout = 20 * c.TickMs
	}
	if c.MaxSessionTimeout < c.MinSessionTimeout {
		c.MaxSessionTimeout = c.MinSessionTimeout
	}
	if c.ReapIntervalTicks <= 0 {
		c.ReapIntervalTicks = max(1, 60000/c.TickMs)
	}
	if c.MaxReapPerInterval <= 0 {
		c.MaxReapPerInterval = 10000
	}
	if len(c.Voters) == 0 && !slices.Contains(c.Observers, c.zabID()) {
		c.Voters = []int64{c.zabID()}
	}
	if c.TicksPerTickTime <= 0 {
		c.TicksPerTickTime = 1
	}
	// InitLimit, SyncLimit and MaxLogEntries default inside zab (in
	// tickTimes); the election runs on ms settings.
	if c.ElectionTimeoutMs <= 0 {
		c.ElectionTimeoutMs = 200
	}
	if c.MaxElectionTimeoutMs <= 0 {
		c.MaxElectionTimeoutMs = 2000
	}
	if c.FinalizeWaitMs <= 0 {
		c.FinalizeWaitMs = 200
	}
}

// ticksForMs is the number of Ticks that last at least ms, at least one.
func (c *Config) ticksForMs(ms int) int {
	k, t := int64(c.TicksPerTickTime), int64(c.TickMs)
	return int(max(1, (int64(ms)*k+t-1)/t))
}

// zabConfig is the protocol's configuration, its tick-counted settings in
// Ticks.
func (c *Config) zabConfig() zab.Config {
	k := c.TicksPerTickTime
	zc := zab.Config{
		ID:            c.zabID(),
		Voters:        c.Voters,
		Observers:     c.Observers,
		InitLimit:     c.InitLimit * k,
		SyncLimit:     c.SyncLimit * k,
		ElectionTicks: c.ElectionTicks,
		FinalizeTicks: c.ticksForMs(c.FinalizeWaitMs),
		PingTicks:     k,
		TransferTicks: zab.DefaultTransferTicks * k,
		MaxLogEntries: c.MaxLogEntries,
		// The byte bound of the log scales with the tree's data size.
		SnapshotSizeFactor: c.SnapshotSizeFactor,
		Seed:               c.Seed,
		ConfigVersion:      c.Tree.ConfigVersion,
	}
	if c.ReconfigEnabled && c.ServerID != 0 && c.Tree.ConfigData != "" {
		zc.ReconfigOf = reconfigOf
	}
	if zc.InitLimit <= 0 {
		zc.InitLimit = 10 * k
	}
	if zc.SyncLimit <= 0 {
		zc.SyncLimit = 5 * k
	}
	if zc.ElectionTicks <= 0 {
		zc.ElectionTicks = c.ticksForMs(c.ElectionTimeoutMs)
		zc.MaxElectionTicks = c.ticksForMs(c.MaxElectionTimeoutMs)
	}
	return zc
}
