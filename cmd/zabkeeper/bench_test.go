package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/internal/testserver"
	"github.com/zabkeeper/zabkeeper/loadgen"
	"github.com/zabkeeper/zabkeeper/server"
)

// `zabkeeper bench --workload all --json` against an in-process server with
// the default config prints one parseable result per workload.
func TestBenchJSON(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.AdminServerAddress, cfg.AdminServerPort = "127.0.0.1", 0 // a free port: tests run side by side
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.DataLogDir = cfg.DataDir
	cfg.ClientPort = 0
	cfg.ClientPortAddress = "127.0.0.1"
	srv := testserver.StartLogged(t, cfg, slog.New(slog.DiscardHandler))
	defer srv.Stop()
	addr := srv.Addr

	var stdout, stderr bytes.Buffer
	code := run([]string{"bench", "--servers", addr, "--workload", "all", "--sessions", "3",
		"--ops", "30", "--warmup", "0", "--json", "--progress"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	var results []loadgen.Result
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &results), stdout.String())
	require.Len(t, results, len(loadgen.Workloads))
	for i, r := range results {
		require.Equal(t, string(loadgen.Workloads[i]), r.Workload)
		require.Equal(t, int64(30), r.Ops, r.Workload)
		require.Zero(t, r.ErrorCount, "%s: %v", r.Workload, r.Errors)
		require.Positive(t, r.OpsPerSec, r.Workload)
		require.Positive(t, r.Latency.P99, r.Workload)
	}

	stdout.Reset()
	code = run([]string{"bench", "--servers", addr, "--workload", "get", "--sessions", "2", "--ops", "10", "--warmup", "0"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	require.Contains(t, stdout.String(), "p99.9 ms")
	require.Contains(t, stdout.String(), "get")
}

func TestBenchUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--workload", "nope"}, `unknown workload "nope"`},
		{[]string{"bench", "--duration", "0"}, "never stop"},
		{[]string{"bench", "--sessions", "0"}, "sessions 0"},
		{[]string{"bench", "extra"}, "unexpected arguments"},
	} {
		var stdout, stderr bytes.Buffer
		require.Equal(t, 2, run(tc.args, &stdout, &stderr), "%v", tc.args)
		require.Contains(t, stderr.String(), tc.want, "%v", tc.args)
	}
}
