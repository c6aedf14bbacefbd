// Package loadgen is a load generator for any ZooKeeper-compatible server
// (zabkeeper or Apache ZooKeeper): it opens real client sessions with
// go-zookeeper/zk, runs one workload closed-loop (each session has one
// request outstanding) for a duration or an operation count, and reports
// throughput and latency percentiles from an HDR histogram.
//
// Every run is bounded: it stops after its duration, its operation count or
// its hard timeout, whichever comes first, and by default deletes what it
// created. It talks only to the addresses it is given.
package loadgen

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// Workload names what each session does in its loop.
type Workload string

// The workloads.
const (
	// Create makes new persistent znodes, one per op.
	Create Workload = "create"
	// Set overwrites the session's own znode.
	Set Workload = "set"
	// Get reads the session's own znode.
	Get Workload = "get"
	// Mixed reads (with probability ReadRatio) or overwrites the session's znode.
	Mixed Workload = "mixed"
	// Multi runs one multi-op transaction of MultiOps setData ops per op.
	Multi Workload = "multi"
	// Ephemeral creates an ephemeral znode and deletes it again; each of the
	// two requests is one op.
	Ephemeral Workload = "ephemeral"
	// WatchFanout has one session write a znode that every other session
	// watches; one op is one write, its latency the time until the last
	// watcher has its notification.
	WatchFanout Workload = "watch"
)

// Workloads lists every workload, in the order the help text shows them.
var Workloads = []Workload{Create, Set, Get, Mixed, Multi, Ephemeral, WatchFanout}

// ParseWorkload checks a workload name.
func ParseWorkload(s string) (Workload, error) {
	for _, w := range Workloads {
		if string(w) == strings.ToLower(s) {
			return w, nil
		}
	}
	names := make([]string, len(Workloads))
	for i, w := range Workloads {
		names[i] = string(w)
	}
	return "", fmt.Errorf("unknown workload %q (want one of %s)", s, strings.Join(names, ", "))
}

// Config is one load run.
type Config struct {
	// Servers are the host:port client addresses; sessions are spread over
	// them round-robin (session i starts at server i mod len).
	Servers []string
	// Sessions is the number of client sessions (for WatchFanout: the
	// watchers, plus one writer session).
	Sessions int
	// Workload is what each session does.
	Workload Workload
	// ReadRatio is the share of reads in the Mixed workload, 0..1.
	ReadRatio float64
	// ValueSize is the size in bytes of every value written.
	ValueSize int
	// Duration bounds the measured phase by time (0: bounded by Ops only).
	Duration time.Duration
	// Ops bounds the measured phase by operation count (0: by Duration only).
	Ops int64
	// Warmup runs the workload unmeasured for this long first.
	Warmup time.Duration
	// MultiOps is the number of setData ops in one Multi transaction.
	MultiOps int
	// Root is the parent znode; the run works under Root/run-<random> so
	// that runs never collide.
	Root string
	// Keep leaves the znodes the run created in place (by default they are
	// deleted at the end).
	Keep bool
	// SessionTimeout is the session timeout the clients ask for.
	SessionTimeout time.Duration
	// Timeout is the hard bound of the run, setup included; deleting the
	// run's znodes afterwards gets at most 2 minutes more.
	Timeout time.Duration
	// Progress, if not nil, receives a progress line once a second.
	Progress io.Writer
	// ProgressTTY makes the progress line rewrite itself in place (for a
	// terminal) instead of printing one line per second.
	ProgressTTY bool
	// Logger receives the client library's messages (at debug level); nil
	// discards them.
	Logger *slog.Logger
	// Client is the client the sessions' requests go through: go-zk, or
	// the lean client (create, set, get, mixed and watch only; the other
	// workloads use go-zk whatever it says). Empty is go-zk.
	Client Client
	// TLS, if set, makes every session connect over TLS with it (a
	// server's secureClientPort or unified port); nil is plain TCP.
	TLS *tls.Config
}

// DefaultConfig is a 10-second mixed run of 16 sessions against a local
// server on port 2181.
func DefaultConfig() Config {
	return Config{
		Servers:        []string{"127.0.0.1:2181"},
		Sessions:       16,
		Workload:       Mixed,
		ReadRatio:      0.9,
		ValueSize:      100,
		Duration:       10 * time.Second,
		Warmup:         time.Second,
		MultiOps:       4,
		Root:           "/zabkeeper-bench",
		SessionTimeout: 10 * time.Second,
		Timeout:        10 * time.Minute,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if len(c.Servers) == 0 {
		errs = append(errs, errors.New("no servers"))
	}
	for _, s := range c.Servers {
		if !strings.Contains(s, ":") {
			errs = append(errs, fmt.Errorf("server %q: want host:port", s))
		}
	}
	if c.Client != "" {
		if _, err := ParseClient(string(c.Client)); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Sessions < 1 {
		errs = append(errs, fmt.Errorf("sessions %d: want at least 1", c.Sessions))
	}
	if _, err := ParseWorkload(string(c.Workload)); err != nil {
		errs = append(errs, err)
	}
	if c.ReadRatio < 0 || c.ReadRatio > 1 {
		errs = append(errs, fmt.Errorf("read ratio %v: want 0..1", c.ReadRatio))
	}
	if c.ValueSize < 0 || c.ValueSize > 1<<20 {
		errs = append(errs, fmt.Errorf("value size %d: want 0..1048576", c.ValueSize))
	}
	if c.Duration < 0 || c.Ops < 0 || c.Warmup < 0 {
		errs = append(errs, errors.New("duration, ops and warm-up must not be negative"))
	}
	if c.Duration == 0 && c.Ops == 0 {
		errs = append(errs, errors.New("neither a duration nor an op count: the run would never stop"))
	}
	if c.Workload == Multi && (c.MultiOps < 1 || c.MultiOps > 1000) {
		errs = append(errs, fmt.Errorf("multi ops %d: want 1..1000", c.MultiOps))
	}
	if !strings.HasPrefix(c.Root, "/") || strings.HasSuffix(c.Root, "/") || strings.Contains(c.Root, "//") {
		errs = append(errs, fmt.Errorf("root %q: want an absolute znode path", c.Root))
	}
	if c.SessionTimeout <= 0 || c.Timeout <= 0 {
		errs = append(errs, errors.New("session timeout and timeout must be positive"))
	}
	return errors.Join(errs...)
}
