package sim

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Knobs: `go test ./sim -run 'TestSim$' -seed N` replays one seed;
// `-seeds 10000 -nodes 5` runs a long campaign.
var (
	flagSeed     = flag.Uint64("seed", 0, "run only this seed (0 = the seed range)")
	flagSeeds    = flag.Int("seeds", 0, "number of seeds TestSim runs per cluster size (0 = the CI default)")
	flagFirst    = flag.Uint64("first-seed", 1, "first seed of the range")
	flagNodes    = flag.Int("nodes", 0, "voters (0 = 3 and 5 for the range; drawn for -seed)")
	flagObs      = flag.Int("observers", -1, "observers (-1 = drawn)")
	flagClients  = flag.Int("clients", 0, "client sessions (0 = drawn)")
	flagFaults   = flag.String("faults", "all", "fault kinds: all, none, or a list of net,crash,disk,clock")
	flagDuration = flag.Duration("duration", 0, "fault phase length in virtual time (0 = 20s)")
	flagTrace    = flag.Bool("simtrace", false, "print the trace of -seed to stdout")
	flagPeers    = flag.String("peer-protocol", "", "every server zookeeper (ZooKeeper-like) or zabkeeper (native), or empty = kinds drawn per seed")
)

// ciSeeds is the default seed count per cluster size: a couple of minutes on
// two cores under -race.
const ciSeeds = 30

func testOptions(t testing.TB, seed uint64, nodes int) Options {
	faults, err := ParseFaults(*flagFaults)
	require.NoError(t, err)
	return Options{Seed: seed, Nodes: nodes, Observers: *flagObs, Clients: *flagClients, Faults: faults, Duration: *flagDuration,
		PeerProtocol: *flagPeers, VisualizationDir: os.Getenv("ZABKEEPER_SIM_DIR")}
}

func TestSim(t *testing.T) {
	if *flagSeed != 0 {
		o := testOptions(t, *flagSeed, *flagNodes)
		if *flagTrace {
			o.Trace = os.Stdout
		}
		expectPass(t, Run(o))
		return
	}
	seeds := *flagSeeds
	if seeds == 0 {
		seeds = ciSeeds
		if testing.Short() {
			seeds = 3
		}
	}
	sizes := []int{3, 5}
	if *flagNodes != 0 {
		sizes = []int{*flagNodes}
	}
	for _, n := range sizes {
		for i := range seeds {
			seed := *flagFirst + uint64(i)
			t.Run(fmt.Sprintf("nodes=%d/seed=%d", n, seed), func(t *testing.T) {
				t.Parallel()
				expectPass(t, Run(testOptions(t, seed, n)))
			})
		}
	}
}

func expectPass(t *testing.T, r Report) {
	t.Helper()
	t.Logf("seed %d: %d voters, %d observers, %d clients, %s simulated, %d events, %d txns, %d ops, faults %v",
		r.Seed, r.Nodes, r.Observers, r.Clients, r.SimulatedTime, r.Events, r.Committed, r.OpsChecked, r.FaultsByKind)
	for _, w := range r.Warnings {
		t.Logf("warning: %s", w)
	}
	if r.Failed() {
		t.Errorf("seed %d failed:\n  %s\nreplay: %s", r.Seed, strings.Join(r.Violations, "\n  "), r.ReplayCommand)
	}
}

func TestSimIsDeterministic(t *testing.T) {
	for _, seed := range []uint64{7, 8} {
		a := Run(testOptions(t, seed, 0))
		b := Run(testOptions(t, seed, 0))
		require.Equal(t, a.TraceHash, b.TraceHash, "seed %d", seed)
		require.Equal(t, a.DiskDigest, b.DiskDigest, "seed %d leaves the same files", seed)
		require.Equal(t, a.Events, b.Events)
		require.Equal(t, a.FaultsByKind, b.FaultsByKind)
		require.Equal(t, a.Violations, b.Violations)
		aimed := 0
		for k, v := range a.FaultsByKind {
			if strings.HasPrefix(k, "at-") || strings.HasPrefix(k, "power-") {
				aimed += v
			}
		}
		require.Positive(t, aimed, "seed %d replays aimed faults and power losses too", seed)
	}
	// Tracing must not change the run.
	var sb strings.Builder
	o := testOptions(t, 7, 0)
	o.Trace = &sb
	require.Equal(t, Run(testOptions(t, 7, 0)).TraceHash, Run(o).TraceHash)
	require.Contains(t, sb.String(), "t=0.000s n1 start gen 1")
}

func TestSimExplicitShapeReplaysDrawnShape(t *testing.T) {
	a := Run(testOptions(t, 11, 0))
	o := testOptions(t, 11, a.Nodes)
	o.Observers, o.Clients = a.Observers, a.Clients
	require.Equal(t, a.TraceHash, Run(o).TraceHash)
}

func TestSimDifferentSeedsDiffer(t *testing.T) {
	require.NotEqual(t, Run(testOptions(t, 1, 3)).TraceHash, Run(testOptions(t, 2, 3)).TraceHash)
}

// The checker must be able to fail: a server seen applying a different txn
// than the others is a prefix-agreement violation.
func TestSimCheckerCatchesDivergence(t *testing.T) {
	o := testOptions(t, 3, 3)
	o.Faults = []string{}
	o.mutateApplied = func(node, zxid int64, h uint64) uint64 {
		if node == 2 && zxid&0xffffffff == 5 {
			return h ^ 1
		}
		return h
	}
	r := Run(o)
	require.True(t, r.Failed())
	require.Contains(t, strings.Join(r.Violations, "\n"), "prefix agreement")
}

// A seed stops at its first safety violation: no liveness phase and no
// history check run after it.
func TestSimStopsAtFirstViolation(t *testing.T) {
	o := testOptions(t, 3, 3)
	o.Faults = []string{}
	o.mutateApplied = func(node, zxid int64, h uint64) uint64 {
		if node == 2 && zxid&0xffffffff == 5 {
			return h ^ 1
		}
		return h
	}
	var sb strings.Builder
	o.Trace = &sb
	r := Run(o)
	require.True(t, r.Failed())
	require.Less(t, r.SimulatedTime, 20*time.Second, "the run went on after the violation")
	require.NotContains(t, sb.String(), "LIVENESS phase")
	require.Contains(t, sb.String(), "STOP at the first violation")
	require.Zero(t, r.OpsChecked, "the history was checked after the violation")
}

// A replica that panics fails its seed with the panic and the stack, and
// the run still reports and can be replayed.
func TestSimCatchesReplicaPanic(t *testing.T) {
	o := testOptions(t, 5, 3)
	o.Faults = []string{}
	steps := 500
	o.NewReplica = func(c ReplicaConfig, d Durable) (Replica, error) {
		r, err := defaultFactory(c, d)
		return panicky{r, &steps}, err
	}
	r := Run(o)
	require.True(t, r.Failed())
	require.True(t, r.Panicked)
	last := r.Violations[len(r.Violations)-1]
	require.Contains(t, last, "panic: replica bug")
	require.Contains(t, last, "panicky.Step", "the stack is reported")
	require.Contains(t, r.ReplayCommand, "-seed 5")
	require.NotZero(t, r.SimulatedTime)
}

// Watch events a replica never delivers, or delivers for nothing, fail the
// watch checks.
func TestSimCheckerCatchesWatchEvents(t *testing.T) {
	run := func(wrap func(Replica) Replica) []string {
		for seed := uint64(1); seed <= 10; seed++ {
			o := testOptions(t, seed, 3)
			o.Faults, o.VisualizationDir = []string{}, t.TempDir()
			o.NewReplica = func(c ReplicaConfig, d Durable) (Replica, error) {
				r, err := defaultFactory(c, d)
				return wrap(r), err
			}
			if r := Run(o); r.Failed() {
				return r.Violations
			}
		}
		return nil
	}
	missed := run(func(r Replica) Replica { return dropEvents{r} })
	require.NotEmpty(t, missed)
	require.Contains(t, missed[0], "whose event never came first")
	n := 0
	fake := run(func(r Replica) Replica { return fakeEvents{r, &n} })
	require.NotEmpty(t, fake)
	require.Contains(t, fake[0], "which no watch of the connection explains")
}

// A replica told its entries are durable before they are acks them early;
// the durability obligations catch that on a calm seed, with no crash.
func TestSimCheckerCatchesEarlyAck(t *testing.T) {
	o := testOptions(t, 1, 3)
	o.Faults = []string{}
	var last int64
	o.NewReplica = func(c ReplicaConfig, d Durable) (Replica, error) {
		r, err := defaultFactory(c, d)
		return eagerFsync{r, &last}, err
	}
	r := Run(o)
	require.True(t, r.Failed())
	require.Contains(t, r.Violations[0], "durability:")
	o.NoObligationChecks = true
	clean := Run(o)
	require.False(t, clean.Failed(), "without crashes nothing else can see it: %v", clean.Violations)
}

// A replica that never elects a leader fails the liveness phase.
func TestSimCheckerCatchesNoLeader(t *testing.T) {
	o := testOptions(t, 4, 3)
	o.Faults, o.Duration = []string{}, time.Second
	o.NewReplica = func(ReplicaConfig, Durable) (Replica, error) { return &deadReplica{}, nil }
	r := Run(o)
	require.True(t, r.Failed())
	require.Contains(t, strings.Join(r.Violations, "\n"), "no established leader")
}

// A disk that loses fsynced records on a crash must, on some seed, lose an
// acknowledged txn or fork the history, and the checks must say so.
func TestSimCheckerCatchesLyingDisk(t *testing.T) {
	failed := 0
	for seed := uint64(1); seed <= 20 && failed == 0; seed++ {
		o := testOptions(t, seed, 3)
		o.Faults = []string{FaultCrash}
		o.lyingDisk = true
		o.VisualizationDir = t.TempDir()
		if r := Run(o); r.Failed() {
			failed++
			t.Logf("seed %d: %s", seed, strings.Join(r.Violations, "\n"))
		}
	}
	require.Positive(t, failed)
}

// A replica that answers reads with data nobody wrote fails the history
// checks.
func TestSimCheckerCatchesBadReads(t *testing.T) {
	var violations []string
	for seed := uint64(1); seed <= 10 && len(violations) == 0; seed++ {
		o := testOptions(t, seed, 3)
		o.Faults, o.VisualizationDir = []string{}, t.TempDir()
		count := 0
		o.NewReplica = func(c ReplicaConfig, d Durable) (Replica, error) {
			r, err := defaultFactory(c, d)
			return staleReads{r, &count}, err
		}
		violations = Run(o).Violations
	}
	require.Regexp(t, "linearizability|reads:", strings.Join(violations, "\n"))
}

func TestParseFaults(t *testing.T) {
	f, err := ParseFaults("all")
	require.NoError(t, err)
	require.Equal(t, []string{"clock", "crash", "disk", "net"}, f)
	f, err = ParseFaults("none")
	require.NoError(t, err)
	require.Empty(t, f)
	require.NotNil(t, f)
	f, err = ParseFaults("net, crash,net")
	require.NoError(t, err)
	require.Equal(t, []string{"crash", "net"}, f)
	_, err = ParseFaults("cosmic-rays")
	require.Error(t, err)
}

func BenchmarkSim(b *testing.B) {
	var simulated time.Duration
	start := time.Now()
	for i := range b.N {
		r := Run(testOptions(b, uint64(1000+i), 0))
		simulated += r.SimulatedTime
	}
	wall := time.Since(start)
	b.ReportMetric(float64(b.N)/wall.Minutes(), "seeds/min")
	b.ReportMetric(simulated.Seconds()/wall.Seconds(), "sim-s/wall-s")
}

// Replay is bit for bit on the real disk package too: a seed with torn
// writes, fsync errors and corruption leaves the same files behind.
func TestSimDiskFaultsReplay(t *testing.T) {
	for seed := uint64(1); seed <= 60; seed++ {
		a := Run(testOptions(t, seed, 5))
		f := a.FaultsByKind
		if f["torn-write"] == 0 || f["fsync-error"] == 0 || f["corruption"] == 0 {
			continue
		}
		b := Run(testOptions(t, seed, 5))
		require.Equal(t, a.TraceHash, b.TraceHash, "seed %d", seed)
		require.Equal(t, a.DiskDigest, b.DiskDigest, "seed %d", seed)
		require.Equal(t, a.Violations, b.Violations)
		t.Logf("seed %d: %v, disk digest %016x", seed, f, a.DiskDigest)
		return
	}
	t.Fatal("no seed in 1..60 tore a write, failed an fsync and corrupted a disk")
}

// TestSimZooKeeperPeers runs seeds with every server ZooKeeper-like: no
// hello, so no link has capabilities (REVALIDATE, no moveSession REQUEST,
// no TIMEOUTNOW), under the same invariants and Porcupine; TestSim runs
// such seeds and mixed ones too (kinds.go).
func TestSimZooKeeperPeers(t *testing.T) {
	seeds := 10
	if testing.Short() {
		seeds = 2
	}
	for _, n := range []int{3, 5} {
		for i := range seeds {
			seed := uint64(100 + i)
			t.Run(fmt.Sprintf("nodes=%d/seed=%d", n, seed), func(t *testing.T) {
				t.Parallel()
				o := testOptions(t, seed, n)
				o.PeerProtocol = PeerZooKeeper
				r := Run(o)
				require.Equal(t, KindsZooKeeper, r.PeerKinds)
				require.Zero(t, r.Counters["links-capable"])
				expectPass(t, r)
			})
		}
	}
}

// The seed draws every kind mix (all native, all ZooKeeper-like, mixed)
// and, on some seeds, kind switches at restarts, the same way on every
// run; --peer-protocol forces one kind and no switches.
func TestSimDrawsKinds(t *testing.T) {
	mixes := map[string]int{}
	switching := 0
	for seed := uint64(1); seed <= 200; seed++ {
		o := Options{Seed: seed}
		d := newKindDraws(&o, 5)
		again := newKindDraws(&Options{Seed: seed}, 5)
		require.Equal(t, d.initial, again.initial, "seed %d", seed)
		require.Equal(t, d.switchProb, again.switchProb, "seed %d", seed)
		native := 0
		for _, n := range d.initial {
			if n {
				native++
			}
		}
		switch native {
		case 0:
			mixes[KindsZooKeeper]++
		case 5:
			mixes[KindsNative]++
		default:
			mixes[KindsMixed]++
		}
		if d.switchProb > 0 {
			switching++
		}
		for _, forced := range []string{PeerZooKeeper, PeerZabkeeper} {
			f := newKindDraws(&Options{Seed: seed, PeerProtocol: forced}, 5)
			require.Zero(t, f.switchProb)
			for _, n := range f.initial {
				require.Equal(t, forced == PeerZabkeeper, n)
			}
		}
	}
	t.Logf("initial mixes of seeds 1-200: %v; %d seeds switch kinds at restarts", mixes, switching)
	require.InDelta(t, 50, mixes[KindsZooKeeper], 20)
	require.InDelta(t, 75, mixes[KindsNative], 25)
	require.InDelta(t, 75, mixes[KindsMixed], 25)
	require.InDelta(t, 100, switching, 25)
}
