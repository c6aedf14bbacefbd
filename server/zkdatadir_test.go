package server_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"
	"github.com/zabkeeper/zabkeeper/disk"
	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/internal/zkreal"
	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/server"
)

// TestServesZooKeeperDataDir starts zabkeeper on data directories Apache
// ZooKeeper 3.8 left after SIGKILL (disk/testdata/zk38, made by
// scripts/zk-datadirs.sh; one with dataLogDir apart, one a member of an
// ensemble run over two epochs): it recovers from
// ZooKeeper's log and serves the tree ZooKeeper served, then takes writes
// on top. (Until snapshots are ZooKeeper's format too, ZooKeeper's
// snapshot files are passed over and the whole log is replayed.)
func TestServesZooKeeperDataDir(t *testing.T) {
	for _, tc := range []struct{ name, data, logs string }{
		{"standalone", "standalone", "standalone"},
		{"dataLogDir", "datalogdir/data", "datalogdir/logs"},
		{"ensembleMember", "ensemble/n1", "ensemble/n1"}, // epochs 1 and 2, epoch files in version-2
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.CopyFS(dir, os.DirFS("../disk/testdata/zk38")))
			addr, stop := startServer(t, func(c *server.Config) {
				c.DataDir, c.DataLogDir = filepath.Join(dir, tc.data), filepath.Join(dir, tc.logs)
			})
			defer stop()
			c := connect(t, addr)
			data, st, err := c.Get("/fx")
			require.NoError(t, err)
			require.Equal(t, "root3", string(data))
			require.Equal(t, int32(2), st.Version)
			data, _, err = c.Get("/fx/m")
			require.NoError(t, err)
			require.Equal(t, "m2", string(data), "the failed multi changed nothing")
			ok, _, err := c.Exists("/fx/e2")
			require.NoError(t, err)
			require.False(t, ok, "closed with its session")
			acl, _, err := c.GetACL("/fx/t")
			require.NoError(t, err)
			require.Equal(t, zk.WorldACL(zk.PermRead|zk.PermWrite|zk.PermAdmin), acl)
			_, st, err = c.Get("/fx/t")
			require.NoError(t, err)
			require.Equal(t, int64(0x7), st.Czxid&0xffffffff)
			kids, _, err := c.Children("/fx")
			require.NoError(t, err)
			require.Contains(t, kids, "utf8-ü")
			_, err = c.Create("/fx/after-swap", []byte("new"), 0, zk.WorldACL(zk.PermAll))
			require.NoError(t, err)
		})
	}
}

// TestZooKeeperServesOurDataDir is the way back: zabkeeper takes writes
// (every kind of create, setData, setACL, multi, a session closed, one left
// open), stops, and Apache ZooKeeper 3.8 started on the same data
// directory serves the same data and Stats. ZooKeeper is told to trust a
// directory without a snapshot of its format
// (zookeeper.snapshot.trust.empty) until snapshots are ZooKeeper's too: it
// passes over ours and replays our log.
func TestZooKeeperServesOurDataDir(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ZooKeeper")
	}
	requireZkCli(t)
	cfg := testConfig(t)
	addr, stop := startServerCfg(t, cfg)
	c := connect(t, addr)
	open := zk.WorldACL(zk.PermAll)
	paths := []string{"/back", "/back/e", "/back/c", "/back/t", "/back/m"}
	_, err := c.Create("/back", []byte("v1"), 0, open)
	require.NoError(t, err)
	_, err = c.Create("/back/p", []byte("p"), 0, zk.DigestACL(zk.PermAll, "user", "pw"))
	require.NoError(t, err)
	seq, err := c.Create("/back/s-", nil, zk.FlagSequence, open)
	require.NoError(t, err)
	paths = append(paths, seq)
	_, err = c.Create("/back/e", []byte("e"), zk.FlagEphemeral, open)
	require.NoError(t, err)
	_, err = c.CreateContainer("/back/c", []byte("c"), zk.FlagContainer, open)
	require.NoError(t, err)
	_, err = c.Create("/back/c/kid", nil, 0, open)
	require.NoError(t, err)
	paths = append(paths, "/back/c/kid")
	_, err = c.CreateTTL("/back/t", []byte("t"), zk.FlagTTL, open, time.Hour)
	require.NoError(t, err)
	_, err = c.Set("/back", []byte("v2"), 0)
	require.NoError(t, err)
	_, err = c.SetACL("/back/t", zk.WorldACL(zk.PermRead), -1)
	require.NoError(t, err)
	_, err = c.Multi(&zk.CreateRequest{Path: "/back/m", Data: []byte("m"), Acl: open},
		&zk.SetDataRequest{Path: "/back/m", Data: []byte("m2"), Version: 0})
	require.NoError(t, err)
	_, err = c.Create("/back", nil, 0, open)
	require.ErrorIs(t, err, zk.ErrNodeExists)
	_, err = c.Sync("/back")
	require.NoError(t, err)
	c2 := connect(t, addr)
	_, err = c2.Create("/back/gone", nil, zk.FlagEphemeral, open)
	require.NoError(t, err)
	c2.Close()
	waitFor(t, "the closed session's ephemeral deleted", func() bool {
		ok, _, err := c.Exists("/back/gone")
		return err == nil && !ok
	})
	type node struct {
		data string
		st   zk.Stat
	}
	want := map[string]node{}
	for _, p := range paths {
		d, st, err := c.Get(p)
		require.NoError(t, err, p)
		want[p] = node{string(d), *st}
	}
	stop()
	c.Close()

	zks := zkreal.Start(t, zkreal.Options{DataDir: cfg.DataDir, DataLogDir: cfg.DataLogDir, Props: map[string]string{
		"zookeeper.snapshot.trust.empty": "true", "zookeeper.extendedTypesEnabled": "true"}})
	defer func() {
		if t.Failed() {
			t.Logf("ZooKeeper's output:\n%s", zks.Log())
		}
	}()
	zc, _ := connectTimeout(t, zks.Addr, 10*time.Second)
	for _, p := range paths {
		d, st, err := zc.Get(p)
		require.NoError(t, err, p)
		require.Equal(t, want[p], node{string(d), *st}, p)
	}
	ok, _, err := zc.Exists("/back/gone")
	require.NoError(t, err)
	require.False(t, ok)
	acl, _, err := zc.GetACL("/back/t")
	require.NoError(t, err)
	require.Equal(t, zk.WorldACL(zk.PermRead), acl)
}

// TestRefusesLogItCannotApply: a ZooKeeper log holding a txn zabkeeper
// cannot apply (a type this version does not know, as a later ZooKeeper
// could write) stops the start with the file and offset, not a panic at
// apply.
func TestRefusesLogItCannotApply(t *testing.T) {
	cfg := testConfig(t)
	l, err := disk.OpenLog(cfg.DataLogDir, disk.LogOptions{NoSync: true})
	require.NoError(t, err)
	ok := &tree.Txn{Zxid: 1<<32 | 1, SessionID: 1, Type: proto.OpCreateSession, TimeOut: 4000}
	bad := (&tree.Txn{Zxid: 1<<32 | 2, SessionID: 1, Type: proto.OpCreateSession, TimeOut: 4000}).Marshal()
	// TxnHeader: clientId int64, cxid int32, zxid int64, time int64, type int32.
	binary.BigEndian.PutUint32(bad[28:], 77)
	require.NoError(t, l.Append(disk.Record{Zxid: ok.Zxid, Data: ok.Marshal()}, disk.Record{Zxid: 1<<32 | 2, Data: bad}))
	require.NoError(t, l.Close())
	_, err = server.New(cfg, newServerLogger(t))
	require.Error(t, err)
	require.Contains(t, err.Error(), "log.100000001")
	require.Contains(t, err.Error(), "offset")
	require.Contains(t, err.Error(), "77")
}

// TestSessionCarriesAcrossSwap is the swap as a user does it, with a Java
// client that stays up: Apache ZooKeeper 3.8 serves its session (with an
// ephemeral), is SIGKILLed, zabkeeper starts on the same data directory
// and port, and the client reconnects with its session id and password and
// finds its ephemeral; then zabkeeper stops, ZooKeeper starts again on the
// directory zabkeeper wrote to, and the same session reconnects once more.
// The password is not on disk: both servers derive it from the session id
// (engine.SessionPassword).
func TestSessionCarriesAcrossSwap(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ZooKeeper")
	}
	requireZkCli(t)
	classes := t.TempDir()
	javac := exec.Command("javac", "-proc:none", "-implicit:none", "-cp", "/usr/share/java/zookeeper.jar",
		"-d", classes, "testdata/java/SessionCarry.java")
	out, err := javac.CombinedOutput()
	require.NoError(t, err, "javac:\n%s", out)

	cfg := testConfig(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	// Each ZooKeeper run (on cfg.DataDir and port) keeps its zoo.cfg and
	// log in a directory of its own; all are printed if the test fails.
	var zkRuns []*zkreal.Server
	startZK := func() *zkreal.Server {
		work := t.TempDir()
		zks, err := zkreal.Launch(work, zkreal.Options{DataDir: cfg.DataDir, ClientPort: port,
			Props: map[string]string{"zookeeper.snapshot.trust.empty": "true", "zookeeper.log.dir": work}})
		require.NoError(t, err)
		t.Cleanup(zks.Stop)
		zkRuns = append(zkRuns, zks)
		return zks
	}
	zk1 := startZK()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	client := exec.CommandContext(ctx, "java", "-cp", classes+":/usr/share/java/zookeeper.jar", "SessionCarry",
		net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	stdin, err := client.StdinPipe()
	require.NoError(t, err)
	stdout, err := client.StdoutPipe()
	require.NoError(t, err)
	var stderr syncBuffer
	client.Stderr = &stderr
	require.NoError(t, client.Start())
	defer func() {
		_ = stdin.Close()
		_ = client.Process.Kill()
		_ = client.Wait()
		if t.Failed() {
			var logs strings.Builder
			for i, zks := range zkRuns {
				fmt.Fprintf(&logs, "ZooKeeper run %d:\n%s", i+1, zks.Log())
			}
			t.Logf("client stderr:\n%s\n%s", stderr.String(), logs.String())
		}
	}()
	lines := bufio.NewScanner(stdout)
	next := func() string {
		require.True(t, lines.Scan(), "the Java client ended: %v", lines.Err())
		return lines.Text()
	}
	first := next()
	session, ok := strings.CutPrefix(first, "SESSION ")
	require.True(t, ok, first)

	// ZooKeeper dies; zabkeeper takes over its directory and port.
	zk1.Stop() // SIGKILL
	cfg.ClientPort = port
	_, stop := startServerCfg(t, cfg)
	_, err = io.WriteString(stdin, "check\n")
	require.NoError(t, err)
	require.Equal(t, "CHECK "+session+" true", next(), "the session and its ephemeral carried over to zabkeeper")

	// And back.
	stop()
	startZK()
	_, err = io.WriteString(stdin, "check\n")
	require.NoError(t, err)
	require.Equal(t, "CHECK "+session+" true", next(), "the session carried back to ZooKeeper")
}
