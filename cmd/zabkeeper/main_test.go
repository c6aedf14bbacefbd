package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/bugs"
	"github.com/zabkeeper/zabkeeper/server"
)

func TestRunCommands(t *testing.T) {
	for _, tc := range []struct {
		args           []string
		code           int
		stdout, stderr string
	}{
		{args: []string{"version"}, stdout: "zabkeeper " + server.Version + " (ZooKeeper 3.9.0 compatible"},
		{args: []string{"help"}, stdout: "zabkeeper server [flags]"},
		{args: []string{"help", "server"}, stdout: "-log-format"},
		{args: nil, code: 2, stderr: "Usage:"},
		{args: []string{"frobnicate"}, code: 2, stderr: `unknown command "frobnicate"`},
		{args: []string{"server", "--log-format", "xml"}, code: 2, stderr: "bad --log-format"},
		{args: []string{"server", "--log-level", "loud"}, code: 2, stderr: "bad --log-level"},
		{args: []string{"server", "--nope"}, code: 2, stderr: "flag provided but not defined"},
		{args: []string{"server", "extra"}, code: 2, stderr: "unexpected arguments"},
		{args: []string{"server", "--plant-bug", "no-such-bug"}, code: 2, stderr: `unknown bug "no-such-bug" for --plant-bug`},
		{args: []string{"server", "--plant-bug", "none"}, code: 2, stderr: `unknown bug "none"`},
		{args: []string{"server", "--config", "/nonexistent/zoo.cfg"}, code: 1, stderr: "load configuration"},
		{args: []string{"server", "--config", "/nonexistent/zoo.cfg", "--log-format", "json"}, code: 1, stderr: `"level":"ERROR"`},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		require.Equal(t, tc.code, code, "%v: %s", tc.args, stderr.String())
		require.Contains(t, stdout.String(), tc.stdout, "%v", tc.args)
		require.Contains(t, stderr.String(), tc.stderr, "%v", tc.args)
	}
}

// Without the simbugs tag the server refuses to plant a bug, before it
// does anything else.
func TestServerPlantBugRefusedWithoutTag(t *testing.T) {
	if bugs.Enabled {
		t.Skip("built with -tags simbugs")
	}
	for _, b := range bugs.All() {
		var stdout, stderr bytes.Buffer
		code := run([]string{"server", "--plant-bug", b.String(), "--config", "/nonexistent/zoo.cfg"}, &stdout, &stderr)
		require.Equal(t, 2, code, "%s: %s", b, stderr.String())
		require.Contains(t, stderr.String(), "--plant-bug needs a build with -tags simbugs", b.String())
		require.NotContains(t, stderr.String(), "load configuration", "refused before loading anything")
	}
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestServeUntilCancelled(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	cfgPath := filepath.Join(dir, "zoo.cfg")
	require.NoError(t, os.WriteFile(cfgPath, []byte("tickTime=500\ndataDir="+filepath.Join(dir, "data")+
		"\nclientPortAddress=127.0.0.1\nclientPort="+strconv.Itoa(port)+"\n4lw.commands.whitelist=ruok\n"+
		"admin.serverAddress=127.0.0.1\nadmin.serverPort=0\n"), 0o644))
	logger, err := newLogger(&bytes.Buffer{}, "text", "debug")
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfgPath, false, logger) }()

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var reply []byte
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("ruok")); err != nil {
			return false
		}
		buf := make([]byte, 16)
		n, _ := c.Read(buf)
		reply = buf[:n]
		return n > 0
	}, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, "imok", string(reply))

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop after cancel")
	}
}

// A campaign's summary counts linearizability timeouts and panics.
func TestSimCampaignSummary(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"sim", "--seeds", "2", "--nodes", "3", "--faults", "none", "--duration", "1s", "--jobs", "1", "--stop-on-failure", "--fail-on-lin-timeout"}, &stdout, &stderr)
	require.Equal(t, 0, code, "%s%s", stdout.String(), stderr.String())
	require.Contains(t, stdout.String(), "seeds:            2 (0 failing)")
	require.Contains(t, stdout.String(), "lin timeouts:     0 seeds")
	require.Contains(t, stdout.String(), "(0 seeds panicked)")
	require.Contains(t, stdout.String(), "server kinds:     ")

	// --peer-protocol forces every server's kind: the summary counts seeds
	// per kind mix.
	stdout.Reset()
	code = run([]string{"sim", "--seeds", "2", "--nodes", "3", "--faults", "none", "--duration", "1s", "--jobs", "1", "--peer-protocol", "zookeeper"}, &stdout, &stderr)
	require.Equal(t, 0, code, "%s%s", stdout.String(), stderr.String())
	require.Contains(t, stdout.String(), "server kinds:     0 seeds all native, 2 all ZooKeeper-like, 0 mixed; 0 kind switches at restarts")
}
