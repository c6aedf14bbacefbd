package benchcompare

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-zookeeper/zk"
)

// System is one of the two servers compared.
type System string

// The systems.
const (
	ZooKeeper System = "zookeeper"
	Zabkeeper System = "zabkeeper"
)

// stopGrace is how long a server gets to exit on SIGTERM before SIGKILL.
const stopGrace = 15 * time.Second

// node is one server process of a cluster.
type node struct {
	id         int
	dir        string // its dataDir, zoo.cfg and log live here
	clientPort int
	cfgPath    string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the running process has exited
	started time.Time
}

// cluster is a standalone server or an ensemble of one system on loopback.
type cluster struct {
	sys   System
	opts  *Config
	nodes []*node
}

// newCluster lays out n servers of sys under dir: free loopback ports, a
// zoo.cfg each (the same settings for both systems) and myid files.
func newCluster(sys System, n int, dir string, opts *Config) (*cluster, error) {
	ports, err := freePorts(3 * n)
	if err != nil {
		return nil, err
	}
	c := &cluster{sys: sys, opts: opts}
	var servers strings.Builder
	if n > 1 {
		for i := range n {
			fmt.Fprintf(&servers, "server.%d=127.0.0.1:%d:%d\n", i+1, ports[3*i+1], ports[3*i+2])
		}
	}
	for i := range n {
		nd := &node{id: i + 1, dir: filepath.Join(dir, fmt.Sprintf("%s-%d", sys, i+1)), clientPort: ports[3*i]}
		if err := os.MkdirAll(filepath.Join(nd.dir, "data"), 0o755); err != nil {
			return nil, fmt.Errorf("benchcompare: %w", err)
		}
		cfg := fmt.Sprintf(`# written by zabkeeper bench compare: identical for ZooKeeper and zabkeeper
tickTime=%d
initLimit=10
syncLimit=5
dataDir=%s
clientPort=%d
clientPortAddress=127.0.0.1
maxClientCnxns=0
forceSync=yes
admin.enableServer=false
4lw.commands.whitelist=srvr,ruok
%s`, opts.TickTime, filepath.Join(nd.dir, "data"), nd.clientPort, servers.String())
		nd.cfgPath = filepath.Join(nd.dir, "zoo.cfg")
		if err := os.WriteFile(nd.cfgPath, []byte(cfg), 0o644); err != nil {
			return nil, fmt.Errorf("benchcompare: %w", err)
		}
		if n > 1 {
			if err := os.WriteFile(filepath.Join(nd.dir, "data", "myid"), []byte(strconv.Itoa(nd.id)+"\n"), 0o644); err != nil {
				return nil, fmt.Errorf("benchcompare: %w", err)
			}
		}
		c.nodes = append(c.nodes, nd)
	}
	return c, nil
}

// freePorts returns n distinct loopback TCP ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("benchcompare: free port: %w", err)
		}
		lns = append(lns, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// addrs are the client addresses.
func (c *cluster) addrs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(n.clientPort))
	}
	return out
}

// command builds the command line that runs one server.
func (c *cluster) command(n *node) *exec.Cmd {
	var cmd *exec.Cmd
	switch c.sys {
	case ZooKeeper:
		args := []string{"-Xmx" + c.opts.JavaHeap,
			"-Dzookeeper.log.dir=" + n.dir,
			"-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
			"-cp", c.opts.ZooKeeperClasspath,
			"org.apache.zookeeper.server.quorum.QuorumPeerMain", n.cfgPath}
		cmd = exec.Command(c.opts.Java, args...)
	case Zabkeeper:
		args := append(append([]string(nil), c.opts.Zabkeeper[1:]...), "server", "--config", n.cfgPath, "--log-level", "warn")
		cmd = exec.Command(c.opts.Zabkeeper[0], args...)
		cmd.Env = append(os.Environ(), c.opts.ZabkeeperEnv...)
	}
	cmd.Dir = n.dir
	// Its own process group, and killed with us if we die: no server
	// outlives the comparison, whatever happens to it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd
}

// start starts node i (0-based) and returns once the process runs.
func (c *cluster) start(i int) error {
	n := c.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return fmt.Errorf("benchcompare: %s %d already running", c.sys, n.id)
	}
	logf, err := os.OpenFile(filepath.Join(n.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("benchcompare: %w", err)
	}
	cmd := c.command(n)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("benchcompare: start %s %d: %w", c.sys, n.id, err)
	}
	n.cmd, n.exited, n.started = cmd, make(chan struct{}), time.Now()
	exited := n.exited
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	return nil
}

// startAll starts every node.
func (c *cluster) startAll() error {
	for i := range c.nodes {
		if err := c.start(i); err != nil {
			c.stopAll()
			return err
		}
	}
	return nil
}

// signal sends sig to node i's process group and waits up to grace for it
// to exit, then kills it.
func (c *cluster) signal(i int, sig syscall.Signal, grace time.Duration) {
	n := c.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	_ = syscall.Kill(-n.cmd.Process.Pid, sig)
	select {
	case <-n.exited:
	case <-time.After(grace):
		_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
		<-n.exited
	}
	n.cmd = nil
}

// kill SIGKILLs node i.
func (c *cluster) kill(i int) { c.signal(i, syscall.SIGKILL, stopGrace) }

// stop stops node i cleanly (SIGTERM, then SIGKILL after a grace period).
func (c *cluster) stop(i int) { c.signal(i, syscall.SIGTERM, stopGrace) }

// stopAll stops every node.
func (c *cluster) stopAll() {
	var wg sync.WaitGroup
	for i := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.stop(i)
		}()
	}
	wg.Wait()
}

// pid is node i's process id, 0 if it is not running.
func (c *cluster) pid(i int) int {
	n := c.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// running reports whether node i's process is alive.
func (c *cluster) running(i int) bool {
	n := c.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// logTail is the end of node i's log, for error messages.
func (c *cluster) logTail(i int) string {
	b, err := os.ReadFile(filepath.Join(c.nodes[i].dir, "server.log"))
	if err != nil {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// waitServing waits until every node grants a session and answers a read
// of path (with at least minChildren children), and returns for each node
// the time from its start until then.
func (c *cluster) waitServing(ctx context.Context, path string, minChildren int32) ([]time.Duration, error) {
	out := make([]time.Duration, len(c.nodes))
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.probe(ctx, i, path, minChildren); err != nil {
				errs[i] = fmt.Errorf("benchcompare: %s %d not serving: %w\n--- its log ends:\n%s", c.sys, n.id, err, c.logTail(i))
				return
			}
			n.mu.Lock()
			out[i] = time.Since(n.started)
			n.mu.Unlock()
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// probeHosts is a one-server zk.HostProvider that never asks go-zk for its
// one-second pause between connection rounds: the probe's dialer paces
// itself, so that start-to-serving is measured to ~20 ms, not to 1 s.
type probeHosts struct{ addr string }

func (p *probeHosts) Init([]string) error  { return nil }
func (p *probeHosts) Len() int             { return 1 }
func (p *probeHosts) Next() (string, bool) { return p.addr, false }
func (p *probeHosts) Connected()           {}

const probeInterval = 20 * time.Millisecond

// probeDialer dials at most every probeInterval and remembers its last
// connection, so that a handshake the server never answers can be cut off
// (a ZooKeeper still loading its database accepts connections and may leave
// them hanging, and go-zk would wait up to 20 session timeouts for them).
type probeDialer struct {
	mu        sync.Mutex
	last      net.Conn
	connected time.Time
	dialed    bool
}

func (d *probeDialer) dial(network, addr string, timeout time.Duration) (net.Conn, error) {
	d.mu.Lock()
	pause := d.dialed
	d.dialed = true
	d.mu.Unlock()
	if pause {
		time.Sleep(probeInterval)
	}
	conn, err := net.DialTimeout(network, addr, timeout)
	if err == nil {
		d.mu.Lock()
		d.last, d.connected = conn, time.Now()
		d.mu.Unlock()
	}
	return conn, err
}

// hanging reports whether the last connection has waited longer than
// budget without a session.
func (d *probeDialer) hanging(budget time.Duration) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last != nil && time.Since(d.connected) > budget
}

func (d *probeDialer) abandon() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.last != nil {
		d.last.Close()
	}
}

// session opens a go-zk session to node i, retrying every probeInterval
// while the port is closed and abandoning handshakes that hang (with a
// budget that doubles each time, so a slow but working server gets there).
func (c *cluster) session(ctx context.Context, i int) (*zk.Conn, error) {
	addr := c.addrs()[i]
	budget := 300 * time.Millisecond
	for {
		d := &probeDialer{}
		conn, events, err := zk.Connect([]string{addr}, 30*time.Second, zk.WithHostProvider(&probeHosts{addr}),
			zk.WithDialer(d.dial), zk.WithLogger(discardZK{}), zk.WithLogInfo(false))
		if err != nil {
			return nil, err
		}
		go func() {
			for range events {
			}
		}()
		for conn.State() != zk.StateHasSession && !d.hanging(budget) {
			if !c.running(i) {
				conn.Close()
				return nil, errors.New("the process exited")
			}
			select {
			case <-ctx.Done():
				conn.Close()
				return nil, fmt.Errorf("no session: %w", ctx.Err())
			case <-time.After(probeInterval / 4):
			}
		}
		if conn.State() == zk.StateHasSession {
			return conn, nil
		}
		d.abandon()
		conn.Close()
		budget = min(2*budget, 10*time.Second)
	}
}

// probe polls node i until a session on it reads path with at least
// minChildren children, or ctx ends or the process exits.
func (c *cluster) probe(ctx context.Context, i int, path string, minChildren int32) error {
	conn, err := c.session(ctx, i)
	if err != nil {
		return err
	}
	defer conn.Close()
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	var lastErr error
	for {
		ok, st, err := conn.Exists(path)
		switch {
		case err != nil:
			lastErr = err
		case !ok:
			lastErr = fmt.Errorf("%s does not exist", path)
		case st.NumChildren < minChildren:
			lastErr = fmt.Errorf("%s has %d children, want %d", path, st.NumChildren, minChildren)
		default:
			return nil
		}
		if !c.running(i) {
			return errors.New("the process exited")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), lastErr)
		case <-t.C:
		}
	}
}

type discardZK struct{}

func (discardZK) Printf(string, ...any) {}

// mode asks node i for its role with the srvr four-letter word: leader,
// follower, standalone, or "" if it does not answer.
func (c *cluster) mode(i int) string {
	return c.srvr(i, "Mode")
}

// srvr returns the value of one line of node i's srvr answer ("Mode",
// "Node count"), or "" if it does not answer.
func (c *cluster) srvr(i int, field string) string {
	conn, err := net.DialTimeout("tcp", c.addrs()[i], time.Second)
	if err != nil {
		return ""
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("srvr")); err != nil {
		return ""
	}
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+": "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// znodes is node i's znode count once it has applied every write before
// the call (a sync first).
func (c *cluster) znodes(ctx context.Context, i int) (int64, error) {
	conn, err := c.session(ctx, i)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if _, err := conn.Sync("/"); err != nil {
		return 0, fmt.Errorf("sync: %w", err)
	}
	v := c.srvr(i, "Node count")
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("srvr's node count %q: %w", v, err)
	}
	return n, nil
}

// leader polls until exactly one node says it leads and returns its index.
func (c *cluster) leader(ctx context.Context) (int, error) {
	for {
		leaders := []int{}
		for i := range c.nodes {
			if c.running(i) && c.mode(i) == "leader" {
				leaders = append(leaders, i)
			}
		}
		if len(leaders) == 1 {
			return leaders[0], nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("benchcompare: %s: no single leader (%d say they lead): %w", c.sys, len(leaders), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// rssBytes reads a process's resident set size from /proc/PID/status.
func rssBytes(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("benchcompare: rss: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			fields := strings.Fields(v)
			if len(fields) != 2 || fields[1] != "kB" {
				return 0, fmt.Errorf("benchcompare: rss: odd VmRSS line %q", sc.Text())
			}
			kb, err := strconv.ParseInt(fields[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("benchcompare: rss: %w", err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("benchcompare: rss: no VmRSS in /proc/%d/status", pid)
}
