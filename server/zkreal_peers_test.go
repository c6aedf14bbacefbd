package server_test

import (
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/internal/zkreal"
	"github.com/zabkeeper/zabkeeper/server"
)

// Mixed ensembles: zabkeeper servers with peerProtocol=zookeeper beside
// Debian's Apache ZooKeeper 3.8 (internal/zkreal), on one zoo.cfg's
// server.N lines, with ZooKeeper's default tickTime, initLimit and
// syncLimit.

// mixedWait bounds each wait of these tests: JVMs start and elect slowly
// on a busy machine.
const mixedWait = 90 * time.Second

var srvrMode = regexp.MustCompile(`(?m)^Mode: (\w+)`)

// zkMode returns a ZooKeeper server's srvr mode, "" while it does not serve.
func zkMode(s *zkreal.Server) string {
	out, err := s.FourLetter("srvr")
	if err != nil {
		return ""
	}
	if m := srvrMode.FindStringSubmatch(out); m != nil {
		return m[1]
	}
	return ""
}

// pollUntil polls cond every 50 ms until it holds or mixedWait passes.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(mixedWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", mixedWait, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mixedEnsemble is the zoo.cfg of a mixed ensemble.
type mixedEnsemble struct {
	servers map[int]server.ServerSpec
	zk      map[int]*zkreal.Server
	ours    map[int]*member
	// extra holds more zoo.cfg keys per server id (quorum TLS), read by
	// ZooKeeper and zabkeeper alike.
	extra map[int]map[string]string
}

func newMixedEnsemble(t *testing.T, n int) *mixedEnsemble {
	zkreal.Require(t)
	return &mixedEnsemble{servers: zkProtocolServers(t, n), zk: map[int]*zkreal.Server{}, ours: map[int]*member{}}
}

// startZooKeeper starts Apache ZooKeeper as server id (without waiting for
// it to serve: a member serves once a quorum is up).
func (e *mixedEnsemble) startZooKeeper(t *testing.T, id int) *zkreal.Server {
	return e.startZooKeeperIn(t, id, t.TempDir())
}

// startZooKeeperIn is startZooKeeper on the dataDir dir.
func (e *mixedEnsemble) startZooKeeperIn(t *testing.T, id int, dir string) *zkreal.Server {
	return e.startZooKeeperOn(t, id, dir, 0)
}

// startZooKeeperOn is startZooKeeperIn on client port port (0: a free one).
func (e *mixedEnsemble) startZooKeeperOn(t *testing.T, id int, dir string, port int) *zkreal.Server {
	// The zoo.cfg zabkeeper runs too: ZooKeeper's peer protocol is its
	// default, so no key of its own is needed.
	cfg := map[string]string{"initLimit": "10", "syncLimit": "5"}
	for sid, s := range e.servers {
		line := fmt.Sprintf("%s:%d:%d", s.Host, s.QuorumPort, s.ElectionPort)
		if s.Observer {
			line += ":observer"
		}
		cfg["server."+strconv.Itoa(sid)] = line
	}
	if e.servers[id].Observer {
		cfg["peerType"] = "observer"
	}
	for k, v := range e.extra[id] {
		cfg[k] = v
	}
	z := zkreal.Start(t, zkreal.Options{DataDir: dir, MyID: id, Config: cfg, ClientPort: port})
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("ZABKEEPER_TEST_DEBUG") != "" {
			t.Logf("ZooKeeper server %d log tail:\n%s", id, lastLines(z.Log(), 150))
		}
	})
	e.zk[id] = z
	return z
}

// startZabkeeper starts zabkeeper as server id from a zoo.cfg with the
// ZooKeeper servers' server.N lines and timing keys, and nothing of
// zabkeeper's own (ZooKeeper's peer protocol is the default; the test then
// points its directories and client and admin ports at private ones).
func (e *mixedEnsemble) startZabkeeper(t *testing.T, id int) *member {
	return e.startZabkeeperOn(t, id, "", "")
}

// startZabkeeperOn is startZabkeeper on the dataDir dir and the client
// address clientAddr (a swapped ZooKeeper's), or private ones for "".
func (e *mixedEnsemble) startZabkeeperOn(t *testing.T, id int, dir, clientAddr string) *member {
	m := &member{id: id, cfg: e.zabkeeperConfig(t, id, dir, clientAddr)}
	m.open(t)
	m.serve(t)
	e.ours[id] = m
	return m
}

// zabkeeperConfig is the configuration startZabkeeperOn runs with.
func (e *mixedEnsemble) zabkeeperConfig(t *testing.T, id int, dir, clientAddr string) server.Config {
	var text strings.Builder
	text.WriteString("tickTime=2000\ninitLimit=10\nsyncLimit=5\n")
	for sid := 1; sid <= len(e.servers); sid++ {
		s := e.servers[sid]
		fmt.Fprintf(&text, "server.%d=%s:%d:%d", sid, s.Host, s.QuorumPort, s.ElectionPort)
		if s.Observer {
			text.WriteString(":observer")
		}
		text.WriteString("\n")
	}
	for k, v := range e.extra[id] {
		fmt.Fprintf(&text, "%s=%s\n", k, v)
	}
	parsed, err := server.ParseConfig(strings.NewReader(text.String()), nil)
	require.NoError(t, err)
	require.Equal(t, server.PeerProtocolZooKeeper, parsed.PeerProtocol, "the default")
	cfg := testConfig(t)
	cfg.ServerID = id
	cfg.Servers = parsed.Servers
	cfg.PeerProtocol = parsed.PeerProtocol
	cfg.TickTime, cfg.InitLimit, cfg.SyncLimit = parsed.TickTime, parsed.InitLimit, parsed.SyncLimit
	cfg.MinSessionTimeout, cfg.MaxSessionTimeout = parsed.MinSessionTimeout, parsed.MaxSessionTimeout
	cfg.FourLetterWords = map[string]bool{"srvr": true, "ruok": true, "mntr": true}
	if dir != "" {
		cfg.DataDir, cfg.DataLogDir = dir, dir
	}
	if clientAddr != "" {
		host, port, err := net.SplitHostPort(clientAddr)
		require.NoError(t, err)
		cfg.ClientPortAddress = host
		cfg.ClientPort, err = strconv.Atoi(port)
		require.NoError(t, err)
	}
	if len(e.extra[id]) > 0 {
		cfg.TLS = parsed.TLS
	}
	return cfg
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// connectMixed opens a go-zk session with a session timeout long enough
// for a JVM's pauses.
func connectMixed(t *testing.T, addr string) *zk.Conn {
	t.Helper()
	c, _ := connectTimeout(t, addr, 20*time.Second)
	return c
}

// readEventually syncs and reads path through c until it holds want.
func readEventually(t *testing.T, c *zk.Conn, path string, want []byte) {
	t.Helper()
	pollUntil(t, "read "+path, func() bool {
		if _, err := c.Sync(path); err != nil {
			return false
		}
		data, _, err := c.Get(path)
		return err == nil && string(data) == string(want)
	})
}

// TestMixedZabkeeperFollowsZooKeeper: two Apache ZooKeeper 3.8 servers
// form an ensemble of three and take writes; a zabkeeper server with the
// same zoo.cfg joins as the third, follows the ZooKeeper leader, syncs the
// writes, and serves a go-zk client that sees writes made through
// ZooKeeper, while a ZooKeeper client sees the writes made through
// zabkeeper.
func TestMixedZabkeeperFollowsZooKeeper(t *testing.T) {
	e := newMixedEnsemble(t, 3)
	z1 := e.startZooKeeper(t, 1)
	z2 := e.startZooKeeper(t, 2)
	pollUntil(t, "ZooKeeper 1 and 2 serve, one leading", func() bool {
		m1, m2 := zkMode(z1), zkMode(z2)
		return (m1 == "leader" && m2 == "follower") || (m1 == "follower" && m2 == "leader")
	})
	zc := connectMixed(t, z1.Addr)
	for i := range 5 {
		mustCreate(t, zc, fmt.Sprintf("/zk%d", i), []byte("from zookeeper"), 0)
	}

	ours := e.startZabkeeper(t, 3)
	pollUntil(t, "zabkeeper follows the ZooKeeper leader", func() bool { return mode(t, ours.addr) == "follower" })
	oc := connectMixed(t, ours.addr)
	for i := range 5 {
		data, _, err := oc.Get(fmt.Sprintf("/zk%d", i))
		require.NoError(t, err, "zabkeeper synced the writes made before it joined")
		require.Equal(t, "from zookeeper", string(data))
	}

	// Writes both ways, after the join.
	mustCreate(t, zc, "/later-zk", []byte("z"), 0)
	readEventually(t, oc, "/later-zk", []byte("z"))
	mustCreate(t, oc, "/from-zabkeeper", []byte("o"), 0)
	for _, z := range []*zkreal.Server{z1, z2} {
		c := connectMixed(t, z.Addr)
		readEventually(t, c, "/from-zabkeeper", []byte("o"))
	}
	_, err := oc.Set("/zk0", []byte("changed by zabkeeper"), -1)
	require.NoError(t, err)
	readEventually(t, zc, "/zk0", []byte("changed by zabkeeper"))

	// An ephemeral of a session held by zabkeeper is one ZooKeeper sees.
	mustCreate(t, oc, "/eph", nil, zk.FlagEphemeral)
	readEventually(t, zc, "/eph", nil)
	require.Equal(t, "follower", mode(t, ours.addr))
	requireCleanZooKeeperLog(t, z1, 0)
	requireCleanZooKeeperLog(t, z2, 0)

	// SIGKILL the ZooKeeper leader: the ZooKeeper follower and zabkeeper
	// elect a new leader between them and serve every write made so far,
	// and the session held by zabkeeper keeps its ephemeral.
	zkLeader, zkFollower := z1, z2
	if zkMode(z2) == "leader" {
		zkLeader, zkFollower = z2, z1
	}
	zkLeader.Stop()
	pollUntil(t, "a new leader among zabkeeper and the other ZooKeeper", func() bool {
		mo, mz := mode(t, ours.addr), zkMode(zkFollower)
		return (mo == "leader" && mz == "follower") || (mo == "follower" && mz == "leader")
	})
	t.Logf("after the ZooKeeper leader's death: zabkeeper is %s", mode(t, ours.addr))
	mark := len(zkFollower.Log())
	fc := connectMixed(t, zkFollower.Addr)
	mustCreate(t, fc, "/after-failover-zk", []byte("z"), 0)
	mustCreate(t, oc, "/after-failover-ours", []byte("o"), 0)
	readEventually(t, oc, "/after-failover-zk", []byte("z"))
	readEventually(t, fc, "/after-failover-ours", []byte("o"))
	for _, c := range []*zk.Conn{oc, fc} {
		readEventually(t, c, "/zk0", []byte("changed by zabkeeper"))
		readEventually(t, c, "/later-zk", []byte("z"))
		readEventually(t, c, "/eph", nil)
	}
	requireCleanZooKeeperLog(t, zkFollower, mark)
}

// TestMixedZooKeeperFollowsZabkeeper: a zabkeeper server (the largest id,
// so it wins the election of equal histories) leads Apache ZooKeeper 3.8
// followers: one from the start, one that joins after writes and syncs
// from the zabkeeper leader. Writes through every server are read through
// every server.
func TestMixedZooKeeperFollowsZabkeeper(t *testing.T) {
	e := newMixedEnsemble(t, 3)
	ours := e.startZabkeeper(t, 3)
	z1 := e.startZooKeeper(t, 1)
	pollUntil(t, "zabkeeper leads ZooKeeper 1", func() bool {
		return mode(t, ours.addr) == "leader" && zkMode(z1) == "follower"
	})
	oc := connectMixed(t, ours.addr)
	zc1 := connectMixed(t, z1.Addr)
	for i := range 5 {
		mustCreate(t, oc, fmt.Sprintf("/ours%d", i), []byte("from zabkeeper"), 0)
		mustCreate(t, zc1, fmt.Sprintf("/zk1-%d", i), []byte("from zookeeper 1"), 0)
	}
	readEventually(t, zc1, "/ours4", []byte("from zabkeeper"))
	readEventually(t, oc, "/zk1-4", []byte("from zookeeper 1"))

	// The second ZooKeeper joins late and syncs from the zabkeeper leader.
	z2 := e.startZooKeeper(t, 2)
	pollUntil(t, "ZooKeeper 2 follows the zabkeeper leader", func() bool { return zkMode(z2) == "follower" })
	zc2 := connectMixed(t, z2.Addr)
	for i := range 5 {
		readEventually(t, zc2, fmt.Sprintf("/ours%d", i), []byte("from zabkeeper"))
		readEventually(t, zc2, fmt.Sprintf("/zk1-%d", i), []byte("from zookeeper 1"))
	}
	mustCreate(t, zc2, "/zk2", []byte("from zookeeper 2"), 0)
	readEventually(t, oc, "/zk2", []byte("from zookeeper 2"))
	readEventually(t, zc1, "/zk2", []byte("from zookeeper 2"))
	_, err := zc2.Set("/ours0", []byte("changed by zookeeper 2"), -1)
	require.NoError(t, err)
	readEventually(t, oc, "/ours0", []byte("changed by zookeeper 2"))

	// With one ZooKeeper follower gone, the leader keeps a quorum and
	// serves; ZooKeeper's logs show no out-of-order commit or exception.
	z1.Stop()
	mustCreate(t, oc, "/after-stop", nil, 0)
	readEventually(t, zc2, "/after-stop", nil)
	require.Equal(t, "leader", mode(t, ours.addr))
	for _, z := range []*zkreal.Server{z1, z2} {
		requireCleanZooKeeperLog(t, z, 0)
	}
}

// requireCleanZooKeeperLog checks a ZooKeeper's log for the complaints a
// peer that gets the protocol wrong causes (ZooKeeper's own "Got zxid 0x..
// expected 0x.." warning at the first txn of an epoch is benign and logged
// among ZooKeepers too).
//
// Only the log after offset from is checked (a follower whose leader was
// killed logs its EOF before it follows the next one).
func requireCleanZooKeeperLog(t *testing.T, z *zkreal.Server, from int) {
	t.Helper()
	log := z.Log()[from:]
	for _, bad := range []string{
		"Committing zxid", "but next pending txn", "UNMATCHED_TXN_COMMIT", // follower: COMMIT order
		"Exception when following the leader", "Severe unrecoverable error",
		"Next packet was supposed to be an ACK", "is from a different epoch", "Trying to commit future proposal", "received before ACK for", // leader: ACKs
		"Unexpected exception causing shutdown", "Follower is ahead of the leader", "First packet",
	} {
		require.NotContains(t, log, bad)
	}
}

// TestMixedZabkeeperObservesZooKeeper: a zabkeeper observer of a
// two-voter Apache ZooKeeper ensemble syncs, receives INFORMs, forwards
// its client's writes, and never acknowledges a proposal.
func TestMixedZabkeeperObservesZooKeeper(t *testing.T) {
	e := newMixedEnsemble(t, 3)
	spec := e.servers[3]
	spec.Observer = true
	e.servers[3] = spec
	z1 := e.startZooKeeper(t, 1)
	z2 := e.startZooKeeper(t, 2)
	pollUntil(t, "ZooKeeper 1 and 2 serve", func() bool {
		m1, m2 := zkMode(z1), zkMode(z2)
		return (m1 == "leader" && m2 == "follower") || (m1 == "follower" && m2 == "leader")
	})
	zc := connectMixed(t, z1.Addr)
	mustCreate(t, zc, "/before", []byte("b"), 0)
	ours := e.startZabkeeper(t, 3)
	pollUntil(t, "zabkeeper observes", func() bool { return mode(t, ours.addr) == "observer" })
	oc := connectMixed(t, ours.addr)
	readEventually(t, oc, "/before", []byte("b"))
	mustCreate(t, zc, "/informed", []byte("i"), 0)
	readEventually(t, oc, "/informed", []byte("i"))
	mustCreate(t, oc, "/via-observer", []byte("o"), 0)
	readEventually(t, zc, "/via-observer", []byte("o"))
	for _, z := range []*zkreal.Server{z1, z2} {
		requireCleanZooKeeperLog(t, z, 0)
		require.NotContains(t, z.Log(), "Observers shouldn't send ACKS")
	}
}

// TestMixedZooKeeperObservesZabkeeper: a zabkeeper leader with a ZooKeeper
// 3.8 follower and a ZooKeeper 3.8 observer; the observer joins after
// writes, syncs, and then follows new writes by INFORM.
func TestMixedZooKeeperObservesZabkeeper(t *testing.T) {
	e := newMixedEnsemble(t, 3)
	spec := e.servers[2]
	spec.Observer = true
	e.servers[2] = spec
	ours := e.startZabkeeper(t, 3)
	z1 := e.startZooKeeper(t, 1)
	pollUntil(t, "zabkeeper leads ZooKeeper 1", func() bool {
		return mode(t, ours.addr) == "leader" && zkMode(z1) == "follower"
	})
	oc := connectMixed(t, ours.addr)
	mustCreate(t, oc, "/before", []byte("b"), 0)
	z2 := e.startZooKeeper(t, 2)
	pollUntil(t, "ZooKeeper 2 observes", func() bool { return zkMode(z2) == "observer" })
	zc2 := connectMixed(t, z2.Addr)
	readEventually(t, zc2, "/before", []byte("b"))
	for i := range 5 {
		mustCreate(t, oc, fmt.Sprintf("/informed%d", i), []byte("i"), 0)
	}
	readEventually(t, zc2, "/informed4", []byte("i"))
	mustCreate(t, zc2, "/via-observer", []byte("o"), 0)
	readEventually(t, oc, "/via-observer", []byte("o"))
	zc1 := connectMixed(t, z1.Addr)
	readEventually(t, zc1, "/via-observer", []byte("o"))
	for _, z := range []*zkreal.Server{z1, z2} {
		requireCleanZooKeeperLog(t, z, 0)
	}
}

// TestMixedZabkeeperRejoinsZooKeeperByDiff: a zabkeeper follower of a
// ZooKeeper 3.8 leader stops, misses writes, restarts on its dataDir and
// catches up by DIFF (ZooKeeper's DIFF names the leader's zxid, not the
// learner's), then serves every write.
func TestMixedZabkeeperRejoinsZooKeeperByDiff(t *testing.T) {
	e := newMixedEnsemble(t, 3)
	z1 := e.startZooKeeper(t, 1)
	z2 := e.startZooKeeper(t, 2)
	pollUntil(t, "ZooKeeper 1 and 2 serve", func() bool {
		m1, m2 := zkMode(z1), zkMode(z2)
		return (m1 == "leader" && m2 == "follower") || (m1 == "follower" && m2 == "leader")
	})
	zkLeader := z1
	if zkMode(z2) == "leader" {
		zkLeader = z2
	}
	zc := connectMixed(t, z1.Addr)
	mustCreate(t, zc, "/first", []byte("1"), 0)
	ours := e.startZabkeeper(t, 3)
	pollUntil(t, "zabkeeper follows", func() bool { return mode(t, ours.addr) == "follower" })
	oc := connectMixed(t, ours.addr)
	readEventually(t, oc, "/first", []byte("1"))
	mustCreate(t, oc, "/ours-before", []byte("o"), 0)
	oc.Close()

	ours.stop(t)
	for i := range 10 {
		mustCreate(t, zc, fmt.Sprintf("/missed%d", i), []byte("m"), 0)
	}
	mark := len(zkLeader.Log())
	again := &member{id: 3, cfg: ours.cfg}
	again.open(t)
	again.serve(t)
	pollUntil(t, "zabkeeper follows again", func() bool { return mode(t, again.addr) == "follower" })
	oc = connectMixed(t, again.addr)
	for i := range 10 {
		readEventually(t, oc, fmt.Sprintf("/missed%d", i), []byte("m"))
	}
	readEventually(t, oc, "/ours-before", []byte("o"))
	mustCreate(t, oc, "/ours-after", []byte("a"), 0)
	readEventually(t, zc, "/ours-after", []byte("a"))
	log := zkLeader.Log()[mark:]
	require.Contains(t, log, "Sending DIFF", "the leader synced the restarted zabkeeper by DIFF")
	require.NotContains(t, log, "Sending SNAP")
	requireCleanZooKeeperLog(t, zkLeader, 0)
}

// orderedHosts is a go-zk HostProvider that tries its servers in their
// order (go-zk's Connect shuffles the list it passes to Init, which is
// ignored here), so a test knows where a session starts.
type orderedHosts struct {
	servers []string
	next    int
	tried   int
}

func (h *orderedHosts) Init([]string) error { return nil }
func (h *orderedHosts) Len() int            { return len(h.servers) }
func (h *orderedHosts) Connected()          { h.tried = 0 }
func (h *orderedHosts) Next() (string, bool) {
	s := h.servers[h.next%len(h.servers)]
	h.next++
	h.tried++
	return s, h.tried > len(h.servers)
}

// TestMixedSessionMovesToZabkeeper: the rolling-migration case for a
// client. Its session starts on a ZooKeeper follower; that ZooKeeper is
// killed and the client reconnects to the zabkeeper follower (REVALIDATE
// through the ZooKeeper leader, ZooKeeper's session password). The
// session, kept alive only by zabkeeper's PING touches, outlives three
// timeouts with its ephemeral; closing it deletes the ephemeral.
func TestMixedSessionMovesToZabkeeper(t *testing.T) {
	e := newMixedEnsemble(t, 3)
	z1 := e.startZooKeeper(t, 1)
	z2 := e.startZooKeeper(t, 2)
	pollUntil(t, "ZooKeeper 1 and 2 serve", func() bool {
		m1, m2 := zkMode(z1), zkMode(z2)
		return (m1 == "leader" && m2 == "follower") || (m1 == "follower" && m2 == "leader")
	})
	zkLeader, zkFollower := z1, z2
	if zkMode(z2) == "leader" {
		zkLeader, zkFollower = z2, z1
	}
	ours := e.startZabkeeper(t, 3)
	pollUntil(t, "zabkeeper follows", func() bool { return mode(t, ours.addr) == "follower" })

	const timeout = 4 * time.Second // minSessionTimeout: 2 × tickTime 2000
	c, events, err := zk.Connect([]string{zkFollower.Addr, ours.addr}, timeout,
		zk.WithHostProvider(&orderedHosts{servers: []string{zkFollower.Addr, ours.addr}}), zk.WithLogger(zkLogger{newTestLog(t)}), zk.WithLogInfo(false))
	require.NoError(t, err)
	defer c.Close()
	pollUntil(t, "session on the ZooKeeper follower", func() bool { return c.State() == zk.StateHasSession })
	require.Equal(t, zkFollower.Addr, c.Server())
	mustCreate(t, c, "/moved-eph", nil, zk.FlagEphemeral)
	sid := c.SessionID()

	zkFollower.Stop()
	pollUntil(t, "the session resumes on zabkeeper", func() bool {
		return c.State() == zk.StateHasSession && c.Server() == ours.addr
	})
	require.Equal(t, sid, c.SessionID())
	lc := connectMixed(t, zkLeader.Addr)
	end := time.Now().Add(3 * timeout)
	for time.Now().Before(end) {
		ok, _, err := lc.Exists("/moved-eph")
		require.NoError(t, err)
		require.True(t, ok, "the session held by zabkeeper stays alive")
		time.Sleep(200 * time.Millisecond)
	}
	mustCreate(t, c, "/written-after-move", nil, 0)
	readEventually(t, lc, "/written-after-move", nil)
drain:
	for {
		select {
		case ev := <-events:
			require.NotEqual(t, zk.StateExpired, ev.State, "the session never expired")
		default:
			break drain
		}
	}
	c.Close()
	pollUntil(t, "closing the session deletes its ephemeral", func() bool {
		ok, _, err := lc.Exists("/moved-eph")
		return err == nil && !ok
	})
	requireCleanZooKeeperLog(t, zkLeader, 0)
}

// TestMixedZabkeeperLeaderStopsAndRejoins: a zabkeeper leader of two
// ZooKeeper 3.8 followers stops; the ZooKeepers elect one of them and keep
// serving; the zabkeeper server restarts on its dataDir, follows the new
// ZooKeeper leader and serves every write, old and new.
func TestMixedZabkeeperLeaderStopsAndRejoins(t *testing.T) {
	e := newMixedEnsemble(t, 3)
	ours := e.startZabkeeper(t, 3)
	z1 := e.startZooKeeper(t, 1)
	z2 := e.startZooKeeper(t, 2)
	pollUntil(t, "zabkeeper leads both ZooKeepers", func() bool {
		return mode(t, ours.addr) == "leader" && zkMode(z1) == "follower" && zkMode(z2) == "follower"
	})
	oc := connectMixed(t, ours.addr)
	for i := range 5 {
		mustCreate(t, oc, fmt.Sprintf("/led%d", i), []byte("by zabkeeper"), 0)
	}
	oc.Close()
	requireCleanZooKeeperLog(t, z1, 0)
	requireCleanZooKeeperLog(t, z2, 0)
	ours.stop(t)
	pollUntil(t, "the ZooKeepers elect one of them", func() bool {
		m1, m2 := zkMode(z1), zkMode(z2)
		return (m1 == "leader" && m2 == "follower") || (m1 == "follower" && m2 == "leader")
	})
	// Their logs before this hold the end of following the stopped
	// leader ("Exception when following the leader": EOF).
	mark1, mark2 := len(z1.Log()), len(z2.Log())
	zc := connectMixed(t, z1.Addr)
	readEventually(t, zc, "/led4", []byte("by zabkeeper"))
	mustCreate(t, zc, "/without-zabkeeper", []byte("z"), 0)

	again := &member{id: 3, cfg: ours.cfg}
	again.open(t)
	again.serve(t)
	pollUntil(t, "zabkeeper follows the ZooKeeper leader", func() bool { return mode(t, again.addr) == "follower" })
	oc = connectMixed(t, again.addr)
	readEventually(t, oc, "/without-zabkeeper", []byte("z"))
	for i := range 5 {
		readEventually(t, oc, fmt.Sprintf("/led%d", i), []byte("by zabkeeper"))
	}
	mustCreate(t, oc, "/rejoined", nil, 0)
	readEventually(t, zc, "/rejoined", nil)
	requireCleanZooKeeperLog(t, z1, mark1)
	requireCleanZooKeeperLog(t, z2, mark2)
}

// TestMixedRollingSwap is the rolling migration: a three-server ZooKeeper
// 3.8 ensemble, a client holding an ephemeral, and each server in turn
// (followers first, the leader last) SIGKILLed and replaced by zabkeeper on
// the same dataDir, myid and client port. After every swap every server
// serves every write made so far, and the client's session never expires.
// Then one server goes back to ZooKeeper on the dataDir zabkeeper wrote.
func TestMixedRollingSwap(t *testing.T) {
	e := newMixedEnsemble(t, 3)
	dirs := map[int]string{}
	for id := 1; id <= 3; id++ {
		dirs[id] = t.TempDir()
		e.startZooKeeperIn(t, id, dirs[id])
	}
	addrs := map[int]string{}
	for id, z := range e.zk {
		addrs[id] = z.Addr
	}
	servingAll := func() bool {
		leaders := 0
		for id := 1; id <= 3; id++ {
			var m string
			if z := e.zk[id]; z != nil {
				m = zkMode(z)
			} else {
				m = mode(t, e.ours[id].addr)
			}
			switch m {
			case "leader":
				leaders++
			case "follower":
			default:
				return false
			}
		}
		return leaders == 1
	}
	pollUntil(t, "ZooKeeper 1, 2, 3 serve", servingAll)

	holder, events, err := zk.Connect([]string{addrs[1], addrs[2], addrs[3]}, 20*time.Second,
		zk.WithLogger(zkLogger{newTestLog(t)}), zk.WithLogInfo(false))
	require.NoError(t, err)
	defer holder.Close()
	pollUntil(t, "the holder's session", func() bool { return holder.State() == zk.StateHasSession })
	mustCreate(t, holder, "/holder", nil, zk.FlagEphemeral)
	sid := holder.SessionID()

	var written []string
	write := func(step string) {
		for id := 1; id <= 3; id++ {
			c := connectMixed(t, addrs[id])
			p := fmt.Sprintf("/%s-via%d", step, id)
			mustCreate(t, c, p, []byte(step), 0)
			written = append(written, p)
			c.Close()
		}
	}
	check := func() {
		for id := 1; id <= 3; id++ {
			c := connectMixed(t, addrs[id])
			for _, p := range written {
				readEventually(t, c, p, []byte(strings.Split(p[1:], "-")[0]))
			}
			readEventually(t, c, "/holder", nil)
			c.Close()
		}
	}
	write("start")

	leader := 0
	for id := 1; id <= 3; id++ {
		if zkMode(e.zk[id]) == "leader" {
			leader = id
		}
	}
	var order []int
	for id := 1; id <= 3; id++ {
		if id != leader {
			order = append(order, id)
		}
	}
	order = append(order, leader)
	for _, id := range order {
		for _, z := range e.zk {
			requireCleanZooKeeperLog(t, z, 0) // no ZooKeeper leader has died yet
		}
		killed := time.Now()
		e.zk[id].Stop()
		delete(e.zk, id)
		e.startZabkeeperOn(t, id, dirs[id], addrs[id])
		pollUntil(t, fmt.Sprintf("the ensemble serves after swapping server %d", id), servingAll)
		back := time.Since(killed)
		step := fmt.Sprintf("swap%d", id)
		write(step)
		check()
		t.Logf("swapped server %d (ZooKeeper leader was %d): zabkeeper %d is %s; every server served again %v after the kill",
			id, leader, id, mode(t, e.ours[id].addr), back.Round(time.Millisecond))
	}

	// And back: a zabkeeper follower is stopped and ZooKeeper starts on
	// the dataDir zabkeeper wrote, joins, and serves everything.
	back := order[0]
	if mode(t, e.ours[back].addr) == "leader" {
		back = order[1]
	}
	e.ours[back].stop(t)
	delete(e.ours, back)
	_, portText, err := net.SplitHostPort(addrs[back])
	require.NoError(t, err)
	port, err := strconv.Atoi(portText)
	require.NoError(t, err)
	e.startZooKeeperOn(t, back, dirs[back], port)
	pollUntil(t, fmt.Sprintf("ZooKeeper %d is back in the ensemble", back), servingAll)
	write("back")
	check()
	t.Logf("server %d is ZooKeeper again: %s", back, zkMode(e.zk[back]))
	requireCleanZooKeeperLog(t, e.zk[back], 0)

	require.Equal(t, sid, holder.SessionID())
	for {
		select {
		case ev := <-events:
			require.NotEqual(t, zk.StateExpired, ev.State, "the holder's session never expired")
			continue
		default:
		}
		break
	}
}
