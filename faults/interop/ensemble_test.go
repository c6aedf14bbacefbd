package interop

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zabkeeper/zabkeeper/internal/zkreal"
	"github.com/zabkeeper/zabkeeper/netstub"
)

var (
	flagSwap = flag.Bool("interop.swap", false,
		"also run TestSwapToZabkeeper and TestSwapToZooKeeperAndBack: the ZooKeeper ensemble migrated to zabkeeper one server at a time and one put back, and a zabkeeper ensemble swapped to ZooKeeper and back, with the default zoo.cfg")
	flagMixed = flag.Bool("interop.mixed", false,
		"also run TestMixedEnsembleFaults: a zabkeeper leader with a ZooKeeper follower and observer under a partition and a leader SIGKILL")
	flagNative = flag.Bool("interop.native", false,
		"also run TestNativeRollingRestart and TestNativeEnsembleFaults: the baseline's rolling restart and the mixed ensemble's faults on three zabkeeper servers (their links with zabkeeper's extras)")
	flagBinary = flag.String("interop.binary", "",
		"run this zabkeeper binary instead of building cmd/zabkeeper")
	flagZabArgs = flag.String("interop.zabkeeper-args", "",
		"more arguments for every zabkeeper server, space-separated (e.g. \"--log-level debug\")")
	flagKeep = flag.String("interop.keep", "",
		"keep every server's zoo.cfg, dataDir and log under this directory (one subdirectory per test) instead of a temporary one")
)

// Deadlines, generous for JVM starts on two busy cores.
const (
	syncWait = 120 * time.Second // a (re)started server is serving in sync
	exitWait = 30 * time.Second  // a SIGTERMed server has exited
	// leaderConnectWait is how long a learner retries a refused connect
	// to its leader: initLimit*tickTime of the zoo.cfg newEnsemble writes.
	leaderConnectWait = 10 * 2 * time.Second
)

// The server kinds a member runs.
const (
	kindZooKeeper = "ZooKeeper"
	kindZabkeeper = "zabkeeper"
)

// peerProtocolKey is the zoo.cfg key of zabkeeper's peer protocol,
// ZooKeeper's and the only one: the scenarios run on a zoo.cfg without it.
// A zabkeeper that logs it as unknown predates ZooKeeper's protocol (hint).
const peerProtocolKey = "zabkeeper.peerProtocol"

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// zabkeeperBinary builds cmd/zabkeeper once per test binary (or returns
// -interop.binary).
func zabkeeperBinary(t *testing.T) string {
	t.Helper()
	if *flagBinary != "" {
		return *flagBinary
	}
	buildOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "zabkeeper-interop-")
		if err != nil {
			buildErr = fmt.Errorf("build directory: %w", err)
			return
		}
		buildPath = filepath.Join(dir, "zabkeeper")
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/zabkeeper")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/zabkeeper: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// summary collects each scenario's figures table, printed together at the
// end of the run so the baseline and the swap can be read side by side.
var (
	summaryMu sync.Mutex
	summary   []string
)

func addSummary(table string) {
	summaryMu.Lock()
	defer summaryMu.Unlock()
	summary = append(summary, table)
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if len(summary) > 0 {
		fmt.Println("\n=== interop figures ===" + strings.Join(summary, ""))
	}
	if buildPath != "" {
		_ = os.RemoveAll(filepath.Dir(buildPath))
	}
	os.Exit(code)
}

// moduleRoot walks up from the working directory to the go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// member is one server of the ensemble: its files and ports, which stay
// the same whichever implementation runs on them, and its current process.
type member struct {
	id       int
	dir      string // zoo.cfg, zookeeper.log, zabkeeper.log
	observer bool
	opts     zkreal.Options // the zoo.cfg both implementations run with
	addr     string         // client address

	kind string // what runs now (kindZooKeeper, kindZabkeeper), "" for nothing
	zk   *zkreal.Server
	zab  *zabProc
}

func (m *member) name() string { return "s" + strconv.Itoa(m.id) }

// zabProc is a running zabkeeper server.
type zabProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// ensemble is a set of members whose peer links (quorum and election
// ports) go through netstub proxies: proxies[i][j] carries what member i
// sends to member j, so a partition is a cut of proxies.
type ensemble struct {
	t       *testing.T
	members []*member
	// proxies[i][j][0] forwards to j's quorum port, [1] to its election
	// port, for connections member i opens.
	proxies [][][2]*netstub.Proxy
}

// newEnsemble lays out n members (ports, proxies, zoo.cfg options) with
// ZooKeeper's default timing (tickTime 2000 ms, initLimit 10, syncLimit 5)
// and starts nothing. observers lists the ids that are observers; extra
// holds more zoo.cfg lines for every member.
func newEnsemble(t *testing.T, n int, observers map[int]bool, extra map[string]string) *ensemble {
	t.Helper()
	zkreal.Require(t)
	base := t.TempDir()
	if *flagKeep != "" {
		base = filepath.Join(*flagKeep, t.Name())
		if err := os.RemoveAll(base); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(base, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Logf("zoo.cfg, dataDir and log of server N kept in %s/N", base)
	}
	e := &ensemble{t: t, members: make([]*member, n), proxies: make([][][2]*netstub.Proxy, n)}
	t.Cleanup(e.shutdown)
	type ports struct{ client, quorum, election int }
	used := map[int]bool{}
	ps := make([]ports, n)
	for i := range ps {
		for _, p := range []*int{&ps[i].client, &ps[i].quorum, &ps[i].election} {
			for *p == 0 || used[*p] {
				port, err := zkreal.FreePort()
				if err != nil {
					t.Fatal(err)
				}
				*p = port
			}
			used[*p] = true
		}
	}
	portOf := func(addr string) int {
		_, p, _ := net.SplitHostPort(addr)
		port, _ := strconv.Atoi(p)
		return port
	}
	for i := range n {
		e.proxies[i] = make([][2]*netstub.Proxy, n)
		for j := range n {
			if i == j {
				continue
			}
			for k, target := range []int{ps[j].quorum, ps[j].election} {
				p, err := netstub.NewProxy("127.0.0.1:0", net.JoinHostPort("127.0.0.1", strconv.Itoa(target)))
				if err != nil {
					t.Fatalf("proxy s%d->s%d: %v", i+1, j+1, err)
				}
				if k == 0 {
					// A learner that decides on its leader before the
					// leader opens the quorum port retries the refused
					// connect for initLimit*tickTime (ZooKeeper's
					// Learner.connectToLeader, zabkeeper's zktcp); the
					// proxy, which accepts first, must not turn that into
					// a closed connection, which sends the learner back
					// to election in a newer round than its leader's.
					p.SetDialRetry(leaderConnectWait)
				}
				e.proxies[i][j][k] = p
			}
		}
	}
	for i := range n {
		var peers []zkreal.Peer
		for j := range n {
			p := zkreal.Peer{ID: j + 1, QuorumPort: ps[j].quorum, ElectionPort: ps[j].election, Observer: observers[j+1]}
			if j != i {
				p.QuorumPort = portOf(e.proxies[i][j][0].Addr())
				p.ElectionPort = portOf(e.proxies[i][j][1].Addr())
			}
			peers = append(peers, p)
		}
		dir := filepath.Join(base, strconv.Itoa(i+1))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		cfg := map[string]string{
			// tickTime 2000 allows session timeouts of 4-40 s; the clients
			// ask for sessionTimeout (30 s).
			"maxSessionTimeout": "40000",
		}
		for k, v := range extra {
			cfg[k] = v
		}
		e.members[i] = &member{
			id: i + 1, dir: dir, observer: observers[i+1],
			addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ps[i].client)),
			opts: zkreal.Options{
				DataDir: filepath.Join(dir, "data"), ClientPort: ps[i].client, Config: cfg,
				MyID: i + 1, Peers: peers,
			},
		}
	}
	return e
}

// addrs lists every member's client address.
func (e *ensemble) addrs() []string {
	out := make([]string, len(e.members))
	for i, m := range e.members {
		out[i] = m.addr
	}
	return out
}

// start runs kind on member m (its zoo.cfg and dataDir as they are).
func (e *ensemble) start(m *member, kind string) error {
	switch kind {
	case kindZooKeeper:
		s, err := zkreal.Launch(m.dir, m.opts)
		if err != nil {
			return fmt.Errorf("start ZooKeeper on %s: %w", m.name(), err)
		}
		m.zk = s
	case kindZabkeeper:
		bin := zabkeeperBinary(e.t)
		cfgPath, err := zkreal.WriteConfig(m.dir, m.opts)
		if err != nil {
			return fmt.Errorf("zoo.cfg of %s: %w", m.name(), err)
		}
		logFile, err := os.OpenFile(filepath.Join(m.dir, "zabkeeper.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		fmt.Fprintf(logFile, "=== interop: start at %s\n", time.Now().Format(time.RFC3339Nano))
		cmd := exec.Command(bin, append([]string{"server", "--config", cfgPath}, strings.Fields(*flagZabArgs)...)...)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if err := cmd.Start(); err != nil {
			logFile.Close()
			return fmt.Errorf("start zabkeeper on %s: %w", m.name(), err)
		}
		p := &zabProc{cmd: cmd, done: make(chan struct{})}
		go func() {
			_ = cmd.Wait()
			logFile.Close()
			close(p.done)
		}()
		m.zab = p
		// Wait until it answers on its client port (or exits).
		deadline := time.Now().Add(syncWait)
		for {
			if out, err := zkreal.FourLetter(m.addr, "ruok"); err == nil && strings.TrimSpace(out) == "imok" {
				break
			}
			select {
			case <-p.done:
				m.kind = kindZabkeeper
				return fmt.Errorf("zabkeeper on %s exited during start-up:\n%s", m.name(), m.logTail(3000))
			default:
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("zabkeeper on %s does not answer ruok within %v", m.name(), syncWait)
			}
			time.Sleep(50 * time.Millisecond)
		}
		// It logs its unknown keys before it serves: no need to wait two
		// minutes for an ensemble it cannot join.
		if h := m.hint(); h != "" {
			m.kind = kindZabkeeper
			return fmt.Errorf("zabkeeper on %s cannot join ZooKeeper servers: %s", m.name(), h)
		}
	default:
		return fmt.Errorf("unknown server kind %q", kind)
	}
	m.kind = kind
	return nil
}

// done is closed when m's process has exited (nil if nothing runs).
func (m *member) done() <-chan struct{} {
	switch {
	case m.kind == kindZooKeeper && m.zk != nil:
		return m.zk.Done()
	case m.kind == kindZabkeeper && m.zab != nil:
		return m.zab.done
	}
	return nil
}

// signal sends sig to m's process.
func (m *member) signal(sig syscall.Signal) {
	switch {
	case m.kind == kindZooKeeper && m.zk != nil:
		if sig == syscall.SIGKILL {
			m.zk.Stop()
		} else {
			_ = m.zk.Terminate(exitWait)
		}
	case m.kind == kindZabkeeper && m.zab != nil:
		_ = m.zab.cmd.Process.Signal(sig)
	}
}

// stop sends sig (SIGTERM: a graceful stop, as zkServer.sh stop; SIGKILL:
// a crash) and waits for the process to exit; it returns how long that
// took.
func (m *member) stop(sig syscall.Signal) (time.Duration, error) {
	done := m.done()
	if done == nil {
		return 0, nil
	}
	from := time.Now()
	if m.kind == kindZooKeeper {
		// zkreal waits itself; run it beside so the caller's clock runs.
		go m.signal(sig)
	} else {
		m.signal(sig)
	}
	select {
	case <-done:
	case <-time.After(exitWait + 5*time.Second):
		if m.zab != nil {
			_ = m.zab.cmd.Process.Kill()
		}
		return 0, fmt.Errorf("%s (%s) did not exit within %v of %v", m.name(), m.kind, exitWait, sig)
	}
	took := time.Since(from)
	m.kind = ""
	return took, nil
}

// logTail returns the end of the log of what runs (or ran last) on m,
// without ZooKeeper's line per four-letter word (the harness polls srvr).
func (m *member) logTail(n int) string {
	var b []byte
	if m.kind == kindZabkeeper || (m.kind == "" && m.zab != nil) {
		b, _ = os.ReadFile(filepath.Join(m.dir, "zabkeeper.log"))
	} else {
		b, _ = os.ReadFile(filepath.Join(m.dir, "zookeeper.log"))
	}
	lines := strings.SplitAfter(string(b), "\n")
	var out []string
	size := 0
	for i := len(lines) - 1; i >= 0 && size < n; i-- {
		l := lines[i]
		if strings.Contains(l, "NIOServerCnxn - Processing ") && strings.Contains(l, " command from ") {
			continue
		}
		out = append(out, l)
		size += len(l)
	}
	slices.Reverse(out)
	return strings.Join(out, "")
}

// hint names a known reason for a zabkeeper member's failure, "" if none
// is known.
func (m *member) hint() string {
	if m.zab == nil {
		return ""
	}
	b, _ := os.ReadFile(filepath.Join(m.dir, "zabkeeper.log"))
	if bytes.Contains(b, []byte(`msg="unknown configuration key" key=`+peerProtocolKey)) {
		return "this zabkeeper does not know " + peerProtocolKey + ": its peer links speak zabkeeper's own protocol, which ZooKeeper cannot read (issue 17's branches not merged?)"
	}
	return ""
}

// shutdown kills every process and closes every proxy.
func (e *ensemble) shutdown() {
	for _, m := range e.members {
		if m == nil {
			continue
		}
		if m.zk != nil {
			m.zk.Stop()
		}
		if m.zab != nil {
			_ = m.zab.cmd.Process.Kill()
			<-m.zab.done
		}
	}
	for _, row := range e.proxies {
		for _, ps := range row {
			for _, p := range ps {
				if p != nil {
					_ = p.Close()
				}
			}
		}
	}
}

// modes returns every member's srvr Mode ("" when down or not serving).
func (e *ensemble) modes() []string {
	out := make([]string, len(e.members))
	var wg sync.WaitGroup
	for i, m := range e.members {
		wg.Go(func() { out[i] = zkreal.SrvrMode(m.addr) })
	}
	wg.Wait()
	return out
}

// describe shows the members and their modes: "s1 ZooKeeper follower, ...".
func (e *ensemble) describe(modes []string) string {
	parts := make([]string, len(e.members))
	for i, m := range e.members {
		kind, mode := m.kind, modes[i]
		if kind == "" {
			kind = "down"
		}
		if mode == "" {
			mode = "-"
		}
		parts[i] = fmt.Sprintf("%s %s %s", m.name(), kind, mode)
	}
	return strings.Join(parts, ", ")
}

// leader returns the index of the member that says it leads (-1 if none
// or several).
func leaderOf(modes []string) int {
	l := -1
	for i, m := range modes {
		if m == "leader" {
			if l >= 0 {
				return -1
			}
			l = i
		}
	}
	return l
}

// waitInSync polls srvr until every member runs and serves: one leader,
// the others followers, or observers where configured. It returns the
// leader's index.
func (e *ensemble) waitInSync(d time.Duration) (int, error) {
	deadline := time.Now().Add(d)
	for {
		for _, m := range e.members {
			if done := m.done(); done != nil {
				select {
				case <-done:
					return -1, fmt.Errorf("%s (%s) exited:\n%s", m.name(), m.kind, m.logTail(4000))
				default:
				}
			}
		}
		modes := e.modes()
		if l := leaderOf(modes); l >= 0 {
			ok := true
			for i, m := range e.members {
				want := "follower"
				if m.observer {
					want = "observer"
				}
				if i != l && modes[i] != want {
					ok = false
				}
			}
			if ok {
				return l, nil
			}
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("the ensemble is not in sync after %v (%s)", d, e.describe(modes))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLeader polls srvr until a member other than not says it leads; it
// returns that member's index.
func (e *ensemble) waitLeader(not int, d time.Duration) (int, error) {
	deadline := time.Now().Add(d)
	for {
		modes := e.modes()
		for i, m := range modes {
			if i != not && m == "leader" {
				return i, nil
			}
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("no new leader after %v (modes %q)", d, modes)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// partition silences every peer link between members a and b (both ports,
// both directions): the proxies hold the bytes and keep the sockets open,
// so neither side sees a close, only silence, as when a network drops
// packets; heal restores all links.
func (e *ensemble) partition(a, b int) {
	for _, ps := range [][2]*netstub.Proxy{e.proxies[a][b], e.proxies[b][a]} {
		for _, p := range ps {
			p.CutOneWay(netstub.ToTarget)
			p.CutOneWay(netstub.FromTarget)
		}
	}
}

func (e *ensemble) heal() {
	for _, row := range e.proxies {
		for _, ps := range row {
			for _, p := range ps {
				if p != nil {
					p.Restore()
				}
			}
		}
	}
}
