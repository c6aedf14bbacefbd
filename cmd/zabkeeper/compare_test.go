package main

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A whole comparison starts a dozen JVMs and waits out a failover with the
// default tickTime: about 30 s on an idle machine, more under the race
// detector on busy CI cores, so it runs only when asked:
//
//	go test ./cmd/zabkeeper -run TestBenchCompare -bench.compare
var benchCompare = flag.Bool("bench.compare", false, "run the tiny end-to-end comparison against Apache ZooKeeper (~30 s+)")

func TestBenchCompareUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "compare", "--topologies", "1,x"}, `bad --topologies "1,x"`},
		{[]string{"bench", "compare", "--topologies", "2"}, "topology 2: want 1, 3 or 5 servers"},
		{[]string{"bench", "compare", "--workload", "nope"}, `unknown workload "nope"`},
		{[]string{"bench", "compare", "--zk-classpath", "/nonexistent/zookeeper.jar"}, "Apache ZooKeeper not found"},
		{[]string{"bench", "compare", "--rounds", "0", "--workdir", t.TempDir()}, "must be positive"},
		{[]string{"bench", "compare", "extra"}, "unexpected arguments"},
	} {
		var stdout, stderr bytes.Buffer
		require.Equal(t, 2, run(tc.args, &stdout, &stderr), "%v: %s", tc.args, stderr.String())
		require.Contains(t, stderr.String(), tc.want, "%v", tc.args)
	}
}

// The comparison at a tiny size, end to end: both systems standalone and
// as 3 servers, a fill, a restart and a failover each; the report has a
// row per workload with figures for both, the SVG is written, and no
// server process is left behind.
func TestBenchCompare(t *testing.T) {
	if !*benchCompare {
		t.Skip("needs -bench.compare (starts Apache ZooKeeper; ~30 s)")
	}
	if _, err := exec.LookPath("java"); err != nil {
		t.Skip("no java")
	}
	if _, err := os.Stat("/usr/share/java/zookeeper.jar"); err != nil {
		t.Skip("Debian's zookeeper package is not installed")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "zabkeeper")
	build, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", build)
	out, svg := filepath.Join(dir, "BENCHMARKS.md"), filepath.Join(dir, "docs", "chart.svg")
	var stdout, stderr bytes.Buffer
	code := run([]string{"bench", "compare", "--zabkeeper", bin, "--workdir", dir, "--out", out, "--svg", svg,
		"--topologies", "1,3", "--workload", "set,get,watch", "--sessions", "3", "--duration", "300ms",
		"--warmup", "200ms", "--rounds", "1", "--znodes", "300", "--failover-trials", "1"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())

	// Every workload started on the tree the cluster started with (each
	// deletes what it made): per system and topology, the znode counts the
	// log gives are the same for every workload, and the same for both
	// systems (zabkeeper's srvr counts as ZooKeeper's does, the root twice).
	starts := map[string]map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)round 1  ([13]) server\(s\)  (zookeeper|zabkeeper) +(\w+) .* start znodes (\d+)$`).FindAllStringSubmatch(stderr.String(), -1) {
		key := m[2] + ", " + m[1] + " servers"
		if starts[key] == nil {
			starts[key] = map[string]string{}
		}
		starts[key][m[3]] = m[4]
	}
	require.Len(t, starts, 4, stderr.String())
	for key, by := range starts {
		require.Len(t, by, 3, "%s: %v", key, by)
		require.Equal(t, by["set"], by["get"], "%s: znodes at the start of set and get", key)
		require.Equal(t, by["set"], by["watch"], "%s: znodes at the start of set and watch", key)
	}
	for _, n := range []string{"1", "3"} {
		require.Equal(t, starts["zookeeper, "+n+" servers"], starts["zabkeeper, "+n+" servers"], "srvr's node counts, %s server(s)", n)
	}

	md, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, stdout.String(), strings.Replace(string(md), "\n## Chart\n\n![throughput and latency percentiles of both](docs/chart.svg)\n", "", 1))
	// One row per topology and workload, with non-zero ops/s for both.
	row := regexp.MustCompile(`(?m)^\| ([13]) \| (set|get|watch)[^|]* \| ([1-9][0-9]*) \| ([1-9][0-9]*) \| [0-9.]+x \|`)
	require.Len(t, row.FindAllString(string(md), -1), 6, string(md))
	require.Regexp(t, `\| RSS after the fill \| [1-9][0-9]* MB \| [1-9][0-9]* MB \|`, string(md))
	require.Regexp(t, `\| restart to serving \| [0-9.]+ s \| [0-9.]+ s \|`, string(md))
	require.Regexp(t, `\| median \| [0-9.]+ s \| [0-9.]+ s \|`, string(md))
	st, err := os.Stat(svg)
	require.NoError(t, err)
	require.Positive(t, st.Size())

	// Every server was stopped: nothing still runs from the work directory.
	procs, err := exec.Command("pgrep", "-f", dir).Output()
	require.Empty(t, strings.TrimSpace(string(procs)), "processes left running: %s (%v)", procs, err)
}
