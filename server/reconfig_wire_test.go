package server_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// TestReconfigRestartedServerLearnsTheConfigFromItsLeader: three zabkeeper
// servers over ZooKeeper's peer protocol, reconfigEnabled. While follower
// F is down, a reconfig adds server 4 as an observer and enough writes
// follow that the leader's in-memory log (commitLogCount=5) no longer
// reaches F's last zxid. F restarts from its OLD zoo.cfg: the leader syncs
// it by SNAP, past the reconfig txn, so F learns the configuration only
// from NEWLEADER, which carries the leader's as ZooKeeper's string, and
// activates it at UPTODATE as ZooKeeper's learner does — serving the new
// /zookeeper/config, printing it in conf and rewriting its zoo.cfg to the
// new dynamic file. Then a peer speaking on the leader's election port as
// server 4 gets a notification whose config string is, byte for byte,
// /zookeeper/config (what a ZooKeeper 3.8 leader sends: its quorum
// verifier's toString). Before zktcp had a book, NEWLEADER and
// notifications carried the static zoo.cfg string (version 0), and F
// kept its old configuration.
func TestReconfigRestartedServerLearnsTheConfigFromItsLeader(t *testing.T) {
	e := newReconfigEnsemble(t, 4)
	e.extra = "commitLogCount=5\n"
	for id := 1; id <= 3; id++ {
		e.start(id, []int{1, 2, 3})
	}
	leader := waitServing(t, []*member{e.ms[1], e.ms[2], e.ms[3]})
	f, other := 1, 2
	switch leader.id {
	case 1:
		f, other = 2, 3
	case 2:
		other = 3
	}
	oldCfg, err := os.ReadFile(filepath.Join(e.dirs[f], "zoo.cfg"))
	require.NoError(t, err)
	e.ms[f].stop(t)

	admin := e.superConn(other)
	st, err := admin.IncrementalReconfig([]string{e.line(4, "observer")}, nil, -1)
	require.NoError(t, err, "the leader and the other follower are a quorum of the new voters")
	version := st.Mzxid
	want := e.waitConfig([]int{leader.id, other}, version)
	for i := range 20 {
		_, err := admin.Create(fmt.Sprintf("/after%02d", i), nil, 0, zk.WorldACL(zk.PermAll))
		require.NoError(t, err)
	}

	cur, err := os.ReadFile(filepath.Join(e.dirs[f], "zoo.cfg"))
	require.NoError(t, err)
	require.Equal(t, string(oldCfg), string(cur), "F restarts from its old static config")
	e.load(f)
	require.Equal(t, want, e.waitConfig([]int{f}, version), "F serves the current /zookeeper/config")
	e.waitMode(f, "follower")
	c := connect(t, e.addr(f))
	_, err = c.Sync("/")
	require.NoError(t, err)
	ok, _, err := c.Exists("/after19")
	require.NoError(t, err)
	require.True(t, ok)
	c.Close()

	// F activated the configuration: conf prints it, and zoo.cfg points
	// at its dynamic file, zoo.cfg.dynamic.<version>.
	waitFor(t, "F's conf shows server 4", func() bool {
		return membershipOf(t, fourLetter(t, e.addr(f), "conf")) == membershipOf(t, fourLetter(t, e.addr(leader.id), "conf"))
	})
	dyn := filepath.Join(e.dirs[f], fmt.Sprintf("zoo.cfg.dynamic.%x", version))
	cfg, err := os.ReadFile(filepath.Join(e.dirs[f], "zoo.cfg"))
	require.NoError(t, err)
	require.Contains(t, string(cfg), "dynamicConfigFile="+dyn+"\n")
	b, err := os.ReadFile(dyn)
	require.NoError(t, err)
	require.Contains(t, string(b), e.line(4, "observer")+"\n")

	// The leader's notification, as a ZooKeeper peer reads it.
	n := electionProbe(t, e, leader.id, 4)
	require.Equal(t, quorum.Leading, n.State)
	require.Equal(t, want, string(n.Config), "the notification's config string is /zookeeper/config")
}

// electionProbe connects to server id's election port as server sid (a
// larger id: its connection is the one kept), sends a LOOKING notification
// and returns the first notification the server answers with.
func electionProbe(t *testing.T, e *reconfigEnsemble, id, sid int) quorum.Notification {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(e.ports[3*(id-1)+1]))
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	im := quorum.InitialMessage{Protocol: quorum.ProtocolV1, Sid: int64(sid),
		Addrs: []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(e.ports[3*(sid-1)+1]))}}
	b, err := im.Encode()
	require.NoError(t, err)
	_, err = c.Write(b)
	require.NoError(t, err)
	probe := quorum.Notification{State: quorum.Looking, Leader: int64(sid), ElectionEpoch: 1,
		Version: quorum.NotificationVersion, Config: []byte("version=0")}
	v, err := probe.Encode()
	require.NoError(t, err)
	require.NoError(t, quorum.WriteFrame(c, v))
	require.NoError(t, c.SetReadDeadline(time.Now().Add(30*time.Second)))
	br := bufio.NewReader(c)
	for {
		frame, err := quorum.ReadFrame(br)
		require.NoError(t, err, "server %d answers a looking peer", id)
		n, err := quorum.DecodeNotification(frame)
		require.NoError(t, err)
		if n.State != quorum.Looking {
			return n
		}
	}
}

// TestReconfigFirstLeaderVersionsTheConfig: a fresh ensemble with
// reconfigEnabled whose zoo.cfg has the server lines and no version, as
// real ZooKeeper 3.8 (TestDynamicConfigFromZooKeeper38Ensemble shows
// ZooKeeper's): the first leader's NEWLEADER zxid becomes the
// configuration's version (ZOOKEEPER-1783) on every server —
// /zookeeper/config ends with version=100000000, its mzxid is 0x100000000
// and its dataVersion -1, conf prints it, each server's zoo.cfg points at
// zoo.cfg.dynamic.100000000 — and a reconfig's fromConfig is checked
// against it (BadVersion for 0). Before, zabkeeper kept version 0.
func TestReconfigFirstLeaderVersionsTheConfig(t *testing.T) {
	e := newReconfigEnsemble(t, 3)
	for id := 1; id <= 3; id++ {
		e.start(id, []int{1, 2, 3})
	}
	waitServing(t, []*member{e.ms[1], e.ms[2], e.ms[3]})
	const version = int64(0x100000000)
	want := fmt.Sprintf("%s\n%s\n%s\nversion=100000000", e.line(1, "participant"), e.line(2, "participant"), e.line(3, "participant"))
	require.Equal(t, want, e.waitConfig([]int{1, 2, 3}, version))
	for id := 1; id <= 3; id++ {
		n := getConfigNode(t, e.addr(id))
		require.Equal(t, want, n.data, "server %d", id)
		require.Equal(t, version, n.stat.Mzxid)
		require.Equal(t, int32(-1), n.stat.Version)
		require.Equal(t, want, membershipOf(t, fourLetter(t, e.addr(id), "conf")), "conf of server %d", id)
		dyn := filepath.Join(e.dirs[id], "zoo.cfg.dynamic.100000000")
		var cfg []byte
		waitFor(t, fmt.Sprintf("server %d's zoo.cfg points at %s", id, dyn), func() bool {
			cfg, _ = os.ReadFile(filepath.Join(e.dirs[id], "zoo.cfg"))
			return strings.Contains(string(cfg), "dynamicConfigFile="+dyn+"\n")
		})
		b, err := os.ReadFile(dyn)
		require.NoError(t, err)
		require.Equal(t, want[:strings.LastIndex(want, "version=")], string(b))
	}
	admin := e.superConn(1)
	_, err := admin.IncrementalReconfig(nil, []string{"3"}, 0)
	require.ErrorIs(t, err, zk.ErrBadVersion, "the version is no longer 0")
	st, err := admin.IncrementalReconfig(nil, []string{"3"}, version)
	require.NoError(t, err)
	require.Greater(t, st.Mzxid, version)
}

// TestReconfigRestartedServerReachesMembersThatJoined: servers 1-3; server
// 4 joins; follower F stops, and the leader is removed while it is down,
// so the configuration becomes {F, 4, K}, K the one member F knew that is
// still in it. F restarts from its OLD zoo.cfg ({1, 2, 3}, as a server
// killed before it wrote the dynamic file of the reconfig its log holds):
// it knows no address for server 4. The newer configuration
// reaches it in K's notifications, whose config string names server 4's
// addresses; F takes them (ZooKeeper's FastLeaderElection adopts a newer
// configuration from a notification), reaches the leader and syncs. Then
// K stops: F and 4 are the quorum, and it serves writes. Before, F learned
// addresses only from activated configurations and NEWLEADER, refused
// server 4's election connections as "not in the config" and could reach
// no leader (the fault harness's seed 1796340215224664398).
func TestReconfigRestartedServerReachesMembersThatJoined(t *testing.T) {
	e := newReconfigEnsemble(t, 4)
	for id := 1; id <= 3; id++ {
		e.start(id, []int{1, 2, 3})
	}
	leader := waitServing(t, []*member{e.ms[1], e.ms[2], e.ms[3]})
	f := 1
	if leader.id == 1 {
		f = 2
	}
	var others []int // K is others[0], the one that leaves is others[1]
	for id := 1; id <= 3; id++ {
		if id != f && id != leader.id {
			others = append(others, id)
		}
	}
	others = append(others, leader.id)
	oldCfg, err := os.ReadFile(filepath.Join(e.dirs[f], "zoo.cfg"))
	require.NoError(t, err)
	e.start(4, []int{1, 2, 3, 4})
	admin := e.superConn(others[0])
	st, err := admin.IncrementalReconfig([]string{e.line(4, "participant")}, nil, -1)
	require.NoError(t, err)
	e.waitConfig([]int{f}, st.Mzxid)
	e.ms[f].stop(t)
	// F's files as a server killed before it wrote the new dynamic file
	// has them (its log holds the reconfig txn).
	require.NoError(t, os.WriteFile(filepath.Join(e.dirs[f], "zoo.cfg"), oldCfg, 0o644))
	// Removing the leader hands leadership on; the reply may not come.
	_, err = admin.IncrementalReconfig(nil, []string{strconv.Itoa(others[1])}, -1)
	if err != nil {
		require.ErrorIs(t, err, zk.ErrConnectionClosed)
	}
	admin.Close()
	var version int64
	waitFor(t, "the configuration without the old leader", func() bool {
		n := getConfigNode(t, e.addr(others[0]))
		if strings.Contains(n.data, fmt.Sprintf("server.%d=", others[1])) {
			return false
		}
		version = n.stat.Mzxid
		return true
	})
	e.waitConfig([]int{others[0], 4}, version)
	e.ms[others[1]].stop(t)
	c := connect(t, e.addr(others[0]))
	_, err = c.Create("/while-away", nil, 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	c.Close()

	e.load(f) // its old zoo.cfg: servers 1, 2, 3
	e.waitConfig([]int{f}, version)
	e.ms[others[0]].stop(t)
	waitFor(t, "F and server 4 serving writes without K", func() bool {
		c, _, err := zk.Connect([]string{e.addr(f)}, clientSessionTimeout, zk.WithLogInfo(false))
		if err != nil {
			return false
		}
		defer c.Close()
		_, err = c.Create("/after-k", nil, 0, zk.WorldACL(zk.PermAll))
		return err == nil || errors.Is(err, zk.ErrNodeExists)
	})
	c = connect(t, e.addr(f))
	ok, _, err := c.Exists("/while-away")
	require.NoError(t, err)
	require.True(t, ok)
	c.Close()
}
