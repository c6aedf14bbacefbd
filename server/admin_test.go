package server_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/internal/testserver"
	"github.com/zabkeeper/zabkeeper/server"
)

// zkPrometheusNames are the gauges Apache ZooKeeper's Prometheus metrics
// provider exports under these exact names (ZooKeeperServer, Leader and
// QuorumPeer register them; the provider adds no prefix), which existing
// dashboards and alerts query. Every standalone server must export them.
var zkPrometheusNames = []string{
	"approximate_data_size", "avg_latency", "ephemerals_count", "global_sessions", "last_client_response_size",
	"last_proposal_size", "max_client_response_size", "min_client_response_size",
	"local_sessions", "max_file_descriptor_count", "max_latency", "max_proposal_size", "min_latency",
	"min_proposal_size", "digest_mismatches_count", "num_alive_connections", "open_file_descriptor_count", "outstanding_requests",
	"packets_received", "packets_sent", "uptime", "watch_count", "znode_count",
}

// zkLeaderPrometheusNames are ZooKeeper's gauges a leader adds.
var zkLeaderPrometheusNames = []string{
	"learners", "pending_syncs", "quorum_size", "synced_followers", "synced_non_voting_followers", "synced_observers",
}

// adminServer runs a server and returns it with its admin base URL.
func adminServer(t *testing.T, mutate func(*server.Config)) (*server.Server, string, string) {
	t.Helper()
	cfg := testConfig(t)
	if mutate != nil {
		mutate(&cfg)
	}
	srv := testserver.StartLogged(t, cfg, newServerLogger(t)).Srv
	base := ""
	if a := srv.AdminAddr(); a != nil {
		base = "http://" + a.String()
	}
	return srv, base, srv.Addr().String()
}

func httpGet(t testing.TB, url string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: waitTimeout}
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func adminCommand(t testing.TB, base, name string) map[string]any {
	t.Helper()
	code, body := httpGet(t, base+"/commands/"+name)
	require.Equal(t, http.StatusOK, code, body)
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &m), body)
	return m
}

func scrape(t testing.TB, base string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := httpGet(t, base+"/metrics")
	require.Equal(t, http.StatusOK, code)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err)
	return fams
}

func probe(t testing.TB, base, which string) (bool, string) {
	t.Helper()
	code, body := httpGet(t, base+"/"+which)
	require.Contains(t, []int{http.StatusOK, http.StatusServiceUnavailable}, code)
	return code == http.StatusOK, strings.TrimSpace(body)
}

func gauge(t testing.TB, fams map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	f, ok := fams[name]
	require.True(t, ok, "metric %s missing", name)
	require.Len(t, f.GetMetric(), 1, name)
	return f.GetMetric()[0].GetGauge().GetValue()
}

// TestAdminStandalone: a standalone server is live and ready, answers every
// command of /commands in ZooKeeper's JSON shape whatever the 4lw whitelist
// says, and exports mntr's figures under ZooKeeper's Prometheus names.
func TestAdminStandalone(t *testing.T) {
	_, base, addr := adminServer(t, func(c *server.Config) {
		c.FourLetterWords = map[string]bool{"ruok": true, "srvr": true, "mntr": true}
	})
	require.NotEmpty(t, base)
	ok, _ := probe(t, base, "livez")
	require.True(t, ok)
	waitFor(t, "ready", func() bool { ok, _ := probe(t, base, "readyz"); return ok })

	baseNodes := adminCommand(t, base, "monitor")["znode_count"].(float64)
	c := connect(t, addr)
	mustCreate(t, c, "/a", []byte("hello"), 0)
	mustCreate(t, c, "/e", nil, 1) // ephemeral
	_, _, _, err := c.GetW("/a")
	require.NoError(t, err)

	code, list := httpGet(t, base+"/commands")
	require.Equal(t, http.StatusOK, code)
	var names []string
	for _, line := range strings.Split(list, "\n") {
		if rest, ok := strings.CutPrefix(line, `<a href="/commands/`); ok {
			names = append(names, rest[:strings.Index(rest, `"`)])
		}
	}
	require.True(t, sort.StringsAreSorted(names))
	for _, want := range []string{"configuration", "connections", "dump", "environment", "leader", "monitor", "ruok",
		"server_stats", "stats", "voting_view", "watch_summary"} {
		require.Contains(t, names, want)
	}
	for _, name := range names {
		m := adminCommand(t, base, name)
		require.Equal(t, name, m["command"])
		if name == "leader" {
			require.Equal(t, "server is not initialized", m["error"], "standalone has no leader")
			continue
		}
		require.Nil(t, m["error"], "%s: %v", name, m)
	}

	// Aliases, including words the whitelist (ruok, srvr) leaves out.
	stat := adminCommand(t, base, "stat")
	require.Equal(t, "stats", stat["command"])
	require.Equal(t, "standalone", stat["server_stats"].(map[string]any)["server_state"])
	require.NotEmpty(t, stat["connections"])
	require.Contains(t, fourLetter(t, addr, "stat"), "not in the whitelist")
	// The go-zk session's connection, among four-letter-word connections
	// that may not have closed yet.
	var sessions []any
	for _, c := range adminCommand(t, base, "cons")["connections"].([]any) {
		if sid := c.(map[string]any)["session_id"]; sid != 0.0 {
			sessions = append(sessions, sid)
		}
	}
	require.Len(t, sessions, 1)
	require.Equal(t, map[string]any{"command": "watch_summary", "error": nil, "num_connections": 1.0,
		"num_paths": 1.0, "num_total_watches": 1.0}, adminCommand(t, base, "wchs"))
	conf := adminCommand(t, base, "conf")
	require.Equal(t, float64(100), conf["tick_time"])
	require.Contains(t, conf, "client_port")
	require.NotEmpty(t, conf["data_dir"])
	dump := adminCommand(t, base, "dump")["session_id_to_ephemeral_paths"].(map[string]any)
	require.Len(t, dump, 1)
	for _, paths := range dump {
		require.Equal(t, []any{"/e"}, paths)
	}
	require.Equal(t, "imok", fourLetter(t, addr, "ruok"))
	require.Equal(t, map[string]any{"command": "ruok", "error": nil}, adminCommand(t, base, "ruok"))
	require.NotEmpty(t, adminCommand(t, base, "envi")["os.name"])
	require.Equal(t, map[string]any{}, adminCommand(t, base, "voting_view")["current_config"])

	// monitor carries mntr's keys without zk_, with the same values.
	mon := adminCommand(t, base, "mntr")
	require.Equal(t, "monitor", mon["command"])
	mntr := fourLetter(t, addr, "mntr")
	for _, line := range strings.Split(strings.TrimSpace(mntr), "\n") {
		k, v, _ := strings.Cut(line, "\t")
		k = strings.TrimPrefix(k, "zk_")
		require.Contains(t, mon, k)
		if n, err := strconv.ParseFloat(v, 64); err == nil && k != "uptime" && k != "packets_received" &&
			k != "packets_sent" && k != "open_file_descriptor_count" && k != "num_alive_connections" && !strings.HasSuffix(k, "latency") {
			require.Equal(t, n, mon[k], k)
		}
	}
	require.Equal(t, baseNodes+2, mon["znode_count"], "/a and /e added")
	require.Equal(t, 1.0, mon["ephemerals_count"])

	// /metrics: ZooKeeper's names, the same figures, our histograms.
	var fams map[string]*dto.MetricFamily
	waitFor(t, "metrics figures refreshed", func() bool {
		fams = scrape(t, base)
		f, ok := fams["znode_count"]
		return ok && f.GetMetric()[0].GetGauge().GetValue() == baseNodes+2
	})
	for _, name := range zkPrometheusNames {
		require.Contains(t, fams, name)
		require.Equal(t, dto.MetricType_GAUGE, fams[name].GetType(), name)
	}
	require.Equal(t, 1.0, gauge(t, fams, "ephemerals_count"))
	require.Equal(t, 1.0, gauge(t, fams, "watch_count"))
	require.Equal(t, 1.0, gauge(t, fams, "global_sessions"))
	require.GreaterOrEqual(t, gauge(t, fams, "num_alive_connections"), 1.0)
	require.Positive(t, gauge(t, fams, "uptime"))
	require.Positive(t, gauge(t, fams, "last_client_response_size"))
	require.LessOrEqual(t, gauge(t, fams, "min_client_response_size"), gauge(t, fams, "max_client_response_size"))
	state := fams["server_state"].GetMetric()[0]
	require.Equal(t, "standalone", state.GetLabel()[0].GetValue())
	lat := fams["zabkeeper_request_latency_seconds"]
	require.NotNil(t, lat)
	ops := map[string]uint64{}
	for _, m := range lat.GetMetric() {
		ops[m.GetLabel()[0].GetValue()] = m.GetHistogram().GetSampleCount()
	}
	require.Equal(t, uint64(2), ops["create"], "%v", ops)
	require.Positive(t, fams["zabkeeper_fsync_seconds"].GetMetric()[0].GetHistogram().GetSampleCount())
	require.Positive(t, fams["zabkeeper_fsync_batch_txns"].GetMetric()[0].GetHistogram().GetSampleCount())
	require.Positive(t, fams["zabkeeper_proposal_commit_seconds"].GetMetric()[0].GetHistogram().GetSampleCount())
	require.Contains(t, fams, "go_goroutines")
	for _, name := range []string{"diff_count", "snap_count", "trunc_count", "zabkeeper_snapshot_seconds",
		"zabkeeper_snapshot_bytes", "zabkeeper_election_seconds", "zabkeeper_sync_seconds"} {
		require.Contains(t, fams, name)
	}
}

// TestAdminSurvivesGarbage: ZooKeeper client frames, four-letter words and
// random bytes sent to the admin port of a real server get an HTTP error or
// a closed connection, and the server goes on answering both ports.
func TestAdminSurvivesGarbage(t *testing.T) {
	_, base, addr := adminServer(t, nil)
	adminAddr := strings.TrimPrefix(base, "http://")
	garbage := []string{
		"ruok", "mntr\n", "\x00\x00\x00\x2c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x75\x30",
		"GET /commands/" + strings.Repeat("x", 70000) + " HTTP/1.1\r\n\r\n", "\r\n\r\n", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	}
	// All at once: the incomplete ones are closed only after the header
	// timeout, and meanwhile the probes must answer.
	replies := make([]string, len(garbage))
	var wg sync.WaitGroup
	for i, g := range garbage {
		c, err := net.Dial("tcp", adminAddr)
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			_, _ = c.Write([]byte(g))
			_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
			reply, _ := io.ReadAll(io.LimitReader(c, 1<<16))
			replies[i] = string(reply)
		}()
	}
	ok, _ := probe(t, base, "livez")
	require.True(t, ok)
	wg.Wait()
	for i, reply := range replies {
		if reply != "" {
			require.Regexp(t, `^HTTP/1\.[01] [45]\d\d `, reply, "garbage %q", garbage[i])
		}
	}
	ok, _ = probe(t, base, "livez")
	require.True(t, ok)
	waitFor(t, "ready", func() bool { ok, _ := probe(t, base, "readyz"); return ok })
	requireHealthy(t, addr)
}

// TestAdminDisabled: admin.enableServer=false binds nothing.
func TestAdminDisabled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	srv, base, addr := adminServer(t, func(c *server.Config) {
		c.AdminEnableServer = false
		c.AdminServerPort = port
	})
	require.Nil(t, srv.AdminAddr())
	require.Empty(t, base)
	requireHealthy(t, addr)
	_, err = net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	require.Error(t, err, "nothing listens on the admin port")
}

// TestAdminPortTakenStopsStart: a taken admin port is an error naming it.
func TestAdminPortTakenStopsStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	cfg := testConfig(t)
	cfg.AdminServerPort = ln.Addr().(*net.TCPAddr).Port
	_, err = server.New(cfg, newServerLogger(t))
	require.ErrorContains(t, err, "admin.serverPort")
}

// TestAdminProbesThroughEnsembleStates drives the probes through a real
// ensemble: everyone ready once a leader leads; a server cut off from its
// quorum is not ready ("looking", or "read-only" in read-only mode) but
// stays live all along; it is ready again once the quorum is back. The
// leader's metrics carry ZooKeeper's quorum figures.
func TestAdminProbesThroughEnsembleStates(t *testing.T) {
	for _, readOnly := range []bool{false, true} {
		t.Run("readonlymode="+strconv.FormatBool(readOnly), func(t *testing.T) {
			ms := startEnsembleWith(t, 3, func(cfg *server.Config) {
				cfg.ReadOnlyMode = readOnly
				cfg.FourLetterWords = map[string]bool{"srvr": true, "ruok": true, "mntr": true, "isro": true}
			})
			leader := waitServing(t, ms)
			base := func(m *member) string { return "http://" + m.srv.AdminAddr().String() }
			for _, m := range ms {
				waitFor(t, "ready", func() bool { ok, _ := probe(t, base(m), "readyz"); return ok })
				ok, _ := probe(t, base(m), "livez")
				require.True(t, ok)
			}
			l := adminCommand(t, base(leader), "leader")
			require.Equal(t, true, l["is_leader"])
			require.Equal(t, float64(leader.id), l["leader_id"])
			require.Len(t, adminCommand(t, base(leader), "voting_view")["current_config"], 3)
			var fams map[string]*dto.MetricFamily
			waitFor(t, "leader figures", func() bool {
				fams = scrape(t, base(leader))
				f, ok := fams["synced_followers"]
				return ok && f.GetMetric()[0].GetGauge().GetValue() == 2
			})
			for _, name := range zkLeaderPrometheusNames {
				require.Contains(t, fams, name)
			}
			require.Equal(t, 3.0, gauge(t, fams, "quorum_size"), "the voters, as ZooKeeper counts them")
			require.Equal(t, 2.0, gauge(t, fams, "learners"))
			syncs := gauge0(fams, "diff_count") + gauge0(fams, "snap_count") + gauge0(fams, "trunc_count")
			require.GreaterOrEqual(t, syncs, 2.0, "one sync per follower at least")
			require.Positive(t, fams["zabkeeper_election_seconds"].GetMetric()[0].GetHistogram().GetSampleCount())

			// Cut the lone server off: its peers stop. Watch livez the
			// whole time.
			lone := ms[0]
			var notLive atomic.Value
			stopWatch := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stopWatch:
						return
					case <-time.After(20 * time.Millisecond):
					}
					// Not require: this is not the test's goroutine.
					resp, err := http.Get(base(lone) + "/livez")
					if err != nil {
						notLive.Store(err.Error())
						continue
					}
					_ = resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						notLive.Store(resp.Status)
					}
				}
			}()
			ms[1].stop(t)
			ms[2].stop(t)
			want := "looking"
			if readOnly {
				want = "read-only"
			}
			var reason string
			waitFor(t, "not ready: "+want, func() bool {
				var ok bool
				ok, reason = probe(t, base(lone), "readyz")
				return !ok && strings.HasPrefix(reason, want)
			})
			ok, _ := probe(t, base(lone), "readyz")
			require.False(t, ok)

			for _, m := range ms[1:] {
				m.open(t)
			}
			exchangeAddrs(ms)
			for _, m := range ms[1:] {
				m.serve(t)
			}
			waitServing(t, ms)
			for _, m := range ms {
				waitFor(t, "ready again", func() bool { ok, _ := probe(t, base(m), "readyz"); return ok })
			}
			close(stopWatch)
			wg.Wait()
			require.Nil(t, notLive.Load(), "livez failed during the election")
			require.Positive(t, scrape(t, base(lone))["zabkeeper_sync_seconds"].GetMetric()[0].GetHistogram().GetSampleCount())
		})
	}
}

func gauge0(fams map[string]*dto.MetricFamily, name string) float64 {
	f, ok := fams[name]
	if !ok || len(f.GetMetric()) == 0 {
		return 0
	}
	m := f.GetMetric()[0]
	if m.GetCounter() != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}
