package faults

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zabkeeper/zabkeeper/faults/load"
	"github.com/zabkeeper/zabkeeper/linearizability"
)

// The watch checks: an event no write explains is reported, one a write
// explains is not; a watch a later acknowledged write should have fired is
// reported missed unless the client reconnected since it was set.
func TestWatchChecks(t *testing.T) {
	const p = "/g0/k0"
	tap, redial := dialedTap(t)
	w := &worker{Session: &load.Session{ID: 1, Tap: tap}}
	reg := linearizability.Op{Session: 1, Call: 10, Return: 11, Kind: linearizability.GetData, Path: p, Zxid: 50, RespData: []byte("a")}
	set := func(call int64, mzxid int64) linearizability.Op {
		return linearizability.Op{Session: 2, Call: call, Return: call + 1, Kind: linearizability.SetData, Path: p,
			Data: []byte("b"), Version: -1, Mzxid: mzxid, Zxid: mzxid}
	}
	fired := func(typ zk.EventType, at int64) *watchRec {
		return &watchRec{worker: w, kind: watchData, reg: reg, gen: 1, fired: true, evGen: 1, ev: zk.Event{Type: typ, Path: p}, at: at}
	}
	check := func(h linearizability.History, recs ...*watchRec) watchReport {
		return checkWatches(&watchLog{recs: recs}, h)
	}
	hist := func(ops ...linearizability.Op) linearizability.History { return linearizability.History{Ops: ops} }

	if r := check(hist(reg, set(20, 60)), fired(zk.EventNodeDataChanged, 25)); len(r.implausible) != 0 || r.mustFire != 1 {
		t.Errorf("explained event: %+v", r)
	}
	if r := check(hist(reg), fired(zk.EventNodeDataChanged, 25)); len(r.implausible) != 1 {
		t.Errorf("event without a write not reported: %+v", r)
	}
	if r := check(hist(reg, set(20, 60)), fired(zk.EventNodeDeleted, 25)); len(r.implausible) != 1 {
		t.Errorf("deleted without a delete not reported: %+v", r)
	}
	// A setData the read that set the watch already saw cannot fire it.
	if r := check(hist(set(5, 40), reg), fired(zk.EventNodeDataChanged, 25)); len(r.implausible) != 1 {
		t.Errorf("event explained by an older write: %+v", r)
	}
	// A write called after the event arrived cannot explain it.
	if r := check(hist(reg, set(30, 60)), fired(zk.EventNodeDataChanged, 25)); len(r.implausible) != 1 {
		t.Errorf("event explained by a later write: %+v", r)
	}
	if r := check(hist(reg, set(30, 60)), fired(zk.EventNodeCreated, 40)); len(r.implausible) != 1 ||
		!strings.Contains(r.implausible[0], "NodeCreated") {
		t.Errorf("a wrong event type not reported: %+v", r)
	}

	pending := &watchRec{worker: w, kind: watchData, reg: reg, gen: 1}
	if r := check(hist(reg, set(20, 60)), pending); len(r.missed) != 1 {
		t.Errorf("missed watch not reported: %+v", r)
	}
	if r := check(hist(reg), pending); len(r.missed) != 0 || r.pending != 1 {
		t.Errorf("a watch nothing triggered reported: %+v", r)
	}
	redial() // reconnected since: the client re-registered it
	if r := check(hist(reg, set(20, 60)), pending); len(r.missed) != 0 {
		t.Errorf("missed watch reported across a reconnect: %+v", r)
	}
}

// After a reconnect, a data watch on a node deleted and created again fires
// NodeDataChanged (setWatches compares mzxid): a create explains it then,
// and only then.
func TestWatchChecksRecreatedAcrossReconnect(t *testing.T) {
	const p = "/g0/k0"
	tap, _ := dialedTap(t)
	w := &worker{Session: &load.Session{ID: 1, Tap: tap}}
	reg := linearizability.Op{Session: 1, Call: 10, Return: 11, Kind: linearizability.GetData, Path: p, Zxid: 50, RespData: []byte("a")}
	replace := linearizability.Op{Session: 2, Call: 20, Return: linearizability.Unknown, Kind: linearizability.Multi, Ops: []linearizability.Op{
		{Kind: linearizability.Delete, Path: p, Version: -1},
		{Kind: linearizability.Create, Path: p, Data: []byte("b")},
	}}
	h := linearizability.History{Ops: []linearizability.Op{reg, replace}}
	for _, evGen := range []int{1, 2} {
		r := &watchRec{worker: w, kind: watchData, reg: reg, gen: 1, fired: true, evGen: evGen,
			ev: zk.Event{Type: zk.EventNodeDataChanged, Path: p}, at: 30}
		rep := checkWatches(&watchLog{recs: []*watchRec{r}}, h)
		if got, want := len(rep.implausible), map[int]int{1: 1, 2: 0}[evGen]; got != want {
			t.Errorf("event on connection %d: %d implausible, want %d: %v", evGen, got, want, rep.implausible)
		}
	}
}

// dialedTap returns a tap that has dialed one connection (generation 1),
// to a loopback listener, and redial, which dials one more.
func dialedTap(t *testing.T) (tap *load.Tap, redial func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	tap = load.NewTap()
	redial = func() {
		nc, err := tap.Dial("tcp", ln.Addr().String(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = nc.Close() })
	}
	redial()
	return tap, redial
}
