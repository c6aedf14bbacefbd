package recipes_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/internal/zkreal"
)

// curatorJars are Debian's Curator (libcurator-{framework,recipes,discovery}-java)
// and what it needs; zookeeper.jar's manifest brings ZooKeeper's own.
var curatorJars = []string{
	"curator-client.jar", "curator-framework.jar", "curator-recipes.jar", "curator-x-discovery.jar",
	"zookeeper.jar", "guava.jar", "slf4j-api.jar", "slf4j-nop.jar",
	"jackson-core.jar", "jackson-databind.jar", "jackson-annotations.jar",
}

// requireCurator skips the test when Java or Curator's jars are missing, or
// fails it when ZABKEEPER_REQUIRE_JAVA is set (as CI does).
func requireCurator(t *testing.T) {
	t.Helper()
	zkreal.Require(t)
	for _, j := range append([]string{"javac"}, curatorJars...) {
		missing := false
		if j == "javac" {
			_, err := exec.LookPath(j)
			missing = err != nil
		} else if _, err := os.Stat(filepath.Join("/usr/share/java", j)); err != nil {
			missing = true
		}
		if !missing {
			continue
		}
		if os.Getenv("ZABKEEPER_REQUIRE_JAVA") != "" {
			t.Fatalf("%s not found and ZABKEEPER_REQUIRE_JAVA is set "+
				"(apt-get install default-jdk-headless libcurator-framework-java libcurator-recipes-java libcurator-discovery-java)", j)
		}
		t.Skipf("%s not installed; skipping the Curator cross-language test", j)
	}
}

// javaClasses is where CuratorDriver is compiled, once per test binary
// (TestMain removes it).
var javaClasses struct {
	once sync.Once
	dir  string
	err  error
	out  []byte
}

// compileCurator compiles testdata/CuratorDriver.java on first use and
// returns the class directory.
func compileCurator(t *testing.T, cp string) string {
	t.Helper()
	javaClasses.once.Do(func() {
		src, err := filepath.Abs("testdata/CuratorDriver.java")
		if err != nil {
			javaClasses.err = err
			return
		}
		javaClasses.dir, javaClasses.err = os.MkdirTemp("", "recipes-curator-")
		if javaClasses.err != nil {
			return
		}
		javaClasses.out, javaClasses.err = exec.Command("javac", "-nowarn", "-d", javaClasses.dir, "-cp", cp, src).CombinedOutput()
	})
	require.NoError(t, javaClasses.err, "javac:\n%s", javaClasses.out)
	return javaClasses.dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	stopShared()
	os.Exit(code)
}

// curator is a running CuratorDriver (testdata/CuratorDriver.java).
type curator struct {
	t     *testing.T
	stdin *os.File
	lines chan string
	state *struct{ seen []string } // lines read but not yet expected, shared by in's copies
}

// in returns the driver for use in subtest t.
func (c *curator) in(t *testing.T) *curator {
	cc := *c
	cc.t = t
	return &cc
}

// startCurator compiles CuratorDriver in the test's temp dir and starts it
// against addr; it is stopped when the test ends.
func startCurator(t *testing.T, addr string) *curator {
	t.Helper()
	requireCurator(t)
	cp := zkreal.JavaClasspath(curatorJars...)
	dir := compileCurator(t, cp)

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-cp", dir+":"+cp, "CuratorDriver", addr)
	stdinR, stdinW, err := os.Pipe()
	require.NoError(t, err)
	cmd.Stdin = stdinR
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	stdinR.Close()
	c := &curator{t: t, stdin: stdinW, lines: make(chan string, 100), state: &struct{ seen []string }{}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		_ = stdinW.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cancel()
			<-done
		}
		cancel()
		wg.Wait()
		if t.Failed() {
			t.Logf("CuratorDriver stderr:\n%s", stderr.String())
		}
	})
	c.expect("ready")
	return c
}

// send writes one command line.
func (c *curator) send(cmd string) {
	c.t.Helper()
	_, err := c.stdin.WriteString(cmd + "\n")
	require.NoError(c.t, err, "sending %q to CuratorDriver", cmd)
}

// expect waits for a line equal to want (lines before it are kept for
// pending, not dropped) and fails on an "error" line.
func (c *curator) expect(want string) {
	c.t.Helper()
	for i, l := range c.state.seen {
		if l == want {
			c.state.seen = append(c.state.seen[:i], c.state.seen[i+1:]...)
			return
		}
	}
	deadline := time.After(waitTimeout)
	for {
		select {
		case l, ok := <-c.lines:
			require.True(c.t, ok, "CuratorDriver exited while waiting for %q", want)
			require.False(c.t, strings.HasPrefix(l, "error"), "CuratorDriver: %s", l)
			if l == want {
				return
			}
			c.state.seen = append(c.state.seen, l)
		case <-deadline:
			c.t.Fatalf("CuratorDriver did not say %q within %v (said %q)", want, waitTimeout, c.state.seen)
		}
	}
}

// said reports whether the driver has printed want so far (without
// waiting), reading what has arrived.
func (c *curator) said(want string) bool {
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				return false
			}
			c.state.seen = append(c.state.seen, l)
			continue
		default:
		}
		break
	}
	for _, l := range c.state.seen {
		if l == want {
			return true
		}
	}
	return false
}

// collect sends cmd and returns the lines up to "end".
func (c *curator) collect(cmd string) []string {
	c.t.Helper()
	c.send(cmd)
	var out []string
	deadline := time.After(waitTimeout)
	for {
		select {
		case l, ok := <-c.lines:
			require.True(c.t, ok, "CuratorDriver exited during %q", cmd)
			require.False(c.t, strings.HasPrefix(l, "error"), "CuratorDriver: %s", l)
			if l == "end" {
				return out
			}
			out = append(out, l)
		case <-deadline:
			c.t.Fatalf("CuratorDriver did not finish %q within %v", cmd, waitTimeout)
		}
	}
}
