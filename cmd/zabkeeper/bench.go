package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/zabkeeper/zabkeeper/loadgen"
	"github.com/zabkeeper/zabkeeper/server/tlsconf"
)

// benchUsage heads the help of the bench command.
const benchUsage = `Usage: zabkeeper bench [flags]
       zabkeeper bench compare [flags]   (see "zabkeeper bench compare --help")

Drives a ZooKeeper-compatible server (zabkeeper or Apache ZooKeeper) over
the real wire protocol: N sessions, each with one request outstanding, run
one or more workloads for a duration or an op count after a warm-up, then
print ops/s and latency percentiles (HDR histogram). Each workload works
under <root>/run-<random> and deletes what it made unless --keep.

Workloads: create, set, get, mixed (--read-ratio), multi (--multi-ops setData
per transaction), ephemeral (create + delete of an ephemeral znode) and
watch (one write, --sessions watchers: time until all are notified).

Flags:
`

// benchOptions are the bench command's flags.
type benchOptions struct {
	cfg       loadgen.Config
	servers   string
	workloads string
	jsonOut   bool
	progress  bool
	logLevel  string
	// TLS of the client sessions.
	tls         bool
	tlsCA       string
	tlsKeyStore string
}

// tlsConfig builds the sessions' TLS configuration from the flags; nil
// for plain TCP.
func (o *benchOptions) tlsConfig() (*tls.Config, error) {
	if !o.tls && o.tlsCA == "" && o.tlsKeyStore == "" {
		return nil, nil
	}
	c := &tls.Config{}
	if o.tlsCA != "" {
		pool, err := tlsconf.LoadTrustBundle(o.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		c.RootCAs = pool
	}
	if o.tlsKeyStore != "" {
		cert, err := tlsconf.LoadKeyStore(o.tlsKeyStore)
		if err != nil {
			return nil, fmt.Errorf("--tls-keystore: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

func benchFlags(out io.Writer, o *benchOptions) *flag.FlagSet {
	o.cfg = loadgen.DefaultConfig()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.servers, "servers", strings.Join(o.cfg.Servers, ","), "comma-separated host:port client addresses")
	fs.StringVar(&o.workloads, "workload", string(o.cfg.Workload), "comma-separated workloads to run one after another: create, set, get, mixed, multi, ephemeral, watch (or all)")
	fs.IntVar(&o.cfg.Sessions, "sessions", o.cfg.Sessions, "client sessions (watch: watchers, plus one writer)")
	fs.Float64Var(&o.cfg.ReadRatio, "read-ratio", o.cfg.ReadRatio, "share of reads in the mixed workload, 0..1")
	fs.IntVar(&o.cfg.ValueSize, "value-size", o.cfg.ValueSize, "bytes per value written")
	fs.DurationVar(&o.cfg.Duration, "duration", o.cfg.Duration, "length of the measured phase of each workload (0: bounded by --ops only)")
	fs.Int64Var(&o.cfg.Ops, "ops", 0, "operations to measure per workload (0: bounded by --duration only); with both, whichever comes first")
	fs.DurationVar(&o.cfg.Warmup, "warmup", o.cfg.Warmup, "unmeasured warm-up before each workload")
	fs.IntVar(&o.cfg.MultiOps, "multi-ops", o.cfg.MultiOps, "setData ops per transaction in the multi workload")
	fs.StringVar(&o.cfg.Root, "root", o.cfg.Root, "parent znode of the runs")
	fs.BoolVar(&o.cfg.Keep, "keep", false, "keep the znodes a workload created (default: delete them)")
	fs.DurationVar(&o.cfg.SessionTimeout, "session-timeout", o.cfg.SessionTimeout, "session timeout the clients ask for")
	fs.DurationVar(&o.cfg.Timeout, "timeout", o.cfg.Timeout, "hard bound of each workload, setup included (deleting its znodes afterwards gets at most 2 min more)")
	fs.BoolVar(&o.jsonOut, "json", false, "print the results as JSON instead of a table")
	fs.BoolVar(&o.progress, "progress", false, "print a progress line every second to stderr even when it is not a terminal (on a terminal it is always shown)")
	fs.BoolVar(&o.tls, "tls", false, "connect over TLS (a secureClientPort or a unified port); the server's certificate is checked against --tls-ca, else the system's roots")
	fs.StringVar(&o.tlsCA, "tls-ca", "", "PEM bundle of the CA(s) the server's certificate must chain to (implies --tls)")
	fs.StringVar(&o.tlsKeyStore, "tls-keystore", "", "PEM file with the client's private key and certificate chain, ZooKeeper's PEM key store (implies --tls)")
	fs.Func("client", "client of the sessions' requests: go-zk, or lean (this tool's minimal client over the same wire protocol, no allocation per request, sessions run by epoll event loops on Linux; create, set, get, mixed and watch only, the other workloads use go-zk) (default go-zk)", func(s string) error {
		c, err := loadgen.ParseClient(s)
		o.cfg.Client = c
		return err
	})
	fs.StringVar(&o.logLevel, "log-level", "warn", "log level of the client library's messages: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprint(out, benchUsage)
		fs.PrintDefaults()
	}
	return fs
}

// runBench runs the bench command.
func runBench(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "compare" {
		return runBenchCompare(args[1:], stdout, stderr)
	}
	var o benchOptions
	fs := benchFlags(stderr, &o)
	if code, ok := parseFlags(fs, args, "bench", stderr); !ok {
		return code
	}
	o.cfg.Servers = splitList(o.servers)
	workloads, err := parseWorkloads(o.workloads)
	if err != nil {
		fmt.Fprintf(stderr, "zabkeeper bench: %v\n", err)
		return 2
	}
	o.cfg.Workload = workloads[0]
	if err := o.cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "zabkeeper bench: %v\n", err)
		return 2
	}
	logger, err := newLogger(stderr, "text", o.logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "zabkeeper bench: %v\n", err)
		return 2
	}
	o.cfg.Logger = logger
	if o.cfg.TLS, err = o.tlsConfig(); err != nil {
		fmt.Fprintf(stderr, "zabkeeper bench: %v\n", err)
		return 2
	}
	if tty := isTerminal(stderr); tty || o.progress {
		o.cfg.Progress, o.cfg.ProgressTTY = stderr, tty
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var results []*loadgen.Result
	for _, w := range workloads {
		cfg := o.cfg
		cfg.Workload = w
		res, err := loadgen.Run(ctx, cfg)
		if err != nil {
			fmt.Fprintf(stderr, "zabkeeper bench: %s: %v\n", w, err)
			return 1
		}
		results = append(results, res)
	}
	if o.jsonOut {
		err = loadgen.WriteJSON(stdout, results)
	} else {
		err = loadgen.WriteTable(stdout, results)
	}
	if err != nil {
		fmt.Fprintf(stderr, "zabkeeper bench: %v\n", err)
		return 1
	}
	return 0
}

// parseWorkloads reads a comma list of workload names; "all" is every one.
func parseWorkloads(s string) ([]loadgen.Workload, error) {
	if strings.TrimSpace(s) == "all" {
		return loadgen.Workloads, nil
	}
	var out []loadgen.Workload
	for _, name := range splitList(s) {
		w, err := loadgen.ParseWorkload(name)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	if len(out) == 0 {
		return nil, errors.New("no workload given")
	}
	return out, nil
}

// splitList splits a comma list, dropping empty items and spaces.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
