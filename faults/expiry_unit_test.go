package faults

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// A hold must end in an expiry unless a fault, from its start until the
// ensemble was whole again, overlapped it; idle gaps are no faults.
func TestExpiryHoldCheck(t *testing.T) {
	at := func(s float64) time.Time { return time.Unix(1000, 0).Add(time.Duration(s * float64(time.Second))) }
	faults := []faultRecord{
		{kind: faultKill, start: at(10), healed: at(12), rec: recovery{full: 2 * time.Second}}, // until 14
		{kind: faultIdle, start: at(30), healed: at(62)},
	}
	hold := func(from, to float64, outcome string) expiryHold {
		return expiryHold{session: 7, mode: "silent", from: at(from), to: at(to), outcome: outcome}
	}
	x := &expirers{holds: []expiryHold{
		hold(2, 9, "survived"),   // before the fault: must have expired
		hold(13, 20, "survived"), // the fault's recovery overlaps: allowed
		hold(5, 11, "unknown"),   // overlaps the fault's start: allowed
		hold(40, 47, "survived"), // inside an idle gap: must have expired
		hold(50, 57, "expired"),
	}}
	fs := x.check(faults)
	if len(fs) != 2 {
		t.Fatalf("got %d findings, want 2: %+v", len(fs), fs)
	}
	for _, f := range fs {
		if f.check != checkExpiry || !strings.Contains(f.msg, "no fault under way") {
			t.Errorf("finding %+v", f)
		}
	}
	if fs[0].at != at(9).UnixNano() || fs[1].at != at(47).UnixNano() {
		t.Errorf("findings dated %d, %d", fs[0].at, fs[1].at)
	}
}

// "all" leaves idle gaps out of runs shorter than a minute; named, they
// run in any run.
func TestParseKindsIdle(t *testing.T) {
	short, err := parseKinds("all", 12*time.Second)
	if err != nil || slices.Contains(short, faultIdle) || len(short) != len(faultKinds)-1 {
		t.Fatalf("all, 12s: %v, %v", short, err)
	}
	long, err := parseKinds("all", 2*time.Minute)
	if err != nil || !slices.Contains(long, faultIdle) {
		t.Fatalf("all, 2m: %v, %v", long, err)
	}
	named, err := parseKinds("idle-gap", time.Second)
	if err != nil || !slices.Equal(named, []string{faultIdle}) {
		t.Fatalf("idle-gap: %v, %v", named, err)
	}
}

func TestParseBugsAll(t *testing.T) {
	all, err := parseBugs("all")
	if err != nil || len(all) < 12 || !slices.Contains(all, "follower-drops-watch-events") {
		t.Fatalf("all: %v, %v", all, err)
	}
	if _, err := parseBugs("all,commit-before-quorum"); err == nil {
		t.Fatal("all inside a list accepted")
	}
	table := catchTable([]catchRow{{bug: "reuse-epoch", servers: 3, caught: true, try: 1, by: "linearizability=1", first: "linearizability, 3s after the load started", took: 61 * time.Second, seed: 5},
		{bug: "keep-divergent-tail", servers: 3, took: time.Minute, seed: 6}})
	if !strings.Contains(table, "| `reuse-epoch` | 3 | yes (run 1) | linearizability=1 |") || !strings.Contains(table, "| `keep-divergent-tail` | 3 | no | - | - | 1m0s | 6 |") {
		t.Fatalf("table:\n%s", table)
	}
}
