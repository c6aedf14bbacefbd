package server_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/disk"
	"github.com/zabkeeper/zabkeeper/internal/zkreal"
	"github.com/zabkeeper/zabkeeper/server"
)

// dynFreePorts returns n distinct free TCP ports on loopback.
func dynFreePorts(t *testing.T, n int) []int {
	// Below the ephemeral range (freePorts): a port picked from it can be
	// taken before the server binds it by any listener on port 0, such as
	// another member's admin listener (CI: TestReconfigZkCli, "bind:
	// address already in use").
	return freePorts(t, n)
}

// configNode is /zookeeper/config as a go-zk client reads it.
type configNode struct {
	data string
	stat zk.Stat
}

func getConfigNode(t *testing.T, addr string) configNode {
	t.Helper()
	c := connect(t, addr)
	data, stat, err := c.Get("/zookeeper/config")
	require.NoError(t, err)
	c.Close()
	return configNode{string(data), *stat}
}

// TestDynamicConfigFromZooKeeper38Ensemble runs a real 3-server ZooKeeper
// 3.8 ensemble (two participants and an observer) with reconfigEnabled=true
// and the server lines in zoo.cfg: ZooKeeper then moves them to a dynamic
// file of its own, zoo.cfg.dynamic.<the first leader's zxid>, and points
// zoo.cfg at it. zabkeeper reads those rewritten files into the same
// ensemble, and an ensemble of zabkeeper servers started on them serves the
// same /zookeeper/config (data and Stat, but for mtime: ZooKeeper's is its
// wall clock when it set the node, different on every server; ours is 0)
// and the same membership in conf.
// Malformed reconfigs get BadArguments from it, as from ZooKeeper (a joiner
// without a client port; one voter left with standaloneEnabled).
func TestDynamicConfigFromZooKeeper38Ensemble(t *testing.T) {
	zkreal.Require(t)
	ports := dynFreePorts(t, 6)
	roles := []string{"", "", ":observer"}
	lines := map[string]string{"initLimit": "10", "syncLimit": "5", "reconfigEnabled": "true"}
	for i := range 3 {
		lines["server."+strconv.Itoa(i+1)] = fmt.Sprintf("127.0.0.1:%d:%d%s", ports[2*i], ports[2*i+1], roles[i])
	}
	var zks []*zkreal.Server
	for i := range 3 {
		cfg := map[string]string{}
		for k, v := range lines {
			cfg[k] = v
		}
		if roles[i] != "" {
			cfg["peerType"] = "observer"
		}
		zks = append(zks, zkreal.Start(t, zkreal.Options{DataDir: filepath.Join(t.TempDir(), "data"), TickTimeMs: 500,
			MyID: i + 1, Config: cfg}))
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, s := range zks {
		for {
			out, _ := s.FourLetter("srvr")
			if strings.Contains(out, "Mode: ") {
				break
			}
			require.False(t, time.Now().After(deadline), "ZooKeeper ensemble did not form:\n%s", s.Log())
			time.Sleep(50 * time.Millisecond)
		}
	}
	var zkNodes []configNode
	var zkMembership []string
	for _, s := range zks {
		zkNodes = append(zkNodes, getConfigNode(t, s.Addr))
		conf, err := s.FourLetter("conf")
		require.NoError(t, err)
		zkMembership = append(zkMembership, membershipOf(t, conf))
	}
	for _, s := range zks {
		s.Stop()
	}
	want := fmt.Sprintf("server.1=127.0.0.1:%d:%d:participant\nserver.2=127.0.0.1:%d:%d:participant\n"+
		"server.3=127.0.0.1:%d:%d:observer\nversion=100000000", ports[0], ports[1], ports[2], ports[3], ports[4], ports[5])
	for i, n := range zkNodes {
		require.Equal(t, want, n.data, "ZooKeeper server %d", i+1)
		require.Equal(t, int64(0x100000000), n.stat.Mzxid)
		require.Equal(t, int32(-1), n.stat.Version)
		require.Equal(t, int32(-1), n.stat.Aversion)
	}

	// What ZooKeeper wrote, read by zabkeeper.
	var ms []*member
	for i, s := range zks {
		b, err := os.ReadFile(s.ConfigPath)
		require.NoError(t, err)
		require.Contains(t, string(b), "dynamicConfigFile=", "ZooKeeper rewrote zoo.cfg:\n%s", b)
		require.NotContains(t, string(b), "server.")
		dyn, err := os.ReadFile(filepath.Join(filepath.Dir(s.ConfigPath), "zoo.cfg.dynamic.100000000"))
		require.NoError(t, err)
		t.Logf("ZooKeeper %d wrote zoo.cfg.dynamic.100000000:\n%s", i+1, dyn)

		cfg, err := server.LoadConfig(s.ConfigPath, newServerLogger(t))
		require.NoError(t, err)
		require.Equal(t, i+1, cfg.ServerID)
		require.True(t, cfg.Dynamic.ReconfigEnabled)
		require.Equal(t, int64(0x100000000), cfg.Dynamic.Version)
		require.Len(t, cfg.Servers, 3)
		for j := range 3 {
			require.Equal(t, server.ServerSpec{ID: j + 1, Host: "127.0.0.1", QuorumPort: ports[2*j], ElectionPort: ports[2*j+1],
				Observer: j == 2}, cfg.Servers[j+1])
		}
		// Same ensemble, client and peer ports; fresh data directories
		// (serving ZooKeeper's own is the on-disk tests' job).
		dir := t.TempDir()
		cfg.DataDir, cfg.DataLogDir = dir, dir
		cfg.AdminServerAddress, cfg.AdminServerPort = "127.0.0.1", 0
		cfg.FourLetterWords = map[string]bool{"srvr": true, "ruok": true, "conf": true}
		cfg.TickTime, cfg.InitLimit, cfg.SyncLimit = 200, 20, 10
		ms = append(ms, &member{id: i + 1, cfg: cfg})
	}
	for _, m := range ms {
		m.open(t)
	}
	for _, m := range ms {
		m.serve(t)
	}
	waitServing(t, ms)
	for i, m := range ms {
		got := getConfigNode(t, m.addr)
		require.Equal(t, zkNodes[i].data, got.data, "zabkeeper server %d", m.id)
		wantStat := zkNodes[i].stat
		wantStat.Mtime = 0
		require.Equal(t, wantStat, got.stat, "zabkeeper server %d", m.id)
		require.Equal(t, zkMembership[i], membershipOf(t, fourLetter(t, m.addr, "conf")), "conf of zabkeeper server %d", m.id)
	}

	c := connect(t, ms[0].addr)
	_, err := c.IncrementalReconfig([]string{"server.4=127.0.0.1:1:2:participant"}, nil, -1)
	require.ErrorIs(t, err, zk.ErrBadArguments)
	_, err = c.Reconfig([]string{"server.1=127.0.0.1:1:2:participant"}, -1)
	require.ErrorIs(t, err, zk.ErrBadArguments)
	_, err = c.Create("/after-reconfig", nil, 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err, "the session survives a refused reconfig")
}

// membershipOf is what conf prints after "membership: " (ZooKeeper ends it
// without a newline, zabkeeper with one).
func membershipOf(t *testing.T, conf string) string {
	t.Helper()
	_, m, ok := strings.Cut(conf, "membership: \n")
	require.True(t, ok, "conf without membership:\n%s", conf)
	return strings.TrimSuffix(m, "\n")
}

// TestReconfigDisabledAsZooKeeper: without reconfigEnabled (the default),
// reconfig gets ReconfigDisabled from an ensemble of zabkeeper servers, as
// from a real ZooKeeper 3.8 (asked here too), and changes nothing.
func TestReconfigDisabledAsZooKeeper(t *testing.T) {
	zks := zkreal.Start(t, zkreal.Options{DataDir: filepath.Join(t.TempDir(), "data")})
	zc := connect(t, zks.Addr)
	_, err := zc.IncrementalReconfig(nil, []string{"2"}, -1)
	require.ErrorIs(t, err, zk.ErrReconfigDisabled, "ZooKeeper")

	ms := startEnsemble(t, 3)
	before := getConfigNode(t, ms[0].addr)
	require.True(t, strings.HasPrefix(before.data, "server.1=127.0.0.1:"), before.data)
	require.True(t, strings.HasSuffix(before.data, "\nversion=0"), before.data)
	c := connect(t, ms[1].addr)
	_, err = c.IncrementalReconfig(nil, []string{"2"}, -1)
	require.ErrorIs(t, err, zk.ErrReconfigDisabled)
	_, err = c.Reconfig([]string{"server.1=127.0.0.1:1:2:participant"}, -1)
	require.ErrorIs(t, err, zk.ErrReconfigDisabled)
	for _, m := range ms {
		require.Equal(t, before, getConfigNode(t, m.addr), "server %d", m.id)
	}
}

// TestDynamicConfigAfterSnapSync: a follower synced by a snapshot from its
// leader (a SNAP: it missed more txns than commitLogCount) keeps its own
// /zookeeper/config, not the leader's, as ZooKeeper does since
// ZOOKEEPER-2819. Here its configuration has another version than the
// others' (as during a rolling change), so the two contents differ.
func TestDynamicConfigAfterSnapSync(t *testing.T) {
	ms := startEnsembleWith(t, 3, func(c *server.Config) { c.CommitLogCount = 20 })
	leader := waitServing(t, ms)
	var lagging *member
	for _, m := range ms {
		if m != leader {
			lagging = m
			break
		}
	}
	leaderConfig := getConfigNode(t, leader.addr)
	require.True(t, strings.HasSuffix(leaderConfig.data, "\nversion=0"), leaderConfig.data)
	lagging.stop(t)

	c := connect(t, leader.addr)
	for i := range 100 {
		mustCreate(t, c, fmt.Sprintf("/n%03d", i), []byte("x"), 0)
	}
	_, last, err := c.Exists("/n099")
	require.NoError(t, err)
	c.Close()

	lagging.cfg.Dynamic.Version = 0x5
	lagging.open(t)
	exchangeAddrs(ms)
	lagging.serve(t)
	waitServing(t, ms)
	snaps, err := disk.ListSnapshots(lagging.cfg.DataDir)
	require.NoError(t, err)
	require.NotEmpty(t, snaps)
	require.GreaterOrEqual(t, snaps[0].Zxid, last.Mzxid, "the follower was synced by the leader's snapshot")

	lc := connect(t, lagging.addr)
	_, _, err = lc.Get("/n099")
	require.NoError(t, err)
	got := getConfigNode(t, lagging.addr)
	require.Equal(t, strings.TrimSuffix(leaderConfig.data, "version=0")+"version=5", got.data)
	require.Equal(t, int64(5), got.stat.Mzxid)
	require.Equal(t, leaderConfig, getConfigNode(t, leader.addr), "the leader keeps its own")
}

// TestReconfigEnabledStandaloneAsZooKeeper: with reconfigEnabled=true a
// real ZooKeeper 3.8 standalone server, which cannot carry a reconfig out,
// answers Unimplemented (-6, which go-zk does not name); zabkeeper, which
// implements no reconfig yet, answers the same, standalone or not (the
// ensemble case is in TestDynamicConfigFromZooKeeper38Ensemble).
func TestReconfigEnabledStandaloneAsZooKeeper(t *testing.T) {
	zks := zkreal.Start(t, zkreal.Options{DataDir: filepath.Join(t.TempDir(), "data"),
		Config: map[string]string{"reconfigEnabled": "true"}})
	_, err := connect(t, zks.Addr).IncrementalReconfig(nil, []string{"2"}, -1)
	require.EqualError(t, err, "unknown error: -6", "ZooKeeper")

	addr, _ := startServer(t, func(c *server.Config) { c.Dynamic.ReconfigEnabled = true })
	c := connect(t, addr)
	_, err = c.IncrementalReconfig(nil, []string{"2"}, -1)
	require.EqualError(t, err, "unknown error: -6")
	data, _, err := c.Get("/zookeeper/config")
	require.NoError(t, err)
	require.Empty(t, data, "standalone: no configuration in the node, as ZooKeeper")
}
