package faults

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zabkeeper/zabkeeper/linearizability"
	"github.com/zabkeeper/zabkeeper/netstub"
)

var (
	faultsDuration = flag.Duration("faults.duration", 12*time.Second, "how long the fault phase runs")
	faultsSeed     = flag.Uint64("faults.seed", 0, "random seed (0: from the clock)")
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

const (
	nServers  = 3
	nWorkers  = 4
	checkTime = 5 * time.Minute // Porcupine budget
)

// Fault kinds.
const (
	faultKill      = "kill-restart"
	faultStop      = "stop-leader"
	faultPartition = "partition"
	faultOneWay    = "one-way-cut"
)

var faultKinds = []string{faultKill, faultStop, faultPartition, faultOneWay}

// faultRecord is one injected fault and how long the ensemble took to serve
// again once it was healed.
type faultRecord struct {
	kind     string
	target   int // server id
	hold     time.Duration
	recovery time.Duration
	// before and after are the leader's ids around the fault (0: none seen).
	before, after int
}

func TestFaultsLinearizable(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real three-process ensemble under faults")
	}
	seed := *faultsSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -faults.seed=%d), fault phase %v", seed, seed, *faultsDuration)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))

	c := startCluster(t, nServers)
	addrs := c.clientAddrs()
	logger := &zkLogger{}
	rec := newRecorder()

	// Setup: the parent node, recorded like any other write.
	setup := connect(t, addrs, logger)
	sess := setup.SessionID()
	call := time.Now().UnixNano()
	_, err := setup.Create(parent, nil, 0, zk.WorldACL(zk.PermAll))
	if err != nil {
		t.Fatalf("create %s: %v", parent, err)
	}
	rec.add(linearizability.Op{Session: sess, Call: call, Return: time.Now().UnixNano(), Kind: linearizability.Create, Path: parent, Name: parent})

	// Load.
	workers := make([]*worker, nWorkers)
	for i := range workers {
		w, err := newWorker(i+1, addrs, rec, seed, logger)
		if err != nil {
			t.Fatalf("worker %d: %v", i+1, err)
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

	// Faults.
	var records []faultRecord
	end := time.Now().Add(*faultsDuration)
	for time.Now().Before(end) {
		kind := faultKinds[rng.IntN(len(faultKinds))]
		hold := time.Second + time.Duration(rng.Int64N(int64(time.Second)))
		if kind == faultStop || kind == faultOneWay {
			// Followers give up on a silent leader after syncLimit*tickTime
			// = 2 s: hold these past it about half the time, so that some
			// of them force an election.
			hold = time.Second + time.Duration(rng.Int64N(int64(5*time.Second/2)))
		}
		r := c.inject(t, rng, kind, hold)
		records = append(records, r)
		if t.Failed() {
			break
		}
		time.Sleep(300 * time.Millisecond) // some load on the healed ensemble
	}
	c.healAll()
	if _, err := c.waitServing(recoverWait); err != nil {
		t.Fatalf("after the fault phase: %v", err)
	}
	time.Sleep(time.Second) // load on the healthy ensemble
	stopLoad()

	// Final synced reads through a fresh session: they pin down the state
	// every acknowledged write must be reflected in.
	final := connect(t, addrs, logger)
	fs := final.SessionID()
	for _, p := range loadPaths {
		finalRead(t, final, fs, p, rec)
	}
	h := rec.history()

	// Figures.
	byKind := map[string]int{}
	var recov []string
	for _, r := range records {
		byKind[r.kind]++
		recov = append(recov, fmt.Sprintf("%s(s%d,%v)=%v[leader s%d->s%d]", r.kind, r.target,
			r.hold.Round(time.Millisecond), r.recovery.Round(time.Millisecond), r.before, r.after))
	}
	var kinds []string
	for k, n := range byKind {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(kinds)
	totalOps := 0
	for _, w := range workers {
		totalOps += w.ops
	}
	t.Logf("faults injected: %d (%s)", len(records), strings.Join(kinds, " "))
	t.Logf("recovery (fault healed -> one leader, rest following): %s", strings.Join(recov, " "))
	t.Logf("ops recorded: %d (%d outcome unknown), sessions expired: %d", len(h.Ops), rec.unknowns, len(rec.expired))

	// Check 1: acknowledged writes lost.
	lost := ackedWritesLost(h, loadPaths)
	for _, l := range lost {
		t.Errorf("acknowledged write lost: %s", l)
	}
	t.Logf("acked writes lost: %d", len(lost))

	// Check 2: linearizability of writes, syncs and synced reads.
	res, err := linearizability.CheckLinearizable(h, checkTime)
	if err != nil {
		t.Fatalf("CheckLinearizable: %v", err)
	}
	t.Logf("CheckLinearizable: %s", res)
	for _, w := range res.Warnings {
		t.Logf("warning: %s", w)
	}
	if !res.Ok {
		path := filepath.Join(t.TempDir(), "faults-porcupine.html")
		if err := linearizability.WriteVisualization(h, res, path); err != nil {
			t.Logf("visualization: %v", err)
		}
		t.Errorf("history not linearizable (%s); visualization: %s", res, path)
		dumpHistory(t, h)
	}

	// Check 3: ZooKeeper's guarantees for plain reads.
	v := linearizability.CheckReads(h)
	for i, x := range v {
		if i == 20 {
			t.Errorf("... %d violations in all", len(v))
			break
		}
		t.Errorf("read violation: %s", x)
	}
	t.Logf("CheckReads: %d violations", len(v))
	if t.Failed() {
		for _, nd := range c.nodes {
			t.Logf("server %d (started %d times) log tail:\n%s", nd.id, nd.starts, nd.log.tail(3000))
		}
	}
}

// connect opens a session and waits for it.
func connect(t *testing.T, addrs []string, logger zk.Logger) *zk.Conn {
	t.Helper()
	conn, _, err := zk.Connect(addrs, sessionTimeout, zk.WithLogger(logger), zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	deadline := time.Now().Add(recoverWait)
	for conn.State() != zk.StateHasSession || conn.SessionID() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no session within %v", recoverWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return conn
}

// finalRead records a sync and a getData of path, retrying (each attempt
// recorded) until both complete.
func finalRead(t *testing.T, conn *zk.Conn, sess int64, path string, rec *recorder) {
	t.Helper()
	deadline := time.Now().Add(recoverWait)
	for {
		if conn.SessionID() != sess {
			t.Fatalf("final reader lost its session")
		}
		call := time.Now().UnixNano()
		_, err := conn.Sync(path)
		syncOp := linearizability.Op{Session: sess, Call: call, Kind: linearizability.Sync, Path: path, Return: linearizability.Unknown}
		if err == nil {
			syncOp.Return = time.Now().UnixNano()
			rec.add(syncOp)
			op := linearizability.Op{Session: sess, Kind: linearizability.GetData, Path: path, SyncedBefore: true}
			op.Call = time.Now().UnixNano()
			data, st, err := conn.Get(path)
			code, ok := errCode(err)
			if ok {
				op.Return, op.Err = time.Now().UnixNano(), code
				if err == nil {
					op.RespData = append([]byte{}, data...)
					op.StatVersion, op.Mzxid, op.Czxid = st.Version, st.Mzxid, st.Czxid
				}
				rec.add(op)
				return
			}
			op.Return = linearizability.Unknown
			rec.add(op)
		} else {
			rec.add(syncOp)
		}
		if time.Now().After(deadline) {
			t.Fatalf("final read of %s: %v", path, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// inject applies one fault for hold, heals it and measures the time until
// the ensemble serves again.
func (c *cluster) inject(t *testing.T, rng *rand.Rand, kind string, hold time.Duration) faultRecord {
	t.Helper()
	victim := rng.IntN(len(c.nodes))
	before := c.leader()
	switch kind {
	case faultKill:
		c.nodes[victim].kill()
		time.Sleep(hold)
		if err := c.spawn(c.nodes[victim]); err != nil {
			t.Errorf("restart server %d: %v", c.nodes[victim].id, err)
		}
	case faultStop:
		if l := c.leader(); l >= 0 {
			victim = l
		}
		if err := c.nodes[victim].signal(syscall.SIGSTOP); err != nil {
			t.Errorf("SIGSTOP server %d: %v", c.nodes[victim].id, err)
		}
		time.Sleep(hold)
		if err := c.nodes[victim].signal(syscall.SIGCONT); err != nil {
			t.Errorf("SIGCONT server %d: %v", c.nodes[victim].id, err)
		}
	case faultPartition:
		for j := range c.nodes {
			if j != victim {
				c.proxies[victim][j].Cut()
				c.proxies[j][victim].Cut()
			}
		}
		time.Sleep(hold)
		c.healAll()
	case faultOneWay:
		// The victim's messages to its peers are held back; it still hears
		// them. Half the time the victim is the leader.
		if l := c.leader(); l >= 0 && rng.IntN(2) == 0 {
			victim = l
		}
		for j := range c.nodes {
			if j != victim {
				c.proxies[victim][j].CutOneWay(netstub.ToTarget)
			}
		}
		time.Sleep(hold)
		c.healAll()
	}
	healed := time.Now()
	after, err := c.waitServing(recoverWait)
	if err != nil {
		t.Errorf("after %s of server %d: %v", kind, c.nodes[victim].id, err)
	}
	return faultRecord{kind: kind, target: c.nodes[victim].id, hold: hold, recovery: time.Since(healed),
		before: before + 1, after: after + 1}
}

// ackedWritesLost compares each path's final synced read with the writes
// that may have left the final state: every successful or unknown write not
// definitely followed by an acknowledged successful write on the same path
// (one that was called after it returned). Data payloads are unique, so a
// final value names its write. It returns a description per path whose
// final state no such write explains.
func ackedWritesLost(h linearizability.History, paths []string) []string {
	var out []string
	expired := map[int64]bool{}
	for _, op := range h.Ops {
		if op.Kind == linearizability.CloseSession {
			expired[op.Session] = true
		}
	}
	for _, path := range paths {
		var writes []linearizability.Op
		var final *linearizability.Op
		for i := range h.Ops {
			op := &h.Ops[i]
			if op.Path != path {
				continue
			}
			switch op.Kind {
			case linearizability.Create, linearizability.SetData, linearizability.Delete:
				if !op.Completed() || op.Err == linearizability.ErrOK {
					writes = append(writes, *op)
				}
			case linearizability.GetData:
				if op.SyncedBefore && op.Completed() && (final == nil || op.Call > final.Call) {
					final = op
				}
			}
		}
		if final == nil {
			out = append(out, path+": no final read")
			continue
		}
		superseded := func(w linearizability.Op) bool {
			if !w.Completed() {
				return false
			}
			for _, o := range writes {
				if o.Completed() && o.Call > w.Return {
					return true
				}
			}
			return false
		}
		explained := false
		for _, w := range writes {
			if superseded(w) {
				continue
			}
			switch {
			case final.Err == linearizability.ErrNoNode:
				explained = explained || w.Kind == linearizability.Delete ||
					(w.Kind == linearizability.Create && w.Mode == linearizability.ModeEphemeral && expired[w.Session])
			case final.Err == linearizability.ErrOK:
				explained = explained || (w.Kind != linearizability.Delete && bytes.Equal(w.Data, final.RespData))
			}
		}
		if len(writes) == 0 && final.Err == linearizability.ErrNoNode {
			explained = true
		}
		if !explained {
			out = append(out, fmt.Sprintf("%s: final read %s matches no write that may be last", path, final.String()))
		}
	}
	return out
}

func dumpHistory(t *testing.T, h linearizability.History) {
	path := filepath.Join(t.TempDir(), "history.txt")
	var b strings.Builder
	ops := append([]linearizability.Op(nil), h.Ops...)
	sort.Slice(ops, func(i, j int) bool { return ops[i].Call < ops[j].Call })
	for i := range ops {
		b.WriteString(ops[i].String())
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err == nil {
		t.Logf("history: %s", path)
	}
}
