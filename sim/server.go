package sim

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/zabkeeper/zabkeeper/engine/zab"
)

// server is one simulated machine: a replica, its disk, its clock and its
// client connections.
type server struct {
	id       int64
	observer bool
	r        Replica
	disk     disk
	up       bool
	// broken is set when recovery found corruption: it stays down.
	broken bool
	// gen counts incarnations; events of an older one are ignored.
	gen uint64
	// rate is the clock rate (local ms per virtual ms); offset the local
	// clock at virtual time 0, in ms.
	rate   float64
	offset int64
	// fsyncLatency is the base fsync latency in µs.
	fsyncLatency int64
	// slowDisk gives the server a slow disk during the fault phase: every
	// fsync takes slowFsyncMin to slowFsyncMax, which keeps written but
	// unsynced records around long enough for a crash to meet them.
	slowDisk bool

	// mirror is the replica's log as the simulator saw it handed out:
	// zxid and txn hash, in zxid order, since its snapshot base.
	mirror []logEntry
	// base is the zxid of the state the replica (re)started from or last
	// installed; applied is the newest zxid it applied.
	base, applied int64
	// sinceSnap counts txns applied since the last periodic snapshot.
	sinceSnap, snapEvery int

	conns map[uint64]*conn
	// closed are connections the replica closed in the batch at hand.
	closed []uint64
	// pausedTill is when a stalled server (a long GC pause, a stuck
	// disk controller) runs again; held are the inputs that reached it
	// meanwhile, in order.
	pausedTill int64
	held       []held
	// status as of the last step, to trace role changes.
	status zab.Status
	// syncEnd is the newest record logged when NEWLEADER arrived, and
	// syncEpochPending is set until the learner adopts that epoch
	// (obligations.go).
	syncEnd          int64
	syncEpochPending bool
}

// held is an input that reached a stalled server.
type held struct {
	msg *zab.Message
	ev  *event
}

// pause stalls a server for d µs: it neither ticks nor handles anything.
func (sm *Sim) pause(s *server, d int64) {
	s.pausedTill = sm.now + d
	sm.tracef(s.id, "n%d STALLS for %s", s.id, fmtTime(d))
	sm.schedule(&event{at: s.pausedTill, kind: evResume, node: s.id, gen: s.gen})
}

// resume hands a stalled server what reached it meanwhile, in order.
func (sm *Sim) resume(s *server, gen uint64) {
	if !s.up || s.gen != gen || sm.now < s.pausedTill {
		return
	}
	sm.tracef(s.id, "n%d resumes with %d held inputs", s.id, len(s.held))
	hs := s.held
	s.held = nil
	for _, h := range hs {
		if !s.up || s.gen != gen {
			return
		}
		if h.msg != nil {
			sm.deliver(*h.msg)
		} else {
			sm.handle(h.ev)
		}
	}
}

type logEntry struct {
	zxid int64
	hash uint64
}

// localMs is the server's clock at virtual time now (µs).
func (s *server) localMs(now int64) int64 {
	return s.offset + int64(float64(now)/1000*s.rate)
}

// tickInterval is the virtual µs between two of its ticks.
func (s *server) tickInterval(tickMs int) int64 {
	return int64(float64(tickMs*1000) / s.rate)
}

// hashData hashes a txn's bytes (FNV-1a).
func hashData(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// start (re)starts a server from its disk. It reports false when recovery
// refused (the server is then broken) or the replica refused its state.
func (sm *Sim) start(s *server) bool {
	d, err := s.disk.recover()
	if err != nil {
		s.broken = true
		sm.tracef(s.id, "n%d recovery refuses to start: %v (stays down)", s.id, err)
		sm.hash.add(int64(evRestart), s.id, -1)
		return false
	}
	s.gen++
	if s.gen > 1 {
		// Whatever peers sent to the dead incarnation is lost with it.
		sm.net.Reset(s.id, sm.ids, sm.now)
	}
	cfg := sm.replicaConfig(s)
	r, err := sm.factory(cfg, d)
	if err != nil {
		s.broken = true
		sm.violation("n%d: the replica refused the state its disk recovered: %v", s.id, err)
		return false
	}
	s.r, s.up = r, true
	s.conns = map[uint64]*conn{}
	s.closed = nil
	s.base = d.SnapshotZxid
	s.mirror = s.mirror[:0]
	for _, e := range d.Log {
		h := hashData(e.Data)
		sm.noteTxnData(h, e.Data)
		s.mirror = append(s.mirror, logEntry{e.Zxid, h})
	}
	s.applied = r.LastZxid()
	s.status = zab.Status{}
	sm.tracef(s.id, "n%d start gen %d: snapshot 0x%x, %d log records, epochs %d/%d", s.id, s.gen, d.SnapshotZxid, len(d.Log), d.HardState.AcceptedEpoch, d.HardState.CurrentEpoch)
	sm.hash.add(int64(evRestart), s.id, int64(s.gen), d.SnapshotZxid, int64(len(d.Log)))
	sm.schedule(&event{at: sm.now + sm.rng.Int64N(s.tickInterval(sm.tickMs)) + 1, kind: evTick, node: s.id, gen: s.gen})
	sm.drive(s)
	return true
}

// crash stops a server: unsynced writes may be lost or torn, every
// connection and in-flight message of it dies.
func (sm *Sim) crash(s *server, why string) {
	sm.crashKeeping(s, why, sm.prof.keepUnsynced)
}

// crashKeeping crashes a server whose unsynced records each survive with
// probability keep (a power loss keeps none: the drive's cache dies too).
func (sm *Sim) crashKeeping(s *server, why string, keep float64) {
	if !s.up {
		return
	}
	lost, torn := s.disk.crash(sm.rng, keep, sm.prof.tearProb)
	if sm.opts.lyingDisk && len(s.disk.log) > 0 {
		k := min(len(s.disk.log), 1+sm.rng.IntN(20))
		s.disk.log = s.disk.log[:len(s.disk.log)-k]
		lost += k
	}
	if torn {
		sm.fault("torn-write")
	}
	s.up, s.r = false, nil
	s.pausedTill, s.held = 0, nil
	sm.tracef(s.id, "n%d CRASH (%s): %d unsynced records lost, torn=%v", s.id, why, lost, torn)
	sm.hash.add(-int64(evRestart), s.id, int64(lost))
	sm.net.Reset(s.id, sm.ids, sm.now)
	for _, id := range slices.Sorted(maps.Keys(s.conns)) {
		c := s.conns[id]
		sm.closeConn(c, "server crashed", false)
	}
	s.conns = nil
}

// drive carries out every Ready batch the replica has, with the
// obligations in order, then checks the invariants it can see.
func (sm *Sim) drive(s *server) {
	for s.up && s.r.HasReady() {
		rd := s.r.Ready()
		sm.handleReady(s, rd)
		if !s.up {
			return
		}
		s.r.Advance()
		// Connections the replica closed are disconnected only now: no
		// input may reach it between Ready and Advance.
		for _, c := range s.closed {
			s.r.Disconnect(c)
		}
		s.closed = s.closed[:0]
	}
	if s.up {
		sm.checkStatus(s)
	}
}

func (sm *Sim) handleReady(s *server, rd Batch) {
	if rd.HardState != nil {
		sm.checkHardState(s, *rd.HardState)
		sm.checkEpochObligation(s, *rd.HardState)
		s.disk.hard = *rd.HardState
		sm.tracef(s.id, "n%d persist epochs accepted=%d current=%d", s.id, rd.HardState.AcceptedEpoch, rd.HardState.CurrentEpoch)
		sm.hash.add(1, s.id, rd.HardState.AcceptedEpoch, rd.HardState.CurrentEpoch)
	}
	if rd.Truncate != nil {
		t := *rd.Truncate
		s.disk.truncate(t)
		i := len(s.mirror)
		for i > 0 && s.mirror[i-1].zxid > t {
			i--
		}
		sm.tracef(s.id, "n%d truncate log after 0x%x (%d records)", s.id, t, len(s.mirror)-i)
		sm.hash.add(2, s.id, t)
		sm.report.Counters["truncations"]++
		s.mirror = s.mirror[:i]
		if t < s.applied {
			sm.violation("n%d truncated its log to 0x%x below its applied 0x%x", s.id, t, s.applied)
		}
	}
	if rd.Snapshot != nil {
		data, err := zab.ReadSnapshot(rd.Snapshot.Data)
		if err != nil {
			panic(fmt.Sprintf("sim: n%d: serialize snapshot 0x%x: %v", s.id, rd.Snapshot.Zxid, err))
		}
		s.disk.installSnapshot(rd.Snapshot.Zxid, data)
		sm.tracef(s.id, "n%d install snapshot 0x%x", s.id, rd.Snapshot.Zxid)
		sm.hash.add(3, s.id, rd.Snapshot.Zxid)
		sm.report.Counters["snap-syncs"]++
		s.mirror = s.mirror[:0]
		s.base = rd.Snapshot.Zxid
		sm.checkSnapshotJump(s, rd.Snapshot.Zxid)
		s.applied = rd.Snapshot.Zxid
	}
	if rd.Snapshot != nil {
		sm.protocolStep(s, stepSnapshot, s.id)
	}
	for _, m := range rd.Messages {
		m.From = s.id
		sm.observeSend(s, m)
		if sm.traceOn(s.id) {
			sm.tracef(s.id, "n%d %s send %s to n%d", s.id, roleName(s.status), describeMsg(m), m.To)
		}
		sm.net.Send(m, sm.now)
	}
	if len(rd.Entries) > 0 {
		for _, e := range rd.Entries {
			if n := len(s.mirror); n > 0 && e.Zxid <= s.mirror[n-1].zxid {
				sm.violation("n%d logged 0x%x after 0x%x", s.id, e.Zxid, s.mirror[n-1].zxid)
			}
			h := hashData(e.Data)
			sm.noteTxnData(h, e.Data)
			s.mirror = append(s.mirror, logEntry{e.Zxid, h})
			sm.hash.add(4, s.id, e.Zxid)
		}
		sm.tracef(s.id, "n%d append %d entries 0x%x..0x%x", s.id, len(rd.Entries), rd.Entries[0].Zxid, rd.Entries[len(rd.Entries)-1].Zxid)
		seq := s.disk.append(rd.Entries)
		lat := sm.fsyncLatency(s)
		at := max(sm.now+lat, s.disk.busyUntil)
		s.disk.busyUntil = at
		sm.schedule(&event{at: at, kind: evFsync, node: s.id, gen: s.gen, zxid: int64(seq)})
	}
	// A message that promises durability is checked once the batch's
	// entries are written (not yet synced): they are what it may not
	// promise.
	for _, m := range rd.Messages {
		m.From = s.id
		sm.checkSendObligations(s, m)
	}
	sm.noteApplied(s, rd.Committed)
	for i := range rd.Outputs {
		sm.serverOutput(s, &rd.Outputs[i])
	}
}

// noteApplied reads the replica's applied zxid and checks what it applied
// since the last look against the cluster's committed history.
func (sm *Sim) noteApplied(s *server, committed int) {
	last := s.r.LastZxid()
	if last == s.applied {
		return
	}
	if last < s.applied {
		sm.violation("n%d applied zxid went back from 0x%x to 0x%x", s.id, s.applied, last)
		s.applied = last
		return
	}
	i, _ := slices.BinarySearchFunc(s.mirror, s.applied+1, func(e logEntry, z int64) int { return cmp.Compare(e.zxid, z) })
	count := 0
	for ; i < len(s.mirror) && s.mirror[i].zxid <= last; i++ {
		e := s.mirror[i]
		h := e.hash
		if sm.opts.mutateApplied != nil {
			h = sm.opts.mutateApplied(s.id, e.zxid, h)
		}
		sm.checkApply(s, e.zxid, h)
		s.applied = e.zxid
		count++
	}
	if s.applied != last {
		sm.violation("n%d applied up to 0x%x but its log (as handed out) stops at 0x%x", s.id, last, s.applied)
		s.applied = last
	}
	_ = committed
	sm.tracef(s.id, "n%d applied up to 0x%x", s.id, last)
	sm.hash.add(5, s.id, last)
	sm.checkDigest(s, last, s.r.Digest())
	s.sinceSnap += count
	if s.snapEvery > 0 && s.sinceSnap >= s.snapEvery {
		s.sinceSnap = 0
		zxid, data := s.r.Snapshot()
		s.disk.compact(zxid, data)
		sm.tracef(s.id, "n%d snapshot at 0x%x (%d bytes)", s.id, zxid, len(data))
	}
}

// onFsync completes an fsync: records become durable and the replica hears
// of it, unless the disk fails, which crashes the server as ZooKeeper does.
func (sm *Sim) onFsync(s *server, seq uint64) {
	if sm.faultsOn && sm.prof.fsyncErr > 0 && sm.rng.Float64() < sm.prof.fsyncErr {
		sm.fault("fsync-error")
		sm.crash(s, "fsync error")
		sm.scheduleRestart(s)
		return
	}
	zxid, ok := s.disk.fsync(seq)
	if !ok {
		return
	}
	sm.hash.add(6, s.id, zxid)
	s.r.Persisted(zxid)
	sm.drive(s)
}

func (sm *Sim) fsyncLatency(s *server) int64 {
	if s.slowDisk && sm.faultsOn {
		return slowFsyncMin + sm.rng.Int64N(slowFsyncMax-slowFsyncMin+1)
	}
	l := s.fsyncLatency/2 + sm.rng.Int64N(s.fsyncLatency+1)
	if sm.faultsOn && sm.prof.fsyncSpike > 0 && sm.rng.Float64() < sm.prof.fsyncSpike {
		l += sm.rng.Int64N(200_000) // up to 200 ms stall
	}
	return l
}

func roleName(st zab.Status) string { return st.Role.String() }

func (s *server) String() string { return fmt.Sprintf("n%d", s.id) }
