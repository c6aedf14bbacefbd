package zab

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/zabkeeper/zabkeeper/engine/bugs"
)

// maxCounter is the zxid counter no proposal may use: as in ZooKeeper, a
// txn whose counter would be 0xffffffff is refused and the leader steps down
// so that a new epoch restarts the counter.
const maxCounter = 0xffffffff

// Peer is one server's ZAB state machine. It is not safe for concurrent use.
type Peer struct {
	cfg Config
	id  int64
	// active is the configuration in force, pending the configurations
	// of reconfig entries in the log not yet known committed, oldest
	// first (reconfig.go); voters and observers are active's lists.
	active        Membership
	pending       []Membership
	configsBuf    []*Membership // configs' result, reused
	configChanged bool
	// quietStart makes the next election round start without a
	// broadcast (reconfig.go, handOverTo).
	quietStart bool
	// replaced is the configuration the first activation replaced, kept
	// only by the planted bug StaleConfigQuorum.
	replaced  *Membership
	voters    []int64 // sorted
	observers []int64 // sorted
	app       Application
	rng       splitmix64
	// links numbers the learner sessions this server led (LearnerLink).
	links uint64
	// why is the reason of the last becomeLooking (Status.Why).
	why string
	// confirmSeq numbers leadership confirmation rounds across
	// leaderships, so a round of an earlier one never reads as confirmed.
	confirmSeq uint64

	// hs is the newest HardState; hsDirty marks it for the next Ready.
	hs      HardState
	hsDirty bool

	log memLog
	// persisted is the newest zxid the caller reported durable (or that
	// was durable at start).
	persisted int64
	// committed is the newest zxid known committed (maybe not yet durable
	// here).
	committed int64
	// applied is the newest zxid handed out in Committed (or installed by
	// a snapshot).
	applied int64
	// readyApplied is applied as of the last Ready; appliedAcked as of the
	// last Advance: what the application surely holds, so what the
	// in-memory log may forget.
	readyApplied, appliedAcked int64

	role        Role
	leader      int64
	epoch       int64
	established bool

	elec election
	// successor is the vote of the follower this server handed leadership
	// over to (transfer.go): in the election that follows, it votes for
	// that follower instead of itself; nil after that election.
	successor *Vote
	// handedOver is set once this server handed leadership over.
	handedOver bool
	// earlyVotes are Looking notifications received since the last
	// heartbeat period began while not looking, by sender (transfer.go).
	earlyVotes map[int64]Message
	// ticks counts Tick calls, for the heartbeat period.
	ticks int
	// down are the servers whose link broke (MsgLinkDown) and that have
	// not been heard from since: the election does not wait for their
	// votes.
	down  map[int64]bool
	lead  *leaderState
	learn *learnerState
	// pendingInfo holds FOLLOWERINFOs that arrived while this server was
	// still looking: its election may end with it leading them.
	pendingInfo map[int64]Message

	// The pending Ready.
	msgs []Message
	// spareMsgs is an array handed back by ReuseMessages, taken by the
	// next send instead of growing a fresh one.
	spareMsgs    []Message
	entries      []Entry
	truncate     *int64
	snap         *SnapshotInstall
	committedOut []Entry
	// spareCommitted is an array handed back by ReuseCommitted, taken by
	// the next maybeApply that hands entries out.
	spareCommitted []Entry
	appMsgs        []Message
	// spareApp is an array handed back by ReuseApp, taken by the next
	// queueApp.
	spareApp []Message
	reported roleKey

	// counterLimit is maxCounter; tests lower it to reach the overflow.
	counterLimit int64
}

// roleKey is what Ready.RoleChanged watches.
type roleKey struct {
	role         Role
	leader       int64
	epoch        int64
	established  bool
	transferring bool
}

// NewPeer returns a Peer starting in election (Looking) from the durable
// state init. app supplies snapshots for SNAP syncs.
func NewPeer(cfg Config, init Initial, app Application) *Peer {
	if cfg.ID == 0 {
		panic("zab: Config.ID must be non-zero")
	}
	if cfg.ElectionTicks <= 0 {
		cfg.ElectionTicks = 10
	}
	if cfg.MaxElectionTicks < cfg.ElectionTicks {
		cfg.MaxElectionTicks = cfg.ElectionTicks
	}
	if cfg.FinalizeTicks <= 0 {
		cfg.FinalizeTicks = 1
	}
	if cfg.PingTicks <= 0 {
		cfg.PingTicks = 1
	}
	if cfg.InitLimit <= 0 {
		cfg.InitLimit = 10
	}
	if cfg.SyncLimit <= 0 {
		cfg.SyncLimit = 5
	}
	if cfg.MaxLogEntries <= 0 {
		cfg.MaxLogEntries = DefaultMaxLogEntries
	}
	if cfg.SnapshotSizeFactor == 0 {
		cfg.SnapshotSizeFactor = DefaultSnapshotSizeFactor
	}
	if cfg.MinLogBytes <= 0 {
		cfg.MinLogBytes = DefaultMinLogBytes
	}
	if cfg.TransferTicks <= 0 {
		cfg.TransferTicks = DefaultTransferTicks
	}
	p := &Peer{
		cfg:          cfg,
		id:           cfg.ID,
		active:       newMembership(cfg.ConfigVersion, cfg.Voters, cfg.Observers),
		app:          app,
		rng:          splitmix64{state: cfg.Seed ^ uint64(cfg.ID)},
		hs:           init.HardState,
		pendingInfo:  map[int64]Message{},
		down:         map[int64]bool{},
		counterLimit: maxCounter,
	}
	p.voters, p.observers = p.active.Voters, p.active.Observers
	p.log.base = init.SnapshotZxid
	for _, e := range init.Log {
		if e.Zxid > p.log.last() {
			p.log.append(e)
			p.noteEntry(e)
		}
	}
	p.persisted = p.log.last()
	p.committed = init.SnapshotZxid
	p.applied = init.SnapshotZxid
	p.readyApplied = p.applied
	p.appliedAcked = p.applied
	p.reported = p.roleKey()
	p.becomeLooking("starting")
	return p
}

func sortedIDs(ids []int64) []int64 {
	out := append([]int64(nil), ids...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func containsID(ids []int64, id int64) bool {
	i := sort.Search(len(ids), func(i int) bool { return ids[i] >= id })
	return i < len(ids) && ids[i] == id
}

func (p *Peer) isVoter(id int64) bool { return containsID(p.voters, id) }

func (p *Peer) roleKey() roleKey {
	return roleKey{role: p.role, leader: p.leader, epoch: p.epoch, established: p.established,
		transferring: p.role == Leading && p.lead.transfer != nil}
}

// Tick advances logical time by one tick: election rounds, heartbeats,
// initLimit and syncLimit timeouts.
func (p *Peer) Tick() {
	p.ticks++
	if p.ticks%p.cfg.PingTicks == 0 {
		p.earlyVotes = nil
	}
	switch p.role {
	case Looking:
		p.tickElection()
	case Leading:
		p.tickLeader()
	default:
		p.tickLearner()
	}
}

// Step handles one message from another server (or MsgLinkDown).
func (p *Peer) Step(m Message) {
	if m.To != 0 && m.To != p.id {
		return
	}
	if p.lead != nil {
		p.lead.roundFresh = false
	}
	// Servers outside the configuration are heard too: a server about to
	// join syncs as a learner and gets election answers before a reconfig
	// adds it; its acks and votes count nowhere (reconfig.go).
	if m.From == p.id || m.From <= 0 {
		return
	}
	if m.Type == MsgLinkDown {
		p.down[m.From] = true
		// A FOLLOWERINFO kept from the link that broke is stale: led
		// on, it would answer with a LEADERINFO on the learner's next
		// link, which brings its own FOLLOWERINFO and gets a second one
		// (a learner, ZooKeeper's too, drops a link with two), and the
		// leader waits initLimit for a quorum that left.
		delete(p.pendingInfo, m.From)
	} else if p.down[m.From] {
		delete(p.down, m.From)
	}
	if m.Type == MsgNotification {
		p.stepNotification(m)
		return
	}
	switch p.role {
	case Looking:
		switch m.Type {
		case MsgFollowerInfo:
			p.pendingInfo[m.From] = m
		case MsgLinkDown:
			// A vote it was waiting for will not come.
			p.checkRoundQuorum()
		}
	case Leading:
		p.stepLeader(m)
	default:
		if m.Type == MsgFollowerInfo {
			// A follower may be about to lead without an election (the
			// designated leader of a reconfig, reconfig.go): keep what
			// learners sent it, as while looking.
			p.pendingInfo[m.From] = m
			return
		}
		p.stepLearner(m)
	}
}

// Propose appends data as the next txn of the established leader's epoch
// and broadcasts it. It returns the zxid, or false when this server is not an
// established leader, it is handing leadership over (TransferLeadership), or
// the epoch's counter is exhausted (which forces a new election).
func (p *Peer) Propose(data []byte) (int64, bool) {
	if p.role != Leading || !p.established || p.lead.transfer != nil {
		return 0, false
	}
	return p.propose(data)
}

// SendApp queues an application payload for server to (the leader, from a
// learner; a synced learner, from the leader). False when there is no such
// established link.
func (p *Peer) SendApp(to int64, payload []byte) bool {
	switch p.role {
	case Leading:
		if !p.established {
			return false
		}
		r := p.lead.learners[to]
		if r == nil || r.stage != recUpToDate {
			return false
		}
	case Following, Observing:
		if to != p.leader || p.learn.stage != lsUpToDate {
			return false
		}
	default:
		return false
	}
	p.send(Message{Type: MsgApp, To: to, Epoch: p.epoch, Payload: payload})
	return true
}

// Persisted reports that every entry handed out in Ready.Entries up to zxid
// is durable.
func (p *Peer) Persisted(zxid int64) {
	if last := p.log.last(); zxid > last {
		zxid = last
	}
	if zxid <= p.persisted {
		return
	}
	p.persisted = zxid
	switch p.role {
	case Leading:
		p.maybeSetCurrentEpoch()
		p.advanceCommit()
	case Following, Observing:
		p.maybeAckNewLeader()
		p.maybeAckProposals()
	}
	p.maybeApply()
}

// LearnerLink identifies the current session of a synced learner with
// this leader (0: none): it changes whenever the learner starts over
// (FOLLOWERINFO), as ZooKeeper's LearnerHandler does, so an answer owed to
// an earlier session is not sent on a later one.
func (p *Peer) LearnerLink(id int64) uint64 {
	if p.role != Leading {
		return 0
	}
	if r := p.lead.learners[id]; r != nil && r.stage == recUpToDate {
		return r.link
	}
	return 0
}

// CommitPoint is the newest zxid this server knows committed, applied or
// not (a learner applies only what it persisted too). A learner that gets
// a packet from its leader after the COMMITs before it has CommitPoint at
// least their zxid.
func (p *Peer) CommitPoint() int64 { return p.committed }

// Role returns what this server does and its leader (as Status's Role
// and Leader) without building a Status, which allocates on a leader:
// for callers that watch the role after every Ready.
func (p *Peer) Role() (Role, int64) { return p.role, p.leader }

// Status returns the current protocol state.
func (p *Peer) Status() Status {
	st := p.Summary()
	if p.role == Leading {
		st.Outstanding = len(p.log.after(max(p.committed, p.log.base)))
		// Collected from the map and sorted in place.
		n := 0
		for _, r := range p.lead.learners {
			if r.stage == recUpToDate {
				n++
			}
		}
		if n > 0 {
			st.Followers = make([]int64, 0, n)
			for id, r := range p.lead.learners {
				if r.stage == recUpToDate {
					st.Followers = append(st.Followers, id)
					switch {
					case r.observer:
						st.SyncedObservers++
					case !p.active.IsVoter(id):
						st.SyncedNonVoting++
					}
				}
			}
			slices.Sort(st.Followers)
		}
	}
	return st
}

// Summary is Status without the leader's Followers and Outstanding, which
// cost a walk of the learners and of the log and an allocation: for
// callers that look after every step (the simulator's checks).
func (p *Peer) Summary() Status {
	var st Status
	p.SummaryTo(&st)
	return st
}

// SummaryTo writes Summary into *st: the simulator keeps one per server
// and asks after every step, and the struct went through three copies.
func (p *Peer) SummaryTo(st *Status) {
	*st = Status{
		ID:            p.id,
		Role:          p.role,
		Leader:        p.leader,
		Epoch:         p.epoch,
		Established:   p.established,
		LastZxid:      p.log.last(),
		Committed:     min(p.committed, p.persisted, p.log.last()),
		HardState:     p.hs,
		HandedOver:    p.handedOver,
		Why:           p.why,
		ConfigVersion: p.active.Version,
		LogEntries:    len(p.log.ents),
		LogBytes:      p.log.bytes,
	}
	if n := len(p.pending); n > 0 {
		st.PendingConfig = p.pending[n-1].Version
	}
	if p.role == Leading {
		st.Transferring = p.lead.transfer != nil
	}
}

// logByteLimit is the byte bound of the in-memory log and of a DIFF:
// SnapshotSizeFactor times the application's data size, at least
// MinLogBytes.
// A negative factor turns the byte bound off.
func (p *Peer) logByteLimit() int64 {
	f := p.cfg.SnapshotSizeFactor
	if f < 0 {
		return math.MaxInt64
	}
	return max(p.cfg.MinLogBytes, int64(f*float64(p.app.DataSize())))
}

// maybeApply hands out, in zxid order, the entries that are both committed
// and locally durable.
func (p *Peer) maybeApply() {
	limit := min(p.committed, p.persisted)
	if limit <= p.applied || p.applied < p.log.base {
		return
	}
	for _, e := range p.log.after(p.applied) {
		if e.Zxid > limit {
			break
		}
		if p.committedOut == nil && p.spareCommitted != nil {
			p.committedOut, p.spareCommitted = p.spareCommitted, nil
		}
		p.committedOut = append(p.committedOut, e)
		p.applied = e.Zxid
	}
}

// appendEntry adds e to the local log and hands it to the caller to persist.
func (p *Peer) appendEntry(e Entry) {
	p.log.append(e)
	p.entries = append(p.entries, e)
	p.noteEntry(e)
}

// truncateLog discards the local history after z, durably (Ready.Truncate)
// and in memory, including entries not yet handed out.
func (p *Peer) truncateLog(z int64) {
	p.log.truncate(z)
	kept := p.entries[:0]
	for _, e := range p.entries {
		if e.Zxid <= z {
			kept = append(kept, e)
		}
	}
	p.entries = kept
	p.forgetPendingAfter(z)
	if p.truncate == nil || z < *p.truncate {
		t := z
		p.truncate = &t
	}
	if p.persisted > z {
		p.persisted = z
	}
	if p.committed > z {
		p.committed = z
	}
}

// installSnapshot replaces the state and the log with the leader's snapshot
// at z.
func (p *Peer) installSnapshot(z int64, data SnapshotData) {
	p.truncateLog(z)
	p.log.reset(z)
	p.entries = nil
	p.snap = &SnapshotInstall{Zxid: z, Data: data}
	// The snapshot supersedes any apply not handed out yet.
	p.committedOut = nil
	p.applied = z
	p.persisted = z
	p.committed = z
	// The pending configurations go with the log they came from: the
	// snapshot says nothing of whether their entries are the leader's
	// (one may be a divergent tail, a dead leader's last reconfig), and
	// activating one because the snapshot's zxid is past it would put in
	// force a configuration no quorum committed. Seed 2044 with reconfigs
	// had a learner do so and then refuse every NEWLEADER of its leader,
	// whose configuration was older, for good. ZooKeeper's learner leaves
	// its configuration alone at SNAP (Learner.syncWithLeader): it changes
	// by the reconfig txns the sync stream commits and by NEWLEADER's
	// configuration at UPTODATE, which covers every reconfig the snapshot
	// holds (a leader's last-seen configuration is at least its applied
	// one).
	p.pending = nil
	if p.appliedAcked > z {
		p.appliedAcked = z
	}
	if p.readyApplied > z {
		p.readyApplied = z
	}
}

func (p *Peer) setHardState(hs HardState) {
	if hs != p.hs {
		p.hs = hs
		p.hsDirty = p.hsDirty || !(p.role == Leading && bugs.Active(bugs.LeaderSkipsEpochPersist))
	}
}

// send queues m with this server as sender.
func (p *Peer) send(m Message) {
	m.From = p.id
	if p.msgs == nil && p.spareMsgs != nil {
		p.msgs, p.spareMsgs = p.spareMsgs, nil
	}
	p.msgs = append(p.msgs, m)
}

// becomeLooking leaves any leader or learner role and starts a new election
// round. Its reason is kept for Status.Why: the engine has no logger, and an
// operator needs to see why a server left its leader (a DIFF that did not
// fit, a silent leader, a lost quorum).
func (p *Peer) becomeLooking(format string, args ...any) {
	p.why = fmt.Sprintf(format, args...)
	p.role = Looking
	p.leader = 0
	p.epoch = 0
	p.established = false
	p.lead = nil
	p.learn = nil
	p.pendingInfo = map[int64]Message{}
	p.startElection()
}
