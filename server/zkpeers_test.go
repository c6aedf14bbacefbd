package server_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/proto/quorum"
	"github.com/zabkeeper/zabkeeper/server"
)

// End-to-end tests of peerProtocol=zookeeper: zabkeeper servers speaking
// Apache ZooKeeper's election and quorum protocol (netstub/zktcp), among
// themselves and with Debian's ZooKeeper 3.8 (zkreal_peers_test.go).

// freePorts returns n distinct free loopback ports. ZooKeeper's server.N
// lines need real ports before any server starts, so they are chosen up
// front, and below the kernel's ephemeral range (ip_local_port_range):
// a port from that range could be taken by some outbound connection
// before the server that is to listen on it starts.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				lo = v
			}
		}
	}
	base := max(1024, lo-12000)
	var lns []net.Listener
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		require.Less(t, tries, 10000, "no free port below %d", lo)
		p := base + rand.IntN(lo-base)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		lns = append(lns, ln)
		ports = append(ports, p)
	}
	for _, ln := range lns {
		_ = ln.Close()
	}
	return ports
}

// zkProtocolServers returns server.N specs for n servers on loopback with
// fixed quorum and election ports.
func zkProtocolServers(t *testing.T, n int) map[int]server.ServerSpec {
	ports := freePorts(t, 2*n)
	servers := map[int]server.ServerSpec{}
	for id := 1; id <= n; id++ {
		servers[id] = server.ServerSpec{ID: id, Host: "127.0.0.1", QuorumPort: ports[2*id-2], ElectionPort: ports[2*id-1]}
	}
	return servers
}

// TestZooKeeperProtocolEnsemble: three zabkeeper servers with
// peerProtocol=zookeeper elect a leader, replicate writes made through
// every server, and elect a new leader that keeps serving when the leader
// is killed.
func TestZooKeeperProtocolEnsemble(t *testing.T) {
	servers := zkProtocolServers(t, 3)
	ms := startEnsembleWith(t, 3, func(c *server.Config) {
		c.Servers = servers
		c.PeerProtocol = server.PeerProtocolZooKeeper
	})
	leader := waitServing(t, ms)
	for _, m := range ms {
		require.NotNil(t, m.srv.ElectionAddr(), "server %d opened ZooKeeper's election port", m.id)
		c := connect(t, m.addr)
		mustCreate(t, c, fmt.Sprintf("/via%d", m.id), []byte{byte(m.id)}, 0)
	}
	readAll := func(ms []*member, paths ...int) {
		t.Helper()
		for _, m := range ms {
			c := connect(t, m.addr)
			_, err := c.Sync("/")
			require.NoError(t, err)
			for _, id := range paths {
				data, _, err := c.Get(fmt.Sprintf("/via%d", id))
				require.NoError(t, err, "server %d reads the write made through server %d", m.id, id)
				require.Equal(t, []byte{byte(id)}, data)
			}
		}
	}
	readAll(ms, 1, 2, 3)

	// Bad input on the leader's two ports closes only those connections:
	// a packet claiming 1 GiB, a first packet that is not FOLLOWERINFO
	// (a server id not in the config is no bad input: it may sync without
	// a vote, as in ZooKeeper), a bad initial message version.
	for _, bad := range []struct {
		addr    net.Addr
		payload []byte
	}{
		{leader.srv.PeerAddr(), []byte{0, 0, 0, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0}},
		{leader.srv.PeerAddr(), quorum.NewPing(1).Encode()},
		{leader.srv.ElectionAddr(), []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}},
	} {
		c, err := net.Dial("tcp", bad.addr.String())
		require.NoError(t, err)
		_, _ = c.Write(bad.payload)
		_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
		_, err = io.ReadAll(c)
		if err != nil {
			require.ErrorIs(t, err, syscall.ECONNRESET, "closed, not left open")
		}
		c.Close()
	}
	require.Equal(t, "leader", mode(t, leader.addr))
	c := connect(t, ms[0].addr)
	mustCreate(t, c, "/after-bad-input", nil, 0)

	// An ephemeral of a session on a follower, to check it survives the
	// failover with its session.
	var follower *member
	for _, m := range ms {
		if m != leader {
			follower = m
			break
		}
	}
	fc := connect(t, follower.addr)
	mustCreate(t, fc, "/eph", nil, zk.FlagEphemeral)

	leader.stop(t)
	var rest []*member
	for _, m := range ms {
		if m != leader {
			rest = append(rest, m)
		}
	}
	newLeader := waitServing(t, rest)
	require.NotEqual(t, leader.id, newLeader.id)
	for _, m := range rest {
		c := connect(t, m.addr)
		mustCreate(t, c, fmt.Sprintf("/after%d", m.id), nil, 0)
	}
	readAll(rest, 1, 2, 3)
	for _, m := range rest {
		c := connect(t, m.addr)
		_, err := c.Sync("/")
		require.NoError(t, err)
		for _, o := range rest {
			ok, _, err := c.Exists(fmt.Sprintf("/after%d", o.id))
			require.NoError(t, err)
			require.True(t, ok, "server %d sees /after%d", m.id, o.id)
		}
		ok, _, err := c.Exists("/eph")
		require.NoError(t, err)
		require.True(t, ok, "the follower's session kept its ephemeral through the failover")
	}
}

// TestZooKeeperProtocolObserver: a zabkeeper observer of a zabkeeper
// ensemble on ZooKeeper's protocol syncs, follows INFORMs and forwards its
// client's writes.
func TestZooKeeperProtocolObserver(t *testing.T) {
	servers := zkProtocolServers(t, 4)
	spec := servers[4]
	spec.Observer = true
	servers[4] = spec
	ms := startEnsembleWith(t, 4, func(c *server.Config) {
		c.Servers = servers
		c.PeerProtocol = server.PeerProtocolZooKeeper
	})
	waitFor(t, "server 4 observes", func() bool { return mode(t, ms[3].addr) == "observer" })
	oc := connect(t, ms[3].addr)
	mustCreate(t, oc, "/via-observer", []byte("o"), 0)
	c := connect(t, ms[0].addr)
	mustCreate(t, c, "/via-voter", []byte("v"), 0)
	for _, cl := range []*zk.Conn{oc, c} {
		_, err := cl.Sync("/")
		require.NoError(t, err)
		for path, want := range map[string]string{"/via-observer": "o", "/via-voter": "v"} {
			data, _, err := cl.Get(path)
			require.NoError(t, err)
			require.Equal(t, want, string(data))
		}
	}
}
