package loadgen_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/internal/testserver"
	"github.com/zabkeeper/zabkeeper/internal/zkreal"
	"github.com/zabkeeper/zabkeeper/loadgen"
	"github.com/zabkeeper/zabkeeper/server"
)

// startServer runs an in-process zabkeeper with the default config
// (tickTime 2000, fsync on) on a free loopback port until the test ends.
func startServer(t *testing.T) string {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.AdminServerAddress, cfg.AdminServerPort = "127.0.0.1", 0 // a free port: tests run side by side
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.DataLogDir = cfg.DataDir
	cfg.ClientPort = 0
	cfg.ClientPortAddress = "127.0.0.1"
	cfg.MaxClientCnxns = 0
	return testserver.StartLogged(t, cfg, slog.New(slog.DiscardHandler)).Addr
}

// Every workload runs to its op count against a real server over TCP,
// with no failed request, sane percentiles, and leaves nothing behind.
// With the lean client too: it runs create, set, get, mixed and watch, and the
// other workloads fall back to go-zk.
func TestEveryWorkload(t *testing.T) {
	addr := startServer(t)
	for _, client := range []loadgen.Client{loadgen.GoZK, loadgen.Lean} {
		for _, w := range loadgen.Workloads {
			t.Run(string(client)+"/"+string(w), func(t *testing.T) {
				runWorkload(t, addr, client, w)
			})
		}
	}
}

// runWorkload runs w with client to 40 ops and checks the result.
func runWorkload(t *testing.T, addr string, client loadgen.Client, w loadgen.Workload) {
	t.Helper()
	cfg := loadgen.DefaultConfig()
	cfg.Servers = []string{addr}
	cfg.Client = client
	cfg.Workload = w
	cfg.Sessions = 4
	cfg.Duration = 0
	cfg.Ops = 40
	cfg.Warmup = 100 * time.Millisecond
	cfg.ValueSize = 64
	var progress bytes.Buffer
	cfg.Progress = &progress
	res, err := loadgen.Run(context.Background(), cfg)
	require.NoError(t, err)
	require.Equal(t, string(w), res.Workload)
	wantClient := loadgen.GoZK
	if client == loadgen.Lean && w != loadgen.Multi && w != loadgen.Ephemeral {
		wantClient = loadgen.Lean
	}
	require.Equal(t, string(wantClient), res.Client)
	require.Zero(t, res.ErrorCount, "%v", res.Errors)
	require.Equal(t, int64(40), res.Ops, "an op-count run measures exactly its ops")
	require.Greater(t, res.Seconds, 0.0)
	require.InDelta(t, float64(res.Ops)/res.Seconds, res.OpsPerSec, 1e-6*res.OpsPerSec)
	l := res.Latency
	require.Greater(t, l.P50, 0.0)
	require.LessOrEqual(t, l.P50, l.P90)
	require.LessOrEqual(t, l.P90, l.P99)
	require.LessOrEqual(t, l.P99, l.P999)
	require.LessOrEqual(t, l.P999, l.Max*1.001)
	require.Less(t, l.Max, 30_000.0, "no op takes 30 s on loopback")
	requireGone(t, addr, res.Root)
}

// The lean client speaks the same protocol to Apache ZooKeeper: its
// workloads run there without a failed request (watch: every watcher gets
// its notification every round).
func TestLeanClientAgainstZooKeeper(t *testing.T) {
	zks := zkreal.Start(t, zkreal.Options{DataDir: filepath.Join(t.TempDir(), "data")})
	for _, w := range []loadgen.Workload{loadgen.Create, loadgen.Set, loadgen.Get, loadgen.Mixed, loadgen.WatchFanout} {
		t.Run(string(w), func(t *testing.T) { runWorkload(t, zks.Addr, loadgen.Lean, w) })
	}
}

// A duration-bounded run stops by itself close to its duration and prints
// a progress line a second; Keep leaves the created znodes in place.
func TestDurationAndKeep(t *testing.T) {
	addr := startServer(t)
	cfg := loadgen.DefaultConfig()
	cfg.Servers = []string{addr}
	cfg.Workload = loadgen.Create
	cfg.Sessions = 3
	cfg.Duration = 1500 * time.Millisecond
	cfg.Warmup = 0
	cfg.Keep = true
	var progress bytes.Buffer
	cfg.Progress = &progress
	res, err := loadgen.Run(context.Background(), cfg)
	require.NoError(t, err)
	require.Positive(t, res.Ops)
	require.GreaterOrEqual(t, res.Seconds, 1.5)
	require.Less(t, res.Seconds, 15.0, "the run stops by itself")
	require.Regexp(t, `(?m)^create +[0-9]+s  ops [0-9]+  [0-9]+ ops/s  errors 0  \[(measuring|done) /zabkeeper-bench/run-[0-9a-f]+\]$`, progress.String())

	c, err := loadgen.Dial(context.Background(), []string{addr}, 0, 10*time.Second, nil)
	require.NoError(t, err)
	defer c.Close()
	children, _, err := c.Children(res.Root)
	require.NoError(t, err)
	// Measured creates plus those of the warm-up and the ones in flight at
	// the end: at least the measured ones exist.
	require.GreaterOrEqual(t, int64(len(children)), res.Ops)
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		mutate func(*loadgen.Config)
		want   string
	}{
		{func(c *loadgen.Config) { c.Duration, c.Ops = 0, 0 }, "never stop"},
		{func(c *loadgen.Config) { c.Servers = nil }, "no servers"},
		{func(c *loadgen.Config) { c.Servers = []string{"localhost"} }, "want host:port"},
		{func(c *loadgen.Config) { c.Sessions = 0 }, "sessions 0"},
		{func(c *loadgen.Config) { c.Workload = "delete" }, `unknown workload "delete"`},
		{func(c *loadgen.Config) { c.ReadRatio = 1.5 }, "read ratio"},
		{func(c *loadgen.Config) { c.Root = "relative" }, "absolute znode path"},
		{func(c *loadgen.Config) { c.Client = "curator" }, `unknown client "curator"`},
	} {
		cfg := loadgen.DefaultConfig()
		tc.mutate(&cfg)
		require.ErrorContains(t, cfg.Validate(), tc.want)
	}
	require.NoError(t, loadgen.DefaultConfig().Validate())
}

// requireGone checks that a run's root znode was deleted.
func requireGone(t *testing.T, addr, path string) {
	t.Helper()
	c, err := loadgen.Dial(context.Background(), []string{addr}, 0, 10*time.Second, nil)
	require.NoError(t, err)
	defer c.Close()
	ok, _, err := c.Exists(path)
	require.NoError(t, err)
	require.False(t, ok, "%s still exists after the run", path)
}
