//go:build simbugs

package sim

import (
	"flag"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/bugs"
)

// plantedBugSeeds pins, for each planted bug, the first seed (from 1, with
// the shape the seed draws and every fault kind) at which the simulator
// catches it — found by `zabkeeper sim --plant-bug NAME --seeds 1000` or
// `go test -tags simbugs ./sim -run TestPlantedBugScan -bug-scan`. Replay is
// bit for bit, so the pinned seed keeps failing as long as the engine and
// the simulator behave the same; when either changes, rescan and update.
var plantedBugSeeds = map[bugs.Bug]uint64{
	bugs.AckBeforePersist:                1,
	bugs.CommitBeforeQuorum:              16,
	bugs.AckNewLeaderBeforePersist:       1,
	bugs.EpochBeforePersist:              1,
	bugs.KeepDivergentTail:               1,
	bugs.ReuseEpoch:                      1,
	bugs.EphemeralSurvivesExpiry:         53,
	bugs.ReadBeforeLastZxid:              1,
	bugs.SyncWithoutQuorum:               37,
	bugs.EstablishWithoutNewLeaderQuorum: 1,
	bugs.LeaderSkipsEpochPersist:         1,
	bugs.FollowerDropsWatchEvents:        1,
	bugs.TransferIgnoresCaps:             16,
	bugs.MoveRequestIgnoresCaps:          1,
	bugs.ActivateBeforeNewQuorum:         3,
	bugs.StaleConfigQuorum:               5,
}

// reconfigBugs are the planted bugs of dynamic reconfiguration: the
// simulator looks for them with Options.Reconfig (reconfig.go).
var reconfigBugs = map[bugs.Bug]bool{bugs.ActivateBeforeNewQuorum: true, bugs.StaleConfigQuorum: true}

// bugOptions are the options `zabkeeper sim --seed N` uses.
func bugOptions(t *testing.T, seed uint64) Options {
	return Options{Seed: seed, Observers: -1, VisualizationDir: t.TempDir()}
}

func runWithBug(t *testing.T, b bugs.Bug, seed uint64) Report {
	bugs.Set(b)
	defer bugs.Set(bugs.None)
	return Run(bugOptionsFor(t, b, seed))
}

// bugOptionsFor are bugOptions, with reconfigs for a reconfig bug.
func bugOptionsFor(t *testing.T, b bugs.Bug, seed uint64) Options {
	o := bugOptions(t, seed)
	o.Reconfig = reconfigBugs[b]
	return o
}

// TestPlantedBugs: the simulator must catch every planted bug at its pinned
// seed, and the same seed must pass without it — so it is the bug that is
// caught, not the seed that is bad.
func TestPlantedBugs(t *testing.T) {
	for _, b := range bugs.All() {
		t.Run(b.String(), func(t *testing.T) {
			seed := plantedBugSeeds[b]
			require.NotZero(t, seed, "no pinned seed for %v: run TestPlantedBugScan", b)
			r := runWithBug(t, b, seed)
			require.True(t, r.Failed(), "seed %d no longer catches %v; rescan", seed, b)
			t.Logf("%v caught at seed %d: %s", b, seed, r.Violations[0])
			clean := Run(bugOptionsFor(t, b, seed))
			require.False(t, clean.Failed(), "seed %d fails without the bug: %v", seed, clean.Violations)
		})
	}
}

var flagBugScan = flag.Int("bug-scan", 0, "TestPlantedBugScan: seeds to try per bug (0 = skip the scan)")

// TestPlantedBugScan finds, for each planted bug, the first seed that
// catches it within -bug-scan seeds.
func TestPlantedBugScan(t *testing.T) {
	if *flagBugScan == 0 {
		t.Skip("run with -bug-scan 1000")
	}
	for _, b := range bugs.All() {
		found := uint64(0)
		for seed := uint64(1); seed <= uint64(*flagBugScan); seed++ {
			if r := runWithBug(t, b, seed); r.Failed() {
				found = seed
				t.Logf("%v: first caught at seed %d: %s", b, seed, r.Violations[0])
				break
			}
		}
		if found == 0 {
			t.Errorf("%v: not caught within %d seeds", b, *flagBugScan)
		}
	}
}
