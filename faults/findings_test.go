package faults

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/zabkeeper/zabkeeper/faults/load"
	"github.com/zabkeeper/zabkeeper/linearizability"
)

// The checks of a run return findings. The normal run fails the test with
// each one as it is found (t.Errorf with the finding's message); a run with
// a planted bug keeps them, since it is expected to find something, and
// TestFaultsCatchPlantedBug says which check caught the bug and when.

// The checks, as named in findings.
const (
	checkLost        = "acked-writes-lost" // a final read misses an acknowledged write
	checkPorcupine   = "linearizability"   // Porcupine: the history is not linearizable
	checkReads       = "read-guarantees"   // CheckReads: a read broke a read guarantee
	checkWatchEvents = "watch-events"      // an implausible watch event
	checkWatchMissed = "watch-missed"      // a watch that never fired
	checkTwoLeaders  = "two-leaders"       // two servers served as leaders of one epoch
	checkBig         = "big-values"        // a big value read back damaged
	checkIdle        = "idle-connection"   // a connection quiet for over 30 s failed its next large reply or burst of events
	checkExpiry      = "session-expiry"    // an expired session's ephemeral did not vanish exactly once, or a session did not expire
	checkReconfig    = "reconfig"          // -faults.reconfig: the reconfigs' answers and /zookeeper/config disagree, a session expired unasked
	checkConverge    = "convergence"       // -faults.reconfig: the final members do not hold the same tree
	// The two below are no evidence of a safety violation: a planted bug
	// that only shows as one of them is not caught.
	checkPorcupineTimeout = "linearizability-timeout" // Porcupine gave up
	checkRecovery         = "recovery"                // the ensemble did not come back
)

// finding is one violation found by a check.
type finding struct {
	check string
	// msg is the line the normal run fails with.
	msg string
	// at is when the evidence arose, in the history's clock (Unix ns); 0
	// if unknown (the end of the run).
	at int64
}

// safety reports whether f is evidence of a broken guarantee (not merely
// of an ensemble that did not recover, or a check that gave up).
func (f finding) safety() bool {
	return f.check != checkRecovery && f.check != checkPorcupineTimeout
}

// sink receives findings as the checks make them.
type sink struct {
	t *testing.T
	// keep: a planted-bug run; findings are kept (and logged), not
	// failures.
	keep  bool
	found []finding
}

// maxLogged bounds the findings of one check that a planted-bug run logs.
const maxLogged = 5

func (s *sink) report(fs ...finding) {
	for i, f := range fs {
		if !s.keep {
			s.t.Errorf("%s", f.msg)
			continue
		}
		s.found = append(s.found, f)
		if i < maxLogged {
			s.t.Logf("found (%s): %s", f.check, f.msg)
		}
	}
}

func lostFindings(lost []load.LostWrite) []finding {
	var out []finding
	for _, l := range lost {
		out = append(out, finding{check: checkLost, msg: "acknowledged write lost: " + l.Desc, at: l.At})
	}
	return out
}

// maxReadViolations is how many read violations are reported one by one.
const maxReadViolations = 20

// readFindings reports the first maxReadViolations violations, then one
// finding for the count (dated by the earliest of all).
func readFindings(vs []linearizability.Violation) []finding {
	var out []finding
	for i, v := range vs {
		at := v.Op.Return
		if at < 0 {
			at = v.Op.Call
		}
		if i == maxReadViolations {
			first := at
			for _, w := range vs[i:] {
				if w.Op.Return >= 0 && w.Op.Return < first {
					first = w.Op.Return
				}
			}
			out = append(out, finding{check: checkReads, msg: fmt.Sprintf("... %d read violations in all", len(vs)), at: first})
			break
		}
		out = append(out, finding{check: checkReads, msg: "read violation: " + v.String(), at: at})
	}
	return out
}

func watchFindings(r watchReport) []finding {
	var out []finding
	for i, s := range r.implausible {
		f := finding{check: checkWatchEvents, msg: "implausible watch event: " + s}
		if i < len(r.implausibleAt) {
			f.at = r.implausibleAt[i]
		}
		out = append(out, f)
	}
	for _, s := range r.missed {
		out = append(out, finding{check: checkWatchMissed, msg: "watch never fired: " + s})
	}
	return out
}

// ensembleFinding classifies an error of the fault phase: two leaders of
// one epoch, or an ensemble that did not come back.
func ensembleFinding(msg string, err error) finding {
	f := finding{check: checkRecovery, msg: msg, at: time.Now().UnixNano()}
	if errors.Is(err, errTwoLeaders) {
		f.check = checkTwoLeaders
	}
	return f
}

// historyUpTo returns what the history looked like at cut: the operations
// called by then, those still waiting for their reply with an unknown
// outcome. An unknown outcome allows everything a reply would, so if h is
// linearizable so is every cut of it; bisection can therefore find the
// first cut that is not.
func historyUpTo(h linearizability.History, cut int64) linearizability.History {
	var out linearizability.History
	for _, op := range h.Ops {
		if op.Call > cut {
			continue
		}
		if op.Return > cut {
			op = linearizability.Op{Session: op.Session, Call: op.Call, Return: linearizability.Unknown,
				Kind: op.Kind, Path: op.Path, Data: op.Data, Version: op.Version, Mode: op.Mode,
				Ops: requestsOnly(op.Ops), SyncedBefore: op.SyncedBefore}
		}
		out.Add(op)
	}
	return out
}

// requestsOnly copies multi sub-operations without their results.
func requestsOnly(ops []linearizability.Op) []linearizability.Op {
	if ops == nil {
		return nil
	}
	out := make([]linearizability.Op, len(ops))
	for i, s := range ops {
		out[i] = linearizability.Op{Kind: s.Kind, Path: s.Path, Data: s.Data, Version: s.Version, Mode: s.Mode}
	}
	return out
}

// Bounds of notLinearizableBy: each Porcupine search, and the whole
// bisection.
const (
	bisectCheckTime = time.Minute
	bisectTime      = 3 * time.Minute
)

// notLinearizableBy returns, to within 100 ms, the earliest cut in [from,
// to] at which the history (known not to be linearizable by to) is already
// not linearizable. A cut whose check times out counts as linearizable, and
// the search stops after bisectTime, so the answer is an upper bound.
func notLinearizableBy(h linearizability.History, from, to int64) int64 {
	const resolution = int64(100 * time.Millisecond)
	deadline := time.Now().Add(bisectTime)
	lo, hi := from, to // the cut at lo is linearizable, the one at hi not
	for hi-lo > resolution && time.Now().Before(deadline) {
		mid := lo + (hi-lo)/2
		res, err := linearizability.CheckLinearizable(historyUpTo(h, mid), bisectCheckTime)
		if err == nil && !res.Ok && !res.Unknown {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}

// when describes a finding's time: since the load started, and the fault
// that was under way or had last ended then.
func when(at int64, loadStart time.Time, faults []faultRecord) string {
	if at == 0 {
		return "at the end of the run"
	}
	s := fmt.Sprintf("%v after the load started", time.Duration(at-loadStart.UnixNano()).Round(time.Millisecond))
	for i := len(faults) - 1; i >= 0; i-- {
		f := faults[i]
		if f.start.UnixNano() > at {
			continue
		}
		back := f.healed.Add(f.rec.full)
		if f.healed.IsZero() || at <= back.UnixNano() {
			return s + fmt.Sprintf(", during fault %d (%s)", i+1, f.kind)
		}
		return s + fmt.Sprintf(", %v after fault %d (%s) ended", time.Duration(at-back.UnixNano()).Round(time.Millisecond), i+1, f.kind)
	}
	return s + ", before the first fault"
}
