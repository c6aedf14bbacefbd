package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/zabkeeper/zabkeeper/engine"
	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
)

// Dynamic reconfiguration under faults (Options.Reconfig). Every
// reconfigInterval an operator asks the established leader, through a
// session of its own authenticated as super, for a random membership
// change: remove a voter (the leader too), add a server as a voter or an
// observer, turn a voter into an observer or back, remove an observer;
// incremental or not, against the current version or -1. A server a
// committed reconfig removed is retired (stopped for good, as a scaled-down
// pod) most of the time, and started again before a reconfig adds it
// back. Every server restarts from the configuration it last activated
// (its dynamic config file).
//
// Invariant, after every step of a leader: each commit it makes is backed,
// by the acks it received (and its own log), by a quorum of the voters of
// the configuration in force and, for a commit past a pending reconfig,
// of the new configuration too — so any two quorums that could act
// intersect, and a server outside a configuration never counts toward it.
// The establishment check (obligations.go) counts NEWLEADER acks against
// the leader's configuration. All other invariants run as always.
//
// Decisions come from a generator of their own, so a run's other draws
// are those of the same seed without reconfigs until the first one
// changes what the servers do.

// reconfigInterval is how often, in virtual µs, the operator considers a
// reconfig; reconfigTimeout how long one may take before it is given up.
const (
	reconfigInterval = 1_200_000
	reconfigTimeout  = 5_000_000
	// superAuth is the operator's digest credentials.
	superAuth = "super:sim"
)

// reconfState is the simulator's reconfiguration machinery.
type reconfState struct {
	on  bool
	rng *rand.Rand
	// conf is each server's last activated configuration (its dynamic
	// config file), by id.
	conf map[int64]engine.ConfigChange
	// retired are servers stopped because a reconfig removed them.
	retired map[int64]bool
	// asked are the voters of the configurations asked for since the
	// newest activation (maxActive): any may be pending in some log,
	// a down server's too (reconfigMaxBroken).
	asked     [][]int64
	maxActive int64
	op        *adminOp
	// acks are the newest zxid each learner acknowledged to (leader,
	// epoch); seen the commit point and configurations last checked per
	// leader (checkReconfigQuorums).
	acks map[[2]int64]map[int64]int64
	seen map[int64]leaderView
}

// adminOp is the operator's reconfig in flight.
type adminOp struct {
	srv     *server
	gen     uint64
	conn    uint64
	req     *proto.ReconfigRequest
	removes []int64 // servers the change leaves out entirely
	started int64
	sent    bool
}

// leaderView is what the invariant last saw of a leader.
type leaderView struct {
	epoch     int64
	committed int64
	active    zab.Membership
	pending   *zab.Membership
}

// configReplica is a Replica whose configurations can be read.
type configReplica interface {
	Configs() (active zab.Membership, pending *zab.Membership)
}

func newReconfState(opts *Options) *reconfState {
	rc := &reconfState{on: opts.Reconfig, conf: map[int64]engine.ConfigChange{}, retired: map[int64]bool{},
		acks: map[[2]int64]map[int64]int64{}, seen: map[int64]leaderView{}}
	rc.rng = rand.New(rand.NewPCG(opts.Seed, 0x7265636f6e66)) // "reconf"
	return rc
}

// superDigest is the digest of superAuth.
var superDigest = tree.DigestID("super", "sim")

// configure gives a starting replica its configuration: the one it last
// activated, or the initial one.
func (sm *Sim) configureReconfig(s *server, cfg *ReplicaConfig) {
	if !sm.rc.on {
		return
	}
	cfg.ReconfigEnabled = true
	cfg.SuperDigest = superDigest
	c, ok := sm.rc.conf[s.id]
	if !ok {
		return
	}
	cfg.Voters, cfg.Observers = nil, nil
	for _, m := range c.Members {
		if m.Observer {
			cfg.Observers = append(cfg.Observers, m.ID)
		} else {
			cfg.Voters = append(cfg.Voters, m.ID)
		}
	}
	cfg.ConfigData, cfg.ConfigVersion = c.Data, c.Version
}

// ActivateConfig records the configuration as the server's dynamic config
// file.
func (h readyHandler) ActivateConfig(c engine.ConfigChange) error {
	sm := h.sm
	sm.rc.conf[h.s.id] = c
	if c.Version > sm.rc.maxActive {
		sm.rc.maxActive, sm.rc.asked = c.Version, nil
	}
	sm.tracef(h.s.id, "n%d activates configuration 0x%x: %s", h.s.id, c.Version, strings.ReplaceAll(c.Data, "\n", " "))
	sm.hash.add(40, h.s.id, c.Version)
	return nil
}

// onReconfig is the operator's turn.
func (sm *Sim) onReconfig() {
	rc := sm.rc
	if sm.phase != phaseFaults {
		return
	}
	sm.schedule(&event{at: sm.now + reconfigInterval/2 + rc.rng.Int64N(reconfigInterval), kind: evReconfig})
	if op := rc.op; op != nil {
		if sm.now-op.started < reconfigTimeout {
			return
		}
		sm.endAdmin("timed out")
	}
	var leader *server
	for _, s := range sm.servers {
		if s.up && s.status.Role == zab.Leading && s.status.Established {
			leader = s
		}
	}
	if leader == nil {
		return
	}
	cr, ok := leader.r.(configReplica)
	if !ok {
		return
	}
	active, pending := cr.Configs()
	if pending != nil {
		return
	}
	req, removes, restart, voters := sm.drawReconfig(leader, active)
	if req == nil {
		return
	}
	rc.asked = append(rc.asked, voters)
	if restart != nil {
		// A retired server comes back before the reconfig that adds it
		// (it syncs as a non-member first).
		delete(rc.retired, restart.id)
		restart.broken = false
		if !restart.up {
			sm.start(restart)
		}
	}
	sm.connSeq++
	op := &adminOp{srv: leader, gen: leader.gen, conn: sm.connSeq, req: req, removes: removes, started: sm.now}
	rc.op = op
	sm.report.Counters["reconfigs-asked"]++
	sm.tracef(leader.id, "operator asks n%d to reconfig: joining %q leaving %q members %q from 0x%x", leader.id,
		req.JoiningServers, req.LeavingServers, req.NewMembers, req.CurConfigID)
	leader.r.Connect(op.conn, &proto.ConnectRequest{TimeOut: 30_000, Passwd: make([]byte, 16)}, "10.0.0.254", leader.localMs(sm.now))
	sm.drive(leader)
}

// simMember is server id as the simulator's configurations write it
// (engine.SimulatedConfigData's addresses).
func simMember(id int64, observer bool) engine.Member {
	return engine.Member{ID: id, Host: "127.0.0.1", QuorumPort: 2888 + int(id), ElectionPort: 3888 + int(id), Observer: observer}
}

// drawReconfig picks a change of active; it returns the request, the
// servers it removes entirely, and a retired server to start first. As
// a careful operator (and Raft's catch-up rule), it makes a server a voter
// only once it is synced with the leader, as an observer or a non-member:
// a new voter that never synced cannot count, and a reconfig in flight
// that needs it (its leader gone, old voters lost) would wait for it
// forever, with ZooKeeper as with us.
func (sm *Sim) drawReconfig(leader *server, active zab.Membership) (*proto.ReconfigRequest, []int64, *server, []int64) {
	synced := func(id int64) bool {
		s := sm.server(id)
		return s.up && s.status.Established && s.status.Leader == leader.id
	}
	r := sm.rc.rng
	voters, observers := slices.Clone(active.Voters), slices.Clone(active.Observers)
	var outside []int64
	for _, id := range sm.ids {
		if !slices.Contains(voters, id) && !slices.Contains(observers, id) {
			outside = append(outside, id)
		}
	}
	var removes []int64
	var restart *server
	leaving := ""
	switch x := r.IntN(5); {
	case x == 0 && len(voters) > 2: // remove a voter, maybe the leader
		id := voters[r.IntN(len(voters))]
		voters = slices.DeleteFunc(voters, func(v int64) bool { return v == id })
		removes, leaving = []int64{id}, fmt.Sprint(id)
	case x == 1 && len(outside) > 0: // add a server
		id := outside[r.IntN(len(outside))]
		if r.IntN(3) == 0 || !synced(id) {
			observers = append(observers, id)
		} else {
			voters = append(voters, id)
		}
		if sm.rc.retired[id] {
			restart = sm.server(id)
		}
	case x == 2 && len(voters) > 2: // a voter becomes an observer
		id := voters[r.IntN(len(voters))]
		voters = slices.DeleteFunc(voters, func(v int64) bool { return v == id })
		observers = append(observers, id)
	case x == 3 && len(observers) > 0 && synced(observers[0]): // an observer becomes a voter
		id := observers[0]
		observers = slices.DeleteFunc(observers, func(v int64) bool { return v == id })
		voters = append(voters, id)
	case x == 4 && len(observers) > 0: // remove an observer
		id := observers[r.IntN(len(observers))]
		observers = slices.DeleteFunc(observers, func(v int64) bool { return v == id })
		removes, leaving = []int64{id}, fmt.Sprint(id)
	default:
		return nil, nil, nil, nil
	}
	from := int64(-1)
	if r.IntN(2) == 0 {
		from = active.Version
	}
	if leaving != "" && r.IntN(2) == 0 {
		return &proto.ReconfigRequest{LeavingServers: leaving, NewMembersNull: true, CurConfigID: from}, removes, restart, voters
	}
	var ms []engine.Member
	for _, id := range voters {
		ms = append(ms, simMember(id, false))
	}
	for _, id := range observers {
		ms = append(ms, simMember(id, true))
	}
	data := engine.ConfigData(ms, 0)
	return &proto.ReconfigRequest{NewMembers: data[:strings.LastIndex(data, "\nversion=")], CurConfigID: from}, removes, restart, voters
}

// adminOutput takes the outputs of the operator's connection; false for
// any other.
func (sm *Sim) adminOutput(s *server, o *Output) bool {
	op := sm.rc.op
	if op == nil || op.srv != s || uint64(o.Conn) != op.conn {
		return false
	}
	now := s.localMs(sm.now)
	switch {
	case o.Kind == OutConnect && !op.sent:
		if o.Connect == nil || o.Connect.TimeOut <= 0 {
			sm.endAdmin("session refused")
			return true
		}
		op.sent = true
		s.r.Submit(op.conn, 1, proto.OpAuth, &proto.AuthPacket{Scheme: "digest", Auth: []byte(superAuth)}, now)
		s.r.Submit(op.conn, 2, proto.OpReconfig, op.req, now)
	case o.Kind == OutReply && o.Header.Xid == 2:
		sm.report.Counters["reconfigs-"+strings.ToLower(o.Header.Err.String())]++
		sm.tracef(s.id, "operator's reconfig on n%d: %s at 0x%x", s.id, o.Header.Err, o.Header.Zxid)
		if o.Header.Err == proto.ErrOK {
			for _, id := range op.removes {
				if id != s.id && sm.rc.rng.IntN(4) != 0 {
					sm.retire(sm.server(id))
				}
			}
		}
		s.r.Submit(op.conn, 3, proto.OpCloseSession, &proto.EmptyRecord{}, now)
	case o.Kind == OutClose:
		s.closed = append(s.closed, op.conn)
		sm.rc.op = nil
	}
	return true
}

// endAdmin gives the operator's reconfig up.
func (sm *Sim) endAdmin(why string) {
	op := sm.rc.op
	sm.rc.op = nil
	sm.tracef(op.srv.id, "operator's reconfig on n%d given up: %s", op.srv.id, why)
	if op.srv.up && op.srv.gen == op.gen {
		op.srv.r.Disconnect(op.conn)
	}
}

// retire stops a server a reconfig removed, for good unless a later one
// adds it back.
func (sm *Sim) retire(s *server) {
	if s.broken {
		return // down for good already (its disk was refused)
	}
	sm.rc.retired[s.id] = true
	sm.report.Counters["servers-retired"]++
	sm.crash(s, "retired: removed by reconfig")
	s.broken = true // not restarted, by faults or the liveness phase
}

// noteReconfigAck records an ACK a leader receives: a proposal ack, or a
// NEWLEADER ack that covers the learner's synced history.
func (sm *Sim) noteReconfigAck(m zab.Message) {
	if !sm.rc.on || m.Type != zab.MsgAck {
		return
	}
	z := m.Zxid
	if zab.Counter(z) == 0 {
		z = sm.server(m.From).syncEnd
	}
	key := [2]int64{m.To, m.Epoch}
	acks := sm.rc.acks[key]
	if acks == nil {
		acks = map[int64]int64{}
		sm.rc.acks[key] = acks
	}
	acks[m.From] = max(acks[m.From], z)
}

// checkReconfigQuorums checks the commits a leader made since the last
// look against the acks it received, under the configurations it had then.
func (sm *Sim) checkReconfigQuorums(s *server) {
	if !sm.rc.on {
		return
	}
	st := s.status
	cr, ok := s.r.(configReplica)
	if st.Role != zab.Leading || !st.Established || !ok {
		delete(sm.rc.seen, s.id)
		return
	}
	active, pending := cr.Configs()
	prev, seen := sm.rc.seen[s.id]
	sm.rc.seen[s.id] = leaderView{epoch: st.Epoch, committed: st.Committed, active: active, pending: pending}
	if !seen || prev.epoch != st.Epoch || st.Committed <= prev.committed || zab.Epoch(st.Committed) != st.Epoch {
		return
	}
	acks := sm.rc.acks[[2]int64{s.id, st.Epoch}]
	quorum := func(m *zab.Membership, z int64) bool {
		return m.HasQuorum(func(id int64) bool { return id == s.id || acks[id] >= z })
	}
	c := st.Committed
	if p := prev.pending; p != nil && c >= p.Version {
		if !quorum(&prev.active, p.Version) {
			sm.violation("reconfig: n%d committed reconfig 0x%x without a quorum of the old voters %v (acks %v)", s.id, p.Version, prev.active.Voters, acks)
		}
		if !quorum(p, c) {
			sm.violation("reconfig: n%d committed 0x%x, past reconfig 0x%x, without a quorum of its new voters %v (acks %v)", s.id, c, p.Version, p.Voters, acks)
		}
		return
	}
	if !quorum(&prev.active, c) {
		sm.violation("reconfig: n%d committed 0x%x without a quorum of its voters %v (acks %v)", s.id, c, prev.active.Voters, acks)
	}
}

// establishVoters are the voters a leader that just established must have
// NEWLEADER acks from a quorum of.
func (sm *Sim) establishVoters(s *server) []int64 {
	if !sm.rc.on {
		return sm.voters
	}
	if cr, ok := s.r.(configReplica); ok {
		active, _ := cr.Configs()
		return active.Voters
	}
	return sm.voters
}

// reconfigMaxBroken is maxBroken under reconfigs: one more server may
// break for good only while the voters of the newest configuration, of
// every configuration asked for since and of every one pending in a
// server's log, keep a quorum without it
// and the ones broken already (retired servers count as broken but are no
// members).
func (sm *Sim) reconfigMaxBroken() int {
	var newest engine.ConfigChange
	for _, id := range sm.ids {
		if c, ok := sm.rc.conf[id]; ok && c.Version >= newest.Version {
			newest = c
		}
	}
	voters := sm.voters
	if newest.Members != nil {
		voters = nil
		for _, m := range newest.Members {
			if !m.Observer {
				voters = append(voters, m.ID)
			}
		}
	}
	sets := append([][]int64{voters}, sm.rc.asked...)
	for _, s := range sm.servers {
		if cr, ok := s.r.(configReplica); ok && s.up {
			if _, p := cr.Configs(); p != nil {
				sets = append(sets, p.Voters)
			}
		}
	}
	n := sm.brokenCount()
	for _, vs := range sets {
		down := 0
		for _, id := range vs {
			if sm.server(id).broken {
				down++
			}
		}
		if down+1 > (len(vs)-1)/2 {
			return n
		}
	}
	return n + 1
}
