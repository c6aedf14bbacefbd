package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/zabkeeper/zabkeeper/benchcompare"
	"github.com/zabkeeper/zabkeeper/loadgen"
)

const compareUsage = `Usage: zabkeeper bench compare [flags]

Runs Apache ZooKeeper (Debian's package: java, /usr/share/java/zookeeper.jar)
and zabkeeper (this binary) on loopback with the same zoo.cfg (tickTime,
fsync on, ports scheme, one disk), standalone and as 3-server ensembles,
through the same workloads: each round starts a cluster of each and they
take turns workload by workload (ZooKeeper first in odd rounds, zabkeeper
in even ones), each workload deleting what it made afterwards (both start
every workload on the same tree); then fills a standalone server with --znodes znodes (create
rate, RSS, restart-to-serving time) and SIGKILLs the leader of a loaded
3-server ensemble (time to the first acknowledged write). Writes a Markdown
report (--out) with one side-by-side table of ratios and an SVG chart
(--svg). Every server it starts is stopped when it ends, also on failure or
Ctrl-C. Expect roughly rounds x topologies x workloads x (duration+warm-up
+ the deletes) x 2, plus the fills and failovers.

Flags:
`

type compareOptions struct {
	cfg                   benchcompare.Config
	topologies, workloads string
	out, svg, note        string
	workParent, zabkeeper string
	keepData              bool
}

func compareFlags(out io.Writer, o *compareOptions) *flag.FlagSet {
	o.cfg = benchcompare.DefaultConfig()
	fs := flag.NewFlagSet("bench compare", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.topologies, "topologies", "1,3", "ensemble sizes to compare (1 = standalone)")
	fs.StringVar(&o.workloads, "workload", "create,set,get,mixed,multi,ephemeral,watch", "workloads to compare (or all)")
	fs.IntVar(&o.cfg.Sessions, "sessions", o.cfg.Sessions, "client sessions per workload (watch: watchers)")
	fs.IntVar(&o.cfg.ValueSize, "value-size", o.cfg.ValueSize, "bytes per value written")
	fs.DurationVar(&o.cfg.Duration, "duration", o.cfg.Duration, "measured time of each workload per round")
	fs.DurationVar(&o.cfg.Warmup, "warmup", o.cfg.Warmup, "warm-up of each workload per round")
	fs.IntVar(&o.cfg.Rounds, "rounds", o.cfg.Rounds, "rounds: in each, both systems run every workload, taking turns")
	fs.Int64Var(&o.cfg.Znodes, "znodes", o.cfg.Znodes, "znodes of the standalone fill for RSS and restart time (0 skips it)")
	fs.IntVar(&o.cfg.FailoverTrials, "failover-trials", o.cfg.FailoverTrials, "leader kills per system (0 skips failover)")
	fs.Func("client", "load generator's client for both systems: go-zk, or lean (create, set, get, mixed and watch; the other workloads use go-zk) (default go-zk)", func(s string) error {
		c, err := loadgen.ParseClient(s)
		o.cfg.Client = c
		return err
	})
	fs.IntVar(&o.cfg.TickTime, "tick-time", o.cfg.TickTime, "tickTime of both systems, ms")
	fs.StringVar(&o.cfg.Java, "java", o.cfg.Java, "java executable")
	fs.StringVar(&o.cfg.ZooKeeperClasspath, "zk-classpath", o.cfg.ZooKeeperClasspath, "class path of Apache ZooKeeper")
	fs.StringVar(&o.cfg.JavaHeap, "java-heap", o.cfg.JavaHeap, "ZooKeeper's -Xmx")
	fs.StringVar(&o.zabkeeper, "zabkeeper", "", "zabkeeper binary to compare (default: this one)")
	fs.StringVar(&o.workParent, "workdir", os.TempDir(), "directory under which the servers' data directories are made (one disk for both)")
	fs.BoolVar(&o.keepData, "keep-data", false, "keep the data directories and server logs")
	fs.StringVar(&o.out, "out", "BENCHMARKS.md", "Markdown report to write")
	fs.StringVar(&o.svg, "svg", "docs/benchmarks.svg", "SVG chart to write (empty: none)")
	fs.StringVar(&o.note, "note", "", "a note for the report (e.g. that the machine was busy)")
	fs.Usage = func() {
		fmt.Fprint(out, compareUsage)
		fs.PrintDefaults()
	}
	return fs
}

// runBenchCompare runs the bench compare command.
func runBenchCompare(args []string, stdout, stderr io.Writer) int {
	var o compareOptions
	fs := compareFlags(stderr, &o)
	if code, ok := parseFlags(fs, args, "bench compare", stderr); !ok {
		return code
	}
	usageErr := func(err error) int {
		fmt.Fprintf(stderr, "zabkeeper bench compare: %v\n", err)
		return 2
	}
	o.cfg.Topologies = nil
	for _, s := range splitList(o.topologies) {
		n, err := strconv.Atoi(s)
		if err != nil {
			return usageErr(fmt.Errorf("bad --topologies %q", o.topologies))
		}
		o.cfg.Topologies = append(o.cfg.Topologies, n)
	}
	ws, err := parseWorkloads(o.workloads)
	if err != nil {
		return usageErr(err)
	}
	o.cfg.Workloads = ws
	if o.zabkeeper == "" {
		if o.zabkeeper, err = os.Executable(); err != nil {
			return usageErr(fmt.Errorf("find this binary: %w (pass --zabkeeper)", err))
		}
	}
	o.cfg.Zabkeeper = []string{o.zabkeeper}
	if jar := strings.Split(o.cfg.ZooKeeperClasspath, ":")[0]; jar != "" {
		if _, err := os.Stat(jar); err != nil {
			return usageErr(fmt.Errorf("Apache ZooKeeper not found (%v): install Debian's package (apt-get install zookeeper) or pass --zk-classpath", err))
		}
	}
	work, err := os.MkdirTemp(o.workParent, "zabkeeper-compare-")
	if err != nil {
		fmt.Fprintf(stderr, "zabkeeper bench compare: %v\n", err)
		return 1
	}
	if !o.keepData {
		defer os.RemoveAll(work)
	}
	o.cfg.WorkDir = work
	o.cfg.KeepData = o.keepData
	o.cfg.Log = stderr
	if err := o.cfg.Validate(); err != nil {
		return usageErr(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stderr, "comparing in %s\n", work)
	rep, err := benchcompare.Run(ctx, o.cfg)
	if err != nil {
		fmt.Fprintf(stderr, "zabkeeper bench compare: %v\n", err)
		if o.keepData {
			fmt.Fprintf(stderr, "data directories and server logs kept in %s\n", work)
		}
		return 1
	}
	chart := ""
	if o.svg != "" {
		if err := writeFile(o.svg, rep.WriteSVG); err != nil {
			fmt.Fprintf(stderr, "zabkeeper bench compare: %v\n", err)
			return 1
		}
		if chart, err = filepath.Rel(filepath.Dir(o.out), o.svg); err != nil {
			chart = o.svg
		}
	}
	command := benchcompare.ShellQuote(append([]string{"zabkeeper", "bench", "compare"}, args...))
	if err := writeFile(o.out, func(w io.Writer) error { return rep.WriteMarkdown(w, command, o.note, chart) }); err != nil {
		fmt.Fprintf(stderr, "zabkeeper bench compare: %v\n", err)
		return 1
	}
	if err := rep.WriteMarkdown(stdout, command, o.note, ""); err != nil {
		return 1
	}
	return 0
}

// writeFile writes a file through f, creating its directory.
func writeFile(path string, f func(io.Writer) error) error {
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	file, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := f(file); err != nil {
		file.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return file.Close()
}
