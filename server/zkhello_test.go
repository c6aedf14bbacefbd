package server_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/internal/testserver"
	"github.com/zabkeeper/zabkeeper/server"
)

// The handshake of docs/ZAB.md ("One protocol"), end to end: zabkeeper
// servers on ZooKeeper's peer protocol announce every capability to each
// other in hellos a ZooKeeper server ignores, and behave exactly as
// ZooKeeper toward one.

// logBuffer keeps a server's log lines for the test to read, safe for the
// server's goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// openLogged is member.open with the server's log also kept in logs.
func (m *member) openLogged(t *testing.T, logs *logBuffer) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.MultiWriter(testserver.NewLogWriter(t), logs), &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := server.New(m.cfg, log.With("server", m.id))
	require.NoError(t, err)
	m.srv, m.addr = srv, srv.Addr().String()
}

// TestZooKeeperProtocolStreamedSnapshot: in an ensemble of zabkeeper
// servers on ZooKeeper's peer protocol, every link carries every
// capability, and a follower far behind gets its SNAP body in chunks
// (with room for the leader's PINGs between them) and serves the data.
func TestZooKeeperProtocolStreamedSnapshot(t *testing.T) {
	servers := zkProtocolServers(t, 3)
	ms := startEnsembleWith(t, 3, func(c *server.Config) {
		c.Servers = servers
		c.PeerProtocol = server.PeerProtocolZooKeeper
		c.CommitLogCount = 20
	})
	leader := waitServing(t, ms)
	var lagging *member
	for _, m := range ms {
		if m != leader {
			lagging = m
			break
		}
	}
	lagging.stop(t)
	c := connect(t, leader.addr)
	value := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 4096) }
	const n = 100 // ~400 KiB: a dozen chunks
	for i := range n {
		mustCreate(t, c, fmt.Sprintf("/big%03d", i), value(i), 0)
	}

	logs := &logBuffer{}
	lagging.openLogged(t, logs)
	lagging.serve(t)
	waitServing(t, ms)
	lc := connect(t, lagging.addr)
	for i := 0; i < n; i += 17 {
		_, err := lc.Sync("/")
		require.NoError(t, err)
		data, _, err := lc.Get(fmt.Sprintf("/big%03d", i))
		require.NoError(t, err)
		require.Equal(t, value(i), data)
	}
	out := logs.String()
	require.Contains(t, out, "the leader is zabkeeper (announces transfer|stream-snap|move-request; link caps transfer|stream-snap|move-request)")
	m := regexp.MustCompile(`received SNAP".*streamed=true chunks=(\d+)`).FindStringSubmatch(out)
	require.NotNil(t, m, "the follower got a streamed SNAP")
	t.Logf("the lagging follower's SNAP came in %s chunks", m[1])
	require.NotContains(t, out, "bug:")
}

// TestMixedZabkeeperLeaderRawSnapToZooKeeper: a zabkeeper leader of
// Apache ZooKeeper 3.8 followers sees ZooKeeper peers (no hello: no
// capabilities, logged once per link), sends a ZooKeeper follower that
// joins far behind its SNAP body raw, which ZooKeeper loads, and never
// sends a TIMEOUTNOW, not even when it stops: ZooKeeper logs no unknown
// packet.
func TestMixedZabkeeperLeaderRawSnapToZooKeeper(t *testing.T) {
	e := newMixedEnsemble(t, 3)
	cfg := e.zabkeeperConfig(t, 3, "", "")
	cfg.CommitLogCount = 20
	ours := &member{id: 3, cfg: cfg}
	logs := &logBuffer{}
	ours.openLogged(t, logs)
	ours.serve(t)
	e.ours[3] = ours
	z1 := e.startZooKeeper(t, 1)
	pollUntil(t, "zabkeeper leads ZooKeeper 1", func() bool {
		return mode(t, ours.addr) == "leader" && zkMode(z1) == "follower"
	})
	oc := connectMixed(t, ours.addr)
	const n = 60
	for i := range n {
		mustCreate(t, oc, fmt.Sprintf("/n%02d", i), []byte("from zabkeeper"), 0)
	}
	z2 := e.startZooKeeper(t, 2)
	pollUntil(t, "ZooKeeper 2 follows the zabkeeper leader", func() bool { return zkMode(z2) == "follower" })
	zc := connectMixed(t, z2.Addr)
	for i := 0; i < n; i += 7 {
		readEventually(t, zc, fmt.Sprintf("/n%02d", i), []byte("from zabkeeper"))
	}
	require.Contains(t, z2.Log(), "Getting a snapshot from leader", "ZooKeeper 2 synced by SNAP")

	out := logs.String()
	for _, id := range []int{1, 2} {
		require.Regexp(t, regexp.MustCompile(fmt.Sprintf(`learner connected: Apache ZooKeeper \(no hello\).* peer=%d .*caps=none`, id)), out)
	}
	require.Regexp(t, regexp.MustCompile(`sent SNAP".* peer=2 .*streamed=false`), out)
	require.NotContains(t, out, "streamed=true")

	requireCleanZooKeeperLog(t, z1, 0)
	requireCleanZooKeeperLog(t, z2, 0)

	// Stopping the leader hands nothing over by TIMEOUTNOW to ZooKeeper
	// followers; they see the link close (and log its EOF) and elect.
	ours.stop(t)
	pollUntil(t, "the ZooKeeper servers elect a leader among themselves", func() bool {
		m1, m2 := zkMode(z1), zkMode(z2)
		return (m1 == "leader" && m2 == "follower") || (m1 == "follower" && m2 == "leader")
	})
	require.NotContains(t, logs.String(), "bug:")
	for _, z := range []interface{ Log() string }{z1, z2} {
		require.NotContains(t, z.Log(), "Unknown packet type")
	}
}
