// Package benchcompare runs Apache ZooKeeper and zabkeeper side by side on
// this machine with identical settings (the same zoo.cfg, loopback ports,
// disk, tickTime and fsync) through the same loadgen workloads, taking
// turns workload by workload (A B, then B A in the next round) so that
// drift of a shared machine hits both alike, and measures
// what the workloads do not: memory after loading many znodes, start-to-
// serving time with them on disk, and failover time after SIGKILL of the
// leader under load. It writes a Markdown report and an SVG chart.
//
// Every server it starts runs in its own process group, is killed if this
// process dies (Pdeathsig), and is stopped before Run returns, on success
// or failure.
package benchcompare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zabkeeper/zabkeeper/loadgen"
)

// Config is one comparison.
type Config struct {
	// WorkDir holds every server's dataDir (the same disk for both).
	WorkDir string
	// Zabkeeper is the command that runs zabkeeper (the binary and any
	// leading arguments); "server --config FILE" is appended.
	Zabkeeper []string
	// ZabkeeperEnv is added to the zabkeeper processes' environment.
	ZabkeeperEnv []string
	// Java runs ZooKeeper with ZooKeeperClasspath and a JavaHeap max heap.
	Java, ZooKeeperClasspath, JavaHeap string
	// TickTime is the tickTime of both (ZooKeeper's default 2000).
	TickTime int
	// Topologies are the ensemble sizes (1 = standalone).
	Topologies []int
	// Workloads run on each topology, each for Duration after Warmup,
	// with Sessions sessions and ValueSize-byte values.
	Workloads []loadgen.Workload
	Sessions  int
	Duration  time.Duration
	Warmup    time.Duration
	ValueSize int
	// Rounds is how many times each system runs each topology, alternating
	// (ZooKeeper, zabkeeper, ZooKeeper, zabkeeper, ...).
	Rounds int
	// Znodes is how many znodes the fill creates on a standalone server
	// before RSS and restart are measured (0 skips the fill).
	Znodes int64
	// FailoverTrials is how many leader kills each system gets on a
	// 3-server ensemble (0 skips failover).
	FailoverTrials int
	// Client is the load generator's client for both systems (empty:
	// go-zk; loadgen.Lean serves create, set, get, mixed and watch).
	Client loadgen.Client
	// Log receives one status line per step; nil discards them.
	Log io.Writer
	// KeepData leaves each cluster's data directories and server logs in
	// WorkDir when it stops (by default they are deleted, they can be
	// large), so a failed round can be read afterwards.
	KeepData bool
}

// DefaultConfig is the full comparison of the make target.
func DefaultConfig() Config {
	return Config{
		Java:               "java",
		ZooKeeperClasspath: defaultClasspath(),
		JavaHeap:           "1g",
		TickTime:           2000,
		Topologies:         []int{1, 3},
		Workloads:          []loadgen.Workload{loadgen.Create, loadgen.Set, loadgen.Get, loadgen.Mixed, loadgen.Multi, loadgen.Ephemeral, loadgen.WatchFanout},
		Sessions:           16,
		Duration:           10 * time.Second,
		Warmup:             2 * time.Second,
		ValueSize:          100,
		Rounds:             2,
		Znodes:             1_000_000,
		FailoverTrials:     2,
	}
}

// defaultClasspath is Debian's: zookeeper.jar's manifest names the jars it
// needs; slf4j-simple (if present) makes its warnings visible in the log.
func defaultClasspath() string {
	cp := "/usr/share/java/zookeeper.jar"
	if _, err := os.Stat("/usr/share/java/slf4j-simple.jar"); err == nil {
		cp += ":/usr/share/java/slf4j-simple.jar"
	}
	return cp
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.WorkDir == "" {
		errs = append(errs, errors.New("no work directory"))
	}
	if len(c.Zabkeeper) == 0 {
		errs = append(errs, errors.New("no zabkeeper command"))
	}
	if c.TickTime <= 0 || c.Sessions < 1 || c.Rounds < 1 || c.Duration <= 0 || c.Znodes < 0 || c.FailoverTrials < 0 {
		errs = append(errs, errors.New("tickTime, sessions, rounds and duration must be positive; znodes and failover trials not negative"))
	}
	for _, n := range c.Topologies {
		if n != 1 && n != 3 && n != 5 {
			errs = append(errs, fmt.Errorf("topology %d: want 1, 3 or 5 servers", n))
		}
	}
	return errors.Join(errs...)
}

// Report is everything a comparison measured.
type Report struct {
	Started, Finished time.Time
	Machine           Machine
	Config            Config
	// Rows are the merged workload results, per topology and workload.
	Rows []Row
	// Fill is the standalone fill/RSS/restart measurement per system.
	Fill map[System]*FillResult
	// Failover are the failover times per system, one per trial.
	Failover map[System][]time.Duration
}

// Row is one workload on one topology for both systems.
type Row struct {
	Servers  int
	Workload loadgen.Workload
	Results  map[System]*loadgen.Result
}

// FillResult is the standalone fill: creating Znodes znodes, the RSS after
// it, the time until a restarted server serves them, and its RSS then.
type FillResult struct {
	Create          *loadgen.Result
	RSSAfterFill    int64
	Restart         time.Duration
	RSSAfterRestart int64
}

// systems in the order each round runs them.
var systems = []System{ZooKeeper, Zabkeeper}

// Run runs the comparison. Whatever happens, every server it started is
// stopped before it returns.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("benchcompare: %w", err)
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	r := &runner{cfg: cfg}
	defer r.stopEverything()
	rep := &Report{Started: time.Now(), Machine: describeMachine(cfg), Config: cfg,
		Fill: map[System]*FillResult{}, Failover: map[System][]time.Duration{}}

	for _, n := range cfg.Topologies {
		perRound := map[System]map[loadgen.Workload][]*loadgen.Result{ZooKeeper: {}, Zabkeeper: {}}
		for round := range cfg.Rounds {
			results, err := r.workloads(ctx, roundOrder(round), n, round)
			if err != nil {
				return nil, err
			}
			for sys, rs := range results {
				for _, res := range rs {
					w := loadgen.Workload(res.Workload)
					perRound[sys][w] = append(perRound[sys][w], res)
				}
			}
		}
		for _, w := range cfg.Workloads {
			row := Row{Servers: n, Workload: w, Results: map[System]*loadgen.Result{}}
			for _, sys := range systems {
				row.Results[sys] = loadgen.Merge(perRound[sys][w])
			}
			rep.Rows = append(rep.Rows, row)
		}
	}
	if cfg.Znodes > 0 {
		for _, sys := range systems {
			f, err := r.fill(ctx, sys)
			if err != nil {
				return nil, err
			}
			rep.Fill[sys] = f
		}
	}
	for trial := range cfg.FailoverTrials {
		for _, sys := range systems {
			d, err := r.failover(ctx, sys, trial)
			if err != nil {
				return nil, err
			}
			rep.Failover[sys] = append(rep.Failover[sys], d)
		}
	}
	rep.Finished = time.Now()
	return rep, nil
}

// runner tracks the clusters of a comparison so that all get stopped.
type runner struct {
	cfg      Config
	mu       sync.Mutex
	clusters []*cluster
	seq      int
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.cfg.Log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// newCluster lays out a fresh cluster in a directory of its own.
func (r *runner) newCluster(sys System, n int, what string) (*cluster, error) {
	r.mu.Lock()
	r.seq++
	dir := filepath.Join(r.cfg.WorkDir, fmt.Sprintf("%02d-%s-%s-%d", r.seq, what, sys, n))
	r.mu.Unlock()
	c, err := newCluster(sys, n, dir, &r.cfg)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.clusters = append(r.clusters, c)
	r.mu.Unlock()
	return c, nil
}

// done stops a cluster and deletes its data (it can be large) unless
// KeepData.
func (r *runner) done(c *cluster) {
	c.stopAll()
	if len(c.nodes) > 0 && !r.cfg.KeepData {
		_ = os.RemoveAll(filepath.Dir(c.nodes[0].dir))
	}
}

func (r *runner) stopEverything() {
	r.mu.Lock()
	cs := append([]*cluster(nil), r.clusters...)
	r.mu.Unlock()
	for _, c := range cs {
		c.stopAll()
	}
}

// startServing starts a cluster and waits until every node serves.
func (r *runner) startServing(ctx context.Context, c *cluster) error {
	if err := c.startAll(); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	_, err := c.waitServing(wctx, "/", 0)
	return err
}

// loadConfig is the loadgen configuration of one workload on c.
func (r *runner) loadConfig(c *cluster, w loadgen.Workload) loadgen.Config {
	lc := loadgen.DefaultConfig()
	lc.Servers = c.addrs()
	lc.Workload = w
	lc.Sessions = r.cfg.Sessions
	lc.ValueSize = r.cfg.ValueSize
	lc.Duration = r.cfg.Duration
	lc.Warmup = r.cfg.Warmup
	lc.Client = r.cfg.Client
	return lc
}

// roundOrder is the order the systems take turns in a round: ZooKeeper
// first in odd rounds, zabkeeper first in even ones, so neither always
// runs on the disk and page cache the other just left.
func roundOrder(round int) []System {
	if round%2 == 1 {
		return []System{systems[1], systems[0]}
	}
	return systems
}

// workloads runs every workload once on each system, on a fresh cluster
// of each that serves for the whole round. The two clusters run side by
// side (the one not measured is idle) and take turns workload by workload,
// so the two measurements of a workload are seconds apart: the speed of a
// shared VM drifts over tens of seconds (zabkeeper's standalone set, same
// binary, 50,000 ops/s for a minute and 70,000 the next), and one system's
// whole round after the other's compared different machines.
//
// Each workload deletes what it made (unmeasured), so both systems start
// every workload from the same tree, on a server that has run the
// workloads before (ZooKeeper's JIT warm). Keeping the znodes made set run
// on those create had left, as many as that system had created: a system
// twice as fast at creating wrote snapshots twice as large during set
// (BENCHMARKS.md "The same start for both"). The log line gives the znodes
// at the start.
func (r *runner) workloads(ctx context.Context, order []System, n, round int) (map[System][]*loadgen.Result, error) {
	clusters := map[System]*cluster{}
	for _, sys := range order {
		c, err := r.newCluster(sys, n, "load")
		if err != nil {
			return nil, err
		}
		defer r.done(c)
		if err := r.startServing(ctx, c); err != nil {
			return nil, err
		}
		clusters[sys] = c
	}
	out := map[System][]*loadgen.Result{}
	for _, w := range r.cfg.Workloads {
		for _, sys := range order {
			c := clusters[sys]
			if waited, quiet, err := settle(ctx); err != nil {
				return nil, err
			} else if !quiet {
				r.logf("the host was still busy after %v; measuring %s %s anyway", waited.Round(time.Millisecond), sys, w)
			}
			start, err := c.znodes(ctx, 0)
			if err != nil {
				return nil, fmt.Errorf("benchcompare: %s, %d servers, znodes before %s: %w", sys, n, w, err)
			}
			res, err := loadgen.Run(ctx, r.loadConfig(c, w))
			if err != nil {
				return nil, fmt.Errorf("benchcompare: %s, %d servers, %s: %w", sys, n, w, err)
			}
			r.logf("round %d  %d server(s)  %-9s  %-9s  %8.0f ops/s  p99 %7.2f ms  errors %d  start znodes %d", round+1, n, sys, w,
				res.OpsPerSec, res.Latency.P99, res.ErrorCount, start)
			out[sys] = append(out[sys], res)
		}
	}
	return out, nil
}

// fill creates Znodes znodes on a standalone server, reads its RSS, stops
// it cleanly, restarts it and times it until it serves all of them.
func (r *runner) fill(ctx context.Context, sys System) (*FillResult, error) {
	c, err := r.newCluster(sys, 1, "fill")
	if err != nil {
		return nil, err
	}
	defer r.done(c)
	if err := r.startServing(ctx, c); err != nil {
		return nil, err
	}
	lc := r.loadConfig(c, loadgen.Create)
	lc.Duration, lc.Ops, lc.Warmup = 0, r.cfg.Znodes, 0
	lc.Keep = true // the restart must find them
	lc.Timeout = 2 * time.Hour
	res, err := loadgen.Run(ctx, lc)
	if err != nil {
		return nil, fmt.Errorf("benchcompare: %s fill: %w", sys, err)
	}
	if res.ErrorCount > 0 {
		return nil, fmt.Errorf("benchcompare: %s fill: %d creates failed: %v", sys, res.ErrorCount, res.Errors)
	}
	f := &FillResult{Create: res}
	if f.RSSAfterFill, err = rssBytes(c.pid(0)); err != nil {
		return nil, err
	}
	r.logf("fill      %-9s  %d znodes  %8.0f creates/s  RSS %d MB", sys, r.cfg.Znodes, res.OpsPerSec, f.RSSAfterFill>>20)
	c.stop(0)
	if err := c.start(0); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	// The fill's znodes are children of its root, all of which must be
	// back (a count below Znodes would mean lost data).
	times, err := c.waitServing(wctx, res.Root, int32(min(r.cfg.Znodes, 1<<31-1)))
	if err != nil {
		return nil, err
	}
	f.Restart = times[0]
	if f.RSSAfterRestart, err = rssBytes(c.pid(0)); err != nil {
		return nil, err
	}
	r.logf("restart   %-9s  serving %d znodes after %v  RSS %d MB", sys, r.cfg.Znodes, f.Restart.Round(time.Millisecond), f.RSSAfterRestart>>20)
	return f, nil
}

// failover starts a 3-server ensemble, puts it under write load from
// Sessions sessions spread over all servers, SIGKILLs the leader and
// returns the time from the kill until the first write sent after it is
// acknowledged.
func (r *runner) failover(ctx context.Context, sys System, trial int) (time.Duration, error) {
	c, err := r.newCluster(sys, 3, "failover")
	if err != nil {
		return 0, err
	}
	defer r.done(c)
	if err := r.startServing(ctx, c); err != nil {
		return 0, err
	}
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	leader, err := c.leader(lctx)
	if err != nil {
		return 0, err
	}

	var killedAt atomic.Int64 // unix nanos of the kill, 0 before
	acked := make(chan time.Time, 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	errs := make(chan error, r.cfg.Sessions)
	for i := range r.cfg.Sessions {
		conn, err := loadgen.Dial(lctx, c.addrs(), i, 30*time.Second, nil)
		if err != nil {
			return 0, err
		}
		path := fmt.Sprintf("/failover-%d", i)
		if _, err := conn.Create(path, nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
			conn.Close()
			return 0, fmt.Errorf("benchcompare: %s failover: create %s: %w", sys, path, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			value := make([]byte, r.cfg.ValueSize)
			for {
				select {
				case <-stop:
					return
				default:
				}
				sent := time.Now()
				_, err := conn.Set(path, value, -1)
				if err != nil {
					if killedAt.Load() == 0 {
						select {
						case errs <- fmt.Errorf("write before the kill failed: %w", err):
						default:
						}
					}
					time.Sleep(5 * time.Millisecond)
					continue
				}
				if k := killedAt.Load(); k != 0 && sent.UnixNano() > k {
					select {
					case acked <- time.Now():
					default:
					}
				}
			}
		}()
	}
	select { // let the load settle
	case <-time.After(2 * time.Second):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case err := <-errs:
		return 0, fmt.Errorf("benchcompare: %s failover: %w", sys, err)
	default:
	}
	// The clock starts at the signal; only writes sent once the leader is
	// gone (it has been reaped) count, so none can be acknowledged by it.
	kill := time.Now()
	c.kill(leader)
	killedAt.Store(time.Now().UnixNano())
	select {
	case at := <-acked:
		d := at.Sub(kill)
		r.logf("failover  %-9s  trial %d  first acknowledged write %v after SIGKILL of the leader (server %d)", sys, trial+1, d.Round(time.Millisecond), leader+1)
		return d, nil
	case <-time.After(2 * time.Minute):
		return 0, fmt.Errorf("benchcompare: %s failover: no write acknowledged within 2 min of killing the leader", sys)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
