package server_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/internal/zkreal"
	"github.com/zabkeeper/zabkeeper/server"
)

// reconfigEnsemble is a zabkeeper ensemble on fixed loopback ports whose
// servers read real zoo.cfg files, with reconfigEnabled=true and a super
// user, so reconfigs rewrite those files as ZooKeeper does.
type reconfigEnsemble struct {
	t     *testing.T
	ports []int // per server id-1: quorum, election, client
	dirs  map[int]string
	ms    map[int]*member
	// peerProtocol, when set, is every zoo.cfg's zabkeeper.peerProtocol.
	peerProtocol string
	// extra is appended to every zoo.cfg.
	extra string
}

func newReconfigEnsemble(t *testing.T, slots int) *reconfigEnsemble {
	return &reconfigEnsemble{t: t, ports: dynFreePorts(t, 3*slots), dirs: map[int]string{}, ms: map[int]*member{}}
}

// spec is server id's server.N value.
func (e *reconfigEnsemble) spec(id int, role string) string {
	p := e.ports[3*(id-1):]
	return fmt.Sprintf("127.0.0.1:%d:%d:%s;127.0.0.1:%d", p[0], p[1], role, p[2])
}

func (e *reconfigEnsemble) line(id int, role string) string {
	return fmt.Sprintf("server.%d=%s", id, e.spec(id, role))
}

func (e *reconfigEnsemble) addr(id int) string {
	return "127.0.0.1:" + strconv.Itoa(e.ports[3*(id-1)+2])
}

// start writes server id's zoo.cfg (members in it, as a first ZooKeeper
// install has them) and myid, loads them and starts the server.
func (e *reconfigEnsemble) start(id int, members []int) {
	t := e.t
	dir := t.TempDir()
	e.dirs[id] = dir
	data := filepath.Join(dir, "data")
	require.NoError(t, os.MkdirAll(data, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(data, "myid"), []byte(strconv.Itoa(id)), 0o644))
	var b strings.Builder
	fmt.Fprintf(&b, "tickTime=200\ninitLimit=20\nsyncLimit=10\ndataDir=%s\nreconfigEnabled=true\n", data)
	fmt.Fprintf(&b, "DigestAuthenticationProvider.superDigest=%s\n4lw.commands.whitelist=srvr,conf,ruok,mntr\n", superDigest)
	if e.peerProtocol != "" {
		fmt.Fprintf(&b, "zabkeeper.peerProtocol=%s\n", e.peerProtocol)
	}
	b.WriteString(e.extra)
	for _, m := range members {
		b.WriteString(e.line(m, "participant") + "\n")
	}
	path := filepath.Join(dir, "zoo.cfg")
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	e.load(id)
}

// load reads server id's zoo.cfg in its directory (as it is, rewritten by
// reconfigs or not) and starts the server.
func (e *reconfigEnsemble) load(id int) {
	t := e.t
	cfg, err := server.LoadConfig(filepath.Join(e.dirs[id], "zoo.cfg"), newServerLogger(t))
	require.NoError(t, err)
	cfg.AdminServerAddress, cfg.AdminServerPort = "127.0.0.1", 0
	m := &member{id: id, cfg: cfg}
	m.open(t)
	m.serve(t)
	e.ms[id] = m
}

// superConn is a go-zk session on server id authenticated as super.
func (e *reconfigEnsemble) superConn(id int) *zk.Conn {
	c := connect(e.t, e.addr(id))
	require.NoError(e.t, c.AddAuth("digest", []byte("super:admin")))
	return c
}

// waitConfig waits until every running server in ids serves a
// /zookeeper/config of the given version and returns its data.
func (e *reconfigEnsemble) waitConfig(ids []int, version int64) string {
	var data string
	waitFor(e.t, fmt.Sprintf("config %x on %v", version, ids), func() bool {
		for _, id := range ids {
			c, _, err := zk.Connect([]string{e.addr(id)}, clientSessionTimeout, zk.WithLogInfo(false))
			if err != nil {
				return false
			}
			d, st, err := c.Get("/zookeeper/config")
			c.Close()
			if err != nil || st.Mzxid != version {
				return false
			}
			data = string(d)
		}
		return true
	})
	return data
}

func (e *reconfigEnsemble) waitMode(id int, want string) {
	waitFor(e.t, fmt.Sprintf("server %d %s", id, want), func() bool { return mode(e.t, e.addr(id)) == want })
}

// writer creates nodes through server id until stopped and records those
// acknowledged: reconfigs must not stop writes nor lose one.
type writer struct {
	stop  chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	acked []string
	fails int
}

func startWriter(t *testing.T, addr string) *writer {
	w := &writer{stop: make(chan struct{}), done: make(chan struct{})}
	c := connect(t, addr)
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			p := fmt.Sprintf("/w%06d", i)
			if _, err := c.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err == nil {
				w.mu.Lock()
				w.acked = append(w.acked, p)
				w.mu.Unlock()
			} else {
				w.mu.Lock()
				w.fails++
				w.mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	return w
}

func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// waitProgress waits until the writer got n more acks.
func (w *writer) waitProgress(t *testing.T, n int) {
	from := w.count()
	waitFor(t, fmt.Sprintf("%d more acknowledged writes", n), func() bool { return w.count() >= from+n })
}

// TestReconfigEnsembleGoZk drives ZooKeeper's reconfig through go-zk's
// IncrementalReconfig and Reconfig against three zabkeeper servers while a
// client keeps writing: a fourth server joins (started with a config that
// names it, it is let in by the reconfig that adds it), a participant
// becomes an observer and back, the fourth leaves, and a non-incremental
// reconfig restores the original three. Each activation rewrites zoo.cfg
// and zoo.cfg.dynamic.<version> as ZooKeeper does; config watches fire;
// bad input gets ZooKeeper's codes and changes nothing; no acknowledged
// write is lost.
func TestReconfigEnsembleGoZk(t *testing.T) {
	e := newReconfigEnsemble(t, 4)
	for id := 1; id <= 3; id++ {
		e.start(id, []int{1, 2, 3})
	}
	var three []*member
	for id := 1; id <= 3; id++ {
		three = append(three, e.ms[id])
	}
	leader := waitServing(t, three)
	follower := 1
	if leader.id == 1 {
		follower = 2
	}
	w := startWriter(t, e.addr(3))
	w.waitProgress(t, 10)
	admin := e.superConn(follower)
	watcher := connect(t, e.addr(follower))
	_, _, watch, err := watcher.GetW("/zookeeper/config")
	require.NoError(t, err)

	// Bad input first: ZooKeeper's codes, nothing changes.
	before := getConfigNode(t, e.addr(1))
	plain := connect(t, e.addr(follower))
	_, err = plain.IncrementalReconfig(nil, []string{"3"}, -1)
	require.ErrorIs(t, err, zk.ErrNoAuth, "only super writes /zookeeper/config")
	_, err = admin.IncrementalReconfig([]string{"server.4=127.0.0.1:1:2:participant"}, nil, -1)
	require.ErrorIs(t, err, zk.ErrBadArguments, "a joiner needs a client port")
	_, err = admin.IncrementalReconfig(nil, []string{"9"}, -1)
	require.ErrorIs(t, err, zk.ErrBadArguments, "no server 9")
	_, err = admin.IncrementalReconfig(nil, []string{"3"}, 0x777)
	require.ErrorIs(t, err, zk.ErrBadVersion)
	_, err = admin.Reconfig([]string{e.line(1, "participant"), "server.5=127.0.0.1:1:2:participant;3", "server.6=127.0.0.1:4:5:participant;6"}, -1)
	require.EqualError(t, err, "unknown error: -13", "NewConfigNoQuorum")
	for id := 1; id <= 3; id++ {
		require.Equal(t, before, getConfigNode(t, e.addr(id)), "server %d", id)
	}

	// Server 4 starts with a config that names it; the ensemble lets it
	// in once the reconfig that adds it is active.
	e.start(4, []int{1, 2, 3, 4})
	st, err := admin.IncrementalReconfig([]string{e.line(4, "participant")}, nil, -1)
	require.NoError(t, err)
	v1 := st.Mzxid
	require.Equal(t, int32(-1), st.Version)
	ev := <-watch
	require.Equal(t, zk.EventNodeDataChanged, ev.Type, "the config watch fires")
	data := e.waitConfig([]int{1, 2, 3, 4}, v1)
	require.Equal(t, fmt.Sprintf("%s\n%s\n%s\n%s\nversion=%x", e.line(1, "participant"), e.line(2, "participant"),
		e.line(3, "participant"), e.line(4, "participant"), v1), data)
	e.waitMode(4, "follower")
	w.waitProgress(t, 10)
	waitMntr(t, e.addr(leader.id), "zk_quorum_size\t4\n", "zk_synced_followers\t3\n", "zk_synced_observers\t0\n")
	for id := 1; id <= 3; id++ {
		cfg, err := os.ReadFile(filepath.Join(e.dirs[id], "zoo.cfg"))
		require.NoError(t, err)
		dyn := filepath.Join(e.dirs[id], fmt.Sprintf("zoo.cfg.dynamic.%x", v1))
		require.Contains(t, string(cfg), "dynamicConfigFile="+dyn+"\n")
		require.NotContains(t, string(cfg), "server.")
		b, err := os.ReadFile(dyn)
		require.NoError(t, err)
		require.Equal(t, data[:strings.LastIndex(data, "version=")], string(b))
	}

	// A participant becomes an observer and back.
	obs := 3
	if leader.id == 3 {
		obs = 2
	}
	st, err = admin.IncrementalReconfig([]string{e.line(obs, "observer")}, nil, v1)
	require.NoError(t, err)
	e.waitConfig([]int{1, 2, 3, 4}, st.Mzxid)
	e.waitMode(obs, "observer")
	w.waitProgress(t, 10)
	waitMntr(t, e.addr(leader.id), "zk_quorum_size\t3\n", "zk_synced_followers\t2\n", "zk_synced_observers\t1\n")
	st, err = admin.IncrementalReconfig([]string{e.line(obs, "participant")}, nil, -1)
	require.NoError(t, err)
	e.waitConfig([]int{1, 2, 3, 4}, st.Mzxid)
	e.waitMode(obs, "follower")
	w.waitProgress(t, 10)

	// Server 4 leaves; a non-incremental reconfig names the three.
	st, err = admin.IncrementalReconfig(nil, []string{"4"}, -1)
	require.NoError(t, err)
	e.waitConfig([]int{1, 2, 3, 4}, st.Mzxid) // 4 hears it is out
	_, err = admin.Reconfig([]string{e.line(1, "participant"), e.line(2, "participant"), e.line(3, "participant")}, st.Mzxid+1)
	require.ErrorIs(t, err, zk.ErrBadVersion)
	st, err = admin.Reconfig([]string{e.line(1, "participant"), e.line(2, "participant"), e.line(3, "participant")}, st.Mzxid)
	require.NoError(t, err)
	e.waitConfig([]int{1, 2, 3}, st.Mzxid)
	w.waitProgress(t, 10)

	close(w.stop)
	<-w.done
	t.Logf("%d writes acknowledged during the reconfigs, %d failed and retried", len(w.acked), w.fails)
	for id := 1; id <= 3; id++ {
		c := connect(t, e.addr(id))
		_, err := c.Sync("/")
		require.NoError(t, err)
		for _, p := range w.acked {
			ok, _, err := c.Exists(p)
			require.NoError(t, err)
			require.True(t, ok, "acknowledged %s missing on server %d", p, id)
		}
		c.Close()
	}
	require.False(t, errors.Is(err, zk.ErrClosing))
}

// waitMntr waits until the leader at addr reports each of the mntr lines
// in want: after a reconfig, its quorum size and synced followers and
// observers count the configuration in force, as ZooKeeper's (from its
// current QuorumVerifier), not the one the server started with.
func waitMntr(t *testing.T, addr string, want ...string) {
	t.Helper()
	var out string
	deadline := time.Now().Add(waitTimeout)
	for {
		out = fourLetter(t, addr, "mntr")
		missing := false
		for _, w := range want {
			missing = missing || !strings.Contains(out, w)
		}
		if !missing {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("mntr at %s lacks %q after %v:\n%s", addr, want, waitTimeout, out)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReconfigRemovesTheLeader: a reconfig that removes the leader hands
// leadership to a designated member of the new configuration; writes go on
// (a client of the removed leader reconnects elsewhere), nothing
// acknowledged is lost, and the removed server keeps running outside the
// ensemble until stopped.
func TestReconfigRemovesTheLeader(t *testing.T) {
	reconfigRemovesTheLeader(t, newReconfigEnsemble(t, 3))
}

// TestReconfigRemovesTheLeaderZooKeeperPeers is the same over Apache
// ZooKeeper's election and quorum ports (peerProtocol=zookeeper): the
// hand-over travels as ZooKeeper's COMMITANDACTIVATE.
func TestReconfigRemovesTheLeaderZooKeeperPeers(t *testing.T) {
	e := newReconfigEnsemble(t, 3)
	e.peerProtocol = server.PeerProtocolZooKeeper
	reconfigRemovesTheLeader(t, e)
}

func reconfigRemovesTheLeader(t *testing.T, e *reconfigEnsemble) {
	for id := 1; id <= 3; id++ {
		e.start(id, []int{1, 2, 3})
	}
	leader := waitServing(t, []*member{e.ms[1], e.ms[2], e.ms[3]})
	var rest []int
	var lines []string
	for id := 1; id <= 3; id++ {
		if id != leader.id {
			rest = append(rest, id)
			lines = append(lines, e.line(id, "participant"))
		}
	}
	w := startWriter(t, e.addr(rest[0]))
	w.waitProgress(t, 10)
	admin := e.superConn(rest[1])
	before := getConfigNode(t, e.addr(rest[1])).stat.Mzxid
	_, err := admin.Reconfig(lines, -1)
	if err != nil {
		// The servers switch leaders as the reconfig commits, which may
		// close the connection before the reply, as with ZooKeeper.
		require.ErrorIs(t, err, zk.ErrConnectionClosed)
	}
	var version int64
	waitFor(t, "the new configuration on the remaining servers", func() bool {
		version = getConfigNode(t, e.addr(rest[1])).stat.Mzxid
		return version > before
	})
	e.waitConfig(rest, version)
	var next *member
	waitFor(t, "a leader among the remaining servers", func() bool {
		next = nil
		for _, id := range rest {
			if mode(t, e.addr(id)) == "leader" {
				next = e.ms[id]
			}
		}
		return next != nil
	})
	w.waitProgress(t, 20)
	close(w.stop)
	<-w.done
	require.NotEqual(t, "leader", mode(t, e.addr(leader.id)), "the removed leader leads no more")
	for _, id := range rest {
		c := connect(t, e.addr(id))
		_, err := c.Sync("/")
		require.NoError(t, err)
		for _, p := range w.acked {
			ok, _, err := c.Exists(p)
			require.NoError(t, err)
			require.True(t, ok, "acknowledged %s missing on server %d", p, id)
		}
		c.Close()
	}
	t.Logf("leader %d removed, %d leads; %d writes acknowledged, %d failed and retried", leader.id, next.id, len(w.acked), w.fails)
}

// TestReconfigZkCli runs ZooKeeper 3.8's own zkCli against a zabkeeper
// ensemble: as super, `reconfig -add` a fourth server, `config`, then
// `reconfig -remove` it, as an operator would.
func TestReconfigZkCli(t *testing.T) {
	requireZkCli(t)
	e := newReconfigEnsemble(t, 4)
	for id := 1; id <= 3; id++ {
		e.start(id, []int{1, 2, 3})
	}
	waitServing(t, []*member{e.ms[1], e.ms[2], e.ms[3]})
	e.start(4, []int{1, 2, 3, 4})
	script := strings.Join([]string{
		"addauth digest super:admin",
		"reconfig -add " + e.line(4, "participant"),
		"config",
		"reconfig -remove 4",
		"quit",
	}, "\n") + "\n"
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "java", "-cp", nettyClassPath, "org.apache.zookeeper.ZooKeeperMain", "-server", e.addr(1))
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	text := string(out)
	require.NoError(t, err, "zkCli failed:\n%s", text)
	require.Contains(t, text, "Committed new configuration:", "zkCli output:\n%s", text)
	require.Contains(t, text, e.line(4, "participant"), "zkCli output:\n%s", text)
	require.NotContains(t, text, "KeeperErrorCode", "zkCli output:\n%s", text)
	data := getConfigNode(t, e.addr(1)).data
	require.NotContains(t, data, "server.4=", "removed again")
	t.Logf("zkCli:\n%s", text)
}

// reconfigOutcome is what a go-zk reconfig call returns, with the parts
// that differ between two ensembles (the versions, wall-clock mtime)
// normalized.
type reconfigOutcome struct {
	err                string
	version, aversion  int32
	czxid, pzxid       int64
	ctime              int64
	mzxidIsNewVersion  bool
	dataLength         int32
	cversion, children int32
}

// runReconfigScript runs the same reconfig calls against the ensemble at
// addr (servers with ids 1..3 whose lines are lines) and returns what each
// returned, plus /zookeeper/config after the successful removal, its
// version line cut.
func runReconfigScript(t *testing.T, addr string, lines []string) ([]reconfigOutcome, string) {
	plain := connect(t, addr)
	admin := connect(t, addr)
	require.NoError(t, admin.AddAuth("digest", []byte("super:admin")))
	var out []reconfigOutcome
	record := func(st *zk.Stat, err error) {
		o := reconfigOutcome{err: fmt.Sprint(err)}
		if err == nil {
			o.version, o.aversion, o.czxid, o.pzxid, o.ctime = st.Version, st.Aversion, st.Czxid, st.Pzxid, st.Ctime
			o.dataLength, o.cversion, o.children = st.DataLength, st.Cversion, st.NumChildren
			// A reconfig that removes the leader moves the followers to the
			// designated one, and a server not serving drops its clients
			// (ZooKeeper's too): go-zk then fails requests with
			// ErrNoServer or ErrConnectionClosed until it reconnects.
			data, now, gerr := admin.Get("/zookeeper/config")
			for deadline := time.Now().Add(30 * time.Second); (errors.Is(gerr, zk.ErrNoServer) || errors.Is(gerr, zk.ErrConnectionClosed)) && time.Now().Before(deadline); {
				time.Sleep(50 * time.Millisecond)
				data, now, gerr = admin.Get("/zookeeper/config")
			}
			require.NoError(t, gerr, "read /zookeeper/config after the reconfig")
			o.mzxidIsNewVersion = st.Mzxid == now.Mzxid && strings.HasSuffix(string(data), fmt.Sprintf("version=%x", st.Mzxid))
		}
		out = append(out, o)
	}
	record(admin.IncrementalReconfig([]string{"server.4=127.0.0.1:1:2:participant"}, nil, -1))
	record(admin.IncrementalReconfig(nil, []string{"3"}, 0x777))
	record(admin.Reconfig([]string{lines[0]}, -1))
	record(admin.Reconfig([]string{lines[0], "server.5=127.0.0.1:1:2:participant;3", "server.6=127.0.0.1:4:5:participant;6"}, -1))
	record(plain.IncrementalReconfig(nil, []string{"3"}, -1))
	record(admin.IncrementalReconfig(nil, []string{"3"}, -1))
	data, _, err := admin.Get("/zookeeper/config")
	require.NoError(t, err)
	cfg := string(data)
	cfg = cfg[:strings.LastIndex(cfg, "version=")]
	record(admin.IncrementalReconfig([]string{lines[2]}, nil, -1))
	plain.Close()
	admin.Close()
	return out, cfg
}

// TestReconfigAsZooKeeper runs one script of reconfigs — bad input of
// each kind, a removal, an addition — through go-zk against a real
// ZooKeeper 3.8 ensemble and then against zabkeeper servers on the same
// ports: the same codes, the same Stat shape (dataVersion and aclVersion
// -1, mzxid the new version) and the same /zookeeper/config lines.
func TestReconfigAsZooKeeper(t *testing.T) {
	zkreal.Require(t)
	e := newReconfigEnsemble(t, 3)
	var lines []string
	for id := 1; id <= 3; id++ {
		lines = append(lines, e.line(id, "participant"))
	}
	var zks []*zkreal.Server
	for id := 1; id <= 3; id++ {
		cfg := map[string]string{"reconfigEnabled": "true", "initLimit": "10", "syncLimit": "5"}
		for j := 1; j <= 3; j++ {
			cfg["server."+strconv.Itoa(j)] = e.spec(j, "participant")
		}
		zks = append(zks, zkreal.Start(t, zkreal.Options{DataDir: filepath.Join(t.TempDir(), "data"), TickTimeMs: 500,
			MyID: id, ClientPort: e.ports[3*(id-1)+2], Config: cfg,
			Props: map[string]string{"zookeeper.DigestAuthenticationProvider.superDigest": superDigest}}))
	}
	for _, s := range zks {
		_, err := s.WaitServing(60 * time.Second)
		require.NoError(t, err, s.Log())
	}
	want, wantCfg := runReconfigScript(t, e.addr(1), lines)
	for _, s := range zks {
		s.Stop()
	}
	for id := 1; id <= 3; id++ {
		e.start(id, []int{1, 2, 3})
	}
	waitServing(t, []*member{e.ms[1], e.ms[2], e.ms[3]})
	got, gotCfg := runReconfigScript(t, e.addr(1), lines)
	t.Logf("ZooKeeper: %+v", want)
	require.Equal(t, want, got)
	require.Equal(t, wantCfg, gotCfg)
}
