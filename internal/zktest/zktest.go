// Package zktest starts Debian's Apache ZooKeeper (a standalone
// ZooKeeperServerMain in a JVM) on a free loopback port with a private data
// directory, so tests can run the same client code against the reference
// server. Tests call Require first: it skips when ZooKeeper or Java is not
// installed, or fails when ZABKEEPER_REQUIRE_JAVA is set (as CI does).
package zktest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Jar is Debian's ZooKeeper server jar; its manifest names its dependencies.
const Jar = "/usr/share/java/zookeeper.jar"

// startTimeout bounds a JVM start on a busy CI machine.
const startTimeout = 60 * time.Second

// Require skips the test when Java or ZooKeeper's jar is missing, or fails it
// when ZABKEEPER_REQUIRE_JAVA is set.
func Require(t testing.TB) {
	t.Helper()
	missing := ""
	if _, err := os.Stat(Jar); err != nil {
		missing = Jar + " (apt-get install zookeeper)"
	} else if _, err := exec.LookPath("java"); err != nil {
		missing = "java"
	}
	if missing == "" {
		return
	}
	if os.Getenv("ZABKEEPER_REQUIRE_JAVA") != "" {
		t.Fatalf("zktest: %s not found and ZABKEEPER_REQUIRE_JAVA is set", missing)
	}
	t.Skipf("zktest: %s not installed; skipping", missing)
}

// Server is a running Apache ZooKeeper.
type Server struct {
	// Addr is the client address, 127.0.0.1:port.
	Addr string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// Options adjusts the server's zoo.cfg.
type Options struct {
	// TickTimeMs is zoo.cfg's tickTime; 0 keeps the default of 2000.
	TickTimeMs int
}

// Start runs ZooKeeperServerMain until the test ends and waits until it
// answers "ruok" with "imok".
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	Require(t)
	s, err := Launch(t.TempDir(), opts)
	if err != nil {
		t.Fatalf("zktest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Launch runs ZooKeeperServerMain with its files under dir (which must
// exist) and waits until it answers "ruok" with "imok". The caller stops it;
// tests that share one server across a package use it from TestMain.
func Launch(dir string, opts Options) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	tick := opts.TickTimeMs
	if tick == 0 {
		tick = 2000
	}
	cfg := fmt.Sprintf("tickTime=%d\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"+
		"maxSessionTimeout=40000\nadmin.enableServer=false\n4lw.commands.whitelist=ruok,srvr\nmaxClientCnxns=0\n",
		tick, filepath.Join(dir, "data"), port)
	cfgPath := filepath.Join(dir, "zoo.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "zookeeper.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-cp", Jar+":/usr/share/java/slf4j-simple.jar",
		"org.apache.zookeeper.server.ZooKeeperServerMain", cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start java: %w", err)
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(s.done)
	}()
	deadline := time.Now().Add(startTimeout)
	for !s.ruok() {
		select {
		case <-s.done:
			return nil, fmt.Errorf("ZooKeeper exited during start-up:\n%s", s.Log())
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("ZooKeeper did not answer ruok within %v:\n%s", startTimeout, s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s, nil
}

// Stop kills the JVM and waits for it to exit; later calls do nothing.
func (s *Server) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Log returns what the server has logged so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.log)
	return string(b)
}

// ruok reports whether the server answers the ruok four-letter word.
func (s *Server) ruok() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return false
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(nc, "ruok"); err != nil {
		return false
	}
	out, _ := io.ReadAll(nc)
	return bytes.Equal(bytes.TrimSpace(out), []byte("imok"))
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Classpath joins jars under /usr/share/java by their base names (for
// example "curator-recipes.jar"), for tests that run Java programs.
func Classpath(jars ...string) string {
	paths := make([]string, len(jars))
	for i, j := range jars {
		paths[i] = filepath.Join("/usr/share/java", j)
	}
	return strings.Join(paths, ":")
}
