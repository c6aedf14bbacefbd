package server_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/internal/zkreal"
)

// TestReconfigZabkeeperFollowsZooKeeperLeader: two Apache ZooKeeper 3.8
// servers and a zabkeeper server (peerProtocol=zookeeper) form one
// ensemble with reconfigEnabled=true. The ZooKeeper leader commits a
// reconfig that removes the other ZooKeeper server: its new quorum needs
// zabkeeper's ACK, and zabkeeper gets ZooKeeper's COMMITANDACTIVATE (type
// 9), applies the reconfig txn (type 16) and keeps following, serving the
// new /zookeeper/config and the writes after it. Before zklink carried
// COMMITANDACTIVATE the zabkeeper follower closed its link ("reconfig not
// supported") and then failed on the reconfig txn.
func TestReconfigZabkeeperFollowsZooKeeperLeader(t *testing.T) {
	e := newMixedEnsemble(t, 3)
	e.extra = map[int]map[string]string{}
	for id := 1; id <= 3; id++ {
		e.extra[id] = map[string]string{"reconfigEnabled": "true", "DigestAuthenticationProvider.superDigest": superDigest}
	}
	z1 := e.startZooKeeper(t, 1)
	z2 := e.startZooKeeper(t, 2)
	pollUntil(t, "ZooKeeper 1 and 2 serve, one leading", func() bool {
		m1, m2 := zkMode(z1), zkMode(z2)
		return (m1 == "leader" && m2 == "follower") || (m1 == "follower" && m2 == "leader")
	})
	cfg := e.zabkeeperConfig(t, 3, "", "")
	cfg.Dynamic.ReconfigEnabled = true
	cfg.SuperDigest = superDigest
	ours := &member{id: 3, cfg: cfg}
	ours.open(t)
	ours.serve(t)
	e.ours[3] = ours
	pollUntil(t, "zabkeeper follows the ZooKeeper leader", func() bool { return mode(t, ours.addr) == "follower" })

	leader, other, otherID := z1, z2, 2
	if zkMode(z2) == "leader" {
		leader, other, otherID = z2, z1, 1
	}
	zc := connectMixed(t, leader.Addr)
	mustCreate(t, zc, "/before", []byte("b"), 0)
	oc := connectMixed(t, ours.addr)
	readEventually(t, oc, "/before", []byte("b"))

	require.NoError(t, zc.AddAuth("digest", []byte("super:admin")))
	st, err := zc.IncrementalReconfig(nil, []string{fmt.Sprint(otherID)}, -1)
	require.NoError(t, err, "the ZooKeeper leader's reconfig needs zabkeeper's ACK")
	version := st.Mzxid

	pollUntil(t, "zabkeeper serves the new configuration", func() bool {
		if _, err := oc.Sync("/zookeeper/config"); err != nil {
			return false
		}
		data, stat, err := oc.Get("/zookeeper/config")
		return err == nil && stat.Mzxid == version && !strings.Contains(string(data), fmt.Sprintf("server.%d=", otherID))
	})
	data, _, err := oc.Get("/zookeeper/config")
	require.NoError(t, err)
	zdata, _, err := zc.Get("/zookeeper/config")
	require.NoError(t, err)
	require.Equal(t, string(zdata), string(data), "the same /zookeeper/config as the ZooKeeper leader")
	require.Equal(t, "follower", mode(t, ours.addr), "zabkeeper still follows")

	// The new configuration is the leader and zabkeeper: every write now
	// needs zabkeeper's ACK, both ways.
	mustCreate(t, zc, "/after-zk", []byte("z"), 0)
	readEventually(t, oc, "/after-zk", []byte("z"))
	mustCreate(t, oc, "/after-ours", []byte("o"), 0)
	readEventually(t, zc, "/after-ours", []byte("o"))
	other.Stop()
	mustCreate(t, zc, "/without-the-removed", nil, 0)
	readEventually(t, oc, "/without-the-removed", nil)
	require.Equal(t, "follower", mode(t, ours.addr))
	requireCleanZooKeeperLog(t, leader, 0)
}

// TestReconfigZooKeeperFollowsZabkeeperLeader is the reverse: zabkeeper
// (server 3, the highest id of the first two up) leads Apache ZooKeeper
// 3.8 followers and commits a reconfig that removes one of them; the
// other, a ZooKeeper follower, gets the PROPOSAL of the reconfig txn and
// zabkeeper's COMMITANDACTIVATE, activates the new configuration and keeps
// following, serving the same /zookeeper/config.
func TestReconfigZooKeeperFollowsZabkeeperLeader(t *testing.T) {
	e := newMixedEnsemble(t, 3)
	e.extra = map[int]map[string]string{}
	for id := 1; id <= 3; id++ {
		e.extra[id] = map[string]string{"reconfigEnabled": "true", "DigestAuthenticationProvider.superDigest": superDigest}
	}
	cfg := e.zabkeeperConfig(t, 3, "", "")
	cfg.Dynamic.ReconfigEnabled = true
	cfg.SuperDigest = superDigest
	ours := &member{id: 3, cfg: cfg}
	ours.open(t)
	ours.serve(t)
	e.ours[3] = ours
	z1 := e.startZooKeeper(t, 1)
	pollUntil(t, "zabkeeper leads ZooKeeper 1", func() bool { return mode(t, ours.addr) == "leader" && zkMode(z1) == "follower" })
	// ZooKeeper 1, which activated the configuration, goes: it cannot
	// gossip it to ZooKeeper 2, whose election is with zabkeeper alone.
	z1.Stop()
	z2 := e.startZooKeeper(t, 2)
	pollUntil(t, "ZooKeeper 2 follows zabkeeper", func() bool { return zkMode(z2) == "follower" && mode(t, ours.addr) == "leader" })

	oc := connectMixed(t, ours.addr)
	mustCreate(t, oc, "/before", []byte("b"), 0)
	zc := connectMixed(t, z2.Addr)
	readEventually(t, zc, "/before", []byte("b"))

	require.NoError(t, oc.AddAuth("digest", []byte("super:admin")))
	st, err := oc.IncrementalReconfig(nil, []string{"1"}, -1)
	require.NoError(t, err, "zabkeeper's reconfig needs ZooKeeper 2's ACK")
	version := st.Mzxid
	pollUntil(t, "ZooKeeper 2 serves the new configuration", func() bool {
		if _, err := zc.Sync("/zookeeper/config"); err != nil {
			return false
		}
		data, stat, err := zc.Get("/zookeeper/config")
		return err == nil && stat.Mzxid == version && !strings.Contains(string(data), "server.1=")
	})
	data, _, err := oc.Get("/zookeeper/config")
	require.NoError(t, err)
	zdata, _, err := zc.Get("/zookeeper/config")
	require.NoError(t, err)
	require.Equal(t, string(data), string(zdata), "the same /zookeeper/config on both")
	require.Equal(t, "follower", zkMode(z2))
	require.Equal(t, "leader", mode(t, ours.addr))

	z1.Stop()
	mustCreate(t, oc, "/after-ours", []byte("o"), 0)
	readEventually(t, zc, "/after-ours", []byte("o"))
	mustCreate(t, zc, "/after-zk", []byte("z"), 0)
	readEventually(t, oc, "/after-zk", []byte("z"))
	requireCleanZooKeeperLog(t, z2, 0)
}

// TestReconfigZooKeeperJoinsZabkeeperLeaderAfterReconfig: zabkeeper
// (server 3) leads Apache ZooKeeper 3.8 server 1, reconfigEnabled, and
// commits a reconfig that adds an observer (server 4, never started) while
// ZooKeeper server 2 is down; writes follow (commitLogCount=5: the
// leader's in-memory log no longer reaches back). ZooKeeper 1 stops, and
// ZooKeeper 2 starts from the original zoo.cfg and an empty data
// directory: its election is with zabkeeper alone, whose notifications
// carry the configuration in force as ZooKeeper's string (ZooKeeper's
// FastLeaderElection takes a newer one, processReconfig), and so does
// zabkeeper's NEWLEADER. ZooKeeper 2 follows zabkeeper with the new
// configuration: its conf prints the new members and it wrote
// zoo.cfg.dynamic.<version>. Before zktcp had a book, both carried the
// static zoo.cfg string (version 0) and ZooKeeper 2 kept its old
// configuration.
func TestReconfigZooKeeperJoinsZabkeeperLeaderAfterReconfig(t *testing.T) {
	e := newMixedEnsemble(t, 3)
	e.extra = map[int]map[string]string{}
	for id := 1; id <= 3; id++ {
		e.extra[id] = map[string]string{"reconfigEnabled": "true", "DigestAuthenticationProvider.superDigest": superDigest}
	}
	cfg := e.zabkeeperConfig(t, 3, "", "")
	cfg.Dynamic.ReconfigEnabled = true
	cfg.SuperDigest = superDigest
	cfg.CommitLogCount = 5
	cfg.FourLetterWords = map[string]bool{"srvr": true, "ruok": true, "conf": true}
	ours := &member{id: 3, cfg: cfg}
	ours.open(t)
	ours.serve(t)
	e.ours[3] = ours
	z1 := e.startZooKeeper(t, 1)
	pollUntil(t, "zabkeeper leads ZooKeeper 1", func() bool { return mode(t, ours.addr) == "leader" && zkMode(z1) == "follower" })

	var ports []int
	for range 3 {
		p, err := zkreal.FreePort()
		require.NoError(t, err)
		ports = append(ports, p)
	}
	oc := connectMixed(t, ours.addr)
	require.NoError(t, oc.AddAuth("digest", []byte("super:admin")))
	observer := fmt.Sprintf("server.4=127.0.0.1:%d:%d:observer;127.0.0.1:%d", ports[0], ports[1], ports[2])
	st, err := oc.IncrementalReconfig([]string{observer}, nil, -1)
	require.NoError(t, err, "zabkeeper and ZooKeeper 1 are a quorum of the new voters")
	version := st.Mzxid
	for i := range 20 {
		mustCreate(t, oc, fmt.Sprintf("/after%02d", i), nil, 0)
	}
	want, _, err := oc.Get("/zookeeper/config")
	require.NoError(t, err)
	require.Contains(t, string(want), observer+"\n")

	// ZooKeeper 1, which activated the configuration, goes: it cannot
	// gossip it to ZooKeeper 2, whose election is with zabkeeper alone.
	z1.Stop()
	z2 := e.startZooKeeper(t, 2)
	pollUntil(t, "ZooKeeper 2 follows zabkeeper", func() bool { return zkMode(z2) == "follower" && mode(t, ours.addr) == "leader" })
	zc := connectMixed(t, z2.Addr)
	readEventually(t, zc, "/after19", nil)
	data, stat, err := zc.Get("/zookeeper/config")
	require.NoError(t, err)
	require.Equal(t, string(want), string(data))
	require.Equal(t, version, stat.Mzxid)
	pollUntil(t, "ZooKeeper 2 activated the configuration", func() bool {
		conf, err := z2.FourLetter("conf")
		return err == nil && strings.Contains(conf, "membership: \n") && membershipOf(t, conf) == string(want)
	})
	dyn := filepath.Join(filepath.Dir(z2.ConfigPath), fmt.Sprintf("zoo.cfg.dynamic.%x", version))
	b, err := os.ReadFile(dyn)
	require.NoError(t, err, "ZooKeeper 2 wrote the configuration's dynamic file")
	require.Contains(t, string(b), observer)
	mustCreate(t, zc, "/from-zk2", nil, 0)
	readEventually(t, oc, "/from-zk2", nil)
	requireCleanZooKeeperLog(t, z2, 0)
}

// TestReconfigZooKeeperJoinerSyncsBeforeItIsAdded: three zabkeeper
// servers, reconfigEnabled, one follower down; Apache ZooKeeper 3.8
// starts as server 4 with a config naming the four. As between ZooKeeper
// servers, it syncs as a non-voting follower first: the zabkeeper members
// keep its election connections though it is in none of their
// configurations and answer its notifications (it takes their newer
// configuration, in which it is no member, and follows as a participant),
// and the zabkeeper leader accepts its FOLLOWERINFO. The reconfig that
// adds it, which needs it synced (three of four with one down), then
// succeeds; ZooKeeper 4 serves the writes after it and activated the new
// configuration, and the follower that was down rejoins. Before, the
// members closed ZooKeeper 4's connections ("server not in the config")
// and the reconfig answered NewConfigNoQuorum (-13) forever.
func TestReconfigZooKeeperJoinerSyncsBeforeItIsAdded(t *testing.T) {
	e := newMixedEnsemble(t, 4)
	joiner := e.servers[4]
	delete(e.servers, 4) // the members' configuration: 1, 2, 3
	var ms []*member
	for id := 1; id <= 3; id++ {
		cfg := e.zabkeeperConfig(t, id, "", "")
		cfg.Dynamic.ReconfigEnabled = true
		cfg.SuperDigest = superDigest
		m := &member{id: id, cfg: cfg}
		m.open(t)
		m.serve(t)
		e.ours[id] = m
		ms = append(ms, m)
	}
	leader := waitServing(t, ms)
	var down, live *member
	for _, m := range ms {
		switch {
		case m == leader:
		case down == nil:
			down = m
		default:
			live = m
		}
	}
	down.stop(t)
	oc := connectMixed(t, live.addr)
	mustCreate(t, oc, "/before", []byte("b"), 0)

	e.servers[4] = joiner // ZooKeeper 4's configuration: 1, 2, 3, 4
	e.extra = map[int]map[string]string{4: {"reconfigEnabled": "true"}}
	z4 := e.startZooKeeper(t, 4)
	_, clientPort, err := net.SplitHostPort(z4.Addr)
	require.NoError(t, err)
	line := fmt.Sprintf("server.4=127.0.0.1:%d:%d:participant;127.0.0.1:%s", joiner.QuorumPort, joiner.ElectionPort, clientPort)
	// mntr counts it as ZooKeeper's does: a synced, non-voting follower.
	waitMntr(t, leader.addr, "zk_quorum_size\t3\n", "zk_synced_followers\t2\n",
		"zk_synced_non_voting_followers\t1\n", "zk_synced_observers\t0\n")
	require.NoError(t, oc.AddAuth("digest", []byte("super:admin")))
	var version int64
	pollUntil(t, "the reconfig adding ZooKeeper 4 succeeds once it synced", func() bool {
		st, err := oc.IncrementalReconfig([]string{line}, nil, -1)
		if err != nil {
			require.EqualError(t, err, "unknown error: -13", "NewConfigNoQuorum until ZooKeeper 4 synced, nothing else")
			return false
		}
		version = st.Mzxid
		return true
	})
	want, _, err := oc.Get("/zookeeper/config")
	require.NoError(t, err)
	require.Contains(t, string(want), line+"\n")
	mustCreate(t, oc, "/after", []byte("a"), 0) // needs ZooKeeper 4's ACK
	zc := connectMixed(t, z4.Addr)
	readEventually(t, zc, "/before", []byte("b"))
	readEventually(t, zc, "/after", []byte("a"))
	pollUntil(t, "ZooKeeper 4 activated the configuration", func() bool {
		data, stat, err := zc.Get("/zookeeper/config")
		return err == nil && stat.Mzxid == version && string(data) == string(want)
	})
	require.Equal(t, "follower", zkMode(z4))
	waitMntr(t, leader.addr, "zk_quorum_size\t4\n", "zk_synced_followers\t2\n", "zk_synced_non_voting_followers\t0\n")
	mustCreate(t, zc, "/from-zk4", nil, 0)
	readEventually(t, oc, "/from-zk4", nil)

	// The follower that was down comes back and catches up.
	down.open(t)
	down.serve(t)
	dc := connectMixed(t, down.addr)
	readEventually(t, dc, "/from-zk4", nil)
	waitMntr(t, leader.addr, "zk_synced_followers\t3\n")
	requireCleanZooKeeperLog(t, z4, 0)
}

// TestReconfigZabkeeperJoinerSyncsBeforeItIsAdded is the reverse: three
// Apache ZooKeeper 3.8 servers, one of them stopped, and a zabkeeper
// server 4 started with a configuration naming the members and itself. It
// learns the ensemble's newer configuration from ZooKeeper's
// notifications, is in none of it, and syncs as its own configuration made
// it, a participant: a non-voting follower of the ZooKeeper leader, which
// the reconfig adding it counts as synced (isQuorumSynced), so the reconfig
// succeeds though the new configuration's quorum (three of four) needs it.
// Before, a zabkeeper joiner synced as an observer and the reconfig
// answered NewConfigNoQuorum (-13) for as long as the member was down.
func TestReconfigZabkeeperJoinerSyncsBeforeItIsAdded(t *testing.T) {
	e := newMixedEnsemble(t, 4)
	joiner := e.servers[4]
	delete(e.servers, 4) // the members' configuration: 1, 2, 3
	e.extra = map[int]map[string]string{}
	for id := 1; id <= 3; id++ {
		e.extra[id] = map[string]string{"reconfigEnabled": "true", "DigestAuthenticationProvider.superDigest": superDigest}
	}
	zks := []*zkreal.Server{e.startZooKeeper(t, 1), e.startZooKeeper(t, 2), e.startZooKeeper(t, 3)}
	var leader, down *zkreal.Server
	pollUntil(t, "ZooKeeper 1, 2 and 3 serve, one leading", func() bool {
		leader, down = nil, nil
		for _, z := range zks {
			switch zkMode(z) {
			case "leader":
				leader = z
			case "follower":
				down = z
			default:
				return false
			}
		}
		return leader != nil
	})
	down.Stop()
	zc := connectMixed(t, leader.Addr)
	mustCreate(t, zc, "/before", []byte("b"), 0)

	e.servers[4] = joiner // zabkeeper 4's configuration: 1, 2, 3, 4
	cfg := e.zabkeeperConfig(t, 4, "", "")
	cfg.Dynamic.ReconfigEnabled = true
	ours := &member{id: 4, cfg: cfg}
	ours.open(t)
	ours.serve(t)
	e.ours[4] = ours
	// ZooKeeper's leader counts it a synced, non-voting follower.
	waitMntr(t, leader.Addr, "zk_synced_followers\t2\n", "zk_synced_non_voting_followers\t1\n",
		"zk_synced_observers\t0\n")
	_, clientPort, err := net.SplitHostPort(ours.addr)
	require.NoError(t, err)
	line := fmt.Sprintf("server.4=127.0.0.1:%d:%d:participant;127.0.0.1:%s", joiner.QuorumPort, joiner.ElectionPort, clientPort)
	require.NoError(t, zc.AddAuth("digest", []byte("super:admin")))
	var version int64
	pollUntil(t, "the reconfig adding zabkeeper 4 succeeds once it synced", func() bool {
		st, err := zc.IncrementalReconfig([]string{line}, nil, -1)
		if err != nil {
			require.EqualError(t, err, "unknown error: -13", "NewConfigNoQuorum until zabkeeper 4 synced, nothing else")
			return false
		}
		version = st.Mzxid
		return true
	})
	want, _, err := zc.Get("/zookeeper/config")
	require.NoError(t, err)
	require.Contains(t, string(want), line+"\n")
	mustCreate(t, zc, "/after", []byte("a"), 0) // needs zabkeeper 4's ACK
	oc := connectMixed(t, ours.addr)
	readEventually(t, oc, "/before", []byte("b"))
	readEventually(t, oc, "/after", []byte("a"))
	pollUntil(t, "zabkeeper 4 activated the configuration", func() bool {
		if _, err := oc.Sync("/zookeeper/config"); err != nil {
			return false
		}
		data, stat, err := oc.Get("/zookeeper/config")
		return err == nil && stat.Mzxid == version && string(data) == string(want)
	})
	require.Equal(t, "follower", mode(t, ours.addr))
	mustCreate(t, oc, "/from-4", nil, 0)
	readEventually(t, zc, "/from-4", nil)
	requireCleanZooKeeperLog(t, leader, 0)
}
