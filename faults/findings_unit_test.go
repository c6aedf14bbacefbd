package faults

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zabkeeper/zabkeeper/linearizability"
)

// Bisection finds the moment a history stops being linearizable: here the
// return of a synced read that misses an acknowledged write.
func TestNotLinearizableBy(t *testing.T) {
	const p = "/g0/k0"
	s := int64(time.Second)
	ops := []linearizability.Op{
		{Session: 1, Call: s / 4, Return: s / 2, Kind: linearizability.Create, Path: "/g0", Name: "/g0"},
		{Session: 1, Call: 1 * s, Return: 2 * s, Kind: linearizability.Create, Path: p, Data: []byte("v1"), Name: p},
		{Session: 1, Call: 3 * s, Return: 4 * s, Kind: linearizability.SetData, Path: p, Data: []byte("v2"), Version: -1, StatVersion: 1},
		{Session: 2, Call: 10 * s, Return: 11 * s, Kind: linearizability.Sync, Path: p},
		{Session: 2, Call: 12 * s, Return: 13 * s, Kind: linearizability.GetData, Path: p, RespData: []byte("v1"), SyncedBefore: true},
		{Session: 1, Call: 14 * s, Return: 15 * s, Kind: linearizability.SetData, Path: p, Data: []byte("v3"), Version: -1, StatVersion: 2},
	}
	h := linearizability.History{Ops: ops}
	res, err := linearizability.CheckLinearizable(h, time.Minute)
	if err != nil || res.Ok {
		t.Fatalf("the history must not be linearizable: %v %v", res, err)
	}
	at := notLinearizableBy(h, 0, 20*s)
	if at < 13*s || at > 13*s+int64(100*time.Millisecond) {
		t.Fatalf("not linearizable by %v, want just after 13s", time.Duration(at))
	}
	// Cut before the read returns, the read is pending: linearizable.
	if res, _ := linearizability.CheckLinearizable(historyUpTo(h, 12*s+s/2), time.Minute); !res.Ok {
		t.Fatalf("the cut at 12.5s must be linearizable: %v", res)
	}
}

func TestFindingsClassifyAndDate(t *testing.T) {
	if f := ensembleFinding("x", errTwoLeaders); f.check != checkTwoLeaders || !f.safety() {
		t.Errorf("two leaders: %+v", f)
	}
	if f := ensembleFinding("x", errors.New("no ensemble in sync")); f.check != checkRecovery || f.safety() {
		t.Errorf("no recovery: %+v", f)
	}
	var vs []linearizability.Violation
	for i := range 25 {
		vs = append(vs, linearizability.Violation{Reason: "r", Op: linearizability.Op{Call: int64(100 - i), Return: int64(101 - i)}})
	}
	fs := readFindings(vs)
	if len(fs) != maxReadViolations+1 || !strings.Contains(fs[maxReadViolations].msg, "25 read violations in all") ||
		fs[maxReadViolations].at != 77 {
		t.Errorf("read findings: %d, last %+v", len(fs), fs[len(fs)-1])
	}
	start := time.Unix(100, 0)
	faults := []faultRecord{{kind: faultKill, start: time.Unix(101, 0), healed: time.Unix(102, 0), rec: recovery{full: time.Second}}}
	for at, want := range map[int64]string{
		0:                              "at the end",
		time.Unix(100, 5e8).UnixNano(): "500ms after the load started, before the first fault",
		time.Unix(102, 5e8).UnixNano(): "during fault 1 (kill-restart)",
		time.Unix(105, 0).UnixNano():   "2s after fault 1 (kill-restart) ended",
	} {
		if got := when(at, start, faults); !strings.Contains(got, want) {
			t.Errorf("when(%d) = %q, want %q in it", at, got, want)
		}
	}
}
