// Package zkreal runs Debian's Apache ZooKeeper 3.8 (a standalone
// ZooKeeperServerMain in a JVM, or with Options.MyID a QuorumPeerMain
// member of an ensemble) on a loopback port over a data directory the test
// chooses, so tests can hand files between zabkeeper and ZooKeeper and run
// mixed ensembles, and runs ZooKeeper's own tools (SnapshotFormatter,
// TxnLogToolkit, ...) on files. It skips nothing: when Java or ZooKeeper is
// not installed the test fails saying what to install (.ci/run installs
// Debian's zookeeper package).
package zkreal

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Jar is Debian's ZooKeeper server jar; its manifest names its dependencies
// (jute, snappy-java, netty, ...).
const Jar = "/usr/share/java/zookeeper.jar"

// slf4jSimple makes ZooKeeper log to standard error (tests read the log).
const slf4jSimple = "/usr/share/java/slf4j-simple.jar"

// nettyCodec is Netty's codec jar, which zookeeper.jar's manifest leaves
// out although ZooKeeper's quorum TLS needs it: UnifiedServerSocket tells
// TLS from plain text with Netty's SslHandler, a ByteToMessageDecoder.
// Without it a server with sslQuorum=true or portUnification=true loses
// its election listener at the first connection (NoClassDefFoundError,
// swallowed by an executor: "Leaving listener").
const nettyCodec = "/usr/share/java/netty-codec.jar"

// Classpath is what the JVM runs with: the server jar, Netty's codec
// (quorum TLS) and a logger.
const Classpath = Jar + ":" + nettyCodec + ":" + slf4jSimple

// startTimeout bounds a JVM start on a busy machine.
const startTimeout = 90 * time.Second

// Require fails the test unless Java and Debian's ZooKeeper are installed.
func Require(t testing.TB) {
	t.Helper()
	if err := Check(); err != nil {
		t.Fatalf("zkreal: %v", err)
	}
}

// Check reports what is missing to run ZooKeeper, or nil.
func Check() error {
	if _, err := os.Stat(Jar); err != nil {
		return fmt.Errorf("Apache ZooKeeper is not installed (%s missing): apt-get install -y zookeeper", Jar)
	}
	if _, err := os.Stat(slf4jSimple); err != nil {
		return fmt.Errorf("ZooKeeper's logger binding is not installed (%s missing): apt-get install -y libslf4j-java", slf4jSimple)
	}
	if _, err := os.Stat(nettyCodec); err != nil {
		return fmt.Errorf("Netty's codec is not installed (%s missing): apt-get install -y libnetty-java", nettyCodec)
	}
	if _, err := exec.LookPath("java"); err != nil {
		return fmt.Errorf("java is not on PATH: apt-get install -y zookeeper (it brings a JRE)")
	}
	return nil
}

// Options configures a ZooKeeper run.
type Options struct {
	// DataDir is zoo.cfg's dataDir (required); it need not exist.
	DataDir string
	// DataLogDir is zoo.cfg's dataLogDir; "" keeps it in DataDir.
	DataLogDir string
	// TickTimeMs is tickTime; 0 means 2000.
	TickTimeMs int
	// SnapCount is snapCount (txns between snapshots; ZooKeeper snapshots
	// after a random share of half of it past half); 0 keeps the default.
	SnapCount int
	// Compression is zookeeper.snapshot.compression.method: "gz", "snappy"
	// or "" for none.
	Compression string
	// DigestDisabled turns zookeeper.digest.enabled off (on by default).
	DigestDisabled bool
	// Config holds more zoo.cfg lines, key=value.
	Config map[string]string
	// Props holds more JVM system properties, name=value.
	Props map[string]string
	// ClientPort is clientPort; 0 picks a free one. An ensemble member
	// restarted on the same Options keeps its port.
	ClientPort int
	// MyID, when not 0, makes the server a member of an ensemble: myid is
	// written to DataDir and QuorumPeerMain runs, with initLimit 10 and
	// syncLimit 5 (ZooKeeper's sample zoo.cfg; it has no default) unless
	// Config names them. The server.N lines come from Peers or Config.
	MyID int
	// Peers are the server.N lines, this server's own included (a test
	// putting proxies between servers gives each server the proxies' ports
	// for the others); an observer's own zoo.cfg also says peerType=observer.
	Peers []Peer
}

// Peer is one server.N line: server.ID=127.0.0.1:QuorumPort:ElectionPort,
// with ":observer" for an observer (whose own zoo.cfg then also says
// peerType=observer).
type Peer struct {
	ID                       int
	QuorumPort, ElectionPort int
	Observer                 bool
}

// Value is the server.N value zoo.cfg holds for p.
func (p Peer) Value() string {
	v := fmt.Sprintf("127.0.0.1:%d:%d", p.QuorumPort, p.ElectionPort)
	if p.Observer {
		v += ":observer"
	}
	return v
}

// Server is a running Apache ZooKeeper.
type Server struct {
	// Addr is the client address, 127.0.0.1:port.
	Addr string
	// ConfigPath is the zoo.cfg it runs with.
	ConfigPath string
	cmd        *exec.Cmd
	done       chan struct{}
	log        string
}

// Start runs ZooKeeper with opts until the test ends (or Stop) and waits
// until it serves. It fails the test when ZooKeeper is not installed or does
// not come up.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	Require(t)
	s, err := Launch(t.TempDir(), opts)
	if err != nil {
		t.Fatalf("zkreal: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Launch runs ZooKeeper with its zoo.cfg and log under dir (which must
// exist) and waits until its srvr shows it serving; an ensemble member
// (Options.MyID) serves only once a quorum has formed, so for it Launch
// waits only until it answers ruok (WaitServing waits for the rest). A
// Launch on a dir used before rewrites zoo.cfg and appends to the log. The
// caller stops it.
func Launch(dir string, opts Options) (*Server, error) {
	if err := Check(); err != nil {
		return nil, err
	}
	if opts.DataDir == "" {
		return nil, fmt.Errorf("zkreal: Options.DataDir is required")
	}
	if opts.ClientPort == 0 {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		opts.ClientPort = port
	}
	cfgPath, err := WriteConfig(dir, opts)
	if err != nil {
		return nil, err
	}
	mainClass := "org.apache.zookeeper.server.ZooKeeperServerMain"
	if opts.MyID != 0 {
		mainClass = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
	}
	port := opts.ClientPort
	props := map[string]string{"zookeeper.digest.enabled": strconv.FormatBool(!opts.DigestDisabled)}
	if opts.SnapCount > 0 {
		props["zookeeper.snapCount"] = strconv.Itoa(opts.SnapCount)
	}
	if opts.Compression != "" {
		props["zookeeper.snapshot.compression.method"] = opts.Compression
	}
	for k, v := range opts.Props {
		props[k] = v
	}
	logPath := filepath.Join(dir, "zookeeper.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logFile, "=== zkreal: start at %s\n", time.Now().Format(time.RFC3339Nano))
	args := append(jvmArgs(props), mainClass, cfgPath)
	cmd := exec.Command("java", args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Pdeathsig: the JVM dies with the test binary even when cleanups do
	// not run (a test timeout panics without them).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("zkreal: start java: %w", err)
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), ConfigPath: cfgPath, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(s.done)
	}()
	deadline := time.Now().Add(startTimeout)
	for {
		if opts.MyID != 0 {
			if out, err := s.FourLetter("ruok"); err == nil && strings.TrimSpace(out) == "imok" {
				return s, nil
			}
		} else if s.Mode() != "" {
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("zkreal: ZooKeeper exited during start-up:\n%s", s.Log())
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("zkreal: ZooKeeper did not serve within %v:\n%s", startTimeout, s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WriteConfig writes the zoo.cfg (and, for an ensemble member, the myid
// file) that Launch runs ZooKeeper with to dir/zoo.cfg and returns its
// path, without starting anything: another server (zabkeeper) can then run
// on exactly the same file. opts.ClientPort must be set.
func WriteConfig(dir string, opts Options) (string, error) {
	if opts.DataDir == "" {
		return "", fmt.Errorf("zkreal: Options.DataDir is required")
	}
	if opts.ClientPort == 0 {
		return "", fmt.Errorf("zkreal: WriteConfig needs Options.ClientPort")
	}
	tick := opts.TickTimeMs
	if tick == 0 {
		tick = 2000
	}
	cfg := map[string]string{
		"tickTime":               strconv.Itoa(tick),
		"dataDir":                opts.DataDir,
		"clientPort":             strconv.Itoa(opts.ClientPort),
		"clientPortAddress":      "127.0.0.1",
		"maxClientCnxns":         "0",
		"admin.enableServer":     "false",
		"4lw.commands.whitelist": "*",
	}
	if opts.DataLogDir != "" {
		cfg["dataLogDir"] = opts.DataLogDir
	}
	if opts.MyID != 0 {
		if err := quorumConfig(cfg, opts); err != nil {
			return "", err
		}
	}
	for k, v := range opts.Config {
		cfg[k] = v
	}
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, cfg[k])
	}
	cfgPath := filepath.Join(dir, "zoo.cfg")
	if err := os.WriteFile(cfgPath, []byte(b.String()), 0o644); err != nil {
		return "", fmt.Errorf("zkreal: write zoo.cfg: %w", err)
	}
	return cfgPath, nil
}

// quorumConfig adds an ensemble member's zoo.cfg keys to cfg (Config,
// applied after, may override them) and writes its myid file.
func quorumConfig(cfg map[string]string, opts Options) error {
	if opts.MyID < 0 {
		return fmt.Errorf("zkreal: Options.MyID must be positive, not %d", opts.MyID)
	}
	cfg["initLimit"] = "10"
	cfg["syncLimit"] = "5"
	for _, p := range opts.Peers {
		cfg["server."+strconv.Itoa(p.ID)] = p.Value()
		if p.ID == opts.MyID && p.Observer {
			cfg["peerType"] = "observer"
		}
	}
	if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
		return fmt.Errorf("zkreal: dataDir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(opts.DataDir, "myid"), []byte(strconv.Itoa(opts.MyID)+"\n"), 0o644); err != nil {
		return fmt.Errorf("zkreal: myid: %w", err)
	}
	return nil
}

func jvmArgs(props map[string]string) []string {
	args := []string{"-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", Classpath}
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-D"+k+"="+props[k])
	}
	return args
}

// Stop kills the JVM (SIGKILL, as a crash) and waits for it to exit; later
// calls do nothing.
func (s *Server) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Terminate sends SIGTERM, as zkServer.sh stop does, and waits up to d for
// the JVM to exit; it is killed (and an error returned) if it does not.
func (s *Server) Terminate(d time.Duration) error {
	if s.Exited() {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return nil
	case <-time.After(d):
		s.Stop()
		return fmt.Errorf("zkreal: ZooKeeper did not exit within %v of SIGTERM (killed)", d)
	}
}

// Done is closed when the JVM has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// Mode is the "Mode:" of srvr (standalone, leader, follower, observer), ""
// while the server does not serve (looking, syncing, down).
func (s *Server) Mode() string { return SrvrMode(s.Addr) }

// WaitServing waits up to d until the server serves and returns its mode.
func (s *Server) WaitServing(d time.Duration) (string, error) {
	deadline := time.Now().Add(d)
	for {
		if m := s.Mode(); m != "" {
			return m, nil
		}
		if s.Exited() {
			return "", fmt.Errorf("zkreal: ZooKeeper exited:\n%s", s.Log())
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("zkreal: ZooKeeper at %s does not serve after %v", s.Addr, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Exited reports whether the JVM has exited.
func (s *Server) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Log returns what the server has logged so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.log)
	return string(b)
}

// FourLetter sends a four-letter word and returns the answer.
func (s *Server) FourLetter(word string) (string, error) { return FourLetter(s.Addr, word) }

// SrvrMode is the "Mode:" line of srvr at addr (any ZooKeeper-compatible
// server, zabkeeper included), "" when it does not answer or does not serve.
func SrvrMode(addr string) string {
	out, err := FourLetter(addr, "srvr")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "Mode: "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// FourLetter sends a four-letter word to addr and returns the answer.
func FourLetter(addr, word string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(nc, word); err != nil {
		return "", err
	}
	out, err := io.ReadAll(nc)
	return string(out), err
}

// RunTool runs a ZooKeeper main class (for example
// "org.apache.zookeeper.server.SnapshotFormatter") with args and returns its
// standard output; a non-zero exit is an error carrying standard error.
func RunTool(mainClass string, args ...string) (string, error) {
	if err := Check(); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := ToolCommand(ctx, mainClass, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("zkreal: %s %v: %w\n%s", mainClass, args, err, stderr.String())
	}
	return stdout.String(), nil
}

// ToolCommand is the JVM command RunTool runs (mainClass with args, on
// Classpath), not started, for a test that needs its own environment or
// streams (say TZ, or standard error and output together); ctx kills it.
// The caller checks the installation first (Require).
func ToolCommand(ctx context.Context, mainClass string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "java", append(append(jvmArgs(nil), mainClass), args...)...)
}

// FreePort returns a loopback port nobody listens on, drawn below the
// kernel's ephemeral range: outgoing connections take their ports from
// that range, so they cannot grab a server's port while it is down between
// a stop and its restart. Another program may still take it.
func FreePort() (int, error) {
	const minPort = 10000
	lo := ephemeralLow()
	for range 200 {
		port := minPort + rand.IntN(lo-minPort)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		return port, ln.Close()
	}
	return 0, fmt.Errorf("zkreal: no free port in [%d, %d)", minPort, lo)
}

// ephemeralLow is the first port of the kernel's ephemeral range
// (net.ipv4.ip_local_port_range; 32768 if unreadable).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if lo, err := strconv.Atoi(f[0]); err == nil && lo > 11000 {
				return lo
			}
		}
	}
	return 32768
}

// JavaClasspath joins jars under /usr/share/java by their base names (for
// example "curator-recipes.jar"), for tests that run Java programs of their
// own beside ZooKeeper.
func JavaClasspath(jars ...string) string {
	paths := make([]string, len(jars))
	for i, j := range jars {
		paths[i] = filepath.Join("/usr/share/java", j)
	}
	return strings.Join(paths, ":")
}
