package faults

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zabkeeper/zabkeeper/internal/zkreal"
	"github.com/zabkeeper/zabkeeper/netstub"
	"github.com/zabkeeper/zabkeeper/server/tlsconf/tlstest"
)

// Generous deadlines: the test must hold on two busy cores under -race.
const (
	startWait   = 60 * time.Second // a fresh ensemble elects a leader
	recoverWait = 60 * time.Second // after a fault is healed
	fourLWWait  = 2 * time.Second  // one mntr/srvr round trip
)

// The ensemble's timing (zoo.cfg): followers and the leader give up on a
// silent peer after syncLimit*tickTime.
const (
	tickTime  = 200 * time.Millisecond
	initLimit = 20
	syncLimit = 10
	// syncTimeout is syncLimit*tickTime, the silence a link survives.
	syncTimeout = syncLimit * tickTime
)

var (
	buildsMu sync.Mutex
	builds   = map[string]*build{} // by build tags
	buildDir string
)

// build is one zabkeeper binary built for the run.
type build struct {
	once sync.Once
	path string
	err  error
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

// faultsBinary runs a zabkeeper built elsewhere instead of building one:
// an older or patched server (a regression check on the server as it was
// before a fix) under the same harness.
var faultsBinary = flag.String("faults.binary", "",
	"run this zabkeeper binary instead of building cmd/zabkeeper (not with -faults.plant-bug)")

// buildBinary builds cmd/zabkeeper once per test binary and set of build
// tags ("" for none; "simbugs" for a binary that can plant bugs), or
// returns -faults.binary.
func buildBinary(t *testing.T, tags string) string {
	t.Helper()
	if *faultsBinary != "" {
		if tags != "" {
			t.Fatalf("-faults.binary cannot be built with -tags %s", tags)
		}
		return *faultsBinary
	}
	buildsMu.Lock()
	b := builds[tags]
	if b == nil {
		b = &build{}
		builds[tags] = b
	}
	buildsMu.Unlock()
	b.once.Do(func() { b.path, b.err = goBuild(tags) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

func goBuild(tags string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	buildsMu.Lock()
	if buildDir == "" {
		buildDir, err = os.MkdirTemp("", "zabkeeper-faults-")
	}
	dir := buildDir
	buildsMu.Unlock()
	if err != nil {
		return "", fmt.Errorf("build directory: %w", err)
	}
	name, args := "zabkeeper", []string{"build"}
	if tags != "" {
		name += "-" + strings.ReplaceAll(tags, ",", "-")
		args = append(args, "-tags", tags)
	}
	path := filepath.Join(dir, name)
	cmd := exec.Command("go", append(args, "-o", path, "./cmd/zabkeeper")...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return path, nil
}

// freePort returns a loopback port nobody listens on, drawn below the
// kernel's ephemeral range: the proxies (listening on port 0) and every
// outgoing connection take their ports from that range, so they cannot
// grab a server's port while it is down between a kill and its restart.
// Another program may still take it; start retries the whole ensemble when
// that happens.
func freePort() (int, error) {
	lo := ephemeralLow()
	for range 200 {
		port := minPort + rand.IntN(lo-minPort)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		return port, ln.Close()
	}
	return 0, fmt.Errorf("no free port in [%d, %d)", minPort, lo)
}

// minPort is the lowest port freePort draws.
const minPort = 10000

// ephemeralLow is the first port of the kernel's ephemeral range
// (Linux's net.ipv4.ip_local_port_range; 32768 if unreadable).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if lo, err := strconv.Atoi(f[0]); err == nil && lo > minPort+1000 {
				return lo
			}
		}
	}
	return 32768
}

// logSink keeps a process's output in memory (tail shown on failure).
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	const maxKeep = 1 << 20
	if s.buf.Len() > maxKeep {
		rest := s.buf.Bytes()[s.buf.Len()-maxKeep/2:]
		s.buf = *bytes.NewBuffer(append([]byte(nil), rest...))
	}
	return s.buf.Write(p)
}

// all returns everything kept (the last 512 KiB to 1 MiB of output).
func (s *logSink) all() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.buf.Bytes()...)
}

// sinceLastStart returns the output after the harness's last start marker
// (see spawn).
func (s *logSink) sinceLastStart() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buf.Bytes()
	if i := bytes.LastIndex(b, []byte(startMarker)); i >= 0 {
		b = b[i:]
	}
	return string(b)
}

func (s *logSink) tail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buf.Bytes()
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// node is one ensemble member: its files, ports and current process.
type node struct {
	id         int
	dir        string
	dataDir    string
	cfgPath    string
	clientAddr string
	quorumPort int
	// electionPort is ZooKeeper's election port (peerProtocol=zookeeper,
	// the default, and Apache ZooKeeper).
	electionPort int
	log          *logSink
	// baseCfg is zoo.cfg without its server.N lines (reconfig mode: a
	// spare's zoo.cfg is written from it when it is first added).
	baseCfg string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	stopped bool // SIGSTOPped
	starts  int
}

// cluster is an ensemble of real processes whose peer links each go through
// a netstub.Proxy: proxies[i][j] carries the connections server i dials to
// server j, on both of its peer ports.
type cluster struct {
	bin     string
	java    bool   // Apache ZooKeeper processes (ensembleOptions.java)
	bug     string // planted in every server (--plant-bug), "" for none
	nodes   []*node
	proxies [][]*peerProxy
	// rc is the reconfig mode's state (nil without -faults.reconfig).
	rc *reconfigState
}

// peerProxy is the pair of proxies in front of one server's quorum and
// election ports for the connections one other server dials. ZooKeeper's
// protocol writes both ways on a connection (a leader on its learner's, the
// smaller id on the larger id's election connection), so what server i
// sends server j crosses proxies[i][j] toward the target and proxies[j][i]
// back from it: holdSends and delaySends act on both.
type peerProxy struct{ quorum, election *netstub.Proxy }

func (p *peerProxy) each(f func(*netstub.Proxy)) {
	for _, x := range []*netstub.Proxy{p.quorum, p.election} {
		if x != nil {
			f(x)
		}
	}
}

// Cut closes both ports' connections and refuses new ones until Restore.
func (p *peerProxy) Cut() { p.each((*netstub.Proxy).Cut) }

// Restore undoes Cut and the one-way cuts.
func (p *peerProxy) Restore() { p.each((*netstub.Proxy).Restore) }

// SetDelay delays both directions of both ports.
func (p *peerProxy) SetDelay(d time.Duration) { p.each(func(x *netstub.Proxy) { x.SetDelay(d) }) }

// Close closes both proxies.
func (p *peerProxy) Close() error {
	var err error
	p.each(func(x *netstub.Proxy) { err = errors.Join(err, x.Close()) })
	return err
}

// holdSends holds back what server i sends server j (the bytes flow again
// at healAll), on every connection between them whoever dialed it.
func (c *cluster) holdSends(i, j int) {
	c.proxies[i][j].each(func(x *netstub.Proxy) { x.CutOneWay(netstub.ToTarget) })
	c.proxies[j][i].each(func(x *netstub.Proxy) { x.CutOneWay(netstub.FromTarget) })
}

// delaySends delays what server i sends server j by d.
func (c *cluster) delaySends(i, j int, d time.Duration) {
	c.proxies[i][j].each(func(x *netstub.Proxy) { x.SetDelayOneWay(netstub.ToTarget, d) })
	c.proxies[j][i].each(func(x *netstub.Proxy) { x.SetDelayOneWay(netstub.FromTarget, d) })
}

// startCluster starts an n-server ensemble and waits until it serves. A
// port race (a freePort taken before the server bound it) shows as an early
// exit or no leader; the whole start is then retried with new ports. With
// bug set, the binary is built with -tags simbugs and every server runs
// with that bug planted.
func startCluster(t *testing.T, n int, bug string) *cluster {
	t.Helper()
	return startClusterTimed(t, n, bug, fastTiming)
}

// ensembleOptions say how an ensemble is configured and what it runs.
type ensembleOptions struct {
	// tickTime, initLimit and syncLimit are written to zoo.cfg; zero
	// leaves a key out, so the server's default applies.
	tickTime             time.Duration
	initLimit, syncLimit int
	// java runs Apache ZooKeeper (Debian's, QuorumPeerMain) instead of
	// zabkeeper, on the same zoo.cfg, for comparison figures.
	java bool
	// reconfig runs the ensemble with reconfigEnabled=true and spares
	// extra servers outside it (see reconfig_test.go): the peer links go
	// straight to the servers, without proxies, since a reconfiguration
	// gives every member the same addresses of the others.
	reconfig bool
	spares   int
}

// fastTiming is the fault runs' timing: faults heal within seconds.
var fastTiming = ensembleOptions{tickTime: tickTime, initLimit: initLimit, syncLimit: syncLimit}

// defaultTiming is what users run: ZooKeeper's sample zoo.cfg (tickTime
// 2000 ms, initLimit 10, syncLimit 5), which are zabkeeper's defaults too.
// Apache ZooKeeper has no default for initLimit and syncLimit: a zoo.cfg of
// an ensemble must name them.
var defaultTiming = ensembleOptions{tickTime: 2000 * time.Millisecond, initLimit: 10, syncLimit: 5}

// startClusterTimed is startCluster with the given options.
func startClusterTimed(t *testing.T, n int, bug string, tm ensembleOptions) *cluster {
	t.Helper()
	tags := ""
	if bug != "" {
		tags = "simbugs"
	}
	bin := buildBinary(t, tags)
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		c, err := tryStart(t, bin, bug, n, tm)
		if err == nil {
			return c
		}
		lastErr = err
		t.Logf("ensemble start attempt %d failed: %v", attempt, err)
	}
	t.Fatalf("ensemble did not start: %v", lastErr)
	return nil
}

// faultsQuorumTLS runs the peer links over mutual TLS (sslQuorum=true with
// a CA made for the run); the proxies forward the encrypted bytes as they
// are, so every fault works the same.
var faultsQuorumTLS = flag.Bool("faults.quorum-tls", false,
	"run the ensemble's peer links over mutual TLS (sslQuorum=true, PEM certificates made for the run)")

func tryStart(t *testing.T, bin, bug string, n int, tm ensembleOptions) (*cluster, error) {
	var quorumCA *tlstest.CA
	if *faultsQuorumTLS && !tm.java {
		quorumCA = tlstest.NewCA(t, "zabkeeper faults quorum CA")
		t.Logf("peer links over mutual TLS (sslQuorum=true, ssl.quorum.hostnameVerification on)")
	}
	voters := n
	n += tm.spares
	c := &cluster{bin: bin, bug: bug, java: tm.java, nodes: make([]*node, n), proxies: make([][]*peerProxy, n)}
	if tm.reconfig {
		c.rc = newReconfigState(voters)
	}
	ok := false
	defer func() {
		if !ok {
			c.shutdown()
		}
	}()
	base := t.TempDir()
	used := map[int]bool{}
	for i := range n {
		var ports [3]int
		for k := range ports {
			for ports[k] == 0 || used[ports[k]] {
				p, err := freePort()
				if err != nil {
					return nil, fmt.Errorf("free port: %w", err)
				}
				ports[k] = p
			}
			used[ports[k]] = true
		}
		qp, cp, ep := ports[0], ports[1], ports[2]
		c.nodes[i] = &node{
			id: i + 1, dir: filepath.Join(base, strconv.Itoa(i+1)), quorumPort: qp, electionPort: ep,
			clientAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(cp)), log: &logSink{},
		}
	}
	for i := range n {
		c.proxies[i] = make([]*peerProxy, n)
		for j := range n {
			if i == j || c.rc != nil {
				continue
			}
			pp := &peerProxy{}
			c.proxies[i][j] = pp
			for _, port := range []struct {
				p   **netstub.Proxy
				num int
			}{{&pp.quorum, c.nodes[j].quorumPort}, {&pp.election, c.nodes[j].electionPort}} {
				p, err := netstub.NewProxy("127.0.0.1:0", net.JoinHostPort("127.0.0.1", strconv.Itoa(port.num)))
				if err != nil {
					return nil, fmt.Errorf("proxy %d->%d: %w", i+1, j+1, err)
				}
				*port.p = p
			}
		}
	}
	for i, nd := range c.nodes {
		nd.dataDir = filepath.Join(nd.dir, "data")
		if err := os.MkdirAll(nd.dataDir, 0o755); err != nil {
			return nil, fmt.Errorf("data dir of server %d: %w", nd.id, err)
		}
		if err := os.WriteFile(filepath.Join(nd.dataDir, "myid"), []byte(strconv.Itoa(nd.id)+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("myid of server %d: %w", nd.id, err)
		}
		var b strings.Builder
		if tm.tickTime > 0 {
			fmt.Fprintf(&b, "tickTime=%d\n", tm.tickTime.Milliseconds())
		}
		if tm.initLimit > 0 {
			fmt.Fprintf(&b, "initLimit=%d\n", tm.initLimit)
		}
		if tm.syncLimit > 0 {
			fmt.Fprintf(&b, "syncLimit=%d\n", tm.syncLimit)
		}
		fmt.Fprintf(&b, "dataDir=%s\n", nd.dataDir)
		_, port, _ := net.SplitHostPort(nd.clientAddr)
		fmt.Fprintf(&b, "clientPort=%s\nclientPortAddress=127.0.0.1\n4lw.commands.whitelist=srvr,mntr,ruok\n", port)
		// 180 s: the idle-gap sessions need go-zk to ping less often than
		// every 30 s (it pings every third of the session timeout).
		b.WriteString("maxClientCnxns=0\nmaxSessionTimeout=180000\n")
		if tm.java {
			b.WriteString("admin.enableServer=false\n") // its port 8080 would clash
		} else {
			// The admin listener on a free loopback port: the default 7181 is
			// one port for every process on the host.
			b.WriteString("admin.serverAddress=127.0.0.1\nadmin.serverPort=0\n")
		}
		if quorumCA != nil {
			b.WriteString(quorumCA.QuorumCfg(t, nd.dir, nd.id))
		}
		nd.cfgPath = filepath.Join(nd.dir, "zoo.cfg")
		if c.rc != nil {
			// Every member has the same server.N lines; a spare's zoo.cfg is
			// written when it is first added (reconfig_test.go).
			b.WriteString(reconfigCfgKeys)
			nd.baseCfg = b.String()
			if i >= voters {
				continue
			}
			for _, other := range c.nodes[:voters] {
				b.WriteString(other.serverLine(roleParticipant) + "\n")
			}
			if err := os.WriteFile(nd.cfgPath, []byte(b.String()), 0o644); err != nil {
				return nil, fmt.Errorf("zoo.cfg of server %d: %w", nd.id, err)
			}
			continue
		}
		for j, other := range c.nodes {
			qp, ep := other.quorumPort, other.electionPort
			if j != i {
				qp, ep = portOf(c.proxies[i][j].quorum.Addr()), portOf(c.proxies[i][j].election.Addr())
			}
			fmt.Fprintf(&b, "server.%d=127.0.0.1:%d:%d\n", other.id, qp, ep)
		}
		if err := os.WriteFile(nd.cfgPath, []byte(b.String()), 0o644); err != nil {
			return nil, fmt.Errorf("zoo.cfg of server %d: %w", nd.id, err)
		}
	}
	t.Cleanup(c.shutdown)
	for _, nd := range c.nodes[:voters] {
		if err := c.spawn(nd); err != nil {
			return nil, err
		}
	}
	if _, err := c.waitRecovery(time.Now(), startWait, nil); err != nil {
		return nil, fmt.Errorf("first election: %w", err)
	}
	ok = true
	return c, nil
}

// portOf returns the port of a host:port address.
func portOf(addr string) int {
	_, ps, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(ps)
	return p
}

// startMarker opens the harness's line before each start of a server in
// its log.
const startMarker = "=== harness: start "

// spawn starts nd's process on its (existing) dataDir.
func (c *cluster) spawn(nd *node) error {
	args := []string{"server", "--config", nd.cfgPath}
	if c.bug != "" {
		args = append(args, "--plant-bug", c.bug)
	}
	cmd := exec.Command(c.bin, args...)
	if c.java {
		cmd = zkreal.ToolCommand(context.Background(), "org.apache.zookeeper.server.quorum.QuorumPeerMain", nd.cfgPath)
	}
	cmd.Stdout, cmd.Stderr = nd.log, nd.log
	fmt.Fprintf(nd.log, "%s%d of server %d at %s\n", startMarker, nd.starts+1, nd.id, time.Now().Format(time.RFC3339Nano))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start server %d: %w", nd.id, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	nd.mu.Lock()
	nd.cmd, nd.exited, nd.stopped = cmd, exited, false
	nd.starts++
	nd.mu.Unlock()
	return nil
}

func (nd *node) alive() bool {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd == nil {
		return false
	}
	select {
	case <-nd.exited:
		return false
	default:
		return true
	}
}

// kill SIGKILLs nd's process (stopped or not) and waits for it to end.
func (nd *node) kill() {
	nd.mu.Lock()
	cmd, exited := nd.cmd, nd.exited
	nd.stopped = false
	nd.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

func (nd *node) signal(sig syscall.Signal) error {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd == nil {
		return fmt.Errorf("server %d: not running", nd.id)
	}
	nd.stopped = sig == syscall.SIGSTOP
	if err := nd.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("server %d: %v: %w", nd.id, sig, err)
	}
	return nil
}

// wipe deletes everything in nd's data directory but the myid file: the
// server restarts with no log, no snapshot and no epochs. The process must
// be dead.
func (nd *node) wipe() error {
	if nd.alive() {
		return fmt.Errorf("server %d: wipe of a running server", nd.id)
	}
	entries, err := os.ReadDir(nd.dataDir)
	if err != nil {
		return fmt.Errorf("wipe server %d: %w", nd.id, err)
	}
	for _, e := range entries {
		if e.Name() == "myid" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(nd.dataDir, e.Name())); err != nil {
			return fmt.Errorf("wipe server %d: %w", nd.id, err)
		}
	}
	fmt.Fprintf(nd.log, "=== harness: data directory of server %d wiped (%d entries) at %s\n", nd.id, len(entries)-1, time.Now().Format(time.RFC3339Nano))
	return nil
}

// shutdown kills every process and closes every proxy. Idempotent.
func (c *cluster) shutdown() {
	for _, nd := range c.nodes {
		if nd != nil {
			nd.kill()
		}
	}
	for _, row := range c.proxies {
		for _, p := range row {
			if p != nil {
				_ = p.Close()
			}
		}
	}
}

// healAll restores every proxy (cuts and delays) and resumes stopped
// processes.
func (c *cluster) healAll() {
	for _, row := range c.proxies {
		for _, p := range row {
			if p != nil {
				p.Restore()
				p.SetDelay(0)
			}
		}
	}
	for _, nd := range c.nodes {
		nd.mu.Lock()
		stopped := nd.stopped
		nd.mu.Unlock()
		if stopped {
			_ = nd.signal(syscall.SIGCONT)
		}
	}
}

func (c *cluster) clientAddrs() []string {
	out := make([]string, len(c.nodes))
	for i, nd := range c.nodes {
		out[i] = nd.clientAddr
	}
	return out
}

// quorum is the number of voters a majority needs.
func (c *cluster) quorum() int { return len(c.nodes)/2 + 1 }

// fourLetter sends a four-letter word and returns the reply ("" on error).
func fourLetter(addr, word string) string {
	nc, err := net.DialTimeout("tcp", addr, fourLWWait)
	if err != nil {
		return ""
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(fourLWWait))
	if _, err := io.WriteString(nc, word); err != nil {
		return ""
	}
	out, _ := io.ReadAll(nc)
	return string(out)
}

// nodeStatus is what one server's mntr said. A server that is down,
// stopped or not serving (looking, or a learner not yet synced) has an
// empty mode.
type nodeStatus struct {
	mode   string // "leader", "follower" or ""
	zxid   int64  // last applied zxid
	epoch  int64
	synced int // leader only: followers in the broadcast phase
}

func parseMntr(out string) nodeStatus {
	var st nodeStatus
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, "\t")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "zk_server_state":
			st.mode = v
		case "zk_zxid":
			st.zxid, _ = strconv.ParseInt(v, 10, 64)
		case "zk_epoch":
			st.epoch, _ = strconv.ParseInt(v, 10, 64)
		case "zk_synced_followers":
			st.synced, _ = strconv.Atoi(v)
		}
	}
	return st
}

// srvrZxid reads the zxid and its epoch from srvr's "Zxid: 0x..." line.
func srvrZxid(out string) (zxid, epoch int64) {
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "Zxid: "); ok {
			z, err := strconv.ParseInt(strings.TrimPrefix(strings.TrimSpace(v), "0x"), 16, 64)
			if err == nil {
				return z, z >> 32
			}
		}
	}
	return 0, 0
}

// statuses asks every server's mntr, in parallel (a stopped server costs
// one fourLWWait, not one per server).
func (c *cluster) statuses() []nodeStatus {
	out := make([]nodeStatus, len(c.nodes))
	var wg sync.WaitGroup
	for i, nd := range c.nodes {
		wg.Go(func() {
			out[i] = parseMntr(fourLetter(nd.clientAddr, "mntr"))
			if c.java && out[i].mode != "" {
				// Apache ZooKeeper's mntr has neither zk_zxid nor
				// zk_epoch; srvr has the zxid.
				out[i].zxid, out[i].epoch = srvrZxid(fourLetter(nd.clientAddr, "srvr"))
			}
		})
	}
	wg.Wait()
	return out
}

// ensembleView summarises one round of statuses.
type ensembleView struct {
	// leader is the index of the server leading the highest epoch, -1 if
	// none serves. An old leader cut off from its followers (or just
	// resumed from SIGSTOP) still says "leader" of its older epoch until it
	// notices, after syncTimeout: it is not counted.
	leader    int
	followers int  // servers following the leader's epoch
	allSynced bool // one leader, every other server following it
	quorum    bool // the leader serves with a quorum (itself included) following
	// twoLeaders names two servers serving as leaders of one epoch, which
	// ZAB forbids.
	twoLeaders string
	modes      []string
}

func (c *cluster) view(st []nodeStatus) ensembleView {
	if c.rc != nil {
		return c.viewMembers(st, c.membership())
	}
	v := ensembleView{leader: -1}
	leaders := 0
	for i, s := range st {
		v.modes = append(v.modes, fmt.Sprintf("s%d:%s", c.nodes[i].id, orDash(s.mode)))
		if s.mode != "leader" {
			continue
		}
		leaders++
		switch {
		case v.leader < 0 || s.epoch > st[v.leader].epoch:
			v.leader = i
		case s.epoch == st[v.leader].epoch:
			v.twoLeaders = fmt.Sprintf("s%d and s%d both lead epoch %d", c.nodes[v.leader].id, c.nodes[i].id, s.epoch)
		}
	}
	if v.leader < 0 {
		return v
	}
	l := st[v.leader]
	for i, s := range st {
		// Apache ZooKeeper's follower shows an older epoch in its zxid until
		// it applies a txn of the new one: its epoch cannot be compared.
		if i != v.leader && s.mode == "follower" && (s.epoch == l.epoch || c.java) {
			v.followers++
		}
	}
	need := c.quorum() - 1
	v.quorum = v.followers >= need && l.synced >= need
	v.allSynced = leaders == 1 && v.followers == len(st)-1 && l.synced == len(st)-1
	return v
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// errTwoLeaders is the error of waitRecovery when two servers serve as
// leaders of one epoch: a safety violation (ZAB allows one leader per
// epoch), unlike a slow or failed recovery.
var errTwoLeaders = errors.New("two leaders")

// recovery is how long the ensemble took to serve again after a fault was
// healed.
type recovery struct {
	// quorum: healed -> a serving leader with a quorum following.
	quorum time.Duration
	// full: healed -> every server in sync with that leader (and extra,
	// if given, true).
	full   time.Duration
	leader int // index of the leader at the end
}

// waitRecovery polls mntr until every server follows one serving leader
// and extra (if not nil) holds; d bounds the wait from healed on.
func (c *cluster) waitRecovery(healed time.Time, d time.Duration, extra func([]nodeStatus, ensembleView) bool) (recovery, error) {
	deadline := healed.Add(d)
	r := recovery{quorum: -1, leader: -1}
	var last ensembleView
	for {
		for _, nd := range c.mustRun() {
			if !nd.alive() {
				return r, fmt.Errorf("server %d exited:\n%s", nd.id, nd.log.tail(4000))
			}
		}
		st := c.statuses()
		v := c.view(st)
		now := time.Since(healed)
		if v.twoLeaders != "" {
			return r, fmt.Errorf("%w: %s (modes %s)", errTwoLeaders, v.twoLeaders, strings.Join(v.modes, " "))
		}
		if v.quorum && r.quorum < 0 {
			r.quorum = now
		}
		if v.allSynced && (extra == nil || extra(st, v)) {
			r.full, r.leader = now, v.leader
			return r, nil
		}
		last = v
		if time.Now().After(deadline) {
			return r, fmt.Errorf("no ensemble in sync within %v (modes %s)", d, strings.Join(last.modes, " "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// leader returns the index of the server leading the highest epoch, or -1.
func (c *cluster) leader() int {
	return c.view(c.statuses()).leader
}
