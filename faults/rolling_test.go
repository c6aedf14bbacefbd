package faults

import (
	"flag"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zabkeeper/zabkeeper/faults/load"
	"github.com/zabkeeper/zabkeeper/internal/zkreal"
	"github.com/zabkeeper/zabkeeper/linearizability"
)

// Graceful stops and rolling restarts with the default timing (tickTime
// 2000 ms), under load from real go-zk clients: SIGTERM makes a leader hand
// leadership over before it exits, so the ensemble elects a new leader
// without waiting for syncLimit or an election timeout. The test asserts
// what must hold (no session expires, no acknowledged write is lost, the
// history is linearizable, and a generous bound on each pause to catch a
// hang); the pauses themselves are figures, logged for TESTING.md.

var faultsZooKeeper = flag.Bool("faults.zookeeper", false,
	"also run TestRollingRestartApacheZooKeeper: the same rolling restart on Debian's Apache ZooKeeper, for comparison figures")

// hangBound is far above any expected pause: only a hang exceeds it.
const hangBound = 10 * time.Second

// exitWait bounds how long a SIGTERMed server may take to exit.
const exitWait = 15 * time.Second

// waitExit waits for nd's process to end.
func (nd *node) waitExit(d time.Duration) error {
	nd.mu.Lock()
	exited := nd.exited
	nd.mu.Unlock()
	select {
	case <-exited:
		return nil
	case <-time.After(d):
		return fmt.Errorf("server %d did not exit within %v of SIGTERM:\n%s", nd.id, d, nd.log.tail(4000))
	}
}

// writePause is the longest time between two consecutive completed writes
// (of any worker) from the last completion before from to the first after
// to: how long the ensemble took no writes around a restart.
func writePause(h linearizability.History, from, to time.Time) time.Duration {
	var rets []int64
	for _, op := range h.Ops {
		if op.Kind.IsWrite() && op.Kind != linearizability.CloseSession && op.Completed() {
			rets = append(rets, op.Return)
		}
	}
	slices.Sort(rets)
	lo, hi := from.UnixNano(), to.UnixNano()
	prev := int64(-1)
	var longest int64
	for _, r := range rets {
		if r < lo {
			prev = r
			continue
		}
		if prev >= 0 {
			longest = max(longest, r-prev)
		}
		prev = r
		if r > hi {
			break
		}
	}
	return time.Duration(longest)
}

// restartFigure is what one stop and restart of a server measured.
type restartFigure struct {
	server int
	role   string // what it was when stopped
	// newLeader: SIGTERM -> a leader of a newer epoch serves (leaders only).
	newLeader time.Duration
	exit      time.Duration // SIGTERM -> the process exited
	back      time.Duration // SIGTERM -> every server in sync again
	from, to  time.Time
	pause     time.Duration // longest write pause around it
}

func (f restartFigure) String() string {
	s := fmt.Sprintf("server %d (%s): exited after %v, ensemble in sync again after %v",
		f.server, f.role, f.exit.Round(time.Millisecond), f.back.Round(time.Millisecond))
	if f.newLeader > 0 {
		s += fmt.Sprintf(", new leader serving after %v", f.newLeader.Round(time.Millisecond))
	}
	return s + fmt.Sprintf("; longest write pause %v", f.pause.Round(time.Millisecond))
}

// stopAndRestart SIGTERMs server i, waits for it to exit, starts it again
// and waits until every server is in sync.
func (c *cluster) stopAndRestart(t *testing.T, i int) restartFigure {
	t.Helper()
	nd := c.nodes[i]
	before := c.statuses()
	f := restartFigure{server: nd.id, role: orDash(before[i].mode)}
	nd.mu.Lock()
	exited := nd.exited
	nd.mu.Unlock()
	exitAt := make(chan time.Time, 1)
	go func() {
		<-exited
		exitAt <- time.Now()
	}()
	f.from = time.Now()
	if err := nd.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if before[i].mode == "leader" {
		// Poll the others until one leads a newer epoch.
		deadline := f.from.Add(recoverWait)
		for f.newLeader == 0 {
			st := c.statuses()
			for j := range st {
				if j != i && st[j].mode == "leader" && st[j].epoch > before[i].epoch {
					f.newLeader = time.Since(f.from)
				}
			}
			if f.newLeader == 0 && time.Now().After(deadline) {
				t.Fatalf("no new leader within %v of SIGTERM to leader %d (modes %s); its log:\n%s",
					recoverWait, nd.id, strings.Join(c.view(st).modes, " "), nd.log.tail(6000))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if err := nd.waitExit(exitWait); err != nil {
		t.Fatal(err)
	}
	f.exit = (<-exitAt).Sub(f.from)

	if err := c.spawn(nd); err != nil {
		t.Fatal(err)
	}
	if _, err := c.waitRecovery(f.from, recoverWait, nil); err != nil {
		t.Fatalf("after restarting server %d: %v", nd.id, err)
	}
	f.back = time.Since(f.from)
	f.to = time.Now()
	return f
}

// TestGracefulStopAndRollingRestart runs a 3-server ensemble with the
// default timing under write load: first SIGTERM of the leader (restarted
// afterwards), then a rolling restart of every server, one after another,
// each waiting until the ensemble is in sync again, as a StatefulSet's
// rolling update does (highest ordinal first).
func TestGracefulStopAndRollingRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real ensemble with the default tickTime")
	}
	rollingRestart(t, defaultTiming)
}

// TestRollingRestartApacheZooKeeper runs the same on Apache ZooKeeper
// (with -faults.zookeeper), whose leader has no handoff: its figures are
// the comparison in TESTING.md.
func TestRollingRestartApacheZooKeeper(t *testing.T) {
	if !*faultsZooKeeper {
		t.Skip("comparison run: -faults.zookeeper")
	}
	zkreal.Require(t) // asked for: fails, never skips, without ZooKeeper
	o := defaultTiming
	o.java = true
	rollingRestart(t, o)
}

func rollingRestart(t *testing.T, o ensembleOptions) {
	const n = 3
	seed := uint64(time.Now().UnixNano())
	c := startClusterTimed(t, n, "", o)
	rec := load.NewRecorder()
	addrs := c.clientAddrs()
	logger := &zkLogger{}
	watches := &watchLog{}
	t.Cleanup(watches.wg.Wait)

	setup, err := newWorker(0, addrs, rec, watches, seed, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(setup.Conn.Close)
	for _, p := range groupParents {
		if err := setup.createParent(p); err != nil {
			t.Fatal(err)
		}
	}
	workers := make([]*worker, 4)
	for i := range workers {
		if workers[i], err = newWorker(i+1, addrs, rec, watches, seed, logger); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(workers[i].Conn.Close)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() { w.run(stop) })
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopLoad)
	time.Sleep(time.Second) // load on the healthy ensemble

	var figures []restartFigure
	lead := c.leader()
	if lead < 0 {
		t.Fatal("no leader")
	}
	t.Logf("SIGTERM to the leader, server %d", c.nodes[lead].id)
	figures = append(figures, c.stopAndRestart(t, lead))
	time.Sleep(1500 * time.Millisecond)
	for i := n - 1; i >= 0; i-- {
		t.Logf("rolling restart: server %d", c.nodes[i].id)
		figures = append(figures, c.stopAndRestart(t, i))
		time.Sleep(1500 * time.Millisecond) // writes flow again before the next one
	}
	time.Sleep(time.Second)
	stopLoad()

	final, err := newWorker(-1, addrs, rec, watches, seed, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(final.Conn.Close)
	for _, p := range loadPaths {
		if err := final.finalRead(p); err != nil {
			t.Fatal(err)
		}
	}
	h := rec.History()
	unknowns, expired := rec.Counts()

	var b strings.Builder
	server := "zabkeeper"
	if o.java {
		server = "Apache ZooKeeper"
	}
	fmt.Fprintf(&b, "figures (%s, tickTime 2000 ms, %d workers, %d ops, %d of unknown outcome):\n", server, len(workers), len(h.Ops), unknowns)
	for k, f := range figures {
		f.pause = writePause(h, f.from, f.to)
		figures[k] = f
		what := "rolling restart"
		if k == 0 {
			what = "leader SIGTERM"
		}
		fmt.Fprintf(&b, "  %-15s %s\n", what, f)
	}
	t.Log(b.String())

	if expired > 0 {
		t.Errorf("%d sessions expired across graceful restarts", expired)
	}
	if lost := load.AckedWritesLost(h, loadPaths); len(lost) > 0 {
		t.Errorf("acknowledged writes lost: %v", lost)
	}
	lin, err := linearizability.CheckLinearizable(h, checkTime)
	if err != nil {
		t.Fatal(err)
	}
	if !lin.Ok {
		t.Errorf("history not linearizable: %s", lin)
	}
	for _, f := range figures {
		if !o.java && f.pause > hangBound {
			t.Errorf("server %d: writes paused %v (bound %v)", f.server, f.pause, hangBound)
		}
	}
}
