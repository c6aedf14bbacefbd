package faults

import (
	"bytes"
	"errors"
	"fmt"
	"io"
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

	"github.com/zabkeeper/zabkeeper/netstub"
)

// Generous deadlines: the test must hold on two busy cores under -race.
const (
	startWait   = 60 * time.Second // a fresh ensemble elects a leader
	recoverWait = 60 * time.Second // after a fault is healed
	fourLWWait  = 2 * time.Second  // one srvr/ruok round trip
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildDir  string
)

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

// binary builds cmd/zabkeeper once per test binary.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		buildDir, buildErr = os.MkdirTemp("", "zabkeeper-faults-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "zabkeeper")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/zabkeeper")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// freePort returns a port nobody listened on a moment ago. The port may be
// taken again before the server binds it; start retries the whole ensemble
// when that happens.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	return port, ln.Close()
}

// logSink keeps a process's output in memory (tail shown on failure).
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	const maxKeep = 256 << 10
	if s.buf.Len() > maxKeep {
		rest := s.buf.Bytes()[s.buf.Len()-maxKeep/2:]
		s.buf = *bytes.NewBuffer(append([]byte(nil), rest...))
	}
	return s.buf.Write(p)
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
	cfgPath    string
	clientAddr string
	quorumPort int
	// electionPort is required by the server.N syntax and unused by
	// zabkeeper (election shares the quorum port).
	electionPort int
	log          *logSink

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	stopped bool // SIGSTOPped
	starts  int
}

// cluster is an ensemble of real processes whose peer links each go through
// a netstub.Proxy: proxies[i][j] carries what server i sends to server j.
type cluster struct {
	t       *testing.T
	bin     string
	nodes   []*node
	proxies [][]*netstub.Proxy
}

// startCluster starts an n-server ensemble and waits until it serves. A
// port race (a freePort taken before the server bound it) shows as an early
// exit or no leader; the whole start is then retried with new ports.
func startCluster(t *testing.T, n int) *cluster {
	t.Helper()
	bin := binary(t)
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		c, err := tryStart(t, bin, n)
		if err == nil {
			return c
		}
		lastErr = err
		t.Logf("ensemble start attempt %d failed: %v", attempt, err)
	}
	t.Fatalf("ensemble did not start: %v", lastErr)
	return nil
}

func tryStart(t *testing.T, bin string, n int) (*cluster, error) {
	c := &cluster{t: t, bin: bin, nodes: make([]*node, n), proxies: make([][]*netstub.Proxy, n)}
	ok := false
	defer func() {
		if !ok {
			c.shutdown()
		}
	}()
	base := t.TempDir()
	for i := range n {
		qp, err := freePort()
		if err != nil {
			return nil, err
		}
		cp, err := freePort()
		if err != nil {
			return nil, err
		}
		ep, err := freePort()
		if err != nil {
			return nil, err
		}
		c.nodes[i] = &node{
			id: i + 1, dir: filepath.Join(base, strconv.Itoa(i+1)), quorumPort: qp, electionPort: ep,
			clientAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(cp)), log: &logSink{},
		}
	}
	for i := range n {
		c.proxies[i] = make([]*netstub.Proxy, n)
		for j := range n {
			if i == j {
				continue
			}
			p, err := netstub.NewProxy("127.0.0.1:0", net.JoinHostPort("127.0.0.1", strconv.Itoa(c.nodes[j].quorumPort)))
			if err != nil {
				return nil, err
			}
			c.proxies[i][j] = p
		}
	}
	for i, nd := range c.nodes {
		if err := os.MkdirAll(filepath.Join(nd.dir, "data"), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(nd.dir, "data", "myid"), []byte(strconv.Itoa(nd.id)+"\n"), 0o644); err != nil {
			return nil, err
		}
		var b strings.Builder
		fmt.Fprintf(&b, "tickTime=200\ninitLimit=20\nsyncLimit=10\ndataDir=%s\n", filepath.Join(nd.dir, "data"))
		_, port, _ := net.SplitHostPort(nd.clientAddr)
		fmt.Fprintf(&b, "clientPort=%s\nclientPortAddress=127.0.0.1\n4lw.commands.whitelist=srvr,ruok\n", port)
		b.WriteString("maxClientCnxns=0\nmaxSessionTimeout=60000\n")
		for j, other := range c.nodes {
			qp := other.quorumPort
			if j != i {
				_, ps, _ := net.SplitHostPort(c.proxies[i][j].Addr())
				qp, _ = strconv.Atoi(ps)
			}
			fmt.Fprintf(&b, "server.%d=127.0.0.1:%d:%d\n", other.id, qp, other.electionPort)
		}
		nd.cfgPath = filepath.Join(nd.dir, "zoo.cfg")
		if err := os.WriteFile(nd.cfgPath, []byte(b.String()), 0o644); err != nil {
			return nil, err
		}
	}
	t.Cleanup(c.shutdown)
	for _, nd := range c.nodes {
		if err := c.spawn(nd); err != nil {
			return nil, err
		}
	}
	if _, err := c.waitServing(startWait); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// spawn starts nd's process on its (existing) dataDir.
func (c *cluster) spawn(nd *node) error {
	cmd := exec.Command(c.bin, "server", "--config", nd.cfgPath)
	cmd.Stdout, cmd.Stderr = nd.log, nd.log
	if err := cmd.Start(); err != nil {
		return err
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

// kill SIGKILLs nd's process (resuming nothing) and waits for it to end.
func (nd *node) kill() {
	nd.mu.Lock()
	cmd, exited := nd.cmd, nd.exited
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
		return errors.New("not running")
	}
	nd.stopped = sig == syscall.SIGSTOP
	return nd.cmd.Process.Signal(sig)
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

// healAll restores every proxy and resumes stopped processes.
func (c *cluster) healAll() {
	for _, row := range c.proxies {
		for _, p := range row {
			if p != nil {
				p.Restore()
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

func srvrMode(addr string) string {
	for _, line := range strings.Split(fourLetter(addr, "srvr"), "\n") {
		if rest, ok := strings.CutPrefix(line, "Mode: "); ok {
			return strings.TrimSpace(rest)
		}
	}
	return ""
}

// waitServing polls srvr until exactly one member leads and all others
// follow; it returns the leader's index.
func (c *cluster) waitServing(d time.Duration) (int, error) {
	deadline := time.Now().Add(d)
	var modes []string
	for {
		modes = modes[:0]
		leader, followers := -1, 0
		for i, nd := range c.nodes {
			if !nd.alive() {
				return -1, fmt.Errorf("server %d exited:\n%s", nd.id, nd.log.tail(4000))
			}
			m := srvrMode(nd.clientAddr)
			modes = append(modes, m)
			switch m {
			case "leader":
				if leader >= 0 {
					leader = -2
				} else if leader == -1 {
					leader = i
				}
			case "follower":
				followers++
			}
		}
		if leader >= 0 && followers == len(c.nodes)-1 {
			return leader, nil
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("no serving ensemble within %v (modes %q)", d, modes)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// leader returns the index of the member srvr reports as leader, or -1.
func (c *cluster) leader() int {
	for i, nd := range c.nodes {
		if srvrMode(nd.clientAddr) == "leader" {
			return i
		}
	}
	return -1
}
