// Package bugs plants known consensus and coordination bugs — most of them
// real Apache ZooKeeper bugs — so the simulator can show it finds each one.
//
// Only a build with the simbugs tag can switch one on. In every other build
// Active is a constant false, so the compiler removes the planted code and
// the production binary contains none of it (TestNoBugsInProduction).
package bugs

// Bug names one planted bug.
type Bug int

// The planted bugs.
const (
	None Bug = iota
	// AckBeforePersist: a follower ACKs a proposal before it is durable.
	AckBeforePersist
	// CommitBeforeQuorum: the leader commits before a quorum acked.
	CommitBeforeQuorum
	// AckNewLeaderBeforePersist: a follower ACKs NEWLEADER before the
	// proposals of its DIFF sync are durable (ZOOKEEPER-3911).
	AckNewLeaderBeforePersist
	// EpochBeforePersist: a follower adopts the new currentEpoch before the
	// synced txns are durable, so a crash leaves a new epoch over a short
	// log that can win an election and truncate committed txns
	// (ZOOKEEPER-4643).
	EpochBeforePersist
	// KeepDivergentTail: a follower keeps an uncommitted divergent tail
	// instead of truncating it (ZOOKEEPER-1154, ZOOKEEPER-2832).
	KeepDivergentTail
	// ReuseEpoch: a new leader reuses the newest accepted epoch instead of
	// choosing a higher one.
	ReuseEpoch
	// EphemeralSurvivesExpiry: closing a session forgets ephemerals whose
	// create is still in flight, so they outlive their session
	// (ZOOKEEPER-2355).
	EphemeralSurvivesExpiry
	// ReadBeforeLastZxid: a server accepts a client that has seen a newer
	// zxid than it applied, so the client's reads go back in time. (It also
	// answers a reconnect from its own session table instead of asking the
	// leader with a moveSession, which would make it catch up first.)
	ReadBeforeLastZxid
	// SyncWithoutQuorum: the leader answers sync without confirming that a
	// quorum still follows it, so a deposed leader's sync-then-read is
	// stale (ZOOKEEPER-1675).
	SyncWithoutQuorum
	// EstablishWithoutNewLeaderQuorum: the leader starts broadcasting (and
	// counts its whole history committed) as soon as it set its own
	// currentEpoch, without waiting for a quorum of NEWLEADER acks.
	EstablishWithoutNewLeaderQuorum
	// LeaderSkipsEpochPersist: a leader never persists its acceptedEpoch
	// and currentEpoch; only followers do. A leader that restarts has
	// forgotten the epoch it led.
	LeaderSkipsEpochPersist
	// FollowerDropsWatchEvents: followers and observers never deliver watch
	// events (the leader does), so watches set through them never fire.
	FollowerDropsWatchEvents
	// TransferIgnoresCaps: a leader handing over sends TIMEOUTNOW to every
	// synced follower and may choose any as its successor, including one
	// whose link lacks CapTransfer (a ZooKeeper server, which knows no
	// such packet).
	TransferIgnoresCaps
	// MoveRequestIgnoresCaps: a learner moves a reconnecting client's
	// session with a REQUEST of op -12 (moveSession) whatever its leader's
	// link says; a ZooKeeper leader makes no txn of it and never answers,
	// so the client's handshake hangs.
	MoveRequestIgnoresCaps
	// ActivateBeforeNewQuorum: a leader commits (and activates) a
	// reconfig, and the txns after it, once a quorum of the old voters
	// acked, without waiting for a quorum of the new ones.
	ActivateBeforeNewQuorum
	// StaleConfigQuorum: a server keeps requiring a quorum of the
	// configuration the first reconfig replaced, so after a rolling
	// membership change that retired most of its servers the leader can
	// commit nothing (the shape of ZOOKEEPER-3829).
	StaleConfigQuorum
	numBugs
)

var names = [...]string{
	None:                      "none",
	AckBeforePersist:          "ack-before-persist",
	CommitBeforeQuorum:        "commit-before-quorum",
	AckNewLeaderBeforePersist: "ack-newleader-before-persist",
	EpochBeforePersist:        "epoch-before-persist",
	KeepDivergentTail:         "keep-divergent-tail",
	ReuseEpoch:                "reuse-epoch",
	EphemeralSurvivesExpiry:   "ephemeral-survives-expiry",
	ReadBeforeLastZxid:        "read-before-last-zxid",
	SyncWithoutQuorum:         "sync-without-quorum",

	EstablishWithoutNewLeaderQuorum: "establish-without-newleader-quorum",
	LeaderSkipsEpochPersist:         "leader-skips-epoch-persist",
	FollowerDropsWatchEvents:        "follower-drops-watch-events",
	TransferIgnoresCaps:             "transfer-ignores-caps",
	MoveRequestIgnoresCaps:          "move-request-ignores-caps",
	ActivateBeforeNewQuorum:         "activate-before-new-quorum",
	StaleConfigQuorum:               "stale-config-quorum",
}

func (b Bug) String() string {
	if b >= 0 && b < numBugs {
		return names[b]
	}
	return "unknown"
}

// All lists every planted bug, None excluded.
func All() []Bug {
	out := make([]Bug, 0, numBugs-1)
	for b := None + 1; b < numBugs; b++ {
		out = append(out, b)
	}
	return out
}

// Parse returns the bug with the given name.
func Parse(name string) (Bug, bool) {
	for b := None; b < numBugs; b++ {
		if names[b] == name {
			return b, true
		}
	}
	return None, false
}
