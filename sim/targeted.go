package sim

import (
	"slices"

	"github.com/zabkeeper/zabkeeper/engine/zab"
)

// Protocol-aware faults. Random timing rarely crashes a follower in the few
// milliseconds between its ACK and its fsync, or a leader between its
// NEWLEADER and its first commit, yet that is where the ordering bugs live
// (ZOOKEEPER-3911, -4643, -4646 and friends). So the simulator watches what
// each replica does — the messages of its Ready batches and its role changes,
// seen from outside: nothing in engine/ knows — and, with a seed's chance,
// aims a fault at the step it just saw: a crash, an isolation, a power
// loss or a long stall, a short delay later (so the message that marks the step is on the
// wire, and may or may not arrive).
//
// Power loss is the correlated fault: a majority of the servers, or all of
// them, crash at the same instant, and none of their unsynced writes
// survive. A slow disk (fsyncs of 100 ms to 1 s) widens the window between
// a write and its durability on some servers of a seed.

// step names a protocol step a fault can be aimed at.
type step int

const (
	stepEstablished  step = iota // a leader just established its epoch
	stepNewLeader                // a leader just sent NEWLEADER
	stepAckNewLeader             // a follower just acked NEWLEADER
	stepAck                      // a follower just acked proposals
	stepCommit                   // a leader just sent COMMIT
	stepSyncStart                // a learner is being synced (DIFF, TRUNC, SNAP sent to it)
	stepSnapshot                 // a server just installed a snapshot
	numSteps
)

var stepNames = [numSteps]string{"established", "newleader", "ack-newleader", "ack", "commit", "sync", "snapshot"}

// stepChance is each step's chance to draw a fault at the seed's full
// aggression; frequent steps get small chances.
var stepChance = [numSteps]float64{0.5, 0.3, 0.15, 0.01, 0.01, 0.15, 0.3}

// Slow disk fsync bounds, µs.
const (
	slowFsyncMin = 100_000
	slowFsyncMax = 1_000_000
)

// action is what a protocol-aware fault does.
type action int

const (
	actCrash          action = iota // crash the server at the step
	actIsolate                      // cut it off from every peer for a while
	actPowerMajority                // power loss of a majority including it
	actPowerAll                     // power loss of every server
	actCrashWithPeers               // crash it and every server with unsynced writes
	actStall                        // stall it (a long GC pause) for 0.8–3 s
)

var actionNames = [...]string{"crash", "isolate", "power-majority", "power-all", "crash-unsynced", "stall"}

// stepActions lists the actions that make sense at each step.
var stepActions = [numSteps][]action{
	stepEstablished:  {actCrash, actIsolate, actPowerMajority, actStall},
	stepNewLeader:    {actCrash, actIsolate, actPowerMajority},
	stepAckNewLeader: {actCrash, actIsolate, actPowerAll},
	stepAck:          {actCrash, actPowerAll, actCrashWithPeers},
	stepCommit:       {actPowerAll, actPowerMajority, actCrashWithPeers, actStall},
	stepSyncStart:    {actCrash, actIsolate},
	stepSnapshot:     {actCrash, actPowerAll},
}

// observeSend notes the protocol steps a sent message marks.
func (sm *Sim) observeSend(s *server, m zab.Message) {
	switch m.Type {
	case zab.MsgNewLeader:
		sm.protocolStep(s, stepNewLeader, s.id)
	case zab.MsgAck:
		if zab.Counter(m.Zxid) == 0 {
			sm.protocolStep(s, stepAckNewLeader, s.id)
		} else {
			sm.protocolStep(s, stepAck, s.id)
		}
	case zab.MsgCommit:
		sm.protocolStep(s, stepCommit, s.id)
	case zab.MsgDiff, zab.MsgTrunc, zab.MsgSnap:
		sm.protocolStep(s, stepSyncStart, m.To)
	}
}

// protocolStep considers aiming a fault at target after step st seen on s.
// At most one protocol-aware fault is in the air at a time, and a cooldown
// follows each, so a seed still makes progress between them.
func (sm *Sim) protocolStep(s *server, st step, target int64) {
	p := &sm.prof
	if !sm.faultsOn || p.targeted == 0 || sm.now < sm.targetedUntil {
		return
	}
	if sm.rng.Float64() >= stepChance[st]*p.targeted {
		return
	}
	var acts []action
	for _, a := range stepActions[st] {
		switch {
		case a == actIsolate && p.net, a == actStall && p.clock, a != actIsolate && a != actStall && p.crash:
			acts = append(acts, a)
		}
	}
	if len(acts) == 0 {
		return
	}
	a := acts[sm.rng.IntN(len(acts))]
	// The fault lands before the message that marks the step could arrive,
	// or up to a few latencies after it.
	delay := sm.rng.Int64N(3*p.netLatency + 1)
	sm.targetedUntil = sm.now + delay + 1_000_000 + sm.rng.Int64N(3_000_000)
	t := sm.server(target)
	gen := t.gen
	name := "at-" + stepNames[st] + "-" + actionNames[a]
	sm.tracef(target, "AIM %s at n%d (seen on n%d) in %s", name, target, s.id, fmtTime(delay))
	sm.schedule(&event{at: sm.now + delay, kind: evHeal, heal: func() {
		if t.gen != gen || !t.up {
			return // the step's incarnation is gone already
		}
		sm.fault(name)
		sm.aimedFault(t, a)
	}})
}

// aimedFault carries out action a on server t.
func (sm *Sim) aimedFault(t *server, a action) {
	switch a {
	case actCrash:
		sm.crash(t, "aimed")
		sm.scheduleRestart(t)
	case actIsolate:
		sm.isolate(t.id)
	case actStall:
		// A leader stalled past its followers' patience is deposed
		// without knowing it; what it answers when it runs again is
		// what ZOOKEEPER-1675 got wrong.
		if sm.now >= t.pausedTill {
			sm.pause(t, 800_000+sm.rng.Int64N(2_200_000))
		}
	case actPowerMajority:
		others := slices.DeleteFunc(slices.Clone(sm.servers), func(x *server) bool { return x == t })
		sm.rng.Shuffle(len(others), func(i, j int) { others[i], others[j] = others[j], others[i] })
		sm.powerLoss(append([]*server{t}, others[:len(sm.voters)/2]...))
	case actPowerAll:
		sm.powerLoss(sm.servers)
	case actCrashWithPeers:
		victims := []*server{t}
		for _, x := range sm.servers {
			if x != t && x.up && x.unsynced() > 0 {
				victims = append(victims, x)
			}
		}
		sm.powerLoss(victims)
	}
}

// isolate cuts server id off from every other server until a heal.
func (sm *Sim) isolate(id int64) {
	var rest []int64
	for _, x := range sm.ids {
		if x != id {
			rest = append(rest, x)
		}
	}
	heal := sm.prof.healMin + sm.rng.Int64N(sm.prof.healMax-sm.prof.healMin+1)
	sm.tracef(0, "PARTITION isolate n%d for %s", id, fmtTime(heal))
	sm.net.Partition(sm.now, []int64{id}, rest)
	sm.schedule(&event{at: sm.now + heal, kind: evHeal, heal: sm.net.HealAll})
}

// powerLoss crashes the servers at the same instant, losing every unsynced
// write, and restarts each after its own delay.
func (sm *Sim) powerLoss(victims []*server) {
	slices.SortFunc(victims, func(a, b *server) int { return int(a.id - b.id) })
	victims = slices.Compact(victims)
	sm.tracef(0, "POWER LOSS of %v", victims)
	for _, v := range victims {
		if v.up {
			sm.crashKeeping(v, "power loss", 0)
			sm.scheduleRestart(v)
		}
	}
}

// injectPowerLoss is the random-timed power loss: a majority or everyone.
func (sm *Sim) injectPowerLoss() {
	if sm.rng.IntN(2) == 0 {
		sm.fault("power-all")
		sm.powerLoss(sm.servers)
		return
	}
	perm := slices.Clone(sm.servers)
	sm.rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
	sm.fault("power-majority")
	sm.powerLoss(perm[:len(sm.voters)/2+1])
}
