package main

import (
	"cmp"
	"flag"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zabkeeper/zabkeeper/engine/bugs"
	"github.com/zabkeeper/zabkeeper/sim"
)

// simOptions are the flags of the sim command.
type simOptions struct {
	seed      uint64
	seeds     int
	firstSeed uint64
	nodes     int
	observers int
	clients   int
	faults    string
	// peers is sim.Options.PeerProtocol.
	peers     string
	duration  time.Duration
	trace     bool
	traceNode int64
	traceFrom time.Duration
	traceTo   time.Duration
	vizDir    string
	jobs      int
	bug       string
	// stopOnFailure stops a campaign at its first failing seed.
	stopOnFailure bool
	// failOnLinTimeout fails a campaign in which Porcupine timed out on
	// some seed (by default such a seed passes, counted in the summary).
	failOnLinTimeout bool
	// noObligations turns off the durability-obligation checks.
	noObligations bool
	// reconfig mixes random reconfigs into the faults.
	reconfig bool
}

func simFlags(out io.Writer, o *simOptions) *flag.FlagSet {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Uint64Var(&o.seed, "seed", 0, "run this one seed (0 = run --seeds seeds)")
	fs.IntVar(&o.seeds, "seeds", 100, "number of seeds to run, from --first-seed")
	fs.Uint64Var(&o.firstSeed, "first-seed", 1, "first seed of a --seeds campaign")
	fs.IntVar(&o.nodes, "nodes", 0, "voters (0 = the seed draws 3 or 5)")
	fs.IntVar(&o.observers, "observers", -1, "observers (-1 = the seed draws 0 or 1)")
	fs.IntVar(&o.clients, "clients", 0, "client sessions (0 = the seed draws 2-6)")
	fs.StringVar(&o.faults, "faults", "all", "fault kinds: all, none, or a comma list of net,crash,disk,clock")
	fs.StringVar(&o.peers, "peer-protocol", "", "kind of every server, no switches at restarts: zookeeper (ZooKeeper-like: no hello, no link capabilities), zabkeeper (native: hellos with every capability), or empty = the seed draws each server's kind and switches at restarts (every hop goes through netstub/zklink either way)")
	fs.BoolVar(&o.reconfig, "reconfig", false, "an operator asks for random reconfigs (add, remove, role changes, the leader's removal) during the fault phase; native peer protocol only")
	fs.DurationVar(&o.duration, "duration", 0, "virtual time of the fault phase (0 = 20s); the liveness phase follows")
	fs.BoolVar(&o.trace, "trace", false, "print the readable trace of --seed to stdout")
	fs.Int64Var(&o.traceNode, "trace-node", 0, "trace only this server (0 = all)")
	fs.DurationVar(&o.traceFrom, "trace-from", 0, "trace from this virtual time")
	fs.DurationVar(&o.traceTo, "trace-to", 0, "trace up to this virtual time (0 = the end)")
	fs.StringVar(&o.vizDir, "viz-dir", "", "directory for Porcupine HTML of failing seeds (default $ZABKEEPER_SIM_DIR or the temp dir)")
	fs.IntVar(&o.jobs, "jobs", runtime.NumCPU(), "seeds simulated in parallel (each simulation is single-threaded)")
	fs.BoolVar(&o.stopOnFailure, "stop-on-failure", false, "stop a campaign at its first failing seed (seeds already running finish)")
	fs.BoolVar(&o.failOnLinTimeout, "fail-on-lin-timeout", false, "fail the campaign when the linearizability check timed out on any seed")
	fs.BoolVar(&o.noObligations, "no-obligation-checks", false, "do not check that ACK, NEWLEADER and LEADERINFO follow durable writes (to measure what faults alone catch)")
	fs.StringVar(&o.bug, "plant-bug", "", "plant a known bug to watch the checkers catch it (needs a build with -tags simbugs): "+bugNames())
	fs.Usage = func() {
		fmt.Fprintf(out, `Usage: zabkeeper sim [flags]

Runs the deterministic simulator: real replicas on a simulated network and
disks, random client workloads, injected faults, invariant and
linearizability checks. One seed replays exactly:

  zabkeeper sim --seed 42 --trace --trace-node 2 --trace-from 10s --trace-to 12s
  zabkeeper sim --seeds 10000 --nodes 5 --faults all

Flags:
`)
		fs.PrintDefaults()
	}
	return fs
}

// runSim runs the sim command.
func runSim(args []string, stdout, stderr io.Writer) int {
	var o simOptions
	fs := simFlags(stderr, &o)
	if code, ok := parseFlags(fs, args, "sim", stderr); !ok {
		return code
	}
	faults, err := sim.ParseFaults(o.faults)
	if err != nil {
		fmt.Fprintf(stderr, "zabkeeper sim: %v\n", err)
		return 2
	}
	if o.peers != "" && o.peers != sim.PeerZooKeeper && o.peers != sim.PeerZabkeeper {
		fmt.Fprintf(stderr, "zabkeeper sim: unknown --peer-protocol %q (want zookeeper or zabkeeper)\n", o.peers)
		return 2
	}
	if o.bug != "" {
		b, ok := bugs.Parse(o.bug)
		if !ok {
			fmt.Fprintf(stderr, "zabkeeper sim: unknown bug %q (want one of %s)\n", o.bug, bugNames())
			return 2
		}
		if !bugs.Enabled {
			fmt.Fprintf(stderr, "zabkeeper sim: --plant-bug needs a build with -tags simbugs (go run -tags simbugs ./cmd/zabkeeper sim ...)\n")
			return 2
		}
		bugs.Set(b)
		defer bugs.Set(bugs.None)
	}
	defer sim.TuneGC()()
	opts := func(seed uint64) sim.Options {
		return sim.Options{Seed: seed, Nodes: o.nodes, Observers: o.observers, Clients: o.clients,
			Faults: faults, Duration: o.duration, VisualizationDir: o.vizDir, NoObligationChecks: o.noObligations,
			PeerProtocol: o.peers, Reconfig: o.reconfig}
	}
	if o.seed != 0 {
		so := opts(o.seed)
		if o.trace {
			so.Trace, so.TraceNode, so.TraceFrom, so.TraceTo = stdout, o.traceNode, o.traceFrom, o.traceTo
		}
		r := sim.Run(so)
		printReport(stdout, &r)
		if r.Failed() || (o.failOnLinTimeout && r.LinTimedOut) {
			return 1
		}
		return 0
	}
	if o.seeds <= 0 {
		fmt.Fprintf(stderr, "zabkeeper sim: --seeds must be positive\n")
		return 2
	}
	return campaign(o, opts, stdout, stderr)
}

// campaign runs many seeds on parallel workers, with a progress bar on
// stderr and a summary on stdout.
func campaign(o simOptions, opts func(uint64) sim.Options, stdout, stderr io.Writer) int {
	start := time.Now()
	seeds := make(chan uint64)
	results := make(chan sim.Report)
	stop := make(chan struct{})
	var stopOnce sync.Once
	var wg sync.WaitGroup
	for range max(1, o.jobs) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range seeds {
				results <- sim.Run(opts(s))
			}
		}()
	}
	go func() {
	feed:
		for i := range o.seeds {
			select {
			case seeds <- o.firstSeed + uint64(i):
			case <-stop:
				break feed
			}
		}
		close(seeds)
		wg.Wait()
		close(results)
	}()

	var (
		done      int
		simulated time.Duration
		ops       int
		txns      int
		faults    = map[string]int{}
		counters  = map[string]int{}
		kinds     = map[string]int{}
		failing   []sim.Report
		lastDraw  time.Time
		timeouts  []uint64
		panics    int
	)
	for r := range results {
		done++
		simulated += r.SimulatedTime
		ops += r.OpsChecked
		txns += r.Committed
		for k, v := range r.FaultsByKind {
			faults[k] += v
		}
		for k, v := range r.Counters {
			counters[k] += v
		}
		kinds[r.PeerKinds]++
		if r.LinTimedOut {
			timeouts = append(timeouts, r.Seed)
		}
		if r.Panicked {
			panics++
		}
		if r.Failed() {
			failing = append(failing, r)
			if o.stopOnFailure {
				stopOnce.Do(func() { close(stop) })
			}
		}
		if now := time.Now(); now.Sub(lastDraw) > 200*time.Millisecond || done == o.seeds {
			lastDraw = now
			progress(stderr, done, o.seeds, len(failing), time.Since(start))
		}
	}
	fmt.Fprintln(stderr)
	wall := time.Since(start)

	slices.SortFunc(failing, func(a, b sim.Report) int { return cmp.Compare(a.Seed, b.Seed) })
	fmt.Fprintf(stdout, "seeds:            %d (%d failing) in %s, %.0f seeds/min\n", done, len(failing), wall.Round(time.Millisecond), float64(done)/wall.Minutes())
	fmt.Fprintf(stdout, "simulated:        %.2f hours (%.0f× real time)\n", simulated.Hours(), simulated.Seconds()/wall.Seconds())
	fmt.Fprintf(stdout, "operations:       %d checked, %d txns committed\n", ops, txns)
	fmt.Fprintf(stdout, "faults injected: ")
	for _, k := range slices.Sorted(maps.Keys(faults)) {
		fmt.Fprintf(stdout, " %s=%d", k, faults[k])
	}
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "server kinds:     %d seeds all native, %d all ZooKeeper-like, %d mixed; %d kind switches at restarts\n",
		kinds[sim.KindsNative], kinds[sim.KindsZooKeeper], kinds[sim.KindsMixed], counters["kind-switches"])
	fmt.Fprintf(stdout, "protocol:        ")
	for _, k := range slices.Sorted(maps.Keys(counters)) {
		fmt.Fprintf(stdout, " %s=%d", k, counters[k])
	}
	fmt.Fprintln(stdout)
	violations := 0
	for _, r := range failing {
		violations += len(r.Violations)
	}
	fmt.Fprintf(stdout, "violations:       %d (%d seeds panicked)\n", violations, panics)
	slices.Sort(timeouts)
	fmt.Fprintf(stdout, "lin timeouts:     %d seeds%s\n", len(timeouts), seedList(timeouts))
	if done < o.seeds {
		fmt.Fprintf(stdout, "stopped:          after the first failure (--stop-on-failure), %d of %d seeds run\n", done, o.seeds)
	}
	for _, r := range failing {
		fmt.Fprintf(stdout, "\nFAIL seed %d: %s\n", r.Seed, firstLine(r.Violations))
		fmt.Fprintf(stdout, "  replay: %s\n", r.ReplayCommand)
	}
	if len(failing) > 0 || (o.failOnLinTimeout && len(timeouts) > 0) {
		return 1
	}
	return 0
}

func progress(w io.Writer, done, total, failing int, elapsed time.Duration) {
	const width = 40
	filled := done * width / total
	eta := time.Duration(0)
	if done > 0 {
		eta = elapsed * time.Duration(total-done) / time.Duration(done)
	}
	fmt.Fprintf(w, "\r[%s%s] %d/%d seeds, %d failing, eta %s   ",
		strings.Repeat("=", filled), strings.Repeat(" ", width-filled), done, total, failing, eta.Round(time.Second))
}

func printReport(w io.Writer, r *sim.Report) {
	status := "PASS"
	if r.Failed() {
		status = "FAIL"
	}
	fmt.Fprintf(w, "%s seed %d: %d voters, %d observers, %d clients; %s simulated, %d events, %d txns, %d ops checked\n",
		status, r.Seed, r.Nodes, r.Observers, r.Clients, r.SimulatedTime, r.Events, r.Committed, r.OpsChecked)
	fmt.Fprintf(w, "faults:")
	for _, k := range slices.Sorted(maps.Keys(r.FaultsByKind)) {
		fmt.Fprintf(w, " %s=%d", k, r.FaultsByKind[k])
	}
	fmt.Fprintf(w, "\nserver kinds: %s (first %s, N native, Z ZooKeeper-like; %d switches at restarts)", r.PeerKinds, r.InitialKinds, r.Counters["kind-switches"])
	fmt.Fprintf(w, "\nprotocol:")
	for _, k := range slices.Sorted(maps.Keys(r.Counters)) {
		fmt.Fprintf(w, " %s=%d", k, r.Counters[k])
	}
	fmt.Fprintf(w, "\ntrace hash: %016x\n", r.TraceHash)
	for _, wn := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", wn)
	}
	for _, v := range r.Violations {
		fmt.Fprintf(w, "violation: %s\n", v)
	}
	if r.Visualization != "" {
		fmt.Fprintf(w, "visualization: %s\n", r.Visualization)
	}
	fmt.Fprintf(w, "replay: %s\n", r.ReplayCommand)
}

// firstLine renders the first violation's first line (a panic's stack is
// left to the replay).
func firstLine(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	v, _, _ := strings.Cut(vs[0], "\n")
	if len(vs) > 1 {
		return fmt.Sprintf("%s (+%d more)", v, len(vs)-1)
	}
	return v
}

// seedList renders up to ten seeds as " (seeds a, b, …)".
func seedList(seeds []uint64) string {
	if len(seeds) == 0 {
		return ""
	}
	var parts []string
	for i, s := range seeds {
		if i == 10 {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, fmt.Sprint(s))
	}
	return " (seeds " + strings.Join(parts, ", ") + ")"
}

// bugNames lists the bugs --plant-bug accepts.
func bugNames() string {
	var names []string
	for _, b := range bugs.All() {
		names = append(names, b.String())
	}
	return strings.Join(names, ", ")
}
