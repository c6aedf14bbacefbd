package server_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/server"
)

// member is one server of an in-process ensemble.
type member struct {
	id     int
	cfg    server.Config
	srv    *server.Server
	addr   string
	cancel context.CancelFunc
	done   chan error
}

// startEnsemble starts n servers that know each other, each on free client
// and quorum ports, and waits until one leads and the rest follow.
func startEnsemble(t *testing.T, n int) []*member {
	t.Helper()
	return startEnsembleWith(t, n, nil)
}

// startEnsembleWith is startEnsemble with each server's configuration
// adjusted by mutate.
func startEnsembleWith(t *testing.T, n int, mutate func(*server.Config)) []*member {
	t.Helper()
	ms := launchEnsemble(t, n, mutate)
	waitServing(t, ms)
	return ms
}

// launchEnsemble is startEnsembleWith without the wait for a leader.
func launchEnsemble(t *testing.T, n int, mutate func(*server.Config)) []*member {
	t.Helper()
	servers := map[int]server.ServerSpec{}
	for id := 1; id <= n; id++ {
		servers[id] = server.ServerSpec{ID: id, Host: "127.0.0.1"}
	}
	ms := make([]*member, n)
	for i := range ms {
		cfg := testConfig(t)
		cfg.ServerID = i + 1
		cfg.Servers = servers
		cfg.FourLetterWords = map[string]bool{"srvr": true, "ruok": true, "mntr": true}
		// Generous heartbeat limits: the race detector on two busy cores can
		// stall a server for hundreds of milliseconds, and a follower that
		// misses syncLimit ticks rightly starts an election.
		cfg.TickTime, cfg.InitLimit, cfg.SyncLimit = 200, 20, 10
		if mutate != nil {
			mutate(&cfg)
		}
		ms[i] = &member{id: i + 1, cfg: cfg}
		ms[i].open(t)
	}
	exchangeAddrs(ms)
	for _, m := range ms {
		m.serve(t)
	}
	return ms
}

func (m *member) open(t *testing.T) {
	t.Helper()
	srv, err := server.New(m.cfg, newServerLogger(t).With("server", m.id))
	require.NoError(t, err)
	m.srv, m.addr = srv, srv.Addr().String()
}

func (m *member) serve(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel, m.done = cancel, make(chan error, 1)
	go func() { m.done <- m.srv.Serve(ctx) }()
	t.Cleanup(func() { m.stop(t) })
}

func (m *member) stop(t *testing.T) {
	if m.cancel == nil {
		return
	}
	m.cancel()
	m.cancel = nil
	select {
	case err := <-m.done:
		require.NoError(t, err)
	case <-time.After(waitTimeout):
		t.Errorf("server %d did not stop", m.id)
	}
}

func exchangeAddrs(ms []*member) {
	for _, m := range ms {
		addrs := map[int64]server.PeerAddrs{}
		for _, o := range ms {
			if o.id != m.id && o.srv != nil {
				a := server.PeerAddrs{Quorum: o.srv.PeerAddr().String()}
				if e := o.srv.ElectionAddr(); e != nil {
					a.Election = e.String()
				}
				addrs[int64(o.id)] = a
			}
		}
		m.srv.SetPeerAddrs(addrs)
	}
}

func mode(t testing.TB, addr string) string {
	out := fourLetter(t, addr, "srvr")
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, "Mode: "); ok {
			return rest
		}
	}
	return "not serving"
}

// waitServing waits until the running members have one leader and the
// others follow (or observe) it.
func waitServing(t *testing.T, ms []*member) *member {
	t.Helper()
	var leader *member
	waitFor(t, "one leader, the rest following", func() bool {
		leader = nil
		for _, m := range ms {
			if m.cancel == nil {
				continue
			}
			switch mode(t, m.addr) {
			case "leader":
				if leader != nil {
					return false
				}
				leader = m
			case "follower", "observer":
			default:
				return false
			}
		}
		return leader != nil
	})
	return leader
}

func TestEnsembleReplicatesThroughFollowers(t *testing.T) {
	ms := startEnsemble(t, 3)
	leader := waitServing(t, ms)
	mntr := fourLetter(t, leader.addr, "mntr")
	for _, want := range []string{"zk_server_state\tleader\n", "zk_quorum_size\t3\n", "zk_synced_followers\t2\n", "zk_learners\t2\n", "zk_outstanding_proposals\t0\n"} {
		require.Contains(t, mntr, want)
	}
	for _, m := range ms {
		c := connect(t, m.addr)
		mustCreate(t, c, fmt.Sprintf("/via%d", m.id), []byte{byte(m.id)}, 0)
	}
	for _, m := range ms {
		c := connect(t, m.addr)
		_, err := c.Sync("/")
		require.NoError(t, err)
		for _, o := range ms {
			data, _, err := c.Get(fmt.Sprintf("/via%d", o.id))
			require.NoError(t, err, "server %d reads the write made through server %d", m.id, o.id)
			require.Equal(t, []byte{byte(o.id)}, data)
		}
	}
}

func TestEnsembleLeaderKilledMidLoadLosesNoAckedWrite(t *testing.T) {
	ms := startEnsemble(t, 3)
	leader := waitServing(t, ms)
	var survivors []string
	for _, m := range ms {
		if m != leader {
			survivors = append(survivors, m.addr)
		}
	}
	c, _, err := zk.Connect(survivors, clientSessionTimeout, zk.WithLogger(zkLogger{newTestLog(t)}))
	require.NoError(t, err)
	t.Cleanup(c.Close)

	var mu sync.Mutex
	acked := map[string]bool{}
	stopLoad := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stopLoad:
					return
				default:
				}
				p := fmt.Sprintf("/w%d-%d", w, i)
				if _, err := c.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err == nil {
					mu.Lock()
					acked[p] = true
					mu.Unlock()
				}
			}
		}()
	}
	waitFor(t, "some writes acknowledged", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 50
	})
	leader.stop(t)
	rest := []*member{}
	for _, m := range ms {
		if m != leader {
			rest = append(rest, m)
		}
	}
	waitServing(t, rest)
	waitFor(t, "writes acknowledged under the new leader", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 150
	})
	close(stopLoad)
	wg.Wait()

	check := connect(t, rest[0].addr)
	_, err = check.Sync("/")
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	for p := range acked {
		ok, _, err := check.Exists(p)
		require.NoError(t, err)
		require.True(t, ok, "acknowledged %s survives the leader's death", p)
	}
}

func TestEnsembleMinorityCannotWrite(t *testing.T) {
	ms := startEnsemble(t, 3)
	c := connect(t, ms[0].addr)
	mustCreate(t, c, "/before", nil, 0)
	c.Close()
	// Two of three stop: the survivor has no quorum and must stop serving.
	ms[1].stop(t)
	ms[2].stop(t)
	waitFor(t, "the lone server stops serving", func() bool {
		return mode(t, ms[0].addr) == "not serving"
	})
	// A client's handshake is closed unanswered, so it tries elsewhere.
	raw := dialRaw(t, ms[0].addr)
	raw.write(proto.AppendFrame(nil, proto.Marshal(&proto.ConnectRequest{TimeOut: 10000, Passwd: make([]byte, 16)})))
	raw.expectClosed()
	// A quorum again: the write goes through and the earlier one is there.
	ms[1].open(t)
	exchangeAddrs(ms)
	ms[1].serve(t)
	waitServing(t, ms[:2])
	c = connect(t, ms[0].addr)
	mustCreate(t, c, "/after", nil, 0)
	ok, _, err := c.Exists("/before")
	require.NoError(t, err)
	require.True(t, ok)
}

// TestEnsembleRestartedWholeFromDisk: every server stops, all restart on
// their data directories, and every acknowledged write is there.
func TestEnsembleRestartedWholeFromDisk(t *testing.T) {
	ms := startEnsemble(t, 3)
	c := connect(t, ms[1].addr)
	for i := 0; i < 50; i++ {
		mustCreate(t, c, fmt.Sprintf("/k%02d", i), []byte(fmt.Sprint(i)), 0)
	}
	c.Close()
	for _, m := range ms {
		m.stop(t)
	}
	for _, m := range ms {
		m.open(t)
	}
	exchangeAddrs(ms)
	for _, m := range ms {
		m.serve(t)
	}
	waitServing(t, ms)
	for _, m := range ms {
		c := connect(t, m.addr)
		_, err := c.Sync("/")
		require.NoError(t, err)
		for i := 0; i < 50; i++ {
			data, _, err := c.Get(fmt.Sprintf("/k%02d", i))
			require.NoError(t, err, "server %d after the restart", m.id)
			require.Equal(t, fmt.Sprint(i), string(data))
		}
	}
}

// TestEnsembleSessionMovesBetweenServers: a session whose server goes away
// reconnects to another with the same id and password; its ephemeral stays
// and its watch, re-armed by setWatches, fires for a change made there.
func TestEnsembleSessionMovesBetweenServers(t *testing.T) {
	ms := startEnsemble(t, 3)
	proxy := startProxy(t, ms[0].addr)
	c, _ := connectTimeout(t, proxy.addr(), clientSessionTimeout)
	sid := c.SessionID()
	mustCreate(t, c, "/eph", nil, zk.FlagEphemeral)
	mustCreate(t, c, "/watched", nil, 0)
	_, _, watch, err := c.GetW("/watched")
	require.NoError(t, err)

	// The client's server becomes unreachable; the proxy now leads to
	// another server, as a load balancer or a new address list would.
	proxy.retarget(ms[1].addr)
	proxy.cut()
	proxy.restore()
	waitFor(t, "the session resumes on another server", func() bool {
		return c.State() == zk.StateHasSession
	})
	require.Equal(t, sid, c.SessionID(), "same session after the move")

	other := connect(t, ms[2].addr)
	ok, st, err := other.Exists("/eph")
	require.NoError(t, err)
	require.True(t, ok, "the ephemeral survives the move")
	require.Equal(t, sid, st.EphemeralOwner)
	_, err = other.Set("/watched", []byte("x"), -1)
	require.NoError(t, err)
	ev := recvEvent(t, watch, "the re-armed watch fires on the new server")
	require.Equal(t, zk.EventNodeDataChanged, ev.Type)
}

// TestEnsembleStaleConnectionAfterSessionMove: a client holds a session
// on one server and reconnects with the same id and password on another,
// as a client cut off from its server does. The leader records the new
// owner before the new server answers; the old server closes its connection
// of the session, and a write sent on that old connection fails (closed
// without a reply, as ZooKeeper answers SessionMoved) and is never applied.
func TestEnsembleStaleConnectionAfterSessionMove(t *testing.T) {
	ms := startEnsemble(t, 3)
	leader := waitServing(t, ms)
	var followers []*member
	for _, m := range ms {
		if m != leader {
			followers = append(followers, m)
		}
	}
	srvA, srvB := followers[0], followers[1]

	a := newSession(t, srvA.addr, 10000)
	h := a.call(proto.OpCreate, &proto.CreateRequest{Path: "/eph", ACL: proto.OpenACLUnsafe, Flags: proto.ModeEphemeral}, nil)
	require.Equal(t, proto.ErrOK, h.Err)

	b := resume(t, srvB.addr, a, a.lastZxid)

	// A write on the old connection: whether it reaches server A before or
	// after A applied the move, it must fail and the connection close.
	_ = a.nc.SetWriteDeadline(time.Now().Add(waitTimeout))
	_, _ = a.nc.Write(proto.EncodeRequest(proto.RequestHeader{Xid: 100, Type: proto.OpCreate},
		&proto.CreateRequest{Path: "/stale", ACL: proto.OpenACLUnsafe}))
	for _, f := range a.expectClosed() {
		var hdr proto.ReplyHeader
		require.NoError(t, proto.Unmarshal(f, &hdr))
		require.Equal(t, proto.ErrSessionMoved, hdr.Err, "the only reply the stale write may get is SessionMoved")
	}

	// The session works on B, with its ephemeral; the stale write did not
	// happen anywhere.
	h = b.call(proto.OpSync, &proto.SyncRequest{Path: "/"}, &proto.SyncResponse{})
	require.Equal(t, proto.ErrOK, h.Err)
	var ex proto.ExistsResponse
	h = b.call(proto.OpExists, &proto.ExistsRequest{Path: "/eph"}, &ex)
	require.Equal(t, proto.ErrOK, h.Err)
	require.Equal(t, a.sessionID, ex.Stat.EphemeralOwner)
	h = b.call(proto.OpCreate, &proto.CreateRequest{Path: "/fresh", ACL: proto.OpenACLUnsafe}, nil)
	require.Equal(t, proto.ErrOK, h.Err)
	for _, m := range ms {
		c := connect(t, m.addr)
		_, err := c.Sync("/")
		require.NoError(t, err)
		ok, _, err := c.Exists("/stale")
		require.NoError(t, err)
		require.False(t, ok, "server %d: the write on the stale connection was not applied", m.id)
		ok, _, err = c.Exists("/fresh")
		require.NoError(t, err)
		require.True(t, ok, "server %d", m.id)
	}

	// Reconnecting on A again moves the session back: B's connection closes.
	a2 := resume(t, srvA.addr, a, b.lastZxid)
	b.expectClosed()
	h = a2.call(proto.OpCloseSession, &proto.EmptyRecord{}, nil)
	require.Equal(t, proto.ErrOK, h.Err)
	c := connect(t, srvB.addr)
	_, err := c.Sync("/")
	require.NoError(t, err)
	ok, _, err := c.Exists("/eph")
	require.NoError(t, err)
	require.False(t, ok, "closing the moved session deletes its ephemeral")
}

// resume reconnects the session of old on the server at addr. A server that
// has not yet applied lastZxid closes the handshake unanswered, as ZooKeeper
// does; the client then tries again, as clients do.
func resume(t *testing.T, addr string, old *rawClient, lastZxid int64) *rawClient {
	t.Helper()
	var c *rawClient
	waitFor(t, "the session resumes on "+addr, func() bool {
		c = dialRaw(t, addr)
		c.write(proto.AppendRecords(nil, &proto.ConnectRequest{TimeOut: 10000, SessionID: old.sessionID, Passwd: old.passwd, LastZxidSeen: lastZxid}))
		body, err := c.readFrame(waitTimeout)
		if err != nil {
			c.close()
			return false
		}
		var resp proto.ConnectResponse
		require.NoError(t, proto.Unmarshal(body, &resp))
		require.Equal(t, old.sessionID, resp.SessionID, "same session")
		require.Equal(t, old.passwd, resp.Passwd)
		c.sessionID, c.passwd, c.timeout, c.lastZxid = resp.SessionID, resp.Passwd, resp.TimeOut, lastZxid
		return true
	})
	return c
}
