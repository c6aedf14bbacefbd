package sim

import (
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"time"

	"github.com/zabkeeper/zabkeeper/disk"
	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/netstub"
	"github.com/zabkeeper/zabkeeper/netstub/zklink"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// TickMs is the replicas' tick length.
const TickMs = 100

// livenessBound is how long, in virtual µs, the healed cluster has to elect
// a leader, serve every client, converge and expire dead sessions.
const livenessBound = 60_000_000

type phase int

const (
	phaseFaults phase = iota
	phaseLiveness
	phaseDone
)

// Sim is one run's whole world. Everything in it is driven from Run's loop
// on one goroutine.
type Sim struct {
	opts Options
	rng  *rand.Rand
	// stops decides which crashes of a leader are graceful stops
	// (faults.go), from a generator of its own.
	stops   stopDraws
	now     int64 // virtual µs
	events  *queue
	net     *netstub.Network
	servers []*server
	ids     []int64
	voters  []int64
	obs     []int64
	clients []*client
	factory Factory
	prof    profile
	// kinds draws each incarnation's kind (kinds.go).
	kinds  kindDraws
	check  *checker
	hist   history
	report Report
	hash   hasher

	phase     phase
	faultsOn  bool
	liveStart int64
	// targetedUntil is when the next protocol-aware fault may be aimed.
	targetedUntil int64
	// txnData holds every txn handed out for logging, by hash; effects
	// caches what the committed txn at a zxid did (watch.go).
	txnData map[uint64][]byte
	effects map[int64][]effect
	// owners maps the ephemerals of the committed history to their
	// sessions (watch.go).
	owners map[string]int64
	// nlAcks are the voters whose NEWLEADER ack reached (leader, epoch).
	nlAcks  map[[2]int64]map[int64]bool
	connSeq uint64
	// zkConfig is the config string of notifications and NEWLEADER;
	// qconns are the leader/learner connections by id (wire.go).
	zkConfig []byte
	qconns   map[uint64]*qconn
	qconnSeq uint64
	tickMs   int
	end      int64
	// rc runs reconfigs (Options.Reconfig; reconfig.go).
	rc *reconfState
	// decoded is the slice receive decodes a packet's messages into,
	// reused from packet to packet (takeDecoded, giveDecoded).
	decoded []zab.Message
	// encoded is the slice sendPeer encodes a message's packets into.
	encoded []quorum.Packet
	// connScratch is closeDroppedLearners' list of a server's connections.
	connScratch []*zklink.Conn
	// payloads are byte slices receive is done with, for sendPeer to
	// write the next connection bytes into (takePayload, givePayload).
	payloads [][]byte
	// hosts are the servers' addresses for book, by id-1.
	hosts []string
	// recs is AppendLog's records for disk.Log.Append.
	recs []disk.Record
}

// Bounds of the payloads free list: a larger slice (a SNAP with its
// body) is left to the collector, and so are slices beyond the count.
const (
	maxPooledPayload = 64 << 10
	maxPayloads      = 256
)

// takePayload returns an empty slice with room for size bytes: the last
// one given back when it is large enough, else a new one.
func (sm *Sim) takePayload(size int) []byte {
	if n := len(sm.payloads); n > 0 {
		b := sm.payloads[n-1]
		if cap(b) >= size {
			sm.payloads[n-1] = nil
			sm.payloads = sm.payloads[:n-1]
			return b[:0]
		}
	}
	return make([]byte, 0, size)
}

// givePayload takes back a connection's bytes once receive decoded them:
// quorum.DecodePacket copies what a packet keeps and a SNAP body is
// copied out, so nothing refers to b any more.
func (sm *Sim) givePayload(b []byte) {
	if cap(b) == 0 || cap(b) > maxPooledPayload || len(sm.payloads) >= maxPayloads {
		return
	}
	sm.payloads = append(sm.payloads, b)
}

// takeDecoded hands out the reusable slice for a packet's messages, empty;
// the caller gives it back with giveDecoded once done with them (a caller
// that returns early just drops it).
func (sm *Sim) takeDecoded() []zab.Message {
	d := sm.decoded[:0]
	sm.decoded = nil
	return d
}

func (sm *Sim) giveDecoded(msgs []zab.Message) {
	clear(msgs) // no payloads kept alive meanwhile
	sm.decoded = msgs[:0]
}

// Run runs one simulation and reports what it found. A panic of a replica
// (or of the simulator) is caught and reported as the seed's violation, with
// the stack, so a campaign goes on and the seed can be replayed.
func Run(opts Options) (rep Report) {
	sm := newSim(opts)
	defer func() {
		if p := recover(); p != nil {
			sm.report.Panicked = true
			sm.report.Violations = append(sm.report.Violations,
				fmt.Sprintf("t=%s panic: %v\n%s", fmtTime(sm.now), p, debug.Stack()))
			sm.report.SimulatedTime = time.Duration(sm.now) * time.Microsecond
			sm.report.TraceHash = uint64(sm.hash)
			sm.report.PeerKinds = sm.kinds.mix()
			rep = sm.report
		}
	}()
	sm.loop()
	sm.finish()
	return sm.report
}

func newSim(opts Options) *Sim {
	if opts.Faults == nil {
		opts.Faults = slices.Clone(AllFaults)
	}
	if opts.Duration <= 0 {
		opts.Duration = 20 * time.Second
	}
	sm := &Sim{
		events:  newQueue(),
		opts:    opts,
		rng:     rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		factory: opts.NewReplica,
		check:   newChecker(),
		txnData: map[uint64][]byte{},
		effects: map[int64][]effect{},
		nlAcks:  map[[2]int64]map[int64]bool{},
		owners:  map[string]int64{},
		qconns:  map[uint64]*qconn{},
		tickMs:  TickMs,
	}
	if sm.factory == nil {
		sm.factory = defaultFactory
	}
	if sm.factory == nil {
		panic("sim: no replica factory (engine adapter not built)")
	}
	// The shape is always drawn, then overridden, so an explicit option
	// replays a seed exactly.
	nodes := []int{3, 5}[sm.rng.IntN(2)]
	observers := sm.rng.IntN(2)
	clients := 2 + sm.rng.IntN(5)
	if opts.Nodes > 0 {
		nodes = opts.Nodes
	}
	if opts.Observers >= 0 {
		observers = opts.Observers
	}
	if opts.Clients > 0 {
		clients = opts.Clients
	}
	sm.opts.Nodes, sm.opts.Observers, sm.opts.Clients = nodes, observers, clients
	sm.prof = sm.drawProfile(opts.Faults)
	if opts.lyingDisk {
		sm.prof.crashRate = 3
	}
	if opts.readOnlyMode {
		sm.prof.readOnly = true
	}
	sm.report = Report{Seed: opts.Seed, Nodes: nodes, Observers: observers, Clients: clients, FaultsByKind: map[string]int{}, Counters: map[string]int{}}
	sm.stops = newStopDraws(opts.Seed)
	sm.report.ReplayCommand = replayCommand(&sm.opts)
	sm.rc = newReconfState(&sm.opts)
	sm.net = netstub.NewNetwork(sm.netLatency)

	for i := 1; i <= nodes+observers; i++ {
		id := int64(i)
		sm.ids = append(sm.ids, id)
		if i <= nodes {
			sm.voters = append(sm.voters, id)
		} else {
			sm.obs = append(sm.obs, id)
		}
	}
	slowVoters := 0
	for _, id := range sm.ids {
		s := &server{id: id, observer: id > int64(nodes), rate: 1, snapEvery: sm.prof.snapEvery, st: newStorage(opts.lyingDisk)}
		if sm.prof.skew > 0 {
			s.rate = 1 + (sm.rng.Float64()*2-1)*sm.prof.skew
		}
		s.offset = 1_700_000_000_000 + sm.rng.Int64N(1_000_000)
		s.fsyncLatency = sm.prof.fsyncBase
		// Slow disks stay on a minority of the voters: a quorum of fast
		// ones keeps commits (and so the clients' pile of writes with
		// unknown outcomes, which Porcupine pays for) going at speed, while
		// the slow ones hold acked-but-unsynced records for a long time.
		if sm.prof.slowDisk > 0 && sm.rng.Float64() < sm.prof.slowDisk && slowVoters < (nodes-1)/2 {
			s.slowDisk = true
			if !s.observer {
				slowVoters++
			}
		}
		sm.servers = append(sm.servers, s)
	}
	sm.zkConfig = sm.simConfigString()
	sm.kinds = newKindDraws(&sm.opts, len(sm.servers))
	sm.report.InitialKinds = sm.kinds.initialString()
	for i := range clients {
		sm.clients = append(sm.clients, sm.newClient(i+1))
	}
	if sm.prof.readOnly {
		for i := range 1 + sm.rng.IntN(2) {
			c := sm.newClient(clients + i + 1)
			c.ro = true
			sm.clients = append(sm.clients, c)
		}
	}
	sm.end = int64(opts.Duration / time.Microsecond)
	return sm
}

func (sm *Sim) server(id int64) *server { return sm.servers[id-1] }

func (sm *Sim) replicaConfig(s *server) ReplicaConfig {
	secret := make([]byte, 16)
	for i := range secret {
		secret[i] = byte(sm.rng.Uint32())
	}
	return ReplicaConfig{
		ServerID:          s.id,
		TickMs:            sm.tickMs,
		MinSessionTimeout: 4 * sm.tickMs,
		MaxSessionTimeout: 40 * sm.tickMs,
		SessionSecret:     secret,
		StartTime:         s.localMs(sm.now),
		Voters:            sm.voters,
		Observers:         sm.obs,
		InitLimit:         10,
		SyncLimit:         5,
		ElectionTicks:     2,
		// The shortest wait, one tick: a simulated tick stands for a
		// whole tickTime, whereas the server's 200 ms wait is a tenth of
		// the default one.
		FinalizeWaitMs: sm.tickMs,
		MaxLogEntries:  sm.prof.maxLog,
		Seed:           sm.rng.Uint64(),
	}
}

func (sm *Sim) schedule(e *event) { sm.events.push(e) }

// loop runs events in order until the run ends.
func (sm *Sim) loop() {
	sm.phase, sm.faultsOn = phaseFaults, true
	for _, s := range sm.servers {
		sm.start(s)
	}
	for _, c := range sm.clients {
		sm.wake(c, sm.rng.Int64N(100_000))
	}
	sm.schedule(&event{at: faultInterval, kind: evFault})
	sm.schedule(&event{at: sm.end, kind: evPhase})
	if sm.rc.on {
		sm.schedule(&event{at: reconfigInterval, kind: evReconfig})
	}
	for sm.phase != phaseDone {
		eat, eok := sm.events.peekAt()
		nat, nok := sm.net.Peek()
		if !eok && !nok {
			break
		}
		if nok && (!eok || nat < eat) {
			_, m, _ := sm.net.Next()
			sm.now = nat
			sm.report.Events++
			sm.deliver(m)
			continue
		}
		e := sm.events.pop()
		sm.now = e.at
		sm.report.Events++
		sm.handle(&e)
	}
}

// deliver hands a message that arrived from the network to its server: a
// carrier of bytes is decoded first (wire.go), a stalled server holds it.
func (sm *Sim) deliver(m zab.Message) {
	s := sm.server(m.To)
	carrier := m.Type == msgWire || m.Type == msgFin
	if !carrier {
		sm.hash.add(10, m.From, m.To, int64(m.Type), m.Zxid, m.Epoch, m.Entry.Zxid)
	}
	if !s.up {
		return
	}
	if sm.now < s.pausedTill {
		// A copy: &m itself would move every delivered message to the
		// heap.
		hm := m
		s.held = append(s.held, held{msg: &hm})
		return
	}
	if carrier {
		sm.receive(s, m)
		return
	}
	if m.Type == zab.MsgLinkDown && !sm.wireLinkDown(s, m.From) {
		return
	}
	sm.stepMsg(s, m)
}

// step steps a decoded message.
func (sm *Sim) step(s *server, m zab.Message) {
	sm.hash.add(10, m.From, m.To, int64(m.Type), m.Zxid, m.Epoch, m.Entry.Zxid)
	if !s.up {
		return
	}
	sm.stepMsg(s, m)
}

func (sm *Sim) stepMsg(s *server, m zab.Message) {
	if sm.traceOn(s.id) {
		sm.tracef(s.id, "n%d %s recv %s from n%d", s.id, roleName(s.status), describeMsg(m), m.From)
	}
	switch {
	case m.Type == zab.MsgNewLeader:
		sm.noteNewLeader(s)
	case m.Type == zab.MsgAck && zab.Counter(m.Zxid) == 0:
		sm.noteNewLeaderAck(m)
	}
	sm.noteLinkCaps(s, m)
	sm.noteReconfigAck(m)
	s.r.Step(m)
	sm.drive(s)
}

func (sm *Sim) handle(e *event) {
	sm.hash.add(int64(e.kind), e.at)
	switch e.kind {
	case evTick:
		s := sm.server(e.node)
		if !s.up || s.gen != e.gen {
			return
		}
		if sm.now < s.pausedTill {
			// A stalled process's timer fires once it runs again.
			sm.schedule(&event{at: s.pausedTill, kind: evTick, node: s.id, gen: s.gen})
			return
		}
		s.r.Tick(s.localMs(sm.now))
		sm.drive(s)
		if s.up && s.gen == e.gen {
			sm.schedule(&event{at: sm.now + s.tickInterval(sm.tickMs), kind: evTick, node: s.id, gen: s.gen})
		}
	case evFsync:
		s := sm.server(e.node)
		if s.up && s.gen == e.gen {
			if sm.now < s.pausedTill {
				s.held = append(s.held, held{ev: e.clone()})
				return
			}
			sm.onFsync(s, uint64(e.zxid))
		}
	case evRestart:
		s := sm.server(e.node)
		sm.onRestart(s)
	case evStop:
		if s := sm.server(e.node); s.up && s.gen == e.gen {
			sm.crash(s, "graceful stop")
			sm.scheduleRestart(s)
		}
	case evToServer:
		if s := e.cn.srv; s.up && sm.now < s.pausedTill {
			s.held = append(s.held, held{ev: e.clone()})
			return
		}
		sm.atServer(e.cn, e.pkt)
	case evResume:
		sm.resume(sm.server(e.node), e.gen)
	case evPeer:
		sm.deliver(*e.msg)
	case evToClient:
		sm.atClient(e.cn, e.pkt)
	case evClientRun:
		if e.gen == e.cl.wakeSeq {
			sm.runClient(e.cl)
		}
	case evFault:
		sm.onFault()
	case evHeal:
		if sm.faultsOn {
			e.heal()
		}
	case evPhase:
		sm.startLiveness()
	case evCheck:
		sm.checkLiveness()
	case evReconfig:
		sm.onReconfig()
	}
}

// startLiveness ends the fault phase: the network heals, every server that
// can restarts, and the cluster gets livenessBound to serve everyone.
func (sm *Sim) startLiveness() {
	sm.phase, sm.faultsOn = phaseLiveness, false
	sm.liveStart = sm.now
	sm.tracef(0, "LIVENESS phase: faults stop, network heals, servers restart")
	sm.net.HealAll()
	for _, s := range sm.servers {
		if !s.up && !s.broken {
			sm.start(s)
		}
	}
	for _, c := range sm.clients {
		c.liveDone = c.ro // read-only clients are not owed service
		if c.pausedTill > sm.now {
			c.pausedTill = sm.now
		}
		sm.wake(c, sm.now+sm.rng.Int64N(10_000))
	}
	sm.schedule(&event{at: sm.now + 100_000, kind: evCheck})
}

// checkLiveness checks the liveness goals; it ends the run when they all
// hold, or reports them when the bound passes.
func (sm *Sim) checkLiveness() {
	unmet := sm.livenessGoals()
	if len(unmet) == 0 {
		sm.tracef(0, "LIVENESS reached after %s", fmtTime(sm.now-sm.liveStart))
		sm.phase = phaseDone
		return
	}
	if sm.now-sm.liveStart >= livenessBound {
		for _, u := range unmet {
			sm.violation("liveness: after %s of calm: %s", fmtTime(sm.now-sm.liveStart), u)
		}
		sm.phase = phaseDone
		return
	}
	sm.schedule(&event{at: sm.now + 100_000, kind: evCheck})
}

// livenessGoals lists the goals not met yet.
func (sm *Sim) livenessGoals() []string {
	var unmet []string
	var leader *server
	up := sm.upServers()
	for _, s := range up {
		st := s.r.Status()
		if st.Role == zab.Leading && st.Established {
			if leader != nil {
				unmet = append(unmet, fmt.Sprintf("two established leaders n%d and n%d", leader.id, s.id))
			}
			leader = s
		}
	}
	if leader == nil {
		return append(unmet, "no established leader")
	}
	lz := leader.r.LastZxid()
	for _, s := range up {
		st := s.r.Status()
		if s != leader && (!st.Established || st.Leader != leader.id) {
			unmet = append(unmet, fmt.Sprintf("n%d is %s (leader n%d, established %v), not synced with leader n%d", s.id, st.Role, st.Leader, st.Established, leader.id))
		}
		if s.r.LastZxid() != lz {
			unmet = append(unmet, fmt.Sprintf("n%d applied 0x%x, leader n%d 0x%x", s.id, s.r.LastZxid(), leader.id, lz))
		} else if s.r.Digest() != leader.r.Digest() {
			unmet = append(unmet, fmt.Sprintf("n%d digest differs from the leader's at 0x%x", s.id, lz))
		}
	}
	if lz < sm.check.ackedMax {
		unmet = append(unmet, fmt.Sprintf("acknowledged zxid 0x%x lost: leader n%d is at 0x%x", sm.check.ackedMax, leader.id, lz))
	}
	if lz < sm.check.maxCommitted() {
		unmet = append(unmet, fmt.Sprintf("committed zxid 0x%x lost: leader n%d is at 0x%x", sm.check.maxCommitted(), leader.id, lz))
	}
	for _, c := range sm.clients {
		if !c.liveDone {
			unmet = append(unmet, fmt.Sprintf("c%d not served", c.id))
		}
	}
	for _, rec := range sm.hist.sessions {
		if rec.End < 0 {
			continue
		}
		for _, s := range up {
			if eph := s.r.Ephemerals(rec.Session); len(eph) > 0 {
				unmet = append(unmet, fmt.Sprintf("n%d still holds ephemerals %v of dead session 0x%x", s.id, eph, rec.Session))
			}
		}
	}
	return unmet
}

// finish fills the report and runs the history checks.
func (sm *Sim) finish() {
	sm.report.SimulatedTime = time.Duration(sm.now) * time.Microsecond
	sm.report.PeerKinds = sm.kinds.mix()
	// Replay covers the disks too: the same seed leaves the same files.
	var disks hasher
	for _, s := range sm.servers {
		disks.add(s.id, int64(s.st.digest()))
	}
	sm.report.DiskDigest = uint64(disks)
	sm.hash.add(int64(disks))
	sm.report.TraceHash = uint64(sm.hash)
	sm.report.Counters["elections"] = len(sm.check.seenEstablished)
	for _, op := range sm.hist.ops {
		if op.Return < 0 {
			sm.report.Counters["ops-unknown"]++
		}
	}
	for _, s := range sm.hist.sessions {
		if s.Expired {
			sm.report.Counters["sessions-expired"]++
		}
	}
	if sm.report.Failed() {
		return // stopped at an invariant violation: that is the finding
	}
	sm.checkHistory()
}

// traceOn reports whether lines about server id are traced now.
func (sm *Sim) traceOn(id int64) bool {
	o := &sm.opts
	if o.Trace == nil {
		return false
	}
	if o.TraceNode != 0 && id != 0 && id != o.TraceNode {
		return false
	}
	t := time.Duration(sm.now) * time.Microsecond
	return t >= o.TraceFrom && (o.TraceTo == 0 || t <= o.TraceTo)
}

// tracef writes one trace line about server id (0 = the whole cluster).
func (sm *Sim) tracef(id int64, format string, args ...any) {
	if !sm.traceOn(id) {
		return
	}
	fmt.Fprintf(sm.opts.Trace, "t=%s "+format+"\n", append([]any{fmtTime(sm.now)}, args...)...)
}
