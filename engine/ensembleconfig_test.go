package engine_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine"
)

// TestConfigDataAsZooKeeper38 compares ConfigData with what a real
// ZooKeeper 3.8.0 ensemble (Debian's package, three QuorumPeerMain
// processes) answered to `get /zookeeper/config`, recorded by hand from
// zkCli: a dynamicConfigFile named zoo.cfg.dynamic.a whose lines carry
// ";127.0.0.1:<clientPort>"; and zoo.cfg server lines without a client
// part (the client port in clientPort), reconfig off.
func TestConfigDataAsZooKeeper38(t *testing.T) {
	withClient := []engine.Member{
		{ID: 3, Host: "127.0.0.1", QuorumPort: 24331, ElectionPort: 24332, ClientHost: "127.0.0.1", ClientPort: 24330},
		{ID: 1, Host: "127.0.0.1", QuorumPort: 24311, ElectionPort: 24312, ClientHost: "127.0.0.1", ClientPort: 24310},
		{ID: 2, Host: "127.0.0.1", QuorumPort: 24321, ElectionPort: 24322, ClientHost: "127.0.0.1", ClientPort: 24320},
	}
	require.Equal(t, "server.1=127.0.0.1:24311:24312:participant;127.0.0.1:24310\n"+
		"server.2=127.0.0.1:24321:24322:participant;127.0.0.1:24320\n"+
		"server.3=127.0.0.1:24331:24332:participant;127.0.0.1:24330\n"+
		"version=a", engine.ConfigData(withClient, 0xa))
	static := []engine.Member{
		{ID: 1, Host: "127.0.0.1", QuorumPort: 24111, ElectionPort: 24112},
		{ID: 2, Host: "127.0.0.1", QuorumPort: 24121, ElectionPort: 24122},
		{ID: 3, Host: "127.0.0.1", QuorumPort: 24131, ElectionPort: 24132},
	}
	require.Equal(t, "server.1=127.0.0.1:24111:24112:participant\n"+
		"server.2=127.0.0.1:24121:24122:participant\n"+
		"server.3=127.0.0.1:24131:24132:participant\n"+
		"version=0", engine.ConfigData(static, 0))
}

// TestConfigDataForms covers the forms QuorumServer.toString prints: an
// observer, a client part of a port alone (0.0.0.0, as ZooKeeper's parser
// makes it), IPv6 literals in brackets, a version in hex.
func TestConfigDataForms(t *testing.T) {
	got := engine.ConfigData([]engine.Member{
		{ID: 2, Host: "::1", QuorumPort: 2888, ElectionPort: 3888, Observer: true, ClientHost: "::1", ClientPort: 2181},
		{ID: 1, Host: "zk-0.zk-hs", QuorumPort: 2888, ElectionPort: 3888, ClientPort: 2181},
	}, 0x100000000)
	require.Equal(t, "server.1=zk-0.zk-hs:2888:3888:participant;0.0.0.0:2181\n"+
		"server.2=[::1]:2888:3888:observer;[::1]:2181\n"+
		"version=100000000", got)
}

// TestConfigDataJavaHashMapOrder checks the member order against what
// java.util.HashMap<Long, ...> iterates (printed by a JDK 17 for these
// ids): by id modulo the table capacity, 16 up to 12 members, then 32.
func TestConfigDataJavaHashMapOrder(t *testing.T) {
	order := func(ids ...int64) string {
		var ms []engine.Member
		for _, id := range ids {
			ms = append(ms, engine.Member{ID: id, Host: "h", QuorumPort: 1, ElectionPort: 2})
		}
		var out []string
		for _, line := range strings.Split(engine.ConfigData(ms, 0), "\n") {
			if rest, ok := strings.CutPrefix(line, "server."); ok {
				id, _, _ := strings.Cut(rest, "=")
				out = append(out, id)
			}
		}
		return strings.Join(out, ",")
	}
	require.Equal(t, "100,5,200", order(200, 100, 5))
	require.Equal(t, "1,2,3,4,5,6,7,8,40,9,10,11,12,13", order(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 40))
}

// TestSimulatedConfigData gives the simulator's ensembles the lines a
// real one would hold, and a standalone server none.
func TestSimulatedConfigData(t *testing.T) {
	require.Empty(t, engine.SimulatedConfigData(nil, nil))
	require.Equal(t, "server.1=127.0.0.1:2889:3889:participant\n"+
		"server.2=127.0.0.1:2890:3890:participant\n"+
		"server.3=127.0.0.1:2891:3891:observer\nversion=0",
		engine.SimulatedConfigData([]int64{1, 2}, []int64{3}))
}
