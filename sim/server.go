package sim

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/zabkeeper/zabkeeper/disk"
	"github.com/zabkeeper/zabkeeper/engine"
	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/netstub/zklink"
)

// server is one simulated machine: a replica, its disk, its clock and its
// client connections.
type server struct {
	id       int64
	observer bool
	r        Replica
	// ready is handleReady's handler, kept here so that passing it as
	// an engine.Handler does not allocate.
	ready readyHandler
	// caps are the link capabilities this incarnation was told (caps.go).
	caps linkCaps
	// st is the machine's disk, kept by the real disk package.
	st *storage
	up bool
	// broken is set when recovery refused the disk: it stays down.
	broken bool
	// corrupted is the file the simulator damaged before this restart.
	corrupted string
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
	// roConns counts the connections in conns with roServer set, so the
	// read-only check after every step walks conns only when one exists.
	roConns int
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
	// zk and qc are the connection table of this incarnation and the
	// simulated connections of its entries (wire.go).
	zk *zklink.Conns
	qc map[*zklink.Conn]*qconn
	// native is this incarnation's kind (kinds.go).
	native bool
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

// logEntry is one record of a server's log as the simulator saw it
// handed out: seq is the append that wrote it (0 for records recovered at
// start), synced whether an fsync covering it completed.
type logEntry struct {
	zxid   int64
	hash   uint64
	seq    uint64
	synced bool
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

// start (re)starts a server from its disk: the real recovery code reads
// back what crashes left. It reports false when recovery refused (the
// server is then broken and stays down) or the replica refused its state.
func (sm *Sim) start(s *server) bool {
	d, loaded, err := s.st.open(sm.diskLogger(s))
	corrupted := s.corrupted
	s.corrupted = ""
	if err != nil {
		s.broken = true
		sm.tracef(s.id, "n%d recovery refuses to start: %v (stays down)", s.id, err)
		sm.hash.add(int64(evRestart), s.id, -1)
		if corrupted == "" {
			sm.violation("recovery: n%d refused a disk that only crashes touched: %v", s.id, err)
		}
		return false
	}
	if corrupted != "" && corrupted == loaded {
		sm.violation("recovery: n%d loaded snapshot %s, which was corrupted, without noticing", s.id, loaded)
	}
	hashes := make([]uint64, len(d.Log)) // each record's, for the check and the mirror
	for i, e := range d.Log {
		hashes[i] = hashData(e.Data)
	}
	sm.checkRecovered(s, d.Log, hashes)
	s.gen++
	if s.gen > 1 {
		// Whatever peers sent to the dead incarnation is lost with it.
		sm.net.Reset(s.id, sm.ids, sm.now)
	}
	cfg := sm.replicaConfig(s)
	cfg.ReadOnlyMode = sm.prof.readOnly
	sm.configureReconfig(s, &cfg)
	r, err := sm.factory(cfg, d)
	if err != nil {
		s.broken = true
		sm.violation("n%d: the replica refused the state its disk recovered: %v", s.id, err)
		return false
	}
	s.r, s.up = r, true
	s.zk, s.qc = zklink.NewConns(s.id, sm.zkConfig), map[*zklink.Conn]*qconn{}
	s.zk.SetBook(sm.book)
	sm.announce(s)
	s.conns, s.roConns = map[uint64]*conn{}, 0
	s.caps = newLinkCaps()
	s.closed = nil
	s.base = d.SnapshotZxid
	s.mirror = s.mirror[:0]
	for i, e := range d.Log {
		h := hashes[i]
		sm.noteTxnData(h, e.Data)
		s.mirror = append(s.mirror, logEntry{zxid: e.Zxid, hash: h, synced: true})
	}
	s.applied = r.LastZxid()
	s.status = zab.Status{}
	sm.tracef(s.id, "n%d start gen %d: snapshot 0x%x, %d log records, epochs %d/%d", s.id, s.gen, d.SnapshotZxid, len(d.Log), d.HardState.AcceptedEpoch, d.HardState.CurrentEpoch)
	sm.hash.add(int64(evRestart), s.id, int64(s.gen), d.SnapshotZxid, int64(len(d.Log)))
	sm.schedule(&event{at: sm.now + sm.rng.Int64N(s.tickInterval(sm.tickMs)) + 1, kind: evTick, node: s.id, gen: s.gen})
	sm.drive(s)
	return true
}

// checkRecovered checks that every record recovery read back is one the
// server logged (as its mirror, still of the previous incarnation, says)
// or at least one some server logged: a record recovery made up, a bit
// flip the checksums let through, is corruption served as data.
//
// hashes holds each record's hashData.
func (sm *Sim) checkRecovered(s *server, log []zab.Entry, hashes []uint64) {
	for k, e := range log {
		h := hashes[k]
		i, found := slices.BinarySearchFunc(s.mirror, e.Zxid, func(m logEntry, z int64) int { return cmp.Compare(m.zxid, z) })
		if found && s.mirror[i].hash != h {
			sm.violation("recovery: n%d read back record 0x%x with contents it never logged at that zxid", s.id, e.Zxid)
			return
		}
		if _, known := sm.txnData[h]; !found && !known {
			sm.violation("recovery: n%d read back record 0x%x that no server ever logged", s.id, e.Zxid)
			return
		}
	}
}

// crash stops a server: unsynced writes may be lost or torn, every
// connection and in-flight message of it dies.
func (sm *Sim) crash(s *server, why string) {
	sm.crashKeeping(s, why, sm.prof.keepUnsynced)
}

// crashKeeping crashes a server whose unsynced writes each survive with
// probability keep (a power loss keeps none: the drive's cache dies too).
// The machine's MemFS crashes: open files die, unsynced bytes go.
func (sm *Sim) crashKeeping(s *server, why string, keep float64) {
	if !s.up {
		return
	}
	lost, torn := s.st.crash(sm.rng, keep, sm.prof.tearProb)
	if torn {
		sm.fault("torn-write")
	}
	s.up, s.r = false, nil
	s.zk, s.qc = nil, nil
	s.pausedTill, s.held = 0, nil
	sm.tracef(s.id, "n%d CRASH (%s): %d unsynced bytes lost, torn=%v", s.id, why, lost, torn)
	sm.hash.add(-int64(evRestart), s.id, int64(lost))
	sm.net.Reset(s.id, sm.ids, sm.now)
	for _, id := range slices.Sorted(maps.Keys(s.conns)) {
		c := s.conns[id]
		sm.closeConn(c, "server crashed", false)
	}
	s.conns, s.roConns = nil, 0
}

// drive carries out every Ready batch the replica has, with the
// obligations in order (engine.Ready.Handle), then checks the invariants
// it can see.
func (sm *Sim) drive(s *server) {
	for s.up && s.r.HasReady() {
		rd := s.r.Ready()
		sm.handleReady(s, &rd)
		if !s.up {
			return
		}
		s.r.Advance()
		if mr, ok := s.r.(messageReuser); ok {
			mr.ReuseMessages(rd.Messages) // sent: sendPeer encoded every one
		}
		// Connections the replica closed are disconnected only now: no
		// input may reach it between Ready and Advance.
		for _, c := range s.closed {
			s.r.Disconnect(c)
		}
		s.closed = s.closed[:0]
	}
	if h, ok := s.r.(halter); ok && s.up {
		if err := h.Halted(); err != nil {
			// The simulator writes no fuzzy snapshots: a replica that
			// refuses its own recovered tree is a finding.
			sm.violation("n%d halted: %v", s.id, err)
		}
	}
	if s.up {
		sm.closeDroppedLearners(s)
		sm.checkStatus(s)
		sm.checkReconfigQuorums(s)
		sm.checkReadOnlyConns(s)
	}
}

// messageReuser is a replica that takes a batch's Messages back once they
// are sent (engine.Node.ReuseMessages).
type messageReuser interface{ ReuseMessages(msgs []zab.Message) }

// halter is a replica that may refuse to serve what it recovered
// (engine.Node.Halted).
type halter interface{ Halted() error }

func (sm *Sim) handleReady(s *server, rd *Batch) {
	// A pointer into s: a readyHandler value boxed in the interface
	// allocated on every batch.
	s.ready = readyHandler{sm, s}
	if err := rd.Handle(&s.ready); err != nil {
		if s.up {
			sm.violation("n%d: %v", s.id, err)
		}
		return
	}
	// A message that promises durability is checked once the batch's
	// entries are written (not yet synced): they are what it may not
	// promise.
	for _, m := range rd.Messages {
		m.From = s.id
		sm.checkSendObligations(s, m)
	}
	sm.noteApplied(s)
}

// readyHandler carries out a batch's obligations on the simulated machine:
// its storage, the simulated network, its client connections.
type readyHandler struct {
	sm *Sim
	s  *server
}

func (h readyHandler) SaveHardState(hs zab.HardState) error {
	sm, s := h.sm, h.s
	sm.checkHardState(s, hs)
	sm.checkEpochObligation(s, hs)
	if err := s.st.saveHardState(hs); err != nil {
		return err
	}
	sm.tracef(s.id, "n%d persist epochs accepted=%d current=%d", s.id, hs.AcceptedEpoch, hs.CurrentEpoch)
	sm.hash.add(1, s.id, hs.AcceptedEpoch, hs.CurrentEpoch)
	return nil
}

func (h readyHandler) TruncateLog(t int64) error {
	sm, s := h.sm, h.s
	if err := s.st.log.TruncateAfter(t); err != nil {
		return err
	}
	i := len(s.mirror)
	for i > 0 && s.mirror[i-1].zxid > t {
		i--
	}
	sm.tracef(s.id, "n%d truncate log after 0x%x (%d records)", s.id, t, len(s.mirror)-i)
	sm.hash.add(2, s.id, t)
	sm.report.Counters["truncations"]++
	s.mirror = s.mirror[:i]
	// Every record TruncateAfter keeps is durable when it returns.
	for j := range s.mirror {
		s.mirror[j].synced = true
	}
	if t < s.applied {
		sm.violation("n%d truncated its log to 0x%x below its applied 0x%x", s.id, t, s.applied)
	}
	return nil
}

func (h readyHandler) SaveSnapshot(si *zab.SnapshotInstall) error {
	sm, s := h.sm, h.s
	err := s.st.saveSnapshot(si.Zxid, func(w io.Writer) error {
		_, err := si.Data.WriteTo(w)
		return err
	}, false)
	if err != nil {
		return err
	}
	sm.tracef(s.id, "n%d install snapshot 0x%x", s.id, si.Zxid)
	sm.hash.add(3, s.id, si.Zxid)
	sm.report.Counters["snap-syncs"]++
	s.mirror = s.mirror[:0]
	s.base = si.Zxid
	sm.checkSnapshotJump(s, si.Zxid)
	s.applied = si.Zxid
	sm.protocolStep(s, stepSnapshot, s.id)
	return nil
}

func (h readyHandler) Send(msgs []zab.Message) {
	sm, s := h.sm, h.s
	for _, m := range msgs {
		m.From = s.id
		sm.observeSend(s, m)
		sm.checkLinkCaps(s, m)
		if sm.traceOn(s.id) {
			sm.tracef(s.id, "n%d %s send %s to n%d", s.id, roleName(s.status), describeMsg(m), m.To)
		}
		sm.sendPeer(s, m)
	}
	sm.setRole(s)
}

// AppendLog appends the entries to the real disk.Log and issues its fsync,
// which completes at an fsync event a latency later. An fsync that fails
// (a fault the seed draws) fails inside disk.Log, and the server stops, as
// ZooKeeper's does.
func (h readyHandler) AppendLog(entries []engine.Entry) error {
	sm, s := h.sm, h.s
	// Reused: disk.Log.Append copies the records into its buffer.
	recs := slices.Grow(sm.recs[:0], len(entries))[:len(entries)]
	defer func() { clear(recs); sm.recs = recs[:0] }()
	for i, e := range entries {
		if n := len(s.mirror); n > 0 && e.Zxid <= s.mirror[n-1].zxid {
			sm.violation("n%d logged 0x%x after 0x%x", s.id, e.Zxid, s.mirror[n-1].zxid)
		}
		recs[i] = disk.Record{Zxid: e.Zxid, Data: e.Data}
		sm.hash.add(4, s.id, e.Zxid)
	}
	if sm.traceOn(s.id) {
		sm.tracef(s.id, "n%d append %d entries 0x%x..0x%x", s.id, len(entries), entries[0].Zxid, entries[len(entries)-1].Zxid)
	}
	fail := sm.faultsOn && sm.prof.fsyncErr > 0 && sm.rng.Float64() < sm.prof.fsyncErr
	seq, err := s.st.appendAndIssue(recs, fail)
	if err != nil {
		if fail && errors.Is(err, disk.ErrInjected) {
			sm.fault("fsync-error")
			sm.tracef(s.id, "n%d fsync fails: %v", s.id, err)
			sm.crash(s, "fsync error")
			sm.scheduleRestart(s)
		}
		return err
	}
	for _, e := range entries {
		hd := hashData(e.Data)
		sm.noteTxnData(hd, e.Data)
		s.mirror = append(s.mirror, logEntry{zxid: e.Zxid, hash: hd, seq: seq})
	}
	lat := sm.fsyncLatency(s)
	at := max(sm.now+lat, s.st.busyUntil)
	s.st.busyUntil = at
	sm.schedule(&event{at: at, kind: evFsync, node: s.id, gen: s.gen, zxid: int64(seq)})
	return nil
}

func (h readyHandler) Deliver(outs []engine.Output) {
	for i := range outs {
		h.sm.serverOutput(h.s, &outs[i])
	}
}

// noteApplied reads the replica's applied zxid and checks what it applied
// since the last look against the cluster's committed history.
func (sm *Sim) noteApplied(s *server) {
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
	if sm.traceOn(s.id) {
		sm.tracef(s.id, "n%d applied up to 0x%x", s.id, last)
	}
	sm.hash.add(5, s.id, last)
	sm.checkDigest(s, last, s.r.Digest())
	s.sinceSnap += count
	if s.snapEvery > 0 && s.sinceSnap >= s.snapEvery {
		s.sinceSnap = 0
		zxid, data := s.r.Snapshot()
		if err := s.st.saveSnapshot(zxid, func(w io.Writer) error {
			_, err := w.Write(data)
			return err
		}, true); err != nil {
			sm.violation("n%d: periodic snapshot at 0x%x: %v", s.id, zxid, err)
			return
		}
		sm.tracef(s.id, "n%d snapshot at 0x%x (%d bytes)", s.id, zxid, len(data))
	}
}

// onFsync completes the fsyncs issued up to seq: their bytes become durable
// on the machine's MemFS and the replica hears of it.
func (sm *Sim) onFsync(s *server, seq uint64) {
	if err := s.st.complete(seq); err != nil {
		sm.violation("n%d: complete fsync: %v", s.id, err)
		return
	}
	i := len(s.mirror) - 1
	for i >= 0 && s.mirror[i].seq > seq {
		i--
	}
	if i < 0 || s.mirror[i].seq == 0 {
		return // what it covered was truncated away or replaced by a snapshot
	}
	zxid := s.mirror[i].zxid
	for j := i; j >= 0 && !s.mirror[j].synced; j-- {
		s.mirror[j].synced = true
	}
	sm.hash.add(6, s.id, zxid)
	s.r.Persisted(zxid)
	sm.drive(s)
}

// unsynced counts the records a crash could lose now.
func (s *server) unsynced() int {
	n := 0
	for i := len(s.mirror) - 1; i >= 0 && !s.mirror[i].synced; i-- {
		n++
	}
	return n
}

// firstUnsynced returns the oldest record up to zxid that is not durable.
//
// The unsynced records are always the mirror's tail (records are appended
// at the end, an fsync marks from its last record back to the first synced
// one, truncation and recovery leave every record synced), so the oldest is
// found from the end: the scan from the start cost every ACK the length of
// the log.
func (s *server) firstUnsynced(zxid int64) (int64, bool) {
	k := len(s.mirror)
	for k > 0 && !s.mirror[k-1].synced {
		k--
	}
	if k < len(s.mirror) && s.mirror[k].zxid <= zxid {
		return s.mirror[k].zxid, true
	}
	return 0, false
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
