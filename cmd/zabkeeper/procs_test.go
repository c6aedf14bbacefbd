package main

import "testing"

func TestNextProcs(t *testing.T) {
	cases := []struct {
		name       string
		cur, max   int
		ours, idle float64
		want       int
	}{
		{"quiet server on a 2-core host keeps one P", 1, 2, 0.3, 1.5, 1},
		{"busy server, host saturated by others: one P", 1, 2, 0.95, 0.1, 1},
		{"busy server, idle host: a second P", 1, 2, 0.95, 0.9, 2},
		{"idle host unknown: no P added", 1, 2, 1.0, -1, 1},
		{"at the maximum", 2, 2, 1.9, 0.5, 2},
		{"busy at two on a big idle host: doubles", 2, 16, 1.9, 12, 4},
		{"doubling bounded by the idle CPU", 4, 16, 3.6, 1.2, 5},
		{"start at the maximum, quiet: down to what fits", 16, 16, 0.5, 15, 1},
		{"two Ps, load fits in one", 2, 2, 0.55, 0.5, 1},
		{"two Ps, load needs both", 2, 2, 1.3, 0.1, 2},
		{"eight Ps, three cores used: five", 8, 8, 2.9, 5, 5},
		{"never below one", 1, 4, 0, 4, 1},
	}
	for _, c := range cases {
		if got := nextProcs(c.cur, c.max, c.ours, c.idle); got != c.want {
			t.Errorf("%s: nextProcs(%d, %d, %.2f, %.2f) = %d, want %d", c.name, c.cur, c.max, c.ours, c.idle, got, c.want)
		}
	}
}

// A settled load stays put: the rule's next step from its own answer is
// the same answer (no flapping between two counts).
func TestNextProcsSettles(t *testing.T) {
	for max := 1; max <= 16; max++ {
		for ours := 0.0; ours <= float64(max); ours += 0.05 {
			for _, idle := range []float64{0, 0.3, 1, float64(max) - ours} {
				// A load of ours cores, whatever the Ps (capped by them).
				cur := max
				seen := map[int]int{}
				for step := 0; step < 40; step++ {
					used := min(ours, float64(cur))
					cur = nextProcs(cur, max, used, idle)
					seen[cur]++
				}
				if len(seen) > 1 && seen[cur] < 30 {
					t.Fatalf("max %d, load %.2f, idle %.2f: Ps keep changing (%v)", max, ours, idle, seen)
				}
			}
		}
	}
}

// machine models a server's work rate as a function of its Ps, for the
// controller to find its way on.
type machine struct {
	rate  func(ps int) float64 // work per second with ps Ps
	idle  float64              // the host's idle cores
	cores func(ps int) float64 // CPU the server uses with ps Ps
}

// drive runs the controller for n intervals on m and returns the Ps it
// chose at each.
func drive(c *procsController, m machine, n int) []int {
	out := make([]int, 0, n)
	for range n {
		ps := c.cur
		next, _ := c.step(procsSample{ours: m.cores(ps), idle: m.idle, work: m.rate(ps)})
		out = append(out, next)
	}
	return out
}

func count(ps []int, n int) int {
	k := 0
	for _, p := range ps {
		if p == n {
			k++
		}
	}
	return k
}

// A server that looks busy with an idle host but does less work with a
// second P (round trips, not CPU, bound it: the 2-core machine's set)
// tries the P, gives it back, and tries again ever more rarely.
func TestProcsControllerRevertsAPThatDoesNotHelp(t *testing.T) {
	c := newProcsController(2)
	m := machine{
		rate:  func(ps int) float64 { return map[int]float64{1: 70000, 2: 63000}[ps] },
		cores: func(ps int) float64 { return 0.95 },
		idle:  0.6,
	}
	chosen := drive(c, m, 2*60*10) // ten minutes of intervals
	if chosen[0] != 2 {
		t.Fatalf("first interval: %d Ps, want a probe of 2", chosen[0])
	}
	if chosen[len(chosen)-1] != 1 {
		t.Errorf("after ten minutes: %d Ps, want 1", chosen[len(chosen)-1])
	}
	// Probes of two intervals each after waits of 10 s, 20 s, 40 s, ...
	// 5 min: about 8 probes in ten minutes, each two intervals on 2 Ps.
	if two := count(chosen, 2); two == 0 || two > 20 {
		t.Errorf("%d of %d intervals on 2 Ps, want a few probes only", two, len(chosen))
	}
	if c.backoff != maxBackoff {
		t.Errorf("backoff %d intervals after repeated failures, want the longest, %d", c.backoff, maxBackoff)
	}
}

// A server whose work grows with its Ps (reads on a big idle host) climbs
// by doubling and keeps them.
func TestProcsControllerKeepsPsThatHelp(t *testing.T) {
	c := newProcsController(8)
	m := machine{
		rate:  func(ps int) float64 { return 50000 * float64(ps) },
		cores: func(ps int) float64 { return 0.95 * float64(ps) },
		idle:  6,
	}
	chosen := drive(c, m, 20)
	if got := chosen[len(chosen)-1]; got != 8 {
		t.Fatalf("Ps after 20 intervals: %d (%v), want 8", got, chosen)
	}
	// 1 -> 2 -> 4 -> 8, each probe two intervals plus the one that starts
	// it: there by the tenth interval.
	if chosen[9] != 8 {
		t.Errorf("climb too slow: %v", chosen)
	}
}

// A gain within the noise (under probeGain) is not a gain.
func TestProcsControllerNeedsAClearGain(t *testing.T) {
	c := newProcsController(2)
	m := machine{
		rate:  func(ps int) float64 { return map[int]float64{1: 100000, 2: 103000}[ps] },
		cores: func(ps int) float64 { return 0.95 },
		idle:  0.8,
	}
	if chosen := drive(c, m, 4); chosen[3] != 1 {
		t.Errorf("Ps after a 3%% gain: %v, want back to 1", chosen)
	}
}

// Without a work count (or with no work) the controller never adds a P;
// it still takes them away when the load fits in fewer.
func TestProcsControllerWithoutWork(t *testing.T) {
	c := newProcsController(4)
	m := machine{rate: func(int) float64 { return -1 }, cores: func(int) float64 { return 0.99 }, idle: 3}
	if chosen := drive(c, m, 10); count(chosen, 1) != 10 {
		t.Errorf("Ps with the work unknown: %v, want 1 throughout", chosen)
	}
	c = newProcsController(4)
	m.rate = func(int) float64 { return 0 }
	if chosen := drive(c, m, 10); count(chosen, 1) != 10 {
		t.Errorf("Ps with no work done: %v, want 1 throughout", chosen)
	}
	// Kept at 4, then the load drops: down at once, no probe.
	c = newProcsController(4)
	c.cur = 4
	if next, d := c.step(procsSample{ours: 0.3, idle: 3.5, work: 1000}); next != 1 || d != procsFewer {
		t.Errorf("4 Ps at 0.3 cores: %d (%v), want 1 (%v)", next, d, procsFewer)
	}
}

// A probe whose work count goes missing (srst between two reads, say)
// gives the P back rather than keep it untested.
func TestProcsControllerProbeLosesItsMeasure(t *testing.T) {
	c := newProcsController(2)
	busy := procsSample{ours: 0.95, idle: 0.9, work: 50000}
	if next, d := c.step(busy); next != 2 || d != procsProbe {
		t.Fatalf("busy on an idle host: %d (%v), want a probe of 2", next, d)
	}
	if next, d := c.step(procsSample{ours: 1.5, idle: 0.3, work: -1}); next != 1 || d != procsReverted {
		t.Errorf("probe without a measure: %d (%v), want reverted to 1", next, d)
	}
	if c.wait != firstBackoff {
		t.Errorf("wait after the failed probe: %d, want %d", c.wait, firstBackoff)
	}
}

func TestHostIdleAndProcessCPU(t *testing.T) {
	if _, err := hostIdle(); err != nil {
		t.Errorf("hostIdle on this machine: %v", err)
	}
	if _, err := processCPU(); err != nil {
		t.Errorf("processCPU: %v", err)
	}
}
