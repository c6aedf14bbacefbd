package faults

import (
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zabkeeper/zabkeeper/engine/bugs"
)

// A check that never fails proves nothing. TestFaultsCatchPlantedBug runs
// the harness on servers built with -tags simbugs and started with
// --plant-bug, and passes only if the checks found a violation: the
// harness's checks can fail, and here is the bug they caught, with the
// check and the time it took.

var (
	faultsPlantBug = flag.String("faults.plant-bug", "",
		"comma list of engine/bugs names to plant, one sub-test each (TestFaultsCatchPlantedBug only): "+allBugNames())
	faultsPlantTries = flag.Int("faults.plant-tries", 1,
		"runs (with new seeds) before a planted bug counts as not caught")
)

func allBugNames() string {
	var names []string
	for _, b := range bugs.All() {
		names = append(names, b.String())
	}
	return strings.Join(names, ", ")
}

// parseBugs checks the -faults.plant-bug list.
func parseBugs(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		name := strings.TrimSpace(f)
		if b, ok := bugs.Parse(name); !ok || b == bugs.None {
			return nil, fmt.Errorf("-faults.plant-bug: unknown bug %q (want some of %s)", name, allBugNames())
		}
		out = append(out, name)
	}
	return out, nil
}

// TestFaultsCatchPlantedBug runs, for each bug of -faults.plant-bug and each
// size of -faults.servers, the fault harness with that bug planted in every
// server, up to -faults.plant-tries times, and fails if no run's checks
// found a violation of a guarantee (an ensemble that merely does not
// recover does not count).
func TestFaultsCatchPlantedBug(t *testing.T) {
	if *faultsPlantBug == "" {
		t.Skip("needs -faults.plant-bug=NAME[,NAME...] (the run is expected to fail its checks)")
	}
	names, err := parseBugs(*faultsPlantBug)
	if err != nil {
		t.Fatal(err)
	}
	sizes, err := parseSizes(*faultsServers)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			for _, n := range sizes {
				t.Run(fmt.Sprintf("servers=%d", n), func(t *testing.T) { catchPlantedBug(t, name, n) })
			}
		})
	}
}

func catchPlantedBug(t *testing.T, bug string, n int) {
	tries := max(1, *faultsPlantTries)
	began := time.Now()
	for try := 1; try <= tries; try++ {
		seed := *faultsSeed
		if try > 1 || seed == 0 {
			seed = uint64(time.Now().UnixNano())
		}
		var res outcome
		ok := t.Run(fmt.Sprintf("try=%d", try), func(t *testing.T) {
			res = runFaults(t, n, runOptions{seed: seed, bug: bug})
		})
		if !ok {
			t.Fatalf("try %d: the harness failed before its checks ran", try)
		}
		var caught []finding
		checks := map[string]int{}
		for _, f := range res.findings {
			checks[f.check]++
			if f.safety() {
				caught = append(caught, f)
			}
		}
		if len(caught) == 0 {
			t.Logf("try %d (seed %d): %s NOT caught after %v of load (findings: %v)", try, res.seed, bug,
				res.checked.Sub(res.loadStart).Round(time.Second), checks)
			continue
		}
		first := caught[0]
		for _, f := range caught {
			if f.at != 0 && (first.at == 0 || f.at < first.at) {
				first = f
			}
		}
		var by []string
		for _, c := range []string{checkLost, checkPorcupine, checkReads, checkWatchEvents, checkWatchMissed, checkTwoLeaders} {
			if checks[c] > 0 {
				by = append(by, fmt.Sprintf("%s=%d", c, checks[c]))
			}
		}
		t.Logf("CAUGHT %s with %d servers on try %d, seed %d: by %s; earliest evidence (%s) %s; the run took %v with %d faults (%v in all, tries included)\n  %s\n  replay: %s",
			bug, n, try, res.seed, strings.Join(by, " "), first.check, when(first.at, res.loadStart, res.faults),
			res.checked.Sub(res.loadStart).Round(time.Second), len(res.faults), time.Since(began).Round(time.Second),
			first.msg, res.replay)
		return
	}
	t.Errorf("%s planted in %d servers: not caught in %d run(s) of %v of faults", bug, n, tries, *faultsDuration)
}
