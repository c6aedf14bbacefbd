package server_test

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// zkCliPath is where Debian's zookeeper package installs the Java CLI.
const zkCliPath = "/usr/share/zookeeper/bin/zkCli.sh"

// TestJavaClientZkCli drives the server with Apache ZooKeeper's own Java
// client (zkCli.sh): create2, auth on xid -4, getACL, setACL, addWatch,
// whoAmI, getAllChildrenNumber, getEphemerals, sync and deleteall, as a
// ZooKeeper user types them. CI installs the package and sets
// ZABKEEPER_REQUIRE_JAVA=1 so the test cannot silently skip there.
func TestJavaClientZkCli(t *testing.T) {
	requireZkCli(t)
	addr, _ := startServer(t, nil)
	script := strings.Join([]string{
		"create /app hello",
		"create -s /app/seq- x",
		"create -e /app/eph e",
		"create -c /cont c",
		"get /app",
		"set /app world",
		"ls /app",
		"addauth digest user:password",
		"create /secure s digest:user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY=:cdrwa",
		"getAcl /secure",
		"get /secure",
		"setAcl /app world:anyone:cdrwa",
		"addWatch -m PERSISTENT_RECURSIVE /app",
		"whoami",
		"getAllChildrenNumber /",
		"getEphemerals",
		"sync /app",
		"deleteall /app",
		"ls /",
		"quit",
	}, "\n") + "\n"
	text := runZkCli(t, script, "-server", addr)
	for _, want := range []string{
		"Created /app\n",
		"Created /app/seq-0000000000",
		"Created /app/eph",
		"Created /cont",
		"hello\n",
		"[eph, seq-0000000000]",
		"Created /secure",
		"'digest,'user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY=",
		"digest: user",
		"ip: 127.0.0.1",
		"\n8\n", // app, seq, eph, cont, secure, zookeeper, quota, config
		"[/app/eph]",
		"Sync is OK",
		"type:NodeDeleted path:/app/eph",
		"[cont, secure, zookeeper]",
	} {
		require.Contains(t, text, want, "zkCli output:\n%s", text)
	}
	require.NotContains(t, text, "Exception", "zkCli output:\n%s", text)
}

// requireZkCli skips the test when Debian's zkCli.sh is not installed, or
// fails it when ZABKEEPER_REQUIRE_JAVA is set (as CI does).
func requireZkCli(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(zkCliPath); err != nil {
		if os.Getenv("ZABKEEPER_REQUIRE_JAVA") != "" {
			t.Fatalf("zkCli.sh not found at %s (apt-get install zookeeper)", zkCliPath)
		}
		t.Skipf("zkCli.sh not installed (apt-get install zookeeper); skipping the Java client test")
	}
}

// runZkCli runs zkCli.sh with args, types script into it, and returns what
// it printed (stdout and stderr).
func runZkCli(t *testing.T, script string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, zkCliPath, args...)
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "zkCli.sh failed:\n%s", out)
	return string(out)
}

// nettyClassPath is what Debian's Java client needs over the Netty socket:
// zookeeper.jar's manifest leaves netty-codec and netty-resolver off its
// class path.
const nettyClassPath = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/netty-codec.jar:" +
	"/usr/share/java/netty-resolver.jar:/usr/share/java/slf4j-simple.jar"

// nettySocket selects the Java client's Netty transport, which writes queued
// requests right behind its ConnectRequest without waiting for the answer.
const nettySocket = "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty"

// TestJavaClientNettyZkCli runs zkCli (ZooKeeperMain) over the Netty socket:
// create, get, a data watch that fires, ls.
func TestJavaClientNettyZkCli(t *testing.T) {
	requireZkCli(t)
	addr, _ := startServer(t, nil)
	script := strings.Join([]string{
		"create /netty hello",
		"get -w /netty",
		"set /netty world",
		"get /netty",
		"ls /",
		"quit",
	}, "\n") + "\n"
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "java", "-cp", nettyClassPath, nettySocket,
		"org.apache.zookeeper.ZooKeeperMain", "-server", addr)
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	text := string(out)
	require.NoError(t, err, "ZooKeeperMain failed:\n%s", text)
	for _, want := range []string{
		"ClientCnxnSocketNetty",
		"Created /netty\n",
		"hello\n",
		"WatchedEvent state:SyncConnected type:NodeDataChanged path:/netty",
		"world\n",
		"[netty, zookeeper]",
	} {
		require.Contains(t, text, want, "zkCli output:\n%s", text)
	}
	// Not "Exception": the Netty socket may log the server closing the
	// channel after closeSession as an EndOfStreamException, as it does
	// with ZooKeeper itself.
	for _, bad := range []string{"KeeperErrorCode", "ConnectionLoss", "Session expired", "SessionExpired"} {
		require.NotContains(t, text, bad, "zkCli output:\n%s", text)
	}
}

// TestJavaClientNettyReconnect runs a small Java program (testdata/java/
// NettyProbe.java, compiled here with javac) over the Netty socket against a
// 3-server ensemble: create, getData and exists watches, a burst of async
// creates; then the server it is connected to stops and the client carries
// its session to another server, where the watches it set before (restored
// by the SetWatches it writes behind its ConnectRequest) fire.
func TestJavaClientNettyReconnect(t *testing.T) {
	requireZkCli(t)
	classes := t.TempDir()
	javac := exec.Command("javac", "-proc:none", "-implicit:none", "-cp", "/usr/share/java/zookeeper.jar",
		"-d", classes, "testdata/java/NettyProbe.java")
	out, err := javac.CombinedOutput()
	require.NoError(t, err, "javac:\n%s", out)

	ms := startEnsemble(t, 3)
	addrs := make([]string, len(ms))
	for i, m := range ms {
		addrs[i] = m.addr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "java", "-cp", classes+":"+nettyClassPath, nettySocket,
		"NettyProbe", strings.Join(addrs, ","))
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cancel()
			_ = cmd.Wait()
		}
	})
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func(prefix string) []string {
		t.Helper()
		select {
		case line, ok := <-lines:
			require.True(t, ok, "NettyProbe ended before %q; its log:\n%s", prefix, stderr.String())
			f := strings.Fields(line)
			require.NotEmpty(t, f)
			require.Equal(t, prefix, f[0], "NettyProbe printed %q; its log:\n%s", line, stderr.String())
			return f[1:]
		case <-time.After(90 * time.Second):
			t.Fatalf("NettyProbe printed no %q; its log:\n%s", prefix, stderr.String())
			return nil
		}
	}
	connected := next("CONNECTED")
	session, port := connected[0], connected[1]
	require.Equal(t, []string{"v1"}, next("GOT"))
	require.Equal(t, []string{"false"}, next("EXISTS"))
	require.Equal(t, []string{"52"}, next("CHILDREN"), "zookeeper, netty and 50 sequential nodes")
	next("READY")

	var first *member
	for _, m := range ms {
		if strings.HasSuffix(m.addr, ":"+port) {
			first = m
		}
	}
	require.NotNil(t, first, "NettyProbe connected to port %s, not one of %v", port, addrs)
	first.stop(t)
	_, err = io.WriteString(stdin, "go on\n")
	require.NoError(t, err)

	again := next("RECONNECTED")
	require.Equal(t, session, again[0], "the session survives the move")
	require.NotEqual(t, port, again[1], "the client moved to another server")
	require.Equal(t, []string{"NodeDataChanged", "/netty"}, next("EVENT"))
	require.Equal(t, []string{"NodeCreated", "/netty/child"}, next("EVENT"))
	require.Equal(t, []string{"v2"}, next("GOT"))
	next("DONE")
	// The probe's log shows the EndOfStreamException of the stopped server:
	// that one is expected. Any failure in the probe is a non-zero exit.
	_ = stdin.Close()
	require.NoError(t, cmd.Wait(), "NettyProbe log:\n%s", stderr.String())
}

// syncBuffer is a strings.Builder a child process writes while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
