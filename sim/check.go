package sim

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/zabkeeper/zabkeeper/engine/zab"
)

// checker holds the cluster-wide facts the invariants are checked against.
type checker struct {
	// committed maps every zxid some server applied to its txn's hash;
	// order lists those zxids ascending.
	committed map[int64]uint64
	order     []int64
	// leaders maps an epoch to the server established as its leader.
	leaders map[int64]int64
	// seenEstablished marks (server, epoch) pairs already checked for
	// primary integrity.
	seenEstablished map[[2]int64]bool
	// digests maps an applied zxid to the tree digest there.
	digests map[int64]digestAt
	// ackedMax is the newest zxid a client saw in a successful reply.
	ackedMax int64
}

type digestAt struct {
	digest uint64
	node   int64
}

func newChecker() *checker {
	return &checker{
		committed:       map[int64]uint64{},
		leaders:         map[int64]int64{},
		seenEstablished: map[[2]int64]bool{},
		digests:         map[int64]digestAt{},
	}
}

func (c *checker) maxCommitted() int64 {
	if len(c.order) == 0 {
		return 0
	}
	return c.order[len(c.order)-1]
}

// violation records a failed invariant (the first 50 are kept) and ends the
// run: the first violation is the finding, and what follows it (a liveness
// phase of up to a minute on a broken cluster, Porcupine over a history
// already known bad) only costs time and buries the cause under its effects.
// Violations found while handling the same event are all kept.
func (sm *Sim) violation(format string, args ...any) {
	msg := fmt.Sprintf("t=%s ", fmtTime(sm.now)) + fmt.Sprintf(format, args...)
	sm.tracef(0, "VIOLATION %s", msg)
	if len(sm.report.Violations) < 50 {
		sm.report.Violations = append(sm.report.Violations, msg)
	}
	if sm.phase != phaseDone {
		sm.tracef(0, "STOP at the first violation")
	}
	sm.phase = phaseDone
}

// checkApply checks one txn a server applied: primary order (zxids strictly
// increase on a server), prefix agreement (equal txn at equal zxid on every
// server), agreement and total order (nobody skips a committed txn, and no
// txn appears below one already committed), integrity.
func (sm *Sim) checkApply(s *server, z int64, h uint64) {
	ck := sm.check
	if z <= s.applied {
		sm.violation("primary order: n%d applied 0x%x after 0x%x", s.id, z, s.applied)
		return
	}
	if zab.Epoch(z) < zab.Epoch(s.applied) {
		sm.violation("primary order: n%d applied epoch %d txn 0x%x after epoch %d", s.id, zab.Epoch(z), z, zab.Epoch(s.applied))
	}
	// Did the server skip a txn committed between its last one and z?
	i, _ := slices.BinarySearch(ck.order, s.applied+1)
	if i < len(ck.order) && ck.order[i] < z {
		sm.violation("agreement: n%d applied 0x%x right after 0x%x, skipping committed txn 0x%x", s.id, z, s.applied, ck.order[i])
	}
	if old, ok := ck.committed[z]; ok {
		if old != h {
			sm.violation("prefix agreement: n%d applied a different txn at 0x%x (hash %016x, committed %016x)", s.id, z, h, old)
		}
		return
	}
	if m := ck.maxCommitted(); z < m {
		sm.violation("total order: n%d applied txn 0x%x that nobody applied before, below committed 0x%x", s.id, z, m)
		return
	}
	ck.committed[z] = h
	ck.order = append(ck.order, z)
	sm.report.Committed++
	sm.noteCommitted(z, h)
}

// checkSnapshotJump checks a snapshot install: the state it brings must be
// a committed one.
func (sm *Sim) checkSnapshotJump(s *server, z int64) {
	if z == 0 {
		return
	}
	if _, ok := sm.check.committed[z]; !ok {
		sm.violation("integrity: n%d installed a snapshot at 0x%x, which no server applied", s.id, z)
	}
	if z < s.applied {
		sm.violation("primary order: n%d installed a snapshot at 0x%x below its applied 0x%x", s.id, z, s.applied)
	}
}

// checkDigest checks that servers at the same zxid hold the same tree.
func (sm *Sim) checkDigest(s *server, z int64, d uint64) {
	if old, ok := sm.check.digests[z]; ok {
		if old.digest != d {
			sm.violation("state: n%d tree digest %016x at 0x%x, n%d had %016x", s.id, d, z, old.node, old.digest)
		}
		return
	}
	sm.check.digests[z] = digestAt{d, s.id}
}

// checkHardState checks a server's epochs only go forward.
func (sm *Sim) checkHardState(s *server, hs zab.HardState) {
	old := s.st.hard
	if hs.AcceptedEpoch < old.AcceptedEpoch || hs.CurrentEpoch < old.CurrentEpoch {
		sm.violation("n%d epochs went back: accepted %d→%d, current %d→%d", s.id, old.AcceptedEpoch, hs.AcceptedEpoch, old.CurrentEpoch, hs.CurrentEpoch)
	}
	if hs.CurrentEpoch > hs.AcceptedEpoch {
		sm.violation("n%d currentEpoch %d beyond acceptedEpoch %d", s.id, hs.CurrentEpoch, hs.AcceptedEpoch)
	}
}

// checkStatus traces role changes and checks leadership (one established
// leader per epoch) and primary integrity (an established leader holds every
// txn of earlier epochs that anyone applied).
func (sm *Sim) checkStatus(s *server) {
	// s.status is rewritten in place; only these four of the old one
	// are compared.
	oldRole, oldLeader, oldEpoch, oldEstablished := s.status.Role, s.status.Leader, s.status.Epoch, s.status.Established
	statusSummaryTo(s.r, &s.status)
	st := &s.status
	// What the checks below read, copied: the steps they take (faults at
	// protocol steps) may change s.status meanwhile.
	role, epoch, established := st.Role, st.Epoch, st.Established
	if st.Role != oldRole || st.Leader != oldLeader || st.Epoch != oldEpoch || st.Established != oldEstablished {
		sm.tracef(s.id, "n%d becomes %s (leader n%d, epoch %d, established %v, last 0x%x, committed 0x%x)", s.id, st.Role, st.Leader, st.Epoch, st.Established, st.LastZxid, st.Committed)
		sm.hash.add(7, s.id, int64(st.Role), st.Leader, st.Epoch)
		if st.Role == zab.Leading && st.Established && !(oldRole == zab.Leading && oldEstablished && oldEpoch == st.Epoch) {
			sm.checkEstablishQuorum(s, epoch)
			sm.protocolStep(s, stepEstablished, s.id)
		}
	}
	if role != zab.Leading || !established {
		return
	}
	ck := sm.check
	if l, ok := ck.leaders[epoch]; ok && l != s.id {
		sm.violation("leadership: n%d and n%d both established leaders of epoch %d", l, s.id, epoch)
	}
	ck.leaders[epoch] = s.id
	key := [2]int64{s.id, epoch}
	if ck.seenEstablished[key] {
		return
	}
	ck.seenEstablished[key] = true
	i, _ := slices.BinarySearch(ck.order, s.base+1)
	for ; i < len(ck.order); i++ {
		z := ck.order[i]
		if zab.Epoch(z) >= epoch {
			break
		}
		j, found := slices.BinarySearchFunc(s.mirror, z, func(e logEntry, z int64) int { return cmp.Compare(e.zxid, z) })
		if !found {
			sm.violation("primary integrity: n%d established as leader of epoch %d without committed txn 0x%x", s.id, epoch, z)
			return
		}
		if s.mirror[j].hash != ck.committed[z] {
			sm.violation("primary integrity: n%d leads epoch %d with a different txn at committed 0x%x", s.id, epoch, z)
			return
		}
	}
}

// summaryReplica is a Replica that gives its Status without the leader's
// Followers and Outstanding, cheaply (engine.Node.StatusSummary).
type summaryReplica interface {
	StatusSummary() zab.Status
}

// statusSummary returns r's status for the checks after every step, which
// read neither Followers nor Outstanding.
func statusSummary(r Replica) zab.Status {
	if sr, ok := r.(summaryReplica); ok {
		return sr.StatusSummary()
	}
	return r.Status()
}

// summaryToReplica is a Replica that writes its summary in place
// (engine.Node.StatusSummaryTo).
type summaryToReplica interface {
	StatusSummaryTo(st *zab.Status)
}

// statusSummaryTo writes statusSummary(r) into *st.
func statusSummaryTo(r Replica, st *zab.Status) {
	if sr, ok := r.(summaryToReplica); ok {
		sr.StatusSummaryTo(st)
		return
	}
	*st = statusSummary(r)
}
