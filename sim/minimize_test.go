package sim

import (
	"flag"
	"testing"

	"github.com/zabkeeper/zabkeeper/linearizability"
)

var flagMinimize = flag.Bool("minimize", false, "TestMinimizeHistory: shrink the failing history of -seed and print it")

// minimizeHistory removes operations (delta debugging) while bad holds.
func minimizeHistory(ops []linearizability.Op, bad func([]linearizability.Op) bool) []linearizability.Op {
	for chunk := len(ops) / 2; chunk >= 1; chunk /= 2 {
		for i := 0; i < len(ops); {
			try := append(append([]linearizability.Op{}, ops[:i]...), ops[min(len(ops), i+chunk):]...)
			if bad(try) {
				ops = try
			} else {
				i += chunk
			}
		}
	}
	return ops
}

// TestMinimizeHistory shrinks the history of a seed that fails the
// linearizability check to a few operations, for a bug report:
// go test ./sim -run TestMinimizeHistory -minimize -seed N -v
func TestMinimizeHistory(t *testing.T) {
	if !*flagMinimize || *flagSeed == 0 {
		t.Skip("needs -minimize -seed N")
	}
	sm := newSim(testOptions(t, *flagSeed, *flagNodes))
	sm.loop()
	h := sm.toHistory()
	bad := func(ops []linearizability.Op) bool {
		res, err := linearizability.CheckLinearizable(linearizability.History{Ops: ops}, linTimeout)
		return err == nil && !res.Ok && !res.Unknown
	}
	if !bad(h.Ops) {
		t.Fatal("the history of this seed is linearizable")
	}
	for _, op := range minimizeHistory(h.Ops, bad) {
		t.Logf("%s  (mzxid %#x czxid %#x)", op.String(), op.Mzxid, op.Czxid)
	}
}
