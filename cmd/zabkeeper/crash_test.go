package main_test

// Crash tests of the real binary: every acknowledged write survives SIGKILL,
// and SIGTERM shuts down cleanly.

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

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"
)

const crashWait = 20 * time.Second

var (
	buildsMu sync.Mutex
	builds   = map[string]*build{} // by build tags
	buildDir string
)

// build is one binary built for the tests.
type build struct {
	once sync.Once
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// moduleRoot walks up from the working directory to the go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, parent, dir, "go.mod not found above the test's directory")
		dir = parent
	}
}

// binary builds cmd/zabkeeper once per test binary.
func binary(t *testing.T) string { return binaryWithTags(t, "") }

// binaryWithTags builds cmd/zabkeeper with the given build tags (a comma
// list, "" for none) once per test binary.
func binaryWithTags(t *testing.T, tags string) string {
	t.Helper()
	root := moduleRoot(t)
	buildsMu.Lock()
	b := builds[tags]
	if b == nil {
		b = &build{}
		builds[tags] = b
	}
	if buildDir == "" {
		dir, err := os.MkdirTemp("", "zabkeeper-crash-")
		require.NoError(t, err)
		buildDir = dir
	}
	dir := buildDir
	buildsMu.Unlock()
	b.once.Do(func() {
		name, args := "zabkeeper", []string{"build"}
		if tags != "" {
			name += "-" + strings.ReplaceAll(tags, ",", "-")
			args = append(args, "-tags", tags)
		}
		b.path = filepath.Join(dir, name)
		cmd := exec.Command("go", append(args, "-o", b.path, "./cmd/zabkeeper")...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %w\n%s", strings.Join(args[1:], " "), err, out)
		}
	})
	require.NoError(t, b.err)
	return b.path
}

// freePort finds a port nobody listens on (there is a small window before
// the server binds it; the tests are the only users of these ports).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}

// testLogWriter forwards lines to t.Logf until the test ends.
type testLogWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func newTestLogWriter(t *testing.T) *testLogWriter {
	w := &testLogWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return w
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Logf("%s", bytes.TrimRight(p, "\n"))
	}
	return len(p), nil
}

func (w *testLogWriter) Printf(format string, args ...any) {
	_, _ = w.Write([]byte(fmt.Sprintf("zk client: "+format, args...)))
}

// instance is one zabkeeper process.
type instance struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // Wait's result, valid once exited is closed
	addr   string
}

// dataSetup is the configuration shared by the runs of one test.
type dataSetup struct {
	dir     string
	cfgPath string
	addr    string
}

func newDataSetup(t *testing.T) dataSetup {
	dir := t.TempDir()
	port := freePort(t)
	cfg := fmt.Sprintf("tickTime=200\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"+
		"4lw.commands.whitelist=ruok\nmaxClientCnxns=0\nmaxSessionTimeout=30000\n"+
		"admin.serverAddress=127.0.0.1\nadmin.serverPort=0\n", filepath.Join(dir, "data"), port)
	cfgPath := filepath.Join(dir, "zoo.cfg")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o644))
	return dataSetup{dir: dir, cfgPath: cfgPath, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
}

// start runs the binary on the setup and waits until ruok answers imok.
func start(t *testing.T, s dataSetup) *instance {
	t.Helper()
	return startBinary(t, s, binary(t), newTestLogWriter(t))
}

// startBinary runs bin's server command on the setup, with extra flags and
// its output to out, and waits until ruok answers imok. The process is
// killed at the end of the test if still running.
func startBinary(t *testing.T, s dataSetup, bin string, out io.Writer, extra ...string) *instance {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"server", "--config", s.cfgPath}, extra...)...)
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	in := &instance{cmd: cmd, exited: make(chan struct{}), addr: s.addr}
	go func() {
		in.err = cmd.Wait()
		close(in.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-in.exited:
		default:
			_ = cmd.Process.Kill()
			<-in.exited
		}
	})
	deadline := time.Now().Add(crashWait)
	for {
		if ruok(s.addr) == "imok" {
			return in
		}
		select {
		case <-in.exited:
			t.Fatalf("zabkeeper exited before serving: %v", in.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("zabkeeper did not answer ruok within %v", crashWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ruok(addr string) string {
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return ""
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(nc, "ruok"); err != nil {
		return ""
	}
	out, _ := io.ReadAll(nc)
	return string(out)
}

// waitExit waits for the process to end and returns its exit code.
func (in *instance) waitExit(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-in.exited:
	case <-time.After(d):
		t.Fatalf("zabkeeper did not exit within %v", d)
	}
	if in.err == nil {
		return 0
	}
	var ee *exec.ExitError
	require.True(t, errors.As(in.err, &ee), "wait: %v", in.err)
	return ee.ExitCode()
}

func connectZK(t *testing.T, addr string) *zk.Conn {
	t.Helper()
	c, _, err := zk.Connect([]string{addr}, 15*time.Second, zk.WithLogger(newTestLogWriter(t)), zk.WithLogInfo(false))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	deadline := time.Now().Add(crashWait)
	for c.State() != zk.StateHasSession {
		if time.Now().After(deadline) {
			t.Fatalf("no session within %v", crashWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return c
}

// pathState is what a writer knows about one path: the value of its last
// acknowledged write and, if a write was in flight when the server died,
// the value that write would have left.
type pathState struct {
	acked   []byte
	pending []byte
	hasPend bool
}

func TestCrashSIGKILLKeepsAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	setup := newDataSetup(t)
	srv := start(t, setup)

	const (
		writers      = 4
		opsPerWriter = 150 // the kill comes before all are done
		killAfter    = 300 // acknowledged writes before SIGKILL
	)
	setupConn := connectZK(t, setup.addr)
	_, err := setupConn.Create("/crash", nil, 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)

	var (
		mu       sync.Mutex
		state    = map[string]*pathState{}
		ackCount int
		maxZxid  int64
		killed   = make(chan struct{})
		killOnce sync.Once
		wg       sync.WaitGroup
	)
	kill := func() {
		killOnce.Do(func() {
			close(killed) // first, so writers that fail from now on know why
			require.NoError(t, srv.cmd.Process.Signal(syscall.SIGKILL))
		})
	}
	for w := 0; w < writers; w++ {
		c := connectZK(t, setup.addr)
		wg.Add(1)
		go func(w int, c *zk.Conn) {
			defer wg.Done()
			for i := 0; i < opsPerWriter; i++ {
				// Alternate: create a node, then overwrite the previous one.
				var (
					path string
					val  []byte
					op   func() (int64, error)
				)
				if i%3 != 2 {
					path = fmt.Sprintf("/crash/w%d-%04d", w, i)
					val = []byte(fmt.Sprintf("create %d/%d", w, i))
					op = func() (int64, error) {
						_, err := c.Create(path, val, 0, zk.WorldACL(zk.PermAll))
						return 0, err
					}
				} else {
					path = fmt.Sprintf("/crash/w%d-%04d", w, i-1)
					val = []byte(fmt.Sprintf("set %d/%d", w, i))
					op = func() (int64, error) {
						st, err := c.Set(path, val, -1)
						if err != nil {
							return 0, err
						}
						return st.Mzxid, nil
					}
				}
				mu.Lock()
				ps := state[path]
				if ps == nil {
					ps = &pathState{}
					state[path] = ps
				}
				ps.pending, ps.hasPend = val, true
				mu.Unlock()

				zxid, err := op()
				if err != nil {
					select {
					case <-killed:
						return // expected: the server is gone
					default:
					}
					t.Errorf("writer %d op %d on %s failed before the kill: %v", w, i, path, err)
					return
				}
				mu.Lock()
				ps.acked, ps.pending, ps.hasPend = val, nil, false
				ackCount++
				if zxid > maxZxid {
					maxZxid = zxid
				}
				n := ackCount
				mu.Unlock()
				if n == killAfter {
					kill()
				}
			}
		}(w, c)
	}
	wg.Wait()
	kill() // in case the writers finished first
	require.NotEqual(t, 0, srv.waitExit(t, crashWait), "SIGKILL must not look like a clean exit")

	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, ackCount, killAfter)
	t.Logf("%d acknowledged writes on %d paths before SIGKILL", ackCount, len(state))

	start(t, setup)
	c := connectZK(t, setup.addr)
	kids, _, err := c.Children("/crash")
	require.NoError(t, err)
	present := map[string]bool{}
	for _, k := range kids {
		present["/crash/"+k] = true
	}
	missing := 0
	for path, ps := range state {
		if ps.acked == nil {
			// Never acknowledged: it may or may not exist.
			if present[path] {
				data, _, err := c.Get(path)
				require.NoError(t, err)
				require.Equal(t, string(ps.pending), string(data), "unacknowledged create of %s", path)
			}
			continue
		}
		if !present[path] {
			missing++
			t.Errorf("acknowledged write lost: %s (want %q)", path, ps.acked)
			continue
		}
		data, _, err := c.Get(path)
		require.NoError(t, err)
		ok := bytes.Equal(data, ps.acked) || (ps.hasPend && bytes.Equal(data, ps.pending))
		require.True(t, ok, "%s = %q, want the acknowledged %q (or the in-flight %q)", path, data, ps.acked, ps.pending)
	}
	require.Zero(t, missing)
	for k := range present {
		require.Contains(t, state, k, "unexpected node %s", k)
	}
	// zxids stay monotonic across the crash.
	_, err = c.Create("/after-crash", nil, 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	_, st, err := c.Get("/after-crash")
	require.NoError(t, err)
	require.Greater(t, st.Czxid, maxZxid, "the first zxid after the restart is above every acknowledged one")
}

func TestCrashSIGTERMExitsCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	setup := newDataSetup(t)
	srv := start(t, setup)
	c := connectZK(t, setup.addr)
	_, err := c.Create("/kept", []byte("v"), 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	_, err = c.Create("/eph", nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)

	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 0, srv.waitExit(t, 10*time.Second), "SIGTERM exits 0")
	c.Close()

	start(t, setup)
	c2 := connectZK(t, setup.addr)
	data, _, err := c2.Get("/kept")
	require.NoError(t, err)
	require.Equal(t, "v", string(data))
	// The old session may survive a restart (ZooKeeper keeps sessions), but
	// nothing else appeared.
	kids, _, err := c2.Children("/")
	require.NoError(t, err)
	for _, k := range kids {
		require.Contains(t, []string{"zookeeper", "kept", "eph"}, k)
	}
}

// syncBuffer is an io.Writer safe for a process's stdout and stderr at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// exitCode runs bin with args to its end and returns its exit code and
// output.
func exitCode(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err == nil {
		return 0, string(out)
	}
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "run %s: %v", bin, err)
	return ee.ExitCode(), string(out)
}

// The real binary refuses --plant-bug unless built with -tags simbugs; the
// tagged binary plants the bug, says so loudly, and serves.
func TestServerPlantBugFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary twice")
	}
	setup := newDataSetup(t)
	code, out := exitCode(t, binary(t), "server", "--config", setup.cfgPath, "--plant-bug", "commit-before-quorum")
	require.Equal(t, 2, code, out)
	require.Contains(t, out, "--plant-bug needs a build with -tags simbugs")

	bin := binaryWithTags(t, "simbugs")
	code, out = exitCode(t, bin, "server", "--config", setup.cfgPath, "--plant-bug", "no-such-bug")
	require.Equal(t, 2, code, out)
	require.Contains(t, out, `unknown bug "no-such-bug"`)

	var log syncBuffer
	srv := startBinary(t, setup, bin, &log, "--plant-bug", "sync-without-quorum")
	require.Contains(t, log.String(), "PLANTED BUG")
	require.Contains(t, log.String(), "bug=sync-without-quorum")
	c := connectZK(t, setup.addr)
	_, err := c.Create("/planted", []byte("v"), 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 0, srv.waitExit(t, 10*time.Second), "SIGTERM exits 0, bug or not")
}
