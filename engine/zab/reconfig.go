package zab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/zabkeeper/zabkeeper/engine/bugs"
)

// Dynamic reconfiguration (ZooKeeper 3.5+'s reconfig). Membership is
// replicated state: the configuration in force (active) is the one made by
// the newest committed reconfig entry of the history (or the one the server
// started with), its Version the zxid of that entry, as ZooKeeper's
// QuorumVerifier version. A reconfig entry that is in the log but not known
// committed is pending (ZooKeeper's last-seen configuration); the engine
// proposes one only while none is (at most one in flight).
//
// Rules, as ZooKeeper's Leader and QuorumPeer apply them:
//   - While a configuration is pending, every quorum — acks of proposals,
//     NEWLEADER and ACKEPOCH acks, election agreement, leadership
//     confirmation, the leader's liveness — needs a quorum of the active
//     voters AND of every pending configuration's voters (quorumIn). A
//     server counts only where it is a voter: a learner that is not (a
//     server about to join, an observer, a removed server) is synced and
//     sent proposals but its acks and votes never count. One that is a
//     voter of some configuration in play counts there whatever role it
//     connected in (liveVoter), as ZooKeeper's leader counts acks by
//     membership; an observer gets no proposals, so it acks only NEWLEADER.
//   - A configuration activates when its entry commits, at that point of
//     the txn stream on every replica: on the leader when it commits the
//     entry (advanceCommit), on followers with COMMITANDACTIVATE, on
//     observers with INFORMANDACTIVATE, on a learner that syncs past it when
//     the sync's COMMIT or UPTODATE covers it, and on a new leader when it
//     is established (its whole history commits).
//   - A leader that is not a voter of the configuration it activates hands
//     over to a designated leader (ZooKeeper's getDesignatedLeader): a voter
//     of the new configuration that acked the reconfig entry, the one that
//     acked the most after it (then the highest id). COMMITANDACTIVATE
//     names it; the designated server starts leading and the others follow
//     it at once, without an election (ZooKeeper's reconfigFlag and
//     updateServerState). Discovery runs as always, so safety does not rest
//     on the hand-over; a server that misses it times out into an election.
//   - NEWLEADER carries the leader's last-seen configuration. A learner
//     whose active configuration is newer refuses it ("Follower is ahead of
//     the leader (has a later activated configuration)"); one that is older
//     adopts it at UPTODATE (it synced by snapshot past the entry). A
//     SNAP activates nothing: the pending configurations of the log it
//     replaces are dropped with it (installSnapshot).
//   - Activation changes roles: a follower that became an observer, or an
//     observer that became a voter, reconnects to its leader in its new role.

// Membership is one configuration of the ensemble.
type Membership struct {
	// Version is the zxid of the reconfig entry that made it, or the
	// version the server was configured with (0 without reconfig).
	Version int64
	// Voters and Observers are the participants' and observers' ids,
	// sorted.
	Voters    []int64
	Observers []int64
}

// IsVoter reports whether id is a voter of m.
func (m *Membership) IsVoter(id int64) bool { return containsID(m.Voters, id) }

// IsObserver reports whether id is an observer of m.
func (m *Membership) IsObserver(id int64) bool { return containsID(m.Observers, id) }

// IsMember reports whether id is a voter or an observer of m.
func (m *Membership) IsMember(id int64) bool { return m.IsVoter(id) || m.IsObserver(id) }

// HasQuorum reports whether the ids has (a function of the server id)
// accepts form a majority of m's voters.
func (m *Membership) HasQuorum(has func(int64) bool) bool {
	n := 0
	for _, id := range m.Voters {
		if has(id) {
			n++
		}
	}
	return n >= len(m.Voters)/2+1
}

// clone returns a copy that shares nothing with m.
func (m Membership) clone() Membership {
	m.Voters = slices.Clone(m.Voters)
	m.Observers = slices.Clone(m.Observers)
	return m
}

func (m Membership) String() string {
	return fmt.Sprintf("version %#x voters %v observers %v", m.Version, m.Voters, m.Observers)
}

// ErrBadMembership is wrapped by DecodeMembership's errors.
var ErrBadMembership = errors.New("zab: malformed membership")

// maxMembers bounds a decoded membership's size.
const maxMembers = 1 << 16

// AppendMembership appends the encoding of m (NEWLEADER's payload between
// zabkeeper servers): version i64, then the voters and the observers, each
// a u32 count and i64 ids.
func AppendMembership(dst []byte, m Membership) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.Version))
	for _, ids := range [][]int64{m.Voters, m.Observers} {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(ids)))
		for _, id := range ids {
			dst = binary.BigEndian.AppendUint64(dst, uint64(id))
		}
	}
	return dst
}

// DecodeMembership reverses AppendMembership. Ids must be positive,
// strictly increasing within each list and in no two lists.
func DecodeMembership(b []byte) (Membership, error) {
	var m Membership
	if len(b) < 8 {
		return m, fmt.Errorf("%w: %d bytes", ErrBadMembership, len(b))
	}
	m.Version = int64(binary.BigEndian.Uint64(b))
	b = b[8:]
	for i := range 2 {
		if len(b) < 4 {
			return Membership{}, fmt.Errorf("%w: truncated count", ErrBadMembership)
		}
		n := binary.BigEndian.Uint32(b)
		b = b[4:]
		if n > maxMembers || uint64(n)*8 > uint64(len(b)) {
			return Membership{}, fmt.Errorf("%w: %d ids in %d bytes", ErrBadMembership, n, len(b))
		}
		ids := make([]int64, n)
		for j := range ids {
			ids[j] = int64(binary.BigEndian.Uint64(b))
			b = b[8:]
			if ids[j] <= 0 || (j > 0 && ids[j] <= ids[j-1]) {
				return Membership{}, fmt.Errorf("%w: ids %v", ErrBadMembership, ids[:j+1])
			}
		}
		if i == 0 {
			m.Voters = ids
		} else {
			m.Observers = ids
		}
	}
	if len(b) != 0 {
		return Membership{}, fmt.Errorf("%w: %d trailing bytes", ErrBadMembership, len(b))
	}
	for _, id := range m.Observers {
		if m.IsVoter(id) {
			return Membership{}, fmt.Errorf("%w: %d is a voter and an observer", ErrBadMembership, id)
		}
	}
	return m, nil
}

// newMembership builds a sorted Membership.
func newMembership(version int64, voters, observers []int64) Membership {
	return Membership{Version: version, Voters: sortedIDs(voters), Observers: sortedIDs(observers)}
}

// ActiveConfig returns the configuration in force here.
func (p *Peer) ActiveConfig() Membership { return p.active.clone() }

// PendingConfig returns the newest configuration proposed in this server's
// log and not yet activated (ZooKeeper's last-seen one), if any.
func (p *Peer) PendingConfig() (Membership, bool) {
	if n := len(p.pending); n > 0 {
		return p.pending[n-1].clone(), true
	}
	return Membership{}, false
}

// lastSeen is the newest configuration this server knows: the last
// pending one, else the active one.
func (p *Peer) lastSeen() Membership {
	if n := len(p.pending); n > 0 {
		return p.pending[n-1]
	}
	return p.active
}

// newLeaderConfig is the configuration a leader's NEWLEADER carries: its
// last-seen one, or, while the configuration in force is still the
// unversioned one a server starts with (version 0, nothing pending), that
// configuration under version NEWLEADER's zxid. ZooKeeper's Leader.lead
// does so (ZOOKEEPER-1783): the first established configuration takes
// precedence over the initial configs of servers that never joined, and
// it becomes active where NEWLEADER's configuration does — on the leader
// when established, on learners at UPTODATE. With reconfig only
// (ZooKeeper's processReconfig does nothing without).
func (p *Peer) newLeaderConfig() Membership {
	if p.cfg.ReconfigOf != nil && p.active.Version == 0 && len(p.pending) == 0 {
		c := p.active.clone()
		c.Version = MakeZxid(p.epoch, 0)
		return c
	}
	return p.lastSeen()
}

// configs returns the configurations every quorum must satisfy now.
//
// The slice is the peer's, rebuilt on every call (a fresh one per call was
// a steady share of the simulator's allocations): callers only range over
// it, and a call nested in such a loop rebuilds the same pointers.
func (p *Peer) configs() []*Membership {
	out := append(p.configsBuf[:0], &p.active)
	for i := range p.pending {
		out = append(out, &p.pending[i])
	}
	p.configsBuf = out
	return out
}

// quorumIn reports whether the servers has accepts hold a quorum of every
// configuration in force or pending.
func (p *Peer) quorumIn(has func(int64) bool) bool {
	for _, c := range p.configs() {
		if !c.HasQuorum(has) {
			return false
		}
	}
	return true
}

// anyVoter reports whether id votes in the active or a pending
// configuration (ZooKeeper's getCurrentAndNextConfigVoters).
func (p *Peer) anyVoter(id int64) bool {
	for _, c := range p.configs() {
		if c.IsVoter(id) {
			return true
		}
	}
	return false
}

// allVoters returns, sorted, every voter of the active and pending
// configurations.
func (p *Peer) allVoters() []int64 {
	var ids []int64
	for _, c := range p.configs() {
		ids = append(ids, c.Voters...)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// allMembers returns, sorted, every member of the active and pending
// configurations.
func (p *Peer) allMembers() []int64 {
	ids := p.allVoters()
	for _, c := range p.configs() {
		ids = append(ids, c.Observers...)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// noteEntry records e as the pending configuration when it is a reconfig
// entry (Config.ReconfigOf) newer than the active configuration.
func (p *Peer) noteEntry(e Entry) {
	if p.cfg.ReconfigOf == nil || e.Zxid <= p.active.Version {
		return
	}
	m, ok := p.cfg.ReconfigOf(e.Data)
	if !ok {
		return
	}
	m = newMembership(e.Zxid, m.Voters, m.Observers)
	p.pending = append(p.pending, m)
}

// forgetPendingAfter drops pending configurations whose entries were
// truncated away.
func (p *Peer) forgetPendingAfter(z int64) {
	for len(p.pending) > 0 && p.pending[len(p.pending)-1].Version > z {
		p.pending = p.pending[:len(p.pending)-1]
	}
}

// activateCommitted activates, in order, the pending configurations whose
// entries are committed. It returns whether any was.
//
// A pending configuration learned from a notification (learnConfig) whose
// entry the log does not hold is dropped instead, when the commit point
// passes it: the history this server now holds, its leader's, lacks the
// entry, so it was never committed. Activating it (a sync's COMMIT passes
// its version before UPTODATE's dropUnlogged) left a learner with a
// configuration nobody else had, which then refused every NEWLEADER as
// older than its own (seed 352 with --reconfig, 5 voters, 1 observer).
func (p *Peer) activateCommitted() bool {
	changed := false
	for len(p.pending) > 0 && p.pending[0].Version <= p.committed {
		c := p.pending[0]
		p.pending = p.pending[1:]
		if c.Version > p.log.base && !p.log.contains(c.Version) {
			continue // learned, never committed
		}
		p.setActive(c)
		changed = true
	}
	return changed
}

// setActive makes m the configuration in force.
func (p *Peer) setActive(m Membership) {
	if bugs.Active(bugs.StaleConfigQuorum) && p.replaced == nil {
		old := p.active
		p.replaced = &old
	}
	p.active = m
	p.voters = m.Voters
	p.observers = m.Observers
	p.configChanged = true
}

// adopt makes m the active configuration when it is newer (a learner
// synced past its entry, UPTODATE).
func (p *Peer) adopt(m Membership) {
	if m.Version <= p.active.Version {
		return
	}
	p.setActive(m)
	for len(p.pending) > 0 && p.pending[0].Version <= m.Version {
		p.pending = p.pending[1:]
	}
}

// designatedLeader is the server that should lead the configuration c, which
// this leader activates (ZooKeeper's Leader.getDesignatedLeader): this
// server if it is a voter of c; else, of the synced followers that are
// voters of c and acked the reconfig entry, the one that acked the most,
// then the highest id. 0 when there is none.
func (p *Peer) designatedLeader(c Membership) int64 {
	if c.IsVoter(p.id) {
		return p.id
	}
	var best int64
	var bestAck int64
	for _, id := range p.lead.ids() {
		r := p.lead.learners[id]
		if r.observer || r.stage < recAcked || !c.IsVoter(id) || r.ackedUpTo < c.Version {
			continue
		}
		if r.ackedUpTo >= bestAck {
			best, bestAck = id, r.ackedUpTo
		}
	}
	return best
}

// roleIn is the role this server takes as a learner of configuration c.
func (p *Peer) roleIn(c *Membership) Role {
	if c.IsObserver(p.id) {
		return Observing
	}
	return Following
}

// leaderActivated is called on the leader after it activated a
// configuration while leading; it hands over when it is no longer a voter.
func (p *Peer) leaderActivated(designated int64) {
	if p.active.IsVoter(p.id) {
		return
	}
	p.handOverTo(designated, "this leader is not a voter of configuration %#x", p.active.Version)
}

// handOverTo leaves this server's role for the one configuration p.active
// gives it under leader d: leading when d is this server, following or
// observing d, or looking (no designated leader, or not a member).
func (p *Peer) handOverTo(d int64, format string, args ...any) {
	why := fmt.Sprintf(format, args...)
	switch {
	case d == 0 || !p.active.IsVoter(d):
		p.becomeLooking("%s; no designated leader", why)
	case p.role == Leading && !p.active.IsMember(p.id):
		p.quietStart = true
		p.becomeLooking("%s; this server is no member", why)
	case d == p.id:
		p.elec.vote = p.selfVote()
		p.becomeLeader()
	case p.active.IsMember(p.id):
		p.elec.vote = Vote{Leader: d, Zxid: p.log.last(), PeerEpoch: p.hs.CurrentEpoch}
		p.becomeLearner(d, p.roleIn(&p.active))
	default:
		p.becomeLooking("%s; this server is no member", why)
	}
	if p.role != Looking {
		p.why = why + fmt.Sprintf("; now %v under designated leader %d", p.role, d)
	}
}

// learnerActivated is called on a learner after its active configuration
// changed: it follows the designated leader d (0: its own leader) in the
// role the configuration gives it.
func (p *Peer) learnerActivated(d int64) {
	if d == 0 {
		d = p.leader
	}
	if d != p.leader {
		p.handOverTo(d, "configuration %#x designates leader %d", p.active.Version, d)
		return
	}
	if !p.active.IsVoter(p.leader) {
		p.becomeLooking("leader %d is not a voter of configuration %#x", p.leader, p.active.Version)
		return
	}
	if p.active.IsMember(p.id) && p.roleIn(&p.active) != p.role {
		// A participant that became an observer, or back: reconnect in
		// the new role (ZooKeeper's updateLearnerType, then a new
		// FOLLOWERINFO or OBSERVERINFO).
		p.elec.vote = Vote{Leader: p.leader, Zxid: p.log.last(), PeerEpoch: p.hs.CurrentEpoch}
		p.becomeLearner(p.leader, p.roleIn(&p.active))
	}
}

// handleCommitAndActivate is COMMITANDACTIVATE (follower) and, with the
// entry, INFORMANDACTIVATE (observer): commit, activate, then follow the
// designated leader (Vote.Leader).
func (p *Peer) handleCommitAndActivate(m Message) {
	if m.Type == MsgInformAndActivate {
		p.handleInform(m)
	} else {
		p.handleCommit(m)
	}
	if p.role == Looking {
		return
	}
	if p.activateCommitted() {
		p.learnerActivated(m.Vote.Leader)
	}
}

// commitChanged activates what a learner's new commit point covers (a
// sync's COMMIT, UPTODATE, a plain COMMIT past a reconfig entry that a
// leader of an older version sent) and adjusts its role.
func (p *Peer) commitChanged() {
	if p.activateCommitted() && (p.role == Following || p.role == Observing) && p.learn != nil && p.learn.stage == lsUpToDate {
		p.learnerActivated(0)
	}
}

// ConfigVersion is the active configuration's version (Status's, without
// building a Status).
func (p *Peer) ConfigVersion() int64 { return p.active.Version }

// QuorumSynced reports whether this established leader and the followers
// synced with it hold a quorum of m's voters (ZooKeeper's
// Leader.isQuorumSynced, which a reconfig must pass: NewConfigNoQuorum).
func (p *Peer) QuorumSynced(m Membership) bool {
	if p.role != Leading || !p.established {
		return false
	}
	return m.HasQuorum(func(id int64) bool {
		if id == p.id {
			return true
		}
		r := p.lead.learners[id]
		return r != nil && !r.observer && r.stage == recUpToDate
	})
}

// learnConfig adopts the configuration a notification carries when it is
// newer than this looking server's (ZooKeeper's FastLeaderElection does the
// same): a server that missed reconfigs — down, partitioned, retired and
// started again — learns the membership it must find a quorum of, which
// its stale configuration may no longer have. Active configurations are
// committed ones, so this only catches a server up; only a member's is
// taken, so a server started with a made-up configuration (a joiner's
// mistaken version) cannot impose it.
//
// The pending configuration a notification carries is taken as pending
// too: a server that the reconfig in flight makes a voter but that never
// saw its proposal (an observer promoted, whose leader died before the
// commit) must vote and follow for that configuration's quorum to form,
// or the ensemble waits for it forever. It only adds a quorum this server
// requires; it is dropped at UPTODATE unless the synced log holds it, and
// never activated without its entry (activateCommitted).
func (p *Peer) learnConfig(m Message) {
	if p.cfg.ReconfigOf == nil || p.role != Looking || len(m.Payload) == 0 || !slices.Contains(p.allMembers(), m.From) {
		return
	}
	active, pending, err := DecodeConfigs(m.Payload)
	if err != nil {
		return
	}
	if !p.anyVoter(p.id) {
		// A non-voter that the learned configurations make a voter
		// stands for this round now: it began the round with no proposal
		// (a vote for nobody, which voters ignore), and a voter ignores
		// the notifications of a lower round, so until its next round it
		// would neither back anyone nor be heard (seed 972 with
		// --reconfig: an observer promoted by a reconfig its leader never
		// committed, needed for the new configuration's quorum, kept
		// voting for nobody while the other voters waited for it).
		defer p.standIfVoter()
	}
	if active.Version > p.active.Version {
		p.adopt(active)
		p.why = fmt.Sprintf("learned configuration %#x from server %d's notification", active.Version, m.From)
		if v := p.elec.vote.Leader; v != 0 && !p.anyVoter(v) && p.anyVoter(p.id) {
			// This voter backs a server the learned configuration
			// removed: voters ignore a vote for a non-voter, so it
			// would hold this round's vote for nobody they count,
			// and answer their lower rounds with it (seed 1033 with
			// --reconfig: a server that had backed the removed
			// server 2 in round 10 kept the remaining voter, in round
			// 1, from ever seeing a vote it could join: no leader
			// after 60 s of calm). It stands itself instead, as
			// ZooKeeper's election never backs a server of weight 0.
			v := p.candidacy()
			if !p.anyVoter(v.Leader) {
				v = p.selfVote() // a successor the configuration removed too
			}
			p.setProposal(v)
			p.broadcastVote()
		}
	}
	if pending == nil || pending.Version <= p.active.Version {
		return
	}
	for _, c := range p.pending {
		if c.Version >= pending.Version {
			return
		}
	}
	p.pending = append(p.pending, *pending)
}

// standIfVoter makes a looking server that just became a voter propose
// its candidacy in its round and tell the others.
func (p *Peer) standIfVoter() {
	if p.role != Looking || !p.anyVoter(p.id) || p.elec.vote.Leader != 0 {
		return
	}
	p.setProposal(p.candidacy())
	p.broadcastVote()
}

// appendConfigs encodes this server's configurations for a notification
// (AppendConfigs): the active one and the newest pending one, if any.
func (p *Peer) appendConfigs(dst []byte) []byte {
	if n := len(p.pending); n > 0 {
		return AppendConfigs(dst, p.active, &p.pending[n-1])
	}
	return AppendConfigs(dst, p.active, nil)
}

// AppendConfigs encodes a notification's configurations (its Payload): the
// active one, then the pending one if not nil, each as a u32 length and
// AppendMembership's bytes. Transports translate it (netstub/zklink).
func AppendConfigs(dst []byte, active Membership, pending *Membership) []byte {
	cs := []Membership{active}
	if pending != nil {
		cs = append(cs, *pending)
	}
	for _, c := range cs {
		b := AppendMembership(nil, c)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(b)))
		dst = append(dst, b...)
	}
	return dst
}

// DecodeConfigs reverses AppendConfigs.
func DecodeConfigs(b []byte) (active Membership, pending *Membership, err error) {
	var cs []Membership
	for len(b) > 0 && len(cs) < 2 {
		if len(b) < 4 {
			return Membership{}, nil, fmt.Errorf("%w: truncated length", ErrBadMembership)
		}
		n := binary.BigEndian.Uint32(b)
		b = b[4:]
		if uint64(n) > uint64(len(b)) {
			return Membership{}, nil, fmt.Errorf("%w: %d bytes of %d", ErrBadMembership, n, len(b))
		}
		c, err := DecodeMembership(b[:n])
		if err != nil {
			return Membership{}, nil, err
		}
		cs = append(cs, c)
		b = b[n:]
	}
	if len(cs) == 0 || len(b) != 0 {
		return Membership{}, nil, fmt.Errorf("%w: %d configurations, %d bytes left", ErrBadMembership, len(cs), len(b))
	}
	if len(cs) == 2 {
		pending = &cs[1]
	}
	return cs[0], pending, nil
}

// dropUnlogged forgets pending configurations whose reconfig entry is not
// in the log (learned from a notification, then not in the history the
// leader synced).
func (p *Peer) dropUnlogged() {
	kept := p.pending[:0]
	for _, c := range p.pending {
		if c.Version > p.log.base && p.log.contains(c.Version) {
			kept = append(kept, c)
		}
	}
	p.pending = kept
}

// ConfigVersions returns the versions of the active configuration and of
// the newest pending one (0 without), without allocating, for callers that
// look after every Ready.
func (p *Peer) ConfigVersions() (active, pending int64) {
	if n := len(p.pending); n > 0 {
		pending = p.pending[n-1].Version
	}
	return p.active.Version, pending
}

// PendingConfigEntry returns the data of the log entry that proposed the
// newest pending configuration; ok is false without one, or when the log
// does not hold it (a pending configuration learned from a notification).
func (p *Peer) PendingConfigEntry() (data []byte, ok bool) {
	n := len(p.pending)
	if n == 0 {
		return nil, false
	}
	z := p.pending[n-1].Version
	if z <= p.log.base {
		return nil, false
	}
	i := p.log.search(z)
	if i >= len(p.log.ents) || p.log.ents[i].Zxid != z {
		return nil, false
	}
	return p.log.ents[i].Data, true
}
