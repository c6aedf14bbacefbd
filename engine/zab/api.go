// Package zab is ZooKeeper Atomic Broadcast as a pure state machine: fast
// leader election, discovery, synchronization and broadcast, with no
// goroutines, clocks, sockets or files. The caller feeds it ticks, messages
// and durability acknowledgements and carries out its Ready batches, in the
// shape of etcd-io/raft's RawNode.
package zab

import (
	"bytes"
	"io"
	"strconv"
)

// Entry is one txn of the replicated history. Data is opaque to zab (the
// engine's marshalled txn).
type Entry struct {
	Zxid int64
	Data []byte
}

// Epoch returns the epoch part of a zxid (its high 32 bits).
func Epoch(zxid int64) int64 { return int64(uint64(zxid) >> 32) }

// Counter returns the counter part of a zxid (its low 32 bits).
func Counter(zxid int64) int64 { return zxid & 0xffffffff }

// MakeZxid builds a zxid from an epoch and a counter.
func MakeZxid(epoch, counter int64) int64 { return epoch<<32 | (counter & 0xffffffff) }

// Role is what a server is doing in the protocol.
type Role int

// Roles.
const (
	Looking Role = iota
	Following
	Leading
	Observing
)

func (r Role) String() string {
	switch r {
	case Looking:
		return "looking"
	case Following:
		return "following"
	case Leading:
		return "leading"
	case Observing:
		return "observing"
	}
	return "unknown"
}

// MsgType names a protocol message.
type MsgType int

// Message types. Election notifications travel between any two servers;
// the rest only between a leader and its learners (followers, observers).
const (
	// MsgNotification is a fast-leader-election vote: Vote.
	MsgNotification MsgType = iota + 1
	// MsgFollowerInfo opens discovery: a learner's AcceptedEpoch (Epoch);
	// Observer marks an observer. Zxid is 0 and ignored: ZooKeeper's
	// FOLLOWERINFO carries acceptedEpoch<<32, not the learner's last zxid,
	// which the leader takes from ACKEPOCH only.
	MsgFollowerInfo
	// MsgLeaderInfo proposes the new epoch (Epoch).
	MsgLeaderInfo
	// MsgAckEpoch acknowledges LEADERINFO with the learner's CurrentEpoch
	// (Epoch) and LastZxid (Zxid). Epoch is -1 when the learner had already
	// accepted that epoch: the ack then does not count toward the leader's
	// quorum (ZooKeeper's rule).
	MsgAckEpoch
	// MsgDiff starts a sync that only adds entries after the learner's
	// last zxid (ACKEPOCH's): they follow as MsgProposal/MsgCommit. Zxid
	// is, as in ZooKeeper's DIFF, the newest zxid of the leader's
	// committed history the diff brings the learner to (maxCommittedLog;
	// before the leader is established, its last zxid, the initial
	// history), never below the learner's last zxid. The learner refuses
	// a Zxid below its last zxid and a sync stream that has not reached
	// Zxid by MsgNewLeader.
	MsgDiff
	// MsgTrunc tells the learner to discard its log after Zxid, then
	// proposals follow as for a diff.
	MsgTrunc
	// MsgSnap carries the leader's state at Zxid (Snapshot); the learner
	// replaces its state and log with it.
	MsgSnap
	// MsgProposal carries one Entry; during sync and in broadcast.
	MsgProposal
	// MsgCommit commits every proposal up to Zxid.
	MsgCommit
	// MsgNewLeader ends the sync stream: Zxid is epoch<<32; Payload is the
	// leader's last-seen configuration (AppendMembership), as ZooKeeper's
	// NEWLEADER carries its config string; empty from a ZooKeeper leader.
	MsgNewLeader
	// MsgAck acknowledges a persisted proposal or NEWLEADER (Zxid).
	MsgAck
	// MsgUpToDate tells a synced learner to start serving.
	MsgUpToDate
	// MsgPing is the leader's heartbeat (Zxid = its last proposed zxid,
	// at least epoch<<32, as ZooKeeper's); a learner answers with MsgPing
	// echoing Zxid, as ZooKeeper's does, so the leader knows it is alive
	// and can prove it still leads (ConfirmLeadership).
	MsgPing
	// MsgInform carries a committed Entry to an observer.
	MsgInform
	// MsgApp carries an application Payload between a learner and its
	// established leader in the same Epoch (forwarded requests, session
	// touches, sync). Zab fences it by epoch and never reads Payload.
	MsgApp
	// MsgLinkDown is not sent: the caller steps it when the connection to
	// From broke, as a TCP error would tell a real server.
	MsgLinkDown
	// MsgTimeoutNow tells the followers of a departing leader to start an
	// election at once (Epoch: the leader's epoch; Zxid: its last zxid;
	// Vote: the successor it chose, which acknowledged Zxid). See
	// transfer.go.
	MsgTimeoutNow
	// MsgCommitAndActivate commits up to Zxid, the zxid of a reconfig
	// entry, and activates its configuration (ZooKeeper's
	// COMMITANDACTIVATE); Vote.Leader is the designated leader of the new
	// configuration (reconfig.go).
	MsgCommitAndActivate
	// MsgInformAndActivate is MsgInform for a reconfig entry, which
	// activates its configuration on an observer (ZooKeeper's
	// INFORMANDACTIVATE); Vote.Leader is the designated leader.
	MsgInformAndActivate
)

// msgTypeNames are the names traces and logs give message types (ZooKeeper's
// packet names where there is one).
var msgTypeNames = [...]string{
	MsgNotification: "NOTIFICATION", MsgFollowerInfo: "FOLLOWERINFO", MsgLeaderInfo: "LEADERINFO",
	MsgAckEpoch: "ACKEPOCH", MsgDiff: "DIFF", MsgTrunc: "TRUNC", MsgSnap: "SNAP",
	MsgProposal: "PROPOSAL", MsgCommit: "COMMIT", MsgNewLeader: "NEWLEADER", MsgAck: "ACK",
	MsgUpToDate: "UPTODATE", MsgPing: "PING", MsgInform: "INFORM", MsgApp: "APP",
	MsgLinkDown: "LINKDOWN", MsgTimeoutNow: "TIMEOUTNOW",
	MsgCommitAndActivate: "COMMITANDACTIVATE", MsgInformAndActivate: "INFORMANDACTIVATE",
}

func (t MsgType) String() string {
	if t > 0 && int(t) < len(msgTypeNames) {
		return msgTypeNames[t]
	}
	return "MSG(" + strconv.Itoa(int(t)) + ")"
}

// Vote is a fast-leader-election notification.
type Vote struct {
	// Leader is the proposed leader.
	Leader int64
	// Zxid is the proposed leader's last zxid.
	Zxid int64
	// PeerEpoch is the proposed leader's current epoch.
	PeerEpoch int64
	// Round is the sender's election round (logical clock).
	Round int64
	// State is the sender's role.
	State Role
}

// Caps are the zabkeeper extensions a leader/learner link carries beyond
// Apache ZooKeeper's quorum protocol: each end announces its own in a hello
// that ZooKeeper ignores (docs/ZAB.md, "One protocol"), and a link has
// the ones both announced. Zero is a link to (or behaving as) a ZooKeeper
// server.
type Caps uint64

// Capabilities.
const (
	// CapTransfer: the peer handles TIMEOUTNOW (leadership transfer).
	CapTransfer Caps = 1 << iota
	// CapStreamSnap: a SNAP body may come in chunk frames with other
	// packets between them.
	CapStreamSnap
	// CapMoveRequest: the leader takes a REQUEST of op -12 (moveSession).
	CapMoveRequest

	// AllCaps is every capability this version has.
	AllCaps = CapTransfer | CapStreamSnap | CapMoveRequest
)

// Message is one protocol message. Fields unused by a type stay zero.
type Message struct {
	Type     MsgType
	From, To int64
	// Epoch: the sender's epoch as the type defines it.
	Epoch int64
	// Zxid: as the type defines it.
	Zxid     int64
	Vote     Vote
	Entry    Entry
	Snapshot SnapshotData
	Observer bool
	Payload  []byte
	// Caps, on a received MsgFollowerInfo or MsgLeaderInfo: the
	// capabilities of the link it came on (both ends' hellos), stamped by
	// the transport; ignored when sending.
	Caps Caps
}

// HardState is what must be durable before any message that depends on it
// is sent: the epochs of discovery.
type HardState struct {
	// AcceptedEpoch is the newest epoch this server acknowledged in
	// LEADERINFO.
	AcceptedEpoch int64
	// CurrentEpoch is the epoch of the newest leader whose NEWLEADER this
	// server acknowledged.
	CurrentEpoch int64
}

// SnapshotInstall asks the caller to replace the application state with
// Data (the leader's state at Zxid) and make it durable.
type SnapshotInstall struct {
	Zxid int64
	Data SnapshotData
}

// SnapshotData is application state that zab carries from the leader's
// application to a learner's without reading it. The leader's is written
// out on demand from an immutable view of its state, so a SNAP sync never
// holds the whole state as bytes; a transport streams it in chunks and may
// hand the learner a copy spooled to disk. Implementations are safe for
// concurrent use: one snapshot may go to several learners at once.
type SnapshotData interface {
	// WriteTo writes the snapshot's bytes to w.
	WriteTo(w io.Writer) (int64, error)
	// Open returns a reader of the same bytes; the caller closes it.
	Open() (io.ReadCloser, error)
}

// SnapshotBytes is SnapshotData held in memory.
type SnapshotBytes []byte

// WriteTo writes b to w.
func (b SnapshotBytes) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(b)
	return int64(n), err
}

// Open returns a reader of b. It has Len, as bytes.Reader does (which
// io.NopCloser hides), so a reader can size its buffer to what is left.
func (b SnapshotBytes) Open() (io.ReadCloser, error) {
	return bytesReadCloser{bytes.NewReader(b)}, nil
}

// bytesReadCloser is a bytes.Reader with a no-op Close.
type bytesReadCloser struct{ *bytes.Reader }

func (bytesReadCloser) Close() error { return nil }

// ReadSnapshot returns the bytes of d; nil for a nil d.
func ReadSnapshot(d SnapshotData) ([]byte, error) {
	if d == nil {
		return nil, nil
	}
	if b, ok := d.(SnapshotBytes); ok {
		return b, nil
	}
	var buf bytes.Buffer
	if _, err := d.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Status is a read-only view of the protocol state.
type Status struct {
	ID   int64
	Role Role
	// Leader is the established leader's id when Following or Observing,
	// this server when Leading; 0 while Looking.
	Leader int64
	// Epoch is the epoch being led or followed.
	Epoch int64
	// Established is true once the leader completed synchronization
	// (broadcast phase) and, on a learner, once UPTODATE arrived.
	Established bool
	// LastZxid is the last zxid in the local log.
	LastZxid int64
	// Committed is the last zxid known committed and locally persisted.
	Committed int64
	// HardState is the current epochs.
	HardState HardState
	// Followers lists the learners synced with this leader (leader only).
	Followers []int64
	// SyncedObservers and SyncedNonVoting count those of Followers that
	// observe, and those that follow without being a voter of the active
	// configuration (a server about to join): ZooKeeper's mntr reports
	// them (synced_observers, synced_non_voting_followers).
	SyncedObservers, SyncedNonVoting int
	// Outstanding is the number of proposals in the log not yet known
	// committed (leader only).
	Outstanding int
	// Transferring is set while this leader hands leadership over and
	// proposes nothing (TransferLeadership).
	Transferring bool
	// HandedOver is set once this server, as leader, told a successor to
	// take over (TransferLeadership); it stays set.
	HandedOver bool
	// LogEntries and LogBytes are what the in-memory log holds: its
	// entries and the sum of their payload lengths.
	LogEntries int
	LogBytes   int64
	// Why is the reason this server last went Looking (e.g. "link to
	// leader 2 broke"), kept until the next time.
	Why string
	// ConfigVersion is the active configuration's version; PendingConfig
	// the version of the newest reconfig entry not yet activated, 0 when
	// none (reconfig.go).
	ConfigVersion, PendingConfig int64
}

// Ready is a batch of work for the caller. Obligations, in order:
//  1. make HardState durable (if set);
//  2. if Truncate is set, discard log entries with zxid > *Truncate, durably;
//  3. if Snapshot is set, install it in the application and make it durable;
//  4. send Messages — only after 1–3, which some of them depend on;
//  5. append Entries to the log; report their fsync later with Persisted
//     (zab never sends anything that depends on an entry's durability
//     before Persisted covers it, so the fsync may run alongside 4–6);
//  6. apply Committed entries in order;
//  7. call Advance.
type Ready struct {
	HardState *HardState
	Truncate  *int64
	Snapshot  *SnapshotInstall
	Entries   []Entry
	Messages  []Message
	// Committed are entries that are committed and locally persisted, to
	// apply in zxid order. Never includes entries covered by Snapshot.
	Committed []Entry
	// App are application messages received from the leader (on a
	// learner) or from a synced learner (on the leader), in arrival order.
	App []Message
	// RoleChanged is set when Status().Role, Leader, Epoch or Established
	// changed since the last Ready.
	RoleChanged bool
	// Config is the active configuration when it changed since the last
	// Ready (reconfig.go): the caller records it (ZooKeeper's dynamic
	// config file) and connects to its members.
	Config *Membership
}

// Application is what zab needs from the state machine above it.
type Application interface {
	// Snapshot returns the application state at the newest applied zxid,
	// which is the newest committed zxid, for a SNAP sync. The data must
	// not change afterwards (it may be written out much later).
	Snapshot() (zxid int64, data SnapshotData)
	// DataSize is the approximate size in bytes of the application state
	// a snapshot carries; it scales the log's byte bound.
	DataSize() int64
}

// Defaults of the in-memory log's bounds (Config).
const (
	// DefaultMaxLogEntries is ZooKeeper's default zookeeper.commitLogCount.
	DefaultMaxLogEntries = 500
	// DefaultSnapshotSizeFactor is ZooKeeper's default
	// zookeeper.snapshotSizeFactor.
	DefaultSnapshotSizeFactor = 0.33
	// DefaultMinLogBytes is the default floor of the byte bound.
	DefaultMinLogBytes = 4 << 20
)

// Config configures a Peer.
type Config struct {
	// ID is this server's id (myid), non-zero.
	ID int64
	// Voters are the ids of the participants (this one included unless it
	// is an observer). A single voter elects itself at once.
	Voters []int64
	// Observers are the ids of observers.
	Observers []int64
	// InitLimit is how many ticks discovery and sync may take.
	InitLimit int
	// SyncLimit is how many ticks a learner may go without hearing from the
	// leader, and the leader without hearing from a learner.
	SyncLimit int
	// ElectionTicks is the base interval between election notification
	// rounds; jittered from Seed.
	ElectionTicks int
	// MaxElectionTicks caps the interval: each rebroadcast that did not end
	// the election doubles it, up to this (ZooKeeper's notification timeout
	// doubles up to maxNotificationInterval). Zero means ElectionTicks (no
	// backoff).
	MaxElectionTicks int
	// FinalizeTicks is how many ticks a voter whose proposal a quorum of
	// the round backs waits for a better vote before deciding (ZooKeeper's
	// finalizeWait). It does not wait for voters whose link is down
	// (MsgLinkDown, until the next message from them), nor when every
	// voter agrees. Zero means 1.
	FinalizeTicks int
	// PingTicks is how many ticks apart the leader's heartbeats go out, and
	// how long a Looking notification a follower received is kept for a
	// leadership transfer. Zero means 1 (every tick).
	PingTicks int
	// MaxLogEntries bounds the number of applied entries the in-memory log
	// keeps for DIFF syncs (ZooKeeper's zookeeper.commitLogCount); a learner
	// further behind gets a SNAP. Zero means DefaultMaxLogEntries.
	MaxLogEntries int
	// SnapshotSizeFactor bounds the same log by bytes: it keeps at most
	// this share of the application's data size (Application.DataSize) in
	// applied payloads, but never less than MinLogBytes, and a learner whose
	// missing entries weigh more gets a SNAP instead of a DIFF — ZooKeeper's
	// zookeeper.snapshotSizeFactor, which weighs a diff from the txn log
	// against the snapshot the same way. Zero means
	// DefaultSnapshotSizeFactor; negative means no byte bound at all
	// (count only, as ZooKeeper with a negative factor syncs from its
	// in-memory committed log of commitLogCount txns or by snapshot).
	SnapshotSizeFactor float64
	// MinLogBytes is the floor of the byte bound, so a small tree keeps a
	// useful diff window. Zero means DefaultMinLogBytes.
	MinLogBytes int64
	// Seed seeds the deterministic jitter source.
	Seed uint64
	// TransferTicks bounds how many ticks a leadership transfer waits for
	// a follower to catch up before it is abandoned; 0 means
	// DefaultTransferTicks.
	TransferTicks int
	// ConfigVersion is the version of the configuration Voters and
	// Observers form (reconfig.go): the zxid of the reconfig entry that
	// made it, 0 for a configuration no reconfig made.
	ConfigVersion int64
	// ReconfigOf recognizes a reconfig entry: the configuration an entry's
	// Data proposes (its Version is ignored: it becomes the entry's zxid).
	// Nil: no entry is one (membership never changes).
	ReconfigOf func(data []byte) (Membership, bool)
}

// Initial is the durable state a Peer starts from, as recovered from disk.
type Initial struct {
	HardState HardState
	// SnapshotZxid is the zxid of the snapshot the application loaded;
	// everything up to it is committed.
	SnapshotZxid int64
	// Log are the entries in the durable log after SnapshotZxid, in order.
	// They are not yet known to be committed.
	Log []Entry
}
