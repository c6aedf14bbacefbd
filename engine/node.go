package engine

import (
	"bytes"
	"fmt"
	"maps"
	"slices"

	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// Node is one replica: ZAB, the data tree, the sessions and the request
// pipeline. Every server runs one, standalone servers included (as the only
// voter of a one-server ensemble).
//
// Writes from clients on any server go to the leader, which validates them
// against its tree plus its outstanding proposals (tree.Prepare), turns each
// into a txn (an error txn when it fails, so the server holding the client
// learns the outcome in order), and proposes it; every replica applies
// committed txns in zxid order, and the server holding the session answers.
// Sessions are created, closed and expired by txns the leader proposes, so
// ephemerals vanish everywhere at the same zxid. A sync is answered once
// what was proposed before it committed and the leader confirmed it still
// leads: a read after it reflects every write committed before the sync
// was issued. What goes on each peer link beyond ZooKeeper's protocol
// depends on that link's capabilities (peercaps.go).
//
// With Config.ReadOnlyMode, a server that has been looking for a leader for
// a grace period serves read-only clients from its own state, with local
// sessions and no txns (readonly.go).
//
// A Node is not safe for concurrent use: one goroutine drives it.
type Node struct {
	// snapDigest is the digest a fuzzy snapshot recorded for a zxid past
	// its own, checked when the log applied up to it; nil once checked.
	snapDigest *tree.SnapshotDigest
	cfg        Config
	zab        *zab.Peer
	tree       *tree.Tree
	// incoming is the snapshot of the SNAP being stepped, read and checked
	// by Step before zab sees the message; snapErr is why the last one
	// was refused.
	incoming *LoadedSnapshot
	snapErr  error

	sessions    map[int64]*session
	conns       map[ConnID]*conn
	nextSession int64

	now  int64 // newest wall-clock ms seen in an input
	tick int64

	status  zab.Status // as of the last role change
	serving bool       // established as leader or learner
	halted  error      // why this node may never serve (Halted)

	// Leader only: the newest proposed zxid and the proposed txns not yet
	// applied (kept to avoid unmarshalling our own proposals).
	lastProposed int64
	proposed     map[int64]*tree.Txn
	// proposedOwners are the session owners named by createSession and
	// moveSession txns proposed but not yet applied, until a closeSession
	// is proposed (leader only): session checks go by the newest proposal,
	// as tree.Prepare goes by the tree plus the changes in flight.
	proposedOwners map[int64]proposedOwner

	lastApplied int64

	// held are requests that reached the leader while it was handing
	// leadership over (TransferLeadership), in arrival order: led if the
	// transfer is abandoned, dropped with the clients' connections if it
	// succeeds.
	held []heldRequest

	// spareQueued are answered requests' records for Submit to reuse
	// (client.go's newQueued).
	spareQueued []*queued
	// spareOutputs is a delivered batch's Outputs array (ReuseOutputs).
	spareOutputs []Output

	// peercaps.go: owners are the session owners the leader keeps in
	// memory for sessions whose replicated owner is unknown, as ZooKeeper's
	// SessionTrackerImpl does (0 or absent: unknown, set by the next
	// request); movedHere are the zxids of the moves the leader answered
	// this learner's REVALIDATEs with, by session; leaderSyncs are syncs the
	// leader answers once the proposals outstanding at their arrival
	// commit; learnerSyncs are this learner's forwarded syncs waiting for
	// their SYNC, in order; syncsDue are syncs whose SYNC arrived, waiting
	// for what committed before it to apply.
	owners       map[int64]int64
	movedHere    map[int64]int64
	leaderSyncs  []pendingSync
	learnerSyncs []pendingSync
	syncsDue     []pendingSync

	// pendingConnects are handshakes waiting for the txn that creates
	// their session or moves it to this server (or for the REVALIDATE
	// reply), by session id.
	pendingConnects map[int64]ConnID
	// touched are sessions seen alive here since the last report to the
	// leader, with their timeouts (learners only).
	touched map[int64]int32

	// peerErrs are the peer payloads refused since the last PeerErrors
	// call; peerErrCount counts them all (forward.go).
	peerErrs     []PeerError
	peerErrCount int64
	// fwdAuth are the authinfo Ids of forwarded REQUESTs, by their
	// encoding (Packet.RawAuth), decoded once and shared read-only by every
	// request that carries the same (forward.go); fwdBody is a learner's
	// scratch for a forwarded record's encoding.
	fwdAuth map[string][]proto.Id
	fwdBody proto.Encoder

	// Read-only mode (readonly.go): readOnly while serving read-only
	// clients; lookingFrom is the first input time seen since this server
	// last became Looking (valid when lookingKnown); localSessions are the
	// sessions of read-only clients, never replicated.
	readOnly      bool
	lookingFrom   int64
	lookingKnown  bool
	localSessions map[int64]*session

	reapCountdown int
	// configOut is the version of the configuration last reported in
	// Ready.Config (reconfig.go).
	configOut int64
	batches   []Ready
	// handedOut is set once Ready returned batches[0]: new work then goes
	// into a later batch, so input between Ready and Advance is never lost.
	handedOut bool
}

// Durable is the state a Node starts from, as recovered from disk.
type Durable struct {
	// HardState holds the epochs of discovery.
	HardState zab.HardState
	// SnapshotZxid is the zxid of Snapshot; 0 without one.
	SnapshotZxid int64
	// Snapshot is a snapshot written by Node.Snapshot, or nil.
	Snapshot []byte
	// Loaded is a snapshot read by ReadSnapshot, used instead of Snapshot
	// (and SnapshotZxid) when set.
	Loaded *LoadedSnapshot
	// Log is every logged txn after the snapshot, in zxid order. Whether
	// they are committed is for the ensemble to say: they are applied once
	// the protocol commits them.
	Log []zab.Entry
}

// Restore builds a Node from durable state. A standalone server elects
// itself at once; a member of an ensemble starts looking for a leader.
func Restore(cfg Config, d Durable) (*Node, error) {
	cfg.normalize()
	cfg.Tree.ReconfigEnabled = cfg.ReconfigEnabled
	n := &Node{
		cfg:             cfg,
		tree:            tree.New(cfg.Tree),
		sessions:        map[int64]*session{},
		conns:           map[ConnID]*conn{},
		proposed:        map[int64]*tree.Txn{},
		proposedOwners:  map[int64]proposedOwner{},
		pendingConnects: map[int64]ConnID{},
		owners:          map[int64]int64{},
		movedHere:       map[int64]int64{},
		touched:         map[int64]int32{},
		localSessions:   map[int64]*session{},
		nextSession:     initialSessionID(cfg.ServerID, cfg.StartTime),
		reapCountdown:   cfg.ReapIntervalTicks,
	}
	switch {
	case d.Loaded != nil:
		n.adopt(d.Loaded)
	case d.Snapshot != nil:
		if err := n.LoadSnapshot(d.SnapshotZxid, bytes.NewReader(d.Snapshot)); err != nil {
			return nil, err
		}
	}
	for i, e := range d.Log {
		if i > 0 && e.Zxid <= d.Log[i-1].Zxid {
			return nil, fmt.Errorf("engine: restore: log zxid 0x%x after 0x%x", e.Zxid, d.Log[i-1].Zxid)
		}
	}
	log := d.Log
	for len(log) > 0 && log[0].Zxid <= n.lastApplied {
		log = log[1:] // covered by the snapshot
	}
	n.restoreConfig()
	n.zab = zab.NewPeer(n.cfg.zabConfig(), zab.Initial{HardState: d.HardState, SnapshotZxid: n.lastApplied, Log: log}, (*application)(n))
	n.pump()
	return n, nil
}

// proposedOwner is a session owner named by a proposed txn.
type proposedOwner struct {
	owner int64
	zxid  int64
}

// id is this server's id as zab and session owners know it.
func (n *Node) id() int64 { return n.cfg.zabID() }

// application adapts the Node to zab.Application.
type application Node

// DataSize is the tree's approximate data size (paths and data), which
// scales zab's byte bound on its in-memory log.
func (a *application) DataSize() int64 { return a.tree.ApproximateDataSize() }

// LastZxid returns the zxid of the newest applied txn.
func (n *Node) LastZxid() int64 { return n.lastApplied }

// Status returns the protocol state.
func (n *Node) Status() zab.Status { return n.zab.Status() }

// StatusSummary is Status without the leader's Followers and Outstanding
// (zab.Peer.Summary), for callers that look after every Ready.
func (n *Node) StatusSummary() zab.Status { return n.zab.Summary() }

// StatusSummaryTo writes StatusSummary into *st (zab.Peer.SummaryTo).
func (n *Node) StatusSummaryTo(st *zab.Status) { n.zab.SummaryTo(st) }

// Role returns the protocol role and the leader's id (Status's Role and
// Leader) without allocating, for callers that look after every Ready.
func (n *Node) Role() (zab.Role, int64) { return n.zab.Role() }

// HasLearner reports whether this server leads and still holds learner id
// (zab.Peer.HasLearner): a transport closes the link of a learner the
// leader dropped.
func (n *Node) HasLearner(id int64) bool { return n.zab.HasLearner(id) }

// Serving reports whether this server serves clients: it is an
// established leader, or a learner synced with one.
func (n *Node) Serving() bool { return n.serving }

// Halted returns why this node may never serve, or nil: the tree it
// recovered is one no ZooKeeper could have written (a node's ACL list was
// in neither the snapshot nor a replayed txn). Whoever drives the node
// should stop it with this error and leave its files to the operator; the
// node itself stays up but never serves.
func (n *Node) Halted() error { return n.halted }

// Outstanding returns the number of proposals not yet applied (leader).
func (n *Node) Outstanding() int { return len(n.proposed) }

// Tree gives read access to the data tree for statistics and checks.
// Callers must not modify it and must use it only from the goroutine that
// drives the Node.
func (n *Node) Tree() *tree.Tree { return n.tree }

// SessionCount returns the number of live sessions.
func (n *Node) SessionCount() int { return len(n.sessions) }

// SessionIDs returns the ids of the live sessions, sorted.
func (n *Node) SessionIDs() []int64 { return slices.Sorted(maps.Keys(n.sessions)) }

// SessionOf returns the session bound to a connection, or 0.
func (n *Node) SessionOf(c ConnID) int64 {
	if cn := n.conns[c]; cn != nil {
		return cn.session
	}
	return 0
}

// HasReady reports whether Ready has a batch for the caller.
func (n *Node) HasReady() bool { return len(n.batches) > 0 }

// Ready returns the oldest pending batch. The caller carries it out as
// Ready's documentation says, then calls Advance; batches must be handled
// strictly in order.
func (n *Node) Ready() Ready {
	if len(n.batches) == 0 {
		return Ready{}
	}
	n.handedOut = true
	return n.batches[0]
}

// Advance acknowledges the batch returned by Ready.
func (n *Node) Advance() {
	if n.handedOut && len(n.batches) > 0 {
		n.batches[0] = Ready{}
		if len(n.batches) == 1 {
			// Empty again: the next batch reuses the array from its start
			// instead of growing a new one past the handed-out slots.
			n.batches = n.batches[:0]
		} else {
			n.batches = n.batches[1:]
		}
	}
	n.handedOut = false
}

// ReuseMessages hands the Messages of a batch back once the caller has
// carried them out and keeps no reference to the slice or its array (the
// simulator, which encodes every message before Advance returns): the
// Node's later messages reuse its array. A caller that queues messages
// for later never calls it.
func (n *Node) ReuseMessages(msgs []zab.Message) { n.zab.ReuseMessages(msgs) }

// tail returns the batch new work goes into. A batch with durable-state
// changes (epochs, truncation, snapshot) starts a new batch, so that the
// caller's persist-then-send order follows the protocol's.
func (n *Node) tail(fresh bool) *Ready {
	last := len(n.batches) - 1
	if last < 0 || (last == 0 && n.handedOut) || (fresh && !n.batches[last].empty()) {
		n.batches = append(n.batches, Ready{})
	}
	return &n.batches[len(n.batches)-1]
}

func (r *Ready) empty() bool {
	return r.HardState == nil && r.Truncate == nil && r.Snapshot == nil && len(r.Entries) == 0 &&
		len(r.Messages) == 0 && len(r.Outputs) == 0 && r.Committed == 0 && r.DigestMismatch == nil && r.Config == nil
}

func (n *Node) output(o Output) {
	b := n.tail(false)
	if b.Outputs == nil && n.spareOutputs != nil {
		b.Outputs, n.spareOutputs = n.spareOutputs, nil
	}
	b.Outputs = append(b.Outputs, o)
}

// maxSpareOutputs bounds the Outputs array ReuseOutputs keeps, so that one
// large fan-out does not pin a large array.
const maxSpareOutputs = 4096

// ReuseOutputs hands the Outputs of a batch back once the caller has
// delivered them and keeps no reference to the slice, its array or its
// elements (the server, which encodes every output before Advance): the
// Node's later outputs reuse the array instead of growing a new one per
// batch. A caller that keeps outputs for later never calls it.
func (n *Node) ReuseOutputs(outs []Output) {
	if cap(outs) == 0 || cap(outs) > maxSpareOutputs {
		return
	}
	clear(outs)
	n.spareOutputs = outs[:0]
}

func (n *Node) observe(t int64) {
	if t > n.now {
		n.now = t
	}
}

// pump moves everything zab has ready into the Node's batches: durable
// state and messages for the caller, committed txns applied at once,
// application messages handled. It runs after every input.
func (n *Node) pump() {
	defer n.noteConfig()
	for {
		n.pumpZab()
		// Syncs answered now may queue SYNC packets: pump those too.
		if n.flushSyncs(); !n.zab.HasReady() {
			return
		}
	}
}

func (n *Node) pumpZab() {
	for n.zab.HasReady() {
		zr := n.zab.Ready()
		n.zab.Advance()
		if zr.RoleChanged && n.readOnly && n.zab.Status().Role != zab.Looking {
			// Before anything of the new role is applied: read-only
			// clients never see a state the sync is about to replace.
			n.leaveReadOnly("read-only mode ends: the election is over")
		}
		b := n.tail(zr.HardState != nil || zr.Truncate != nil || zr.Snapshot != nil)
		if zr.HardState != nil {
			hs := *zr.HardState
			b.HardState = &hs
		}
		if zr.Truncate != nil {
			t := *zr.Truncate
			b.Truncate = &t
		}
		if zr.Snapshot != nil {
			b.Snapshot = n.installSnapshot(zr.Snapshot)
		}
		// zab hands its slices over with Ready: an empty batch takes
		// them as they are instead of copying.
		if len(b.Entries) == 0 {
			b.Entries = zr.Entries
		} else {
			b.Entries = append(b.Entries, zr.Entries...)
		}
		if len(b.Messages) == 0 {
			b.Messages = zr.Messages
		} else {
			b.Messages = append(b.Messages, zr.Messages...)
			n.zab.ReuseMessages(zr.Messages) // copied: zab may refill it
		}
		for _, e := range zr.Committed {
			n.applyEntry(e)
		}
		n.zab.ReuseCommitted(zr.Committed) // applied: zab may refill it
		for _, m := range zr.App {
			n.handleApp(m)
		}
		n.zab.ReuseApp(zr.App) // handled: zab may refill it
		if zr.RoleChanged {
			n.roleChanged()
		}
	}
}

// roleChanged reacts to a new role, leader or epoch: a server that stops
// serving closes its clients (they reconnect, as with ZooKeeper), and a new
// leader takes over session expiry.
func (n *Node) roleChanged() {
	st := n.zab.Status()
	prev := n.status
	n.status = st
	same := prev.Role == st.Role && prev.Leader == st.Leader && prev.Epoch == st.Epoch
	// Any change restarts the read-only grace period: it counts from the
	// first input time seen while looking.
	n.lookingKnown = false
	if n.readOnly && st.Role != zab.Looking {
		n.leaveReadOnly("read-only mode ends: the election is over")
	}
	if n.serving && (!same || !st.Established) {
		n.stopServing(fmt.Sprintf("server stopped serving: now %v of epoch %d", st.Role, st.Epoch))
	}
	if n.serving && same && prev.Transferring && !st.Transferring && st.Role == zab.Leading {
		// The transfer was abandoned: lead what waited for it.
		held := n.held
		n.held = nil
		for _, h := range held {
			n.lead(h.f, h.rec)
		}
	}
	if !n.serving && st.Established && n.halted == nil {
		// Every txn up to the leader's state is applied now: a node a
		// fuzzy snapshot (ours at start-up or a leader's SNAP) loaded
		// without its ACL list got it from the replayed create or setACL
		// txn, or the snapshot was not one ZooKeeper could have written.
		// Serving it with a wrong ACL would be worse than stopping.
		if err := n.tree.CheckACLs(); err != nil {
			n.halted = fmt.Errorf("engine: cannot serve the tree recovered at zxid 0x%x: %w", n.lastApplied, err)
			return
		}
		n.serving = true
		if st.Role == zab.Leading {
			n.lastProposed = st.LastZxid
			for _, id := range slices.Sorted(maps.Keys(n.sessions)) {
				n.touch(n.sessions[id]) // a fresh grace period under the new leader
			}
			n.reapCountdown = n.cfg.ReapIntervalTicks
		}
	}
}

func (n *Node) stopServing(why string) {
	n.serving = false
	n.held = nil
	n.tree.AbandonPending()
	clear(n.proposed)
	clear(n.proposedOwners)
	clear(n.pendingConnects)
	clear(n.touched)
	clear(n.owners)
	clear(n.movedHere)
	n.leaderSyncs, n.learnerSyncs, n.syncsDue = nil, nil, nil
	for _, s := range n.sessions {
		s.closing = false
	}
	ids := make([]ConnID, 0, len(n.conns))
	for id := range n.conns {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		n.dropConn(id)
		n.closeConn(id, why)
	}
}

// Step handles a message from another server.
//
// A SNAP's snapshot is read and checked first: one that does not load (a
// bad leader, a damaged spool) is never installed; the Node drops the
// leader as if the link broke, and SnapshotError reports why.
func (n *Node) Step(m zab.Message) {
	if m.Type == zab.MsgSnap {
		st, err := n.readIncoming(m)
		if err != nil {
			n.snapErr = fmt.Errorf("engine: snapshot 0x%x from server %d: %w", m.Zxid, m.From, err)
			m = zab.Message{Type: zab.MsgLinkDown, From: m.From, To: m.To}
		} else {
			n.incoming = st
			defer func() { n.incoming = nil }()
		}
	}
	n.zab.Step(m)
	n.pump()
}

// SnapshotError returns, once, why the last SNAP from a leader was
// refused, or nil.
func (n *Node) SnapshotError() error {
	err := n.snapErr
	n.snapErr = nil
	return err
}

// Persisted reports that the entries handed out in Ready up to zxid are
// durable.
func (n *Node) Persisted(zxid int64) {
	n.zab.Persisted(zxid)
	n.pump()
}

// Tick advances logical time by one tick: the protocol's timers, session
// expiry (leader), liveness reports (learners), and every reap interval the
// deletion of empty containers and expired TTL nodes (leader); while not
// serving, the start of read-only mode and the expiry of local sessions.
// now is the caller's wall clock in ms.
func (n *Node) Tick(now int64) {
	n.observe(now)
	n.tick++
	n.zab.Tick()
	n.pump()
	// Sessions, reaping and liveness reports keep ZooKeeper's pace: once
	// per tickTime, however finely the caller ticks.
	whole := n.tick%int64(n.cfg.TicksPerTickTime) == 0
	if !n.serving {
		n.maybeEnterReadOnly()
		if n.readOnly && whole {
			n.expireLocalSessions()
		}
		return
	}
	if !whole {
		return
	}
	if n.status.Role == zab.Leading {
		n.expireSessions()
		n.reap()
	} else if len(n.touched) > 0 {
		touches := make([]quorum.Touch, 0, len(n.touched))
		for _, id := range slices.Sorted(maps.Keys(n.touched)) {
			touches = append(touches, quorum.Touch{Session: id, Timeout: n.touched[id]})
		}
		clear(n.touched)
		n.zab.SendApp(n.status.Leader, encodeTouches(touches))
	}
	n.pump()
}
