package main

import (
	"testing"
	"time"
)

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

func TestParseIdle(t *testing.T) {
	got, err := parseIdle("cpu  10132153 290696 3084719 46828483 16683 0 25195 0 175628 0\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Duration(46828483+16683) * 10 * time.Millisecond; got != want {
		t.Errorf("parseIdle = %v, want %v", got, want)
	}
	for _, bad := range []string{"", "intr 1 2 3 4 5 6", "cpu 1 2 3 x 5"} {
		if _, err := parseIdle(bad); err == nil {
			t.Errorf("parseIdle(%q) accepted", bad)
		}
	}
	if _, err := hostIdle(); err != nil {
		t.Errorf("hostIdle on this machine: %v", err)
	}
	if _, err := processCPU(); err != nil {
		t.Errorf("processCPU: %v", err)
	}
}
