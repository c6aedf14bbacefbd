package sim

import (
	"math/rand/v2"
	"slices"

	"github.com/zabkeeper/zabkeeper/engine/zab"
)

// profile is a seed's swarm draw: which faults it injects and how often.
// Rates are per second of virtual time.
type profile struct {
	net, crash, disk, clock bool

	netLatency int64   // µs, maximum base message latency
	spikeProb  float64 // chance a message is delayed by up to 100 ms
	partition  float64 // rate of partitions and cuts
	connReset  float64 // rate of client connection resets
	healMin    int64   // µs
	healMax    int64

	crashRate  float64
	restartMin int64 // µs
	restartMax int64

	fsyncBase    int64   // µs
	fsyncSpike   float64 // chance an fsync stalls
	fsyncErr     float64 // chance an fsync fails (the server crashes)
	keepUnsynced float64 // chance an unsynced record survives a crash
	tearProb     float64 // chance a crash tears the first lost record
	corruptProb  float64 // chance a restart finds a corrupt disk

	skew      float64 // clock rates in [1-skew, 1+skew]
	pauseRate float64 // rate of server stalls (GC pauses)

	targeted  float64 // aggression of protocol-aware faults (targeted.go), 0 = none
	powerLoss float64 // rate of random power losses (a majority or every server)
	slowDisk  float64 // chance each server has a slow disk in the fault phase

	think     int64 // µs, client think time bound
	snapEvery int   // txns between periodic snapshots (0 = never)
	maxLog    int   // MaxLogEntries of the replicas
	// readOnly turns on the replicas' read-only mode and adds read-only
	// clients (readonly.go).
	readOnly bool
}

// drawProfile draws the seed's profile. Every draw happens whatever the
// enabled kinds, so a seed replays identically with fewer faults on.
func (sm *Sim) drawProfile(kinds []string) profile {
	r := sm.rng
	on := func(k string) bool { return slices.Contains(kinds, k) }
	p := profile{net: on(FaultNet), crash: on(FaultCrash), disk: on(FaultDisk), clock: on(FaultClock)}
	// Calm seeds exist on purpose: each rate is zero with probability 1/4.
	rate := func(max float64) float64 {
		if r.IntN(4) == 0 {
			return 0
		}
		return r.Float64() * max
	}
	p.netLatency = 500 + r.Int64N(5_000)
	p.spikeProb = rate(0.02)
	p.partition = rate(1.0)
	p.connReset = rate(0.5)
	p.healMin = 100_000 + r.Int64N(500_000)
	p.healMax = p.healMin + r.Int64N(5_000_000)
	p.crashRate = rate(0.4)
	p.restartMin = 50_000 + r.Int64N(500_000)
	p.restartMax = p.restartMin + r.Int64N(5_000_000)
	p.fsyncBase = 100 + r.Int64N(10_000)
	p.fsyncSpike = rate(0.02)
	p.fsyncErr = rate(0.002)
	p.keepUnsynced = r.Float64()
	p.tearProb = rate(0.8)
	p.corruptProb = rate(0.3)
	p.skew = r.Float64() * 0.1
	p.think = 2_000 + r.Int64N(60_000)
	p.snapEvery = []int{0, 20, 200}[r.IntN(3)]
	p.maxLog = []int{0, 10, 1000}[r.IntN(3)]
	p.pauseRate = rate(0.3)
	p.targeted = rate(1)
	p.powerLoss = rate(0.1)
	p.slowDisk = rate(0.6)
	p.readOnly = r.IntN(3) == 0
	if !p.net {
		p.netLatency, p.spikeProb, p.partition, p.connReset = 500, 0, 0, 0
	}
	if !p.crash {
		p.crashRate, p.powerLoss = 0, 0
	}
	if !p.crash && !p.net && !p.clock {
		p.targeted = 0
	}
	if !p.disk {
		p.fsyncBase, p.fsyncSpike, p.fsyncErr, p.tearProb, p.corruptProb, p.slowDisk = 1000, 0, 0, 0, 0, 0
	}
	if !p.clock {
		p.skew, p.pauseRate = 0, 0
	}
	return p
}

// fault counts an injected fault.
func (sm *Sim) fault(kind string) {
	sm.report.FaultsByKind[kind]++
	sm.hash.str(kind)
}

// faultInterval is how often the scheduler considers a fault, µs.
const faultInterval = 100_000

// onFault is the fault scheduler's step.
func (sm *Sim) onFault() {
	if !sm.faultsOn {
		return
	}
	r := sm.rng
	dt := float64(faultInterval) / 1e6
	if r.Float64() < sm.prof.crashRate*dt {
		sm.injectCrash()
	}
	if r.Float64() < sm.prof.powerLoss*dt {
		sm.injectPowerLoss()
	}
	if r.Float64() < sm.prof.partition*dt {
		sm.injectPartition()
	}
	if r.Float64() < sm.prof.connReset*dt {
		sm.injectConnReset()
	}
	if r.Float64() < sm.prof.pauseRate*dt {
		var cands []*server
		for _, s := range sm.upServers() {
			if sm.now >= s.pausedTill {
				cands = append(cands, s)
			}
		}
		if len(cands) > 0 {
			sm.fault("stall")
			sm.pause(cands[r.IntN(len(cands))], 100_000+r.Int64N(3_000_000))
		}
	}
	sm.schedule(&event{at: sm.now + faultInterval, kind: evFault})
}

func (sm *Sim) upServers() []*server {
	var out []*server
	for _, s := range sm.servers {
		if s.up {
			out = append(out, s)
		}
	}
	return out
}

func (sm *Sim) injectCrash() {
	up := sm.upServers()
	if len(up) == 0 {
		return
	}
	s := up[sm.rng.IntN(len(up))]
	if sm.gracefulStop(s) {
		return
	}
	sm.fault("crash")
	sm.crash(s, "injected")
	sm.scheduleRestart(s)
}

// stopDraws decides which crashes of an established leader are graceful
// stops instead (a SIGTERM of a rolling restart: the leader hands
// leadership over, then goes down), from a generator seeded by the seed
// alone: drawing from the run's own generator would change every later
// draw of old seeds. Half of the seeds have none.
type stopDraws struct {
	rng  *rand.Rand
	prob float64
}

func newStopDraws(seed uint64) stopDraws {
	r := rand.New(rand.NewPCG(seed, 0x73746f70)) // "stop"
	d := stopDraws{rng: r}
	if r.IntN(2) == 0 {
		d.prob = 0.2 + 0.6*r.Float64()
	}
	return d
}

// gracefulStopTicks is how long a stopping leader waits for its transfer
// before it goes down: past the engine's transfer timeout.
const gracefulStopTicks = 2 * zab.DefaultTransferTicks

// gracefulStop stops s gracefully if it is an established leader and the
// seed's draw says so: it starts a leadership transfer and goes down
// gracefulStopTicks later, whether the transfer succeeded or not. False
// when s is to crash as drawn.
func (sm *Sim) gracefulStop(s *server) bool {
	st := s.r.Status()
	if sm.stops.prob == 0 || st.Role != zab.Leading || !st.Established || sm.stops.rng.Float64() >= sm.stops.prob {
		return false
	}
	sm.fault("graceful-stop")
	ok := s.r.TransferLeadership()
	sm.tracef(s.id, "n%d graceful stop: leadership transfer started=%v", s.id, ok)
	if ok {
		sm.report.Counters["transfers"]++
	}
	sm.drive(s)
	sm.schedule(&event{at: sm.now + gracefulStopTicks*s.tickInterval(sm.tickMs), kind: evStop, node: s.id, gen: s.gen})
	return true
}

func (sm *Sim) scheduleRestart(s *server) {
	d := sm.prof.restartMin + sm.rng.Int64N(sm.prof.restartMax-sm.prof.restartMin+1)
	sm.schedule(&event{at: sm.now + d, kind: evRestart, node: s.id, gen: s.gen})
}

// onRestart brings a crashed server back; its disk may turn out corrupt.
func (sm *Sim) onRestart(s *server) {
	if s.up || s.broken {
		return
	}
	if sm.faultsOn && sm.prof.corruptProb > 0 && sm.rng.Float64() < sm.prof.corruptProb && sm.brokenCount() < sm.maxBroken() {
		what, err := s.st.corrupt(sm.rng)
		if err != nil {
			sm.violation("n%d: corrupt a file: %v", s.id, err)
			return
		}
		if what != "" {
			s.corrupted = what
			sm.fault("corruption")
			sm.tracef(s.id, "n%d disk corrupted: one bit of %s flipped", s.id, what)
		}
	}
	sm.start(s)
}

func (sm *Sim) brokenCount() int {
	n := 0
	for _, s := range sm.servers {
		if s.broken {
			n++
		}
	}
	return n
}

// maxBroken is how many voters may stay down for good: a quorum of the
// rest must remain.
func (sm *Sim) maxBroken() int {
	if sm.rc.on {
		return sm.reconfigMaxBroken()
	}
	return (sm.report.Nodes - 1) / 2
}

// injectPartition cuts the network one of several ways; a heal follows.
func (sm *Sim) injectPartition() {
	r := sm.rng
	ids := sm.ids
	heal := sm.prof.healMin + r.Int64N(sm.prof.healMax-sm.prof.healMin+1)
	switch r.IntN(5) {
	case 0: // isolate one server
		a := ids[r.IntN(len(ids))]
		var rest []int64
		for _, id := range ids {
			if id != a {
				rest = append(rest, id)
			}
		}
		sm.fault("partition-isolate")
		sm.tracef(0, "PARTITION isolate n%d for %s", a, fmtTime(heal))
		sm.net.Partition(sm.now, []int64{a}, rest)
	case 1: // majority / minority split
		perm := slices.Clone(ids)
		r.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		k := 1 + r.IntN(len(perm)-1)
		a, b := slices.Clone(perm[:k]), slices.Clone(perm[k:])
		slices.Sort(a)
		slices.Sort(b)
		sm.fault("partition-split")
		sm.tracef(0, "PARTITION %v | %v for %s", a, b, fmtTime(heal))
		sm.net.Partition(sm.now, a, b)
	case 2: // one-way cut
		a, b := sm.pair()
		sm.fault("partition-oneway")
		sm.tracef(0, "CUT n%d → n%d for %s", a, b, fmtTime(heal))
		sm.net.Cut(a, b, sm.now)
	case 3: // two-way cut between a pair
		a, b := sm.pair()
		sm.fault("partition-pair")
		sm.tracef(0, "CUT n%d ↔ n%d for %s", a, b, fmtTime(heal))
		sm.net.CutBoth(a, b, sm.now)
	default: // flapping link
		a, b := sm.pair()
		sm.fault("flapping")
		sm.tracef(0, "FLAP n%d ↔ n%d", a, b)
		t := sm.now
		for range 2 + r.IntN(6) {
			t += 20_000 + r.Int64N(300_000)
			at := t
			sm.schedule(&event{at: at, kind: evHeal, heal: func() { sm.net.CutBoth(a, b, at) }})
			t += 20_000 + r.Int64N(300_000)
			sm.schedule(&event{at: t, kind: evHeal, heal: func() { sm.net.Heal(a, b); sm.net.Heal(b, a) }})
		}
		return
	}
	sm.schedule(&event{at: sm.now + heal, kind: evHeal, heal: sm.net.HealAll})
}

func (sm *Sim) pair() (int64, int64) {
	ids := sm.ids
	i := sm.rng.IntN(len(ids))
	j := (i + 1 + sm.rng.IntN(len(ids)-1)) % len(ids)
	return ids[i], ids[j]
}

// injectConnReset breaks one client connection, as a network blip would.
// Half of the breaks are one-sided: the client's end dies and the server
// never hears of it (a client cut off from its server), so the server holds
// the connection until the session moves to another connection or expires,
// and requests the client sent before the break still arrive and run.
func (sm *Sim) injectConnReset() {
	var live []*client
	for _, c := range sm.clients {
		if c.cn != nil && c.cn.open {
			live = append(live, c)
		}
	}
	if len(live) == 0 {
		return
	}
	c := live[sm.rng.IntN(len(live))]
	cn := c.cn
	if sm.rng.IntN(2) == 0 {
		sm.fault("conn-half-open")
		cn.open = false
		sm.tracef(cn.srv.id, "HALF-OPEN conn %d (c%d ↔ n%d): the server keeps it", cn.id, c.id, cn.srv.id)
		sm.toClient(cn, &packet{kind: pktReset, why: "connection lost"})
		return
	}
	sm.fault("conn-reset")
	cn.open = false
	sm.tracef(cn.srv.id, "RESET conn %d (c%d ↔ n%d)", cn.id, c.id, cn.srv.id)
	sm.closeConn(cn, "connection reset", true)
	if cn.srv.up {
		sm.drive(cn.srv)
	}
}

// netLatency draws one peer message's latency.
func (sm *Sim) netLatency(from, to int64) int64 {
	l := 100 + sm.rng.Int64N(sm.prof.netLatency+1)
	if sm.faultsOn && sm.prof.spikeProb > 0 && sm.rng.Float64() < sm.prof.spikeProb {
		l += sm.rng.Int64N(100_000)
	}
	return l
}
