package faults

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zabkeeper/zabkeeper/faults/load"
	"github.com/zabkeeper/zabkeeper/linearizability"
)

var (
	faultsDuration = flag.Duration("faults.duration", 12*time.Second, "how long the fault phase of each run lasts")
	faultsSeed     = flag.Uint64("faults.seed", 0, "seed of the fault schedule and of the workers' choices (0: from the clock)")
	faultsServers  = flag.String("faults.servers", "3,5", "ensemble sizes to run, comma-separated, one sub-test each")
	faultsWorkers  = flag.Int("faults.workers", 4, "concurrent client sessions")
	faultsKinds    = flag.String("faults.kinds", "all", "fault kinds to inject: all, or a comma list of "+strings.Join(faultKinds, ","))
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
		t.Run(fmt.Sprintf("servers=%d", n), func(t *testing.T) { runFaults(t, n, runOptions{seed: *faultsSeed, reconfig: *faultsReconfig}) })
	}
}

// TestFaultsReconfig is TestFaultsLinearizable's run of three servers
// with reconfigs (-faults.reconfig, reconfig_test.go): the short one of
// go test ./faults; make faults-reconfig runs it longer.
func TestFaultsReconfig(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real ensemble under faults and reconfigs")
	}
	runFaults(t, 3, runOptions{seed: *faultsSeed, reconfig: true})
}

// runOptions say how one run goes.
type runOptions struct {
	// seed of the fault schedule and the workers' choices; 0: from the
	// clock.
	seed uint64
	// bug is planted in every server ("" for none). The run is then
	// expected to fail its checks: what they find is returned in the
	// outcome instead of failing the test, and a fault after which the
	// ensemble does not come back ends the fault phase (the checks still
	// run on the history recorded so far).
	bug string
	// reconfig issues reconfigs while the faults run (-faults.reconfig).
	reconfig bool
}

// outcome is what one run found.
type outcome struct {
	seed   uint64
	replay string
	// findings are the violations the checks found, in the order found
	// (only kept with a planted bug; the normal run reports each with
	// t.Errorf).
	findings []finding
	// loadStart is when the workers started: findings' times are relative
	// to it.
	loadStart time.Time
	// checked is when the checks ended.
	checked time.Time
	faults  []faultRecord
}

// runFaults runs an n-server ensemble under faults and load and checks the
// history. Without a planted bug every violation fails t.
func runFaults(t *testing.T, n int, o runOptions) outcome {
	seed := o.seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	replay := fmt.Sprintf("go test -count=1 -v -run 'TestFaultsLinearizable/servers=%d$' ./faults/ -faults.servers=%d -faults.seed=%d -faults.duration=%v -faults.workers=%d",
		n, n, seed, *faultsDuration, *faultsWorkers)
	if o.bug != "" {
		replay = fmt.Sprintf("go test -count=1 -v -run 'TestFaultsCatchPlantedBug/%s/servers=%d$' ./faults/ -faults.plant-bug=%s -faults.servers=%d -faults.seed=%d -faults.duration=%v -faults.workers=%d",
			o.bug, n, o.bug, n, seed, *faultsDuration, *faultsWorkers)
		t.Logf("PLANTED BUG %s in every server: this run is expected to fail its checks", o.bug)
	}
	if *faultsClientDrops > 0 {
		replay += fmt.Sprintf(" -faults.client-drops=%v", *faultsClientDrops)
	}
	if *faultsClosers > 0 {
		replay += fmt.Sprintf(" -faults.closers=%d", *faultsClosers)
	}
	if *faultsReaders > 0 {
		replay += fmt.Sprintf(" -faults.readers=%d", *faultsReaders)
	}
	if *faultsKinds != "all" {
		replay += fmt.Sprintf(" -faults.kinds=%s", *faultsKinds)
	}
	if *faultsBig != 1 {
		replay += fmt.Sprintf(" -faults.big=%d", *faultsBig)
	}
	if *faultsExpirers != 1 {
		replay += fmt.Sprintf(" -faults.expirers=%d", *faultsExpirers)
	}
	if *faultsBinary != "" {
		replay += fmt.Sprintf(" -faults.binary=%s", *faultsBinary)
	}
	if o.reconfig {
		replay += fmt.Sprintf(" -faults.reconfig -faults.spares=%d", *faultsSpares)
	}
	t.Logf("servers %d, seed %d, fault phase %v, %d workers; replay the same choices: %s", n, seed, *faultsDuration, *faultsWorkers, replay)
	// Separate streams, so the sequence of fault kinds does not depend on
	// the draws each fault makes (which depend on whether a leader was seen).
	kindRng := rand.New(rand.NewPCG(seed, 0x5eed))
	faultRng := rand.New(rand.NewPCG(seed, 0xfa17))
	out := &sink{t: t, keep: o.bug != ""}
	res := outcome{seed: seed, replay: replay}

	var c *cluster
	if o.reconfig {
		tm := fastTiming
		tm.reconfig, tm.spares = true, *faultsSpares
		c = startClusterTimed(t, n, o.bug, tm)
	} else {
		c = startCluster(t, n, o.bug)
	}
	rec := load.NewRecorder()
	art := &artifacts{n: n, seed: seed, bug: o.bug, replay: replay, c: c, rec: rec}
	t.Cleanup(func() {
		// A planted-bug run keeps its evidence whatever it found.
		if t.Failed() || o.bug != "" {
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
	t.Cleanup(setup.Conn.Close)
	parents := slices.Clone(groupParents)
	for i := range *faultsClosers {
		parents = append(parents, closerParent(i))
	}
	for i := range *faultsBig {
		parents = append(parents, bigParent(i))
	}
	for i := range *faultsExpirers {
		parents = append(parents, expParent(i))
	}
	// The paths the final reads pin down.
	finalPaths := slices.Concat(loadPaths, bigPaths(*faultsBig), expPaths(*faultsExpirers))
	for _, p := range parents {
		if err := setup.createParent(p); err != nil {
			t.Fatal(err)
		}
	}

	kinds, err := parseKinds(*faultsKinds, *faultsDuration)
	if err != nil {
		t.Fatal(err)
	}
	var op *operator
	if c.rc != nil {
		if *faultsKinds != "all" && slices.ContainsFunc(kinds, func(k string) bool { return slices.Contains(networkKinds, k) }) {
			t.Fatalf("-faults.reconfig runs without proxies: no %s", strings.Join(networkKinds, ", "))
		}
		// The idle gap's quiet connections would not stay quiet: a
		// reconfig that removes their server drops them.
		kinds = slices.DeleteFunc(slices.Clone(kinds), func(k string) bool {
			return slices.Contains(networkKinds, k) || *faultsKinds == "all" && k == faultIdle
		})
		if op, err = newOperator(c, seed, logger); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(op.conn.Close)
		art.op = op
	}
	var idle *idler
	if slices.Contains(kinds, faultIdle) {
		if idle, err = newIdler(addrs, logger); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(idle.close)
	}

	// Load.
	workers := make([]*worker, *faultsWorkers+*faultsReaders)
	for i := range workers {
		w, err := newWorker(i+1, addrs, rec, watches, seed, logger)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Conn.Close)
		w.reader = i >= *faultsWorkers
		workers[i] = w
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	res.loadStart = time.Now()
	paused := &atomic.Bool{} // the workers, during idle gaps
	for _, w := range workers {
		w.paused = paused
		wg.Go(func() { w.run(stop) })
	}
	var cs *closers
	if *faultsClosers > 0 {
		cs = &closers{addrs: addrs, rec: rec, watches: watches, logger: logger, seed: seed}
		wg.Go(func() { cs.run(stop, *faultsClosers) })
	}
	big := &bigStats{}
	for i := range *faultsBig {
		w, err := newWorker(bigIDs+i, addrs, rec, watches, seed, logger)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Conn.Close)
		workers = append(workers, w) // closed with the others if the ensemble does not come back
		wg.Go(func() { runBig(w, i, big, stop) })
	}
	var ex *expirers
	if *faultsExpirers > 0 {
		ex = &expirers{addrs: addrs, rec: rec, watches: watches, logger: logger, seed: seed}
		wg.Go(func() { ex.run(stop, *faultsExpirers) })
	}
	if op != nil {
		wg.Go(func() { op.run(stop) })
	}
	signalStop := sync.OnceFunc(func() { close(stop) })
	stopLoad := func() { signalStop(); wg.Wait() }
	t.Cleanup(stopLoad)

	// Faults, one at a time.
	sched := newScheduler(kindRng, kinds)
	start := time.Now()
	end := start.Add(*faultsDuration)
	for time.Now().Before(end) {
		var r faultRecord
		var err error
		if kind := sched.next(); kind == faultIdle {
			// A calm of over 31 s would add half again to the history,
			// and the read check is quadratic in it: the workers rest.
			paused.Store(true)
			r, err = c.idleGap(idle, out)
			paused.Store(false)
		} else {
			r, err = c.inject(faultRng, kind)
		}
		art.faults = append(art.faults, r)
		if err != nil {
			out.report(ensembleFinding(fmt.Sprintf("fault %d, %s: %v", len(art.faults), r, err), err))
			break
		}
		t.Logf("fault %d: %s", len(art.faults), r)
		time.Sleep(300 * time.Millisecond) // some load on the healed ensemble
	}
	phase := time.Since(start)
	res.faults = art.faults
	c.healAll()
	// recovered: the ensemble serves again, so the final reads can pin
	// down its state (only a planted bug gets here without it).
	recovered := true
	var endPhases []string
	mark := func(what string, since time.Time) {
		endPhases = append(endPhases, fmt.Sprintf("%s %v", what, time.Since(since).Round(time.Millisecond)))
	}
	endStart := time.Now()
	if _, err := c.waitRecovery(time.Now(), recoverWait, nil); err != nil {
		if !out.keep {
			t.Fatalf("after the fault phase: %v", err)
		}
		out.report(ensembleFinding(fmt.Sprintf("after the fault phase: %v", err), err))
		recovered = false
	}
	mark("whole again after", endStart)
	if recovered {
		time.Sleep(time.Second) // load on the healthy ensemble
		since := time.Now()
		stopLoad()
		mark("load stopped in", since)
		since = time.Now()
		waitWatches(watches, rec.History(), watchWait)
		mark("watches that must fire waited for", since)
	} else {
		// Requests to a dead ensemble may wait for a long time: closing
		// the sessions ends them (after the stop, so that no worker goes
		// on issuing requests on a closed client).
		signalStop()
		for _, w := range workers {
			w.Conn.Close()
		}
		stopLoad()
	}

	// Final synced reads through a fresh session: they pin down the state
	// every acknowledged write must be reflected in.
	finalStart := time.Now()
	if recovered {
		final, err := newWorker(-1, addrs, rec, watches, seed, logger)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(final.Conn.Close)
		for _, p := range finalPaths {
			if err := final.finalRead(p); err != nil {
				if !out.keep {
					t.Fatal(err)
				}
				out.report(finding{check: checkRecovery, msg: err.Error(), at: time.Now().UnixNano()})
				recovered = false
				break
			}
		}
	}
	if recovered {
		mark("final reads took", finalStart)
	}
	var rcReport []string
	if op != nil {
		rcReport = checkReconfigRun(c, op, rec, ex, recovered, logger, out)
	}
	t.Logf("after the fault phase: %s", strings.Join(endPhases, ", "))
	h := rec.History()
	art.checked = &h

	// The checks.
	rep := report{n: n, seed: seed, phase: phase, workers: len(workers), faults: art.faults, ops: len(h.Ops)}
	rep.unknowns, rep.expired = rec.Counts()
	if *faultsClientDrops > 0 {
		for _, w := range workers {
			rep.drops += w.drops
		}
	}
	if cs != nil {
		rep.closers = cs.String()
	}
	if *faultsBig > 0 {
		rep.extra = append(rep.extra, big.String())
	}
	if ex != nil {
		rep.extra = append(rep.extra, ex.String())
	}
	if idle != nil {
		rep.extra = append(rep.extra, idle.String())
	}
	rep.extra = append(rep.extra, rcReport...)
	for _, op := range h.Ops {
		if op.Kind.IsRead() && op.Completed() && op.Zxid > 0 {
			rep.zxidReads++
		}
	}
	if recovered {
		rep.lost = load.AckedWritesLost(h, finalPaths)
		out.report(lostFindings(rep.lost)...)
	} else {
		t.Logf("no final reads (the ensemble did not recover): acknowledged writes lost and missed watches not checked")
	}

	checkStart := time.Now()
	lin, err := linearizability.CheckLinearizable(h, checkTime)
	if err != nil {
		t.Fatalf("CheckLinearizable: %v", err)
	}
	rep.lin, rep.linTook = lin, time.Since(checkStart)
	art.lin = &lin
	for _, w := range lin.Warnings {
		t.Logf("warning: %s", w)
	}
	if !lin.Ok {
		f := finding{check: checkPorcupine, msg: fmt.Sprintf("history not linearizable: %s", lin)}
		if lin.Unknown {
			f.check = checkPorcupineTimeout
		}
		if out.keep && !lin.Unknown {
			// When did it break? The earliest cut of the history that is
			// already not linearizable.
			bisectStart := time.Now()
			f.at = notLinearizableBy(h, res.loadStart.UnixNano(), checkStart.UnixNano())
			t.Logf("the history is not linearizable from %v after the load started on (bisected in %v)",
				time.Duration(f.at-res.loadStart.UnixNano()).Round(time.Millisecond), time.Since(bisectStart).Round(time.Millisecond))
		}
		out.report(f)
	}

	rep.reads = linearizability.CheckReads(h)
	out.report(readFindings(rep.reads)...)
	out.report(big.findings()...)
	if ex != nil {
		out.report(ex.check(art.faults)...)
	}

	rep.watches = checkWatches(watches, h)
	art.watches = rep.watches
	if !recovered {
		rep.watches.missed = nil // the ensemble could not deliver them
	}
	out.report(watchFindings(rep.watches)...)
	rep.log(t)
	res.findings, res.checked = out.found, time.Now()
	return res
}

// waitForSession waits until w's connection has a session.
func waitForSession(w *worker) (int64, error) {
	deadline := time.Now().Add(recoverWait)
	for w.Conn.State() != zk.StateHasSession || w.Conn.SessionID() == 0 {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no session within %v", recoverWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return w.Conn.SessionID(), nil
}

// createParent creates the persistent node path, retrying (each attempt
// recorded) while the outcome is unknown; NodeExists after such an attempt
// means that attempt did it.
func (w *worker) createParent(path string) error {
	deadline := time.Now().Add(recoverWait)
	inDoubt := false
	for {
		sess, err := waitForSession(w)
		if err != nil {
			return fmt.Errorf("setup of %s: %w", path, err)
		}
		op := w.create(sess, path, nil, 0)
		switch {
		case op.Completed() && (op.Err == linearizability.ErrOK || inDoubt && op.Err == linearizability.ErrNodeExists):
			return nil
		case op.Completed():
			return fmt.Errorf("setup: %s", op.String())
		}
		inDoubt = true
		if time.Now().After(deadline) {
			return fmt.Errorf("setup: %s, and no answer within %v", op.String(), recoverWait)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// finalRead records a sync and a getData of path, retrying (each attempt
// recorded) until both complete.
func (w *worker) finalRead(path string) error {
	deadline := time.Now().Add(recoverWait)
	for {
		sess, err := waitForSession(w)
		if err != nil {
			return fmt.Errorf("final read of %s: %w", path, err)
		}
		op, _ := w.Do(linearizability.Op{Session: sess, Kind: linearizability.Sync, Path: path},
			func(*linearizability.Op) error { _, err := w.Conn.Sync(path); return err })
		if op.Completed() && op.Err == linearizability.ErrOK {
			if g := w.get(sess, path, false); g.Completed() {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("final read of %s: no answer within %v", path, recoverWait)
		}
		time.Sleep(100 * time.Millisecond)
	}
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
	drops    int      // client connections dropped (-faults.client-drops)
	closers  string   // what the closers did (-faults.closers)
	extra    []string // what the big writers, expirers and idle gaps did
	// zxidReads counts completed reads with a reply zxid, which CheckReads
	// can check.
	zxidReads int
	lost      []load.LostWrite
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
	if *faultsReaders > 0 {
		fmt.Fprintf(&b, "  of the workers, %d only read (each time after a sync)\n", *faultsReaders)
	}
	if *faultsClientDrops > 0 {
		fmt.Fprintf(&b, "  client connections dropped: %d (one per worker every %v on average)\n", r.drops, *faultsClientDrops)
	}
	if r.closers != "" {
		fmt.Fprintf(&b, "  %s\n", r.closers)
	}
	for _, e := range r.extra {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	fmt.Fprintf(&b, "  acked writes lost: %d\n", len(r.lost))
	fmt.Fprintf(&b, "  Porcupine: %s (checked in %v)\n", r.lin, r.linTook.Round(time.Millisecond))
	fmt.Fprintf(&b, "  CheckReads: %d violations (%d reads carried a reply zxid)\n", len(r.reads), r.zxidReads)
	w := r.watches
	fmt.Fprintf(&b, "  watches: %d set, %d fired (%d implausible), %d ended by the session (not watching), %d still set; %d had to fire, %d missed\n",
		w.set, w.fired, len(w.implausible), w.notWatching, w.pending, w.mustFire, len(w.missed))
	b.WriteString("  recovery, fault healed -> serving leader with a quorum following | -> every server in sync, min/median/max:\n")
	for _, k := range faultKinds {
		fs := byKind[k]
		if len(fs) == 0 || k == faultIdle {
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
