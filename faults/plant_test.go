package faults

import (
	"flag"
	"fmt"
	"slices"
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
		"all, or a comma list of engine/bugs names to plant, one sub-test each (TestFaultsCatchPlantedBug only): "+allBugNames())
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

// parseBugs checks the -faults.plant-bug list; "all" is every bug.
func parseBugs(s string) ([]string, error) {
	var out []string
	if strings.TrimSpace(s) == "all" {
		for _, b := range bugs.All() {
			out = append(out, b.String())
		}
		return out, nil
	}
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
	var rows []catchRow
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			for _, n := range sizes {
				t.Run(fmt.Sprintf("servers=%d", n), func(t *testing.T) { rows = append(rows, catchPlantedBug(t, name, n)) })
			}
		})
	}
	t.Logf("planted bugs on real processes (-faults.duration=%v of faults a run, up to %d run(s) each):\n%s",
		*faultsDuration, max(1, *faultsPlantTries), catchTable(rows))
}

// catchRow is one line of the table TestFaultsCatchPlantedBug prints.
type catchRow struct {
	bug     string
	servers int
	caught  bool
	try     int
	by      string // the checks that found something, with counts
	first   string // the earliest evidence: check and when
	took    time.Duration
	seed    uint64
	// aborted: the harness failed before its checks ran.
	aborted bool
}

// catchTable renders rows as a Markdown table.
func catchTable(rows []catchRow) string {
	var b strings.Builder
	b.WriteString("| planted bug | servers | caught | by (findings per check) | earliest evidence | run | seed |\n|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		caught := "no"
		switch {
		case r.aborted:
			caught = "harness failed"
		case r.caught:
			caught = fmt.Sprintf("yes (run %d)", r.try)
		}
		fmt.Fprintf(&b, "| `%s` | %d | %s | %s | %s | %v | %d |\n", r.bug, r.servers, caught, orDash(r.by), orDash(r.first), r.took.Round(time.Second), r.seed)
	}
	return b.String()
}

func catchPlantedBug(t *testing.T, bug string, n int) (row catchRow) {
	row = catchRow{bug: bug, servers: n}
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
		row.try, row.seed, row.took = try, res.seed, time.Since(began)
		if !ok {
			row.aborted = true
			t.Errorf("try %d: the harness failed before its checks ran", try)
			return row
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
			var other []string
			for c, k := range checks {
				other = append(other, fmt.Sprintf("%s=%d", c, k))
			}
			slices.Sort(other)
			row.by = strings.Join(other, " ")
			continue
		}
		first := caught[0]
		for _, f := range caught {
			if f.at != 0 && (first.at == 0 || f.at < first.at) {
				first = f
			}
		}
		var by []string
		for _, c := range []string{checkLost, checkPorcupine, checkReads, checkWatchEvents, checkWatchMissed, checkTwoLeaders, checkBig, checkIdle, checkExpiry} {
			if checks[c] > 0 {
				by = append(by, fmt.Sprintf("%s=%d", c, checks[c]))
			}
		}
		t.Logf("CAUGHT %s with %d servers on try %d, seed %d: by %s; earliest evidence (%s) %s; the run took %v with %d faults (%v in all, tries included)\n  %s\n  replay: %s",
			bug, n, try, res.seed, strings.Join(by, " "), first.check, when(first.at, res.loadStart, res.faults),
			res.checked.Sub(res.loadStart).Round(time.Second), len(res.faults), time.Since(began).Round(time.Second),
			first.msg, res.replay)
		row.caught, row.by = true, strings.Join(by, " ")
		row.first = first.check + ", " + when(first.at, res.loadStart, res.faults)
		return row
	}
	t.Errorf("%s planted in %d servers: not caught in %d run(s) of %v of faults", bug, n, tries, *faultsDuration)
	return row
}
