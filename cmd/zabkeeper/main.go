// Command zabkeeper runs a ZooKeeper-compatible coordination server.
//
// Usage:
//
//	zabkeeper server [--config zoo.cfg] [--log-format text|json] [--log-level debug|info|warn|error] [--truncate-corrupt-tail] [--plant-bug NAME]
//	zabkeeper probe [--timeout 2s] [-q] URL
//	zabkeeper bench [flags]
//	zabkeeper bench compare [flags]
//	zabkeeper log dump [--data] FILE...
//	zabkeeper datadir verify [--data-log-dir DIR] DATADIR
//	zabkeeper members list|remove [--server host:port,...] [--id N]
//	zabkeeper version
//	zabkeeper help [command]
//
// Without --config the server runs with the defaults of a standalone
// ZooKeeper: port 2181, data in ./data. SIGINT or SIGTERM shut it down
// cleanly. --plant-bug (accepted only by a build with -tags simbugs) runs
// the server with one of engine/bugs' planted bugs, for the fault harness
// to show that its checks catch it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/zabkeeper/zabkeeper/engine/bugs"
	"github.com/zabkeeper/zabkeeper/server"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// usage is the top-level help text.
const usage = `zabkeeper is a ZooKeeper-compatible coordination service.

Usage:
  zabkeeper server [flags]   run the server
  zabkeeper probe URL        GET an admin URL; exit 0 on 2xx (container health checks)
  zabkeeper sim [flags]      run seeds of the deterministic simulator
  zabkeeper bench [flags]    load-test a ZooKeeper-compatible server
  zabkeeper bench compare    compare zabkeeper with Apache ZooKeeper
  zabkeeper log dump FILE    print the txns of a transaction log file (ours or ZooKeeper's)
  zabkeeper datadir verify   check a data directory's log: checksums, zxid continuity
  zabkeeper snapshot dump F  verify and print a snapshot file (zabkeeper's or ZooKeeper's)
  zabkeeper members list     print the ensemble's members; "members remove --id N" removes one (scale-down)
  zabkeeper version          print the version
  zabkeeper help [command]   show help

Run "zabkeeper help server" or "zabkeeper help bench" (or any command with --help) for its flags.
`

// run executes the command line args (without the program name) and returns
// the process exit code: 0 on success, 1 on failure, 2 on a usage error.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "server":
		return runServer(rest, stderr)
	case "sim":
		return runSim(rest, stdout, stderr)
	case "probe":
		return runProbe(rest, stdout, stderr)
	case "bench":
		return runBench(rest, stdout, stderr)
	case "log":
		return runLog(rest, stdout, stderr)
	case "datadir":
		return runDatadir(rest, stdout, stderr)
	case "snapshot":
		return runSnapshot(rest, stdout, stderr)
	case "members":
		return runMembers(rest, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "zabkeeper %s (ZooKeeper %s compatible, %s %s/%s)\n",
			server.Version, server.ZooKeeperVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 && rest[0] == "server" {
			fs := serverFlags(stdout, new(serverOptions))
			fs.Usage()
			return 0
		}
		if len(rest) > 0 && rest[0] == "bench" {
			benchFlags(stdout, new(benchOptions)).Usage()
			return 0
		}
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "zabkeeper: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}

// serverOptions are the flags of the server command.
type serverOptions struct {
	config    string
	logFormat string
	logLevel  string
	bug       string
	// truncateCorruptTail is passed on as Config.TruncateCorruptTail.
	truncateCorruptTail bool
	// cpuProfile and memProfile name pprof files written while serving
	// and at exit (profiling under `zabkeeper bench`).
	cpuProfile string
	memProfile string
	// trace names a runtime execution trace of the whole run (`go tool
	// trace`), for where a request's time goes between goroutines.
	trace string
}

// serverFlags defines the server command's flags, writing help to out.
func serverFlags(out io.Writer, o *serverOptions) *flag.FlagSet {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.config, "config", "", "path of a zoo.cfg; empty = built-in defaults (standalone, port 2181, ./data)")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&o.truncateCorruptTail, "truncate-corrupt-tail", false,
		"repair: if the txn log's final record is complete but fails its checksum (corruption, which makes the server refuse to start), "+
			"drop it and anything after it, logging what is dropped; the record may hold an acknowledged write")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a pprof CPU profile of the whole run to this file (written at exit)")
	fs.StringVar(&o.memProfile, "memprofile", "", "write a pprof allocation profile to this file at exit (every allocation since the start)")
	fs.StringVar(&o.trace, "trace", "", "write a Go execution trace of the whole run to this file (written at exit; read with go tool trace)")
	fs.StringVar(&o.bug, "plant-bug", "", "run with a known bug planted, to test that the fault harness catches it (needs a build with -tags simbugs; never in production): "+bugNames())
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: zabkeeper server [flags]\n\nRuns the server until SIGINT or SIGTERM.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses a command's arguments into fs. !ok ends the command
// with code: 0 after -h (fs printed the usage), 2 on a bad flag or, for a
// command named cmd that takes no arguments, on any argument left over
// ("" for a command that reads its own).
func parseFlags(fs *flag.FlagSet, args []string, cmd string, stderr io.Writer) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if cmd != "" && fs.NArg() > 0 {
		fmt.Fprintf(stderr, "zabkeeper %s: unexpected arguments %q\n", cmd, fs.Args())
		return 2, false
	}
	return 0, true
}

// runServer runs the server command.
func runServer(args []string, stderr io.Writer) int {
	var o serverOptions
	fs := serverFlags(stderr, &o)
	if code, ok := parseFlags(fs, args, "server", stderr); !ok {
		return code
	}
	bug, err := parseBug(o.bug)
	if err != nil {
		fmt.Fprintf(stderr, "zabkeeper server: %v\n", err)
		return 2
	}
	logger, err := newLogger(stderr, o.logFormat, o.logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "zabkeeper server: %v\n", err)
		return 2
	}
	if bug != bugs.None {
		// bugs.Set writes a plain global that the engine reads without
		// synchronisation: it must happen here, before serve starts any
		// goroutine (a goroutine started afterwards sees it), and it stays
		// planted until the process exits (resetting it while the server's
		// goroutines wind down would race with them).
		bugs.Set(bug)
		logger.Warn("PLANTED BUG: this server runs with a known bug on purpose and will break its guarantees; "+
			"for the fault harness only, never for real data", "bug", bug.String())
	}

	setMemoryLimit(logger)
	defer setGCTarget(logger)() // stops adjusting when the server has stopped
	stopProfiles, err := startProfiles(o.cpuProfile, o.memProfile, o.trace)
	if err != nil {
		fmt.Fprintf(stderr, "zabkeeper server: %v\n", err)
		return 2
	}
	defer stopProfiles(logger)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, o.config, o.truncateCorruptTail, logger); err != nil {
		logger.Error("server failed", "err", err)
		return 1
	}
	return 0
}

// parseBug checks a --plant-bug value: "" is no bug; any other must name a
// planted bug and the build must be able to plant it.
func parseBug(name string) (bugs.Bug, error) {
	if name == "" {
		return bugs.None, nil
	}
	b, ok := bugs.Parse(name)
	if !ok || b == bugs.None {
		return bugs.None, fmt.Errorf("unknown bug %q for --plant-bug (want one of %s)", name, bugNames())
	}
	if !bugs.Enabled {
		return bugs.None, errors.New("--plant-bug needs a build with -tags simbugs (go build -tags simbugs ./cmd/zabkeeper); this binary cannot plant bugs")
	}
	return b, nil
}

// serve loads the configuration and runs the server until ctx is done.
func serve(ctx context.Context, configPath string, truncateCorruptTail bool, logger *slog.Logger) error {
	cfg := server.DefaultConfig()
	if configPath != "" {
		var err error
		if cfg, err = server.LoadConfig(configPath, logger); err != nil {
			return fmt.Errorf("load configuration: %w", err)
		}
	}
	cfg.TruncateCorruptTail = truncateCorruptTail
	runAutoJoin, err := startAutoJoin(ctx, &cfg, logger)
	if err != nil {
		return fmt.Errorf("autojoin: %w", err)
	}
	logger.Info("starting zabkeeper", "version", server.Version, "config", configPath,
		"clientPort", cfg.ClientPort, "dataDir", cfg.DataDir, "serverId", cfg.ServerID)
	srv, err := server.NewContext(ctx, cfg, logger)
	if err != nil {
		return fmt.Errorf("start server: %w", err)
	}
	// Recovered: from here the server runs on as many Ps as its load
	// needs (procs.go).
	defer startProcsController(logger, srv.Work)()
	if runAutoJoin != nil {
		jctx, cancel := context.WithCancel(ctx)
		joined := make(chan struct{})
		go func() { defer close(joined); runAutoJoin(jctx) }()
		defer func() { cancel(); <-joined }()
	}
	if err := srv.Serve(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("serve: %w", err)
	}
	logger.Info("zabkeeper stopped")
	return nil
}

// newLogger builds the slog logger writing to w in the given format and level.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad --log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("bad --log-format %q: want text or json", format)
	}
}
