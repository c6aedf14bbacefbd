package faults

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zabkeeper/zabkeeper/linearizability"
)

var (
	faultsDuration = flag.Duration("faults.duration", 12*time.Second, "how long the fault phase of each run lasts")
	faultsSeed     = flag.Uint64("faults.seed", 0, "seed of the fault schedule and of the workers' choices (0: from the clock)")
	faultsServers  = flag.String("faults.servers", "3,5", "ensemble sizes to run, comma-separated, one sub-test each")
	faultsWorkers  = flag.Int("faults.workers", 4, "concurrent client sessions")
	faultsDir      = flag.String("faults.dir", "", "where a failing run writes its artifacts (default $ZABKEEPER_FAULTS_DIR, else a new directory under the system temp dir)")
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// checkTime bounds the Porcupine search.
const checkTime = 5 * time.Minute

// watchWait bounds the wait, after the load stops, for the watches that
// must fire.
const watchWait = 20 * time.Second

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 3 || n%2 == 0 {
			return nil, fmt.Errorf("-faults.servers %q: want odd sizes of 3 or more, like 3,5", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// TestFaultsLinearizable runs, for each ensemble size of -faults.servers,
// real zabkeeper processes under faults and load, then checks the history.
func TestFaultsLinearizable(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real ensembles under faults")
	}
	sizes, err := parseSizes(*faultsServers)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range sizes {
		t.Run(fmt.Sprintf("servers=%d", n), func(t *testing.T) { runFaults(t, n) })
	}
}

func runFaults(t *testing.T, n int) {
	seed := *faultsSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	replay := fmt.Sprintf("go test -count=1 -v -run 'TestFaultsLinearizable/servers=%d$' ./faults/ -faults.servers=%d -faults.seed=%d -faults.duration=%v -faults.workers=%d",
		n, n, seed, *faultsDuration, *faultsWorkers)
	t.Logf("servers %d, seed %d, fault phase %v, %d workers; replay the same choices: %s", n, seed, *faultsDuration, *faultsWorkers, replay)
	// Separate streams, so the sequence of fault kinds does not depend on
	// the draws each fault makes (which depend on whether a leader was seen).
	kindRng := rand.New(rand.NewPCG(seed, 0x5eed))
	faultRng := rand.New(rand.NewPCG(seed, 0xfa17))

	c := startCluster(t, n)
	rec := newRecorder()
	art := &artifacts{n: n, seed: seed, replay: replay, c: c, rec: rec}
	t.Cleanup(func() {
		if t.Failed() {
			art.save(t)
		}
	})
	addrs := c.clientAddrs()
	logger := &zkLogger{}
	watches := &watchLog{}
	t.Cleanup(watches.wg.Wait) // after the clients below are closed

	// Setup: the group parents, recorded like any other write.
	setup, err := newWorker(0, addrs, rec, watches, seed, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(setup.conn.Close)
	sess := waitForSession(t, setup)
	for _, p := range groupParents {
		op := setup.create(sess, p, nil, 0)
		if op.Err != linearizability.ErrOK || !op.Completed() {
			t.Fatalf("setup: %s", op.String())
		}
	}

	// Load.
	workers := make([]*worker, *faultsWorkers)
	for i := range workers {
		w, err := newWorker(i+1, addrs, rec, watches, seed, logger)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.conn.Close)
		workers[i] = w
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() { w.run(stop) })
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopLoad)

	// Faults, one at a time.
	sched := newScheduler(kindRng)
	start := time.Now()
	end := start.Add(*faultsDuration)
	for time.Now().Before(end) {
		r, err := c.inject(faultRng, sched.next())
		art.faults = append(art.faults, r)
		if err != nil {
			t.Errorf("fault %d, %s: %v", len(art.faults), r, err)
			break
		}
		t.Logf("fault %d: %s", len(art.faults), r)
		time.Sleep(300 * time.Millisecond) // some load on the healed ensemble
	}
	phase := time.Since(start)
	c.healAll()
	if _, err := c.waitRecovery(time.Now(), recoverWait, nil); err != nil {
		t.Fatalf("after the fault phase: %v", err)
	}
	time.Sleep(time.Second) // load on the healthy ensemble
	stopLoad()
	waitWatches(watches, rec.history(), watchWait)

	// Final synced reads through a fresh session: they pin down the state
	// every acknowledged write must be reflected in.
	final, err := newWorker(-1, addrs, rec, watches, seed, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(final.conn.Close)
	for _, p := range loadPaths {
		final.finalRead(t, p)
	}
	h := rec.history()
	art.checked = &h

	// The checks.
	rep := report{n: n, seed: seed, phase: phase, workers: len(workers), faults: art.faults, ops: len(h.Ops)}
	rep.unknowns, rep.expired = rec.unknowns, len(rec.expired)
	for _, op := range h.Ops {
		if op.Kind.IsRead() && op.Completed() && op.Zxid > 0 {
			rep.zxidReads++
		}
	}
	rep.lost = ackedWritesLost(h, loadPaths)
	for _, l := range rep.lost {
		t.Errorf("acknowledged write lost: %s", l)
	}

	checkStart := time.Now()
	res, err := linearizability.CheckLinearizable(h, checkTime)
	if err != nil {
		t.Fatalf("CheckLinearizable: %v", err)
	}
	rep.lin, rep.linTook = res, time.Since(checkStart)
	art.lin = &res
	for _, w := range res.Warnings {
		t.Logf("warning: %s", w)
	}
	if !res.Ok {
		t.Errorf("history not linearizable: %s", res)
	}

	rep.reads = linearizability.CheckReads(h)
	for i, x := range rep.reads {
		if i == 20 {
			t.Errorf("... %d read violations in all", len(rep.reads))
			break
		}
		t.Errorf("read violation: %s", x)
	}

	rep.watches = checkWatches(watches, h)
	art.watches = rep.watches
	for _, s := range rep.watches.implausible {
		t.Errorf("implausible watch event: %s", s)
	}
	for _, s := range rep.watches.missed {
		t.Errorf("watch never fired: %s", s)
	}
	rep.log(t)
}

// waitForSession waits until w's connection has a session.
func waitForSession(t *testing.T, w *worker) int64 {
	t.Helper()
	deadline := time.Now().Add(recoverWait)
	for w.conn.State() != zk.StateHasSession || w.conn.SessionID() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no session within %v", recoverWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return w.conn.SessionID()
}

// finalRead records a sync and a getData of path, retrying (each attempt
// recorded) until both complete.
func (w *worker) finalRead(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(recoverWait)
	for {
		sess := waitForSession(t, w)
		op, _ := w.do(linearizability.Op{Session: sess, Kind: linearizability.Sync, Path: path},
			func(*linearizability.Op) error { _, err := w.conn.Sync(path); return err })
		if op.Completed() && op.Err == linearizability.ErrOK {
			if g := w.get(sess, path, false); g.Completed() {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("final read of %s: no answer within %v", path, recoverWait)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// write is one change a write may have made to a path, for
// ackedWritesLost: a top-level write or a sub-operation of a multi, with
// the times and outcome of the request that carried it.
type write struct {
	linearizability.Op
	call, ret int64 // ret is linearizability.Unknown if the outcome is
	acked     bool
}

// pathWrites lists the writes to path that may have taken effect: the
// successful ones and those of unknown outcome.
func pathWrites(h linearizability.History, path string) []write {
	var out []write
	for i := range h.Ops {
		op := &h.Ops[i]
		known := op.Completed()
		subs := []linearizability.Op{*op}
		if op.Kind == linearizability.Multi {
			subs = op.Ops
			for _, s := range subs {
				if known && s.Err != linearizability.ErrOK {
					subs = nil // a failed multi changes nothing
					break
				}
			}
		} else if known && op.Err != linearizability.ErrOK {
			continue
		}
		for _, s := range subs {
			if s.Path != path {
				continue
			}
			switch s.Kind {
			case linearizability.Create, linearizability.SetData, linearizability.Delete:
				s.Session = op.Session
				ret := op.Return
				if !known {
					ret = linearizability.Unknown
				}
				out = append(out, write{Op: s, call: op.Call, ret: ret, acked: known})
			}
		}
	}
	return out
}

// ackedWritesLost compares each path's final synced read with the writes
// that may have left the final state: every successful or unknown write
// (multis included) not definitely followed by an acknowledged successful
// write on the same path (one that was called after it returned). Data
// payloads are unique, so a final value names its write. It returns a
// description per path whose final state no such write explains.
func ackedWritesLost(h linearizability.History, paths []string) []string {
	var out []string
	expired := map[int64]bool{}
	for _, op := range h.Ops {
		if op.Kind == linearizability.CloseSession {
			expired[op.Session] = true
		}
	}
	for _, path := range paths {
		writes := pathWrites(h, path)
		var final *linearizability.Op
		for i := range h.Ops {
			op := &h.Ops[i]
			if op.Path == path && op.Kind == linearizability.GetData && op.SyncedBefore && op.Completed() &&
				(final == nil || op.Call > final.Call) {
				final = op
			}
		}
		if final == nil {
			out = append(out, path+": no final read")
			continue
		}
		superseded := func(w write) bool {
			if !w.acked {
				return false
			}
			for _, o := range writes {
				if o.acked && o.call > w.ret {
					return true
				}
			}
			return false
		}
		explained := len(writes) == 0 && final.Err == linearizability.ErrNoNode
		for _, w := range writes {
			if superseded(w) {
				continue
			}
			switch final.Err {
			case linearizability.ErrNoNode:
				explained = explained || w.Kind == linearizability.Delete ||
					(w.Kind == linearizability.Create && w.Mode == linearizability.ModeEphemeral && expired[w.Session])
			case linearizability.ErrOK:
				explained = explained || (w.Kind != linearizability.Delete && bytes.Equal(w.Data, final.RespData))
			}
		}
		if !explained {
			out = append(out, fmt.Sprintf("%s: final read %s matches no write that may be last", path, final.String()))
		}
	}
	return out
}

// report holds the figures printed at the end of a run.
type report struct {
	n        int
	seed     uint64
	phase    time.Duration
	workers  int
	faults   []faultRecord
	ops      int
	unknowns int
	expired  int
	// zxidReads counts completed reads with a reply zxid, which CheckReads
	// can check.
	zxidReads int
	lost      []string
	lin       linearizability.Result
	linTook   time.Duration
	reads     []linearizability.Violation
	watches   watchReport
}

func (r *report) log(t *testing.T) {
	var b strings.Builder
	fmt.Fprintf(&b, "figures: servers=%d seed=%d fault phase %v (asked %v), %d workers\n",
		r.n, r.seed, r.phase.Round(time.Millisecond), *faultsDuration, r.workers)
	byKind := map[string][]faultRecord{}
	for _, f := range r.faults {
		byKind[f.kind] = append(byKind[f.kind], f)
	}
	var counts []string
	for _, k := range faultKinds {
		counts = append(counts, fmt.Sprintf("%s=%d", k, len(byKind[k])))
	}
	fmt.Fprintf(&b, "  faults injected: %d (%s)\n", len(r.faults), strings.Join(counts, " "))
	fmt.Fprintf(&b, "  ops recorded: %d, outcome unknown: %d, sessions expired: %d\n", r.ops, r.unknowns, r.expired)
	fmt.Fprintf(&b, "  acked writes lost: %d\n", len(r.lost))
	fmt.Fprintf(&b, "  Porcupine: %s (checked in %v)\n", r.lin, r.linTook.Round(time.Millisecond))
	fmt.Fprintf(&b, "  CheckReads: %d violations (%d reads carried a reply zxid)\n", len(r.reads), r.zxidReads)
	w := r.watches
	fmt.Fprintf(&b, "  watches: %d set, %d fired (%d implausible), %d ended by the session (not watching), %d still set; %d had to fire, %d missed\n",
		w.set, w.fired, len(w.implausible), w.notWatching, w.pending, w.mustFire, len(w.missed))
	b.WriteString("  recovery, fault healed -> serving leader with a quorum following | -> every server in sync, min/median/max:\n")
	for _, k := range faultKinds {
		fs := byKind[k]
		if len(fs) == 0 {
			continue
		}
		var q, full []time.Duration
		for _, f := range fs {
			if f.rec.quorum >= 0 {
				q = append(q, f.rec.quorum)
			}
			full = append(full, f.rec.full)
		}
		fmt.Fprintf(&b, "    %-14s %2d: %s | %s\n", k, len(fs), minMedMax(q), minMedMax(full))
	}
	t.Log(b.String())
}

func minMedMax(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return fmt.Sprintf("%v/%v/%v", r(s[0]), r(s[len(s)/2]), r(s[len(s)-1]))
}
