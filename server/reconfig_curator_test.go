package server_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// curatorReconfigJars are Debian's Curator client and framework
// (libcurator-framework-java) and what they need; zookeeper.jar's manifest
// brings ZooKeeper's own, slf4j-simple prints Curator's log to stderr.
var curatorReconfigJars = []string{
	"curator-client.jar", "curator-framework.jar", "zookeeper.jar", "guava.jar", "slf4j-api.jar", "slf4j-simple.jar",
}

// requireCuratorJava skips the test when javac or Curator's jars are
// missing, or fails it when ZABKEEPER_REQUIRE_JAVA is set (as CI does), and
// returns the class path of the jars.
func requireCuratorJava(t *testing.T) string {
	t.Helper()
	var paths []string
	for _, j := range append([]string{"javac", "java"}, curatorReconfigJars...) {
		var err error
		if !strings.HasSuffix(j, ".jar") {
			_, err = exec.LookPath(j)
		} else {
			p := filepath.Join("/usr/share/java", j)
			paths = append(paths, p)
			_, err = os.Stat(p)
		}
		if err == nil {
			continue
		}
		if os.Getenv("ZABKEEPER_REQUIRE_JAVA") != "" {
			t.Fatalf("%s not found and ZABKEEPER_REQUIRE_JAVA is set "+
				"(apt-get install default-jdk-headless libcurator-framework-java libslf4j-java zookeeper)", j)
		}
		t.Skipf("%s not installed; skipping the Curator reconfig test", j)
	}
	return strings.Join(paths, ":")
}

// curatorReconfig is a running testdata/java/CuratorReconfig.java.
type curatorReconfig struct {
	t       *testing.T
	stdin   *os.File
	answers chan string // every line but the watcher's
	watches chan string // the watcher's "watch TYPE PATH" lines
}

// startCuratorReconfig compiles and starts CuratorReconfig against connect
// (a connection string); it is stopped when the test ends.
func startCuratorReconfig(t *testing.T, connect string) *curatorReconfig {
	t.Helper()
	cp := requireCuratorJava(t)
	classes := t.TempDir()
	out, err := exec.Command("javac", "-nowarn", "-d", classes, "-cp", cp, "testdata/java/CuratorReconfig.java").CombinedOutput()
	require.NoError(t, err, "javac:\n%s", out)

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-cp", classes+":"+cp, "CuratorReconfig", connect)
	stdinR, stdinW, err := os.Pipe()
	require.NoError(t, err)
	cmd.Stdin = stdinR
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	require.NoError(t, stdinR.Close())
	c := &curatorReconfig{t: t, stdin: stdinW, answers: make(chan string, 100), watches: make(chan string, 100)}
	read := make(chan struct{})
	go func() {
		defer close(read)
		defer close(c.answers)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "watch ") {
				c.watches <- l
			} else {
				c.answers <- l
			}
		}
	}()
	t.Cleanup(func() {
		_ = stdinW.Close() // the driver closes its client and exits
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(waitTimeout):
			cancel()
			<-done
		}
		cancel()
		<-read
		if t.Failed() {
			t.Logf("CuratorReconfig stderr:\n%s", stderr.String())
		}
	})
	select {
	case l, ok := <-c.answers:
		require.True(t, ok && l == "ready", "CuratorReconfig did not start (said %q); stderr:\n%s", l, stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("CuratorReconfig did not connect; stderr:\n%s", stderr.String())
	}
	return c
}

// do sends one command and returns its answer's lines (up to "end"),
// failing on an "error" line.
func (c *curatorReconfig) do(cmd string) []string {
	c.t.Helper()
	_, err := c.stdin.WriteString(cmd + "\n")
	require.NoError(c.t, err, "sending %q to CuratorReconfig", cmd)
	var out []string
	deadline := time.After(60 * time.Second) // a write may wait for Curator's retries
	for {
		select {
		case l, ok := <-c.answers:
			require.True(c.t, ok, "CuratorReconfig exited during %q", cmd)
			require.False(c.t, strings.HasPrefix(l, "error"), "CuratorReconfig, %q: %s", cmd, l)
			if l == "end" {
				return out
			}
			out = append(out, l)
		case <-deadline:
			c.t.Fatalf("CuratorReconfig did not finish %q (said %q)", cmd, out)
		}
	}
}

// curatorConfig is a config or reconfig answer: the Stat's mzxid and
// dataVersion and /zookeeper/config's data.
type curatorConfig struct {
	mzxid   int64
	version int32
	data    string
}

func (c *curatorReconfig) config(cmd string) curatorConfig {
	c.t.Helper()
	out := c.do(cmd)
	require.NotEmpty(c.t, out, "%q", cmd)
	f := strings.Fields(out[0])
	require.Len(c.t, f, 3, "%q answered %q", cmd, out)
	require.Equal(c.t, "stat", f[0], "%q answered %q", cmd, out)
	mzxid, err := strconv.ParseInt(f[1], 16, 64)
	require.NoError(c.t, err)
	v, err := strconv.ParseInt(f[2], 10, 32)
	require.NoError(c.t, err)
	var lines []string
	for _, l := range out[1:] {
		d, ok := strings.CutPrefix(l, "line ")
		require.True(c.t, ok, "%q answered %q", cmd, out)
		lines = append(lines, d)
	}
	return curatorConfig{mzxid, int32(v), strings.Join(lines, "\n")}
}

// tracked returns Curator's current connection string, as a sorted list,
// and the version of the configuration its EnsembleTracker holds.
func (c *curatorReconfig) tracked() ([]string, int64) {
	c.t.Helper()
	out := c.do("connstr")
	require.Len(c.t, out, 2, "connstr answered %q", out)
	s, ok := strings.CutPrefix(out[0], "connstr ")
	require.True(c.t, ok, "connstr answered %q", out)
	v, ok := strings.CutPrefix(out[1], "tracked ")
	require.True(c.t, ok, "connstr answered %q", out)
	version, err := strconv.ParseInt(v, 16, 64)
	require.NoError(c.t, err)
	addrs := strings.Split(s, ",")
	sort.Strings(addrs)
	return addrs, version
}

// waitTracked waits until Curator's connection string names exactly the
// client addresses of servers ids and its EnsembleTracker holds version.
func (c *curatorReconfig) waitTracked(e *reconfigEnsemble, ids []int, version int64) {
	c.t.Helper()
	var want []string
	for _, id := range ids {
		want = append(want, e.addr(id))
	}
	sort.Strings(want)
	var got []string
	var v int64
	deadline := time.Now().Add(waitTimeout)
	for {
		got, v = c.tracked()
		if v == version && strings.Join(got, ",") == strings.Join(want, ",") {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("Curator's connection string is %q at config %x, want %q at %x", got, v, want, version)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// session returns Curator's session id and the client port of the server
// it is connected to.
func (c *curatorReconfig) session() (string, string) {
	c.t.Helper()
	out := c.do("session")
	require.Len(c.t, out, 1)
	f := strings.Fields(out[0])
	require.Len(c.t, f, 3, "session answered %q", out)
	return f[1], f[2]
}

func (c *curatorReconfig) write(path, data string) {
	c.t.Helper()
	require.Equal(c.t, []string{"read " + path + " " + data}, c.do("write "+path+" "+data))
}

// TestReconfigCurator runs Apache Curator 5.4 (Debian's jars), unchanged,
// against a three-server zabkeeper ensemble with reconfigEnabled=true. Its
// connection string names server 1 only; its EnsembleTracker (on by
// default) reads /zookeeper/config and its watch, and rewrites that string
// to the ensemble's client addresses. Through Curator's reconfig API a
// fourth server joins and a follower leaves in one reconfig; getConfig with
// a watcher and a Stat reads the new configuration, and the tracker's
// string names exactly the new members (the joiner's client part a port
// alone, as ZooKeeper's documentation writes it). The removed server and then server
// 1 stop, and Curator carries its session to a server it only knows from
// the tracker and writes and reads there. A stale fromConfig fails with
// ZooKeeper's KeeperException.BadVersionException through Curator, a
// removal that leaves no synced quorum with KeeperException.NewConfigNoQuorum.
func TestReconfigCurator(t *testing.T) {
	requireCuratorJava(t)
	e := newReconfigEnsemble(t, 4)
	for id := 1; id <= 3; id++ {
		e.start(id, []int{1, 2, 3})
	}
	leader := waitServing(t, []*member{e.ms[1], e.ms[2], e.ms[3]})
	cur := startCuratorReconfig(t, e.addr(1))

	// The tracker learns the three servers from /zookeeper/config.
	c0 := cur.config("config")
	require.Equal(t, getConfigNode(t, e.addr(1)).data, c0.data, "Curator reads what go-zk reads")
	require.True(t, strings.HasSuffix(c0.data, fmt.Sprintf("\nversion=%x", c0.mzxid)), "mzxid %x, data %q", c0.mzxid, c0.data)
	require.Equal(t, int32(-1), c0.version)
	cur.waitTracked(e, []int{1, 2, 3}, c0.mzxid)
	session, port := cur.session()
	require.Equal(t, strconv.Itoa(e.ports[2]), port, "connected to server 1, the only one it was given")
	cur.write("/curator-before", "one")

	// Server 4 joins and a follower other than server 1 leaves.
	removed, kept := 2, 3
	if leader.id == 2 {
		removed, kept = 3, 2
	}
	e.start(4, []int{1, 2, 3, 4})
	// Its client part is a port alone, as ZooKeeper's documentation writes
	// it: /zookeeper/config says 0.0.0.0, for which the tracker takes the
	// host of the quorum address.
	p4 := e.ports[3*3:]
	join4 := fmt.Sprintf("server.4=127.0.0.1:%d:%d:participant;%d", p4[0], p4[1], p4[2])
	c1 := cur.config(fmt.Sprintf("reconfig %x join %s leave %d", c0.mzxid, join4, removed))
	require.Greater(t, c1.mzxid, c0.mzxid)
	require.Equal(t, int32(-1), c1.version)
	want := make([]string, 0, 4)
	for _, id := range []int{1, 2, 3} {
		if id != removed {
			want = append(want, e.line(id, "participant"))
		}
	}
	want = append(want, fmt.Sprintf("server.4=127.0.0.1:%d:%d:participant;0.0.0.0:%d", p4[0], p4[1], p4[2]))
	require.Equal(t, strings.Join(want, "\n")+fmt.Sprintf("\nversion=%x", c1.mzxid), c1.data)
	select {
	case w := <-cur.watches:
		require.Equal(t, "watch NodeDataChanged /zookeeper/config", w)
	case <-time.After(waitTimeout):
		t.Fatal("the watcher Curator's getConfig set did not fire")
	}
	e.waitConfig([]int{1, kept, 4}, c1.mzxid)
	e.waitMode(4, "follower")
	c2 := cur.config("config")
	require.Equal(t, c1, c2, "getConfig reads what the reconfig answered")

	// The tracker names exactly the new members.
	cur.waitTracked(e, []int{1, kept, 4}, c1.mzxid)

	// A stale fromConfig changes nothing.
	require.Equal(t, []string{"keeper BadVersionException"}, cur.do(fmt.Sprintf("reconfig %x leave 4", c0.mzxid)))
	require.Equal(t, c1, cur.config("config"))

	// The removed server is retired, then server 1 stops: Curator can only
	// reach the ensemble through the addresses the tracker gave it.
	e.ms[removed].stop(t)
	e.ms[1].stop(t)
	cur.write("/curator-after", "two")
	again, port := cur.session()
	require.Equal(t, session, again, "the session moved to another server")
	require.Contains(t, []string{strconv.Itoa(e.ports[3*(kept-1)+2]), strconv.Itoa(e.ports[3*3+2])}, port)
	for _, id := range []int{kept, 4} {
		c := connect(t, e.addr(id))
		_, err := c.Sync("/")
		require.NoError(t, err)
		for p, d := range map[string]string{"/curator-before": "one", "/curator-after": "two"} {
			got, _, err := c.Get(p)
			require.NoError(t, err, "%s on server %d", p, id)
			require.Equal(t, d, string(got), "%s on server %d", p, id)
		}
	}

	// Without server 1, removing server 4 would leave voters {1, kept}
	// with one of them synced: no quorum. Wait until the leader has only
	// one follower synced, as ZooKeeper's isQuorumSynced counts.
	var lead *member
	waitFor(t, "a leader with one synced follower", func() bool {
		lead = nil
		for _, id := range []int{kept, 4} {
			if mode(t, e.addr(id)) == "leader" {
				lead = e.ms[id]
			}
		}
		return lead != nil && strings.Contains(fourLetter(t, lead.addr, "mntr"), "zk_synced_followers\t1\n")
	})
	require.Equal(t, []string{"keeper NewConfigNoQuorum"}, cur.do(fmt.Sprintf("reconfig %x leave 4", c1.mzxid)))
	require.Equal(t, c1, cur.config("config"), "nothing changed")
	cur.write("/curator-after", "three")
	t.Logf("leader %d at first, %d removed, %d leads at the end; Curator's session %s on port %s", leader.id, removed, lead.id, session, port)
}
