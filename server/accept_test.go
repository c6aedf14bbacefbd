package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/internal/testserver"
	"github.com/zabkeeper/zabkeeper/server"
)

// emfileHelperEnv makes the test binary, re-executed, run the server of
// TestAcceptSurvivesEMFILE with a low open-file limit.
const emfileHelperEnv = "ZABKEEPER_EMFILE_HELPER"

// TestAcceptSurvivesEMFILE runs a server in a child process whose
// RLIMIT_NOFILE is 30, opens 60 connections so that accept fails with
// EMFILE, closes them, and checks that a new client and ruok are served:
// the accept loop must back off and retry, not end for good.
func TestAcceptSurvivesEMFILE(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs Linux RLIMIT_NOFILE semantics")
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^TestEMFILEHelperServer$", "-test.count=1")
	cmd.Env = append(os.Environ(), emfileHelperEnv+"=1")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var logs syncBuffer
	cmd.Stderr = &logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = stdin.Close() // the helper stops its server and exits
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(waitTimeout):
			cancel()
			<-done
		}
		t.Logf("helper server log:\n%s", logs.String())
	})
	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
				addrCh <- a
			}
		}
		close(addrCh)
	}()
	var addr string
	select {
	case a, ok := <-addrCh:
		require.True(t, ok, "helper ended without serving")
		addr = a
	case <-time.After(30 * time.Second):
		t.Fatal("helper server did not start")
	}

	var conns []net.Conn
	for range 60 {
		nc, err := net.DialTimeout("tcp", addr, waitTimeout)
		require.NoError(t, err, "the kernel completes connections into the backlog")
		conns = append(conns, nc)
	}
	waitFor(t, "the server to hit EMFILE in accept", func() bool {
		return strings.Contains(logs.String(), "too many open files")
	})
	for _, nc := range conns {
		_ = nc.Close()
	}
	requireHealthy(t, addr)
	require.Equal(t, "imok", fourLetter(t, addr, "ruok"))
	require.Contains(t, logs.String(), "accepting clients again")
}

// TestEMFILEHelperServer is the child process of TestAcceptSurvivesEMFILE;
// it skips unless started by it.
func TestEMFILEHelperServer(t *testing.T) {
	if os.Getenv(emfileHelperEnv) != "1" {
		t.Skip("the child process of TestAcceptSurvivesEMFILE")
	}
	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	lim.Cur = 30
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim))
	cfg := testConfig(t)
	cfg.FourLetterWords = map[string]bool{"ruok": true}
	srv := testserver.StartLogged(t, cfg, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	addr := srv.Srv.Addr().String()
	// Serving, with its epochs on disk, before the parent starts.
	requireHealthy(t, addr)
	fmt.Printf("ADDR %s\n", addr)
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent is done
	// Stop fails the test if Serve returns an error.
	srv.Stop()
}

// TestServeNamesFailedEpochWrite: when the epochs cannot be made durable
// (here a directory sits where the temporary file goes; in the field EMFILE
// at start), Serve stops with an error that says what failed and names the
// file, instead of a bare errno.
func TestServeNamesFailedEpochWrite(t *testing.T) {
	cfg := testConfig(t)
	blocker := filepath.Join(cfg.DataDir, "version-2", "acceptedEpoch.tmp") // where ZooKeeper keeps it
	require.NoError(t, os.MkdirAll(blocker, 0o755))
	srv, err := server.New(cfg, newServerLogger(t))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background()) }()
	select {
	case err := <-done:
		require.Error(t, err)
		require.Contains(t, err.Error(), "accepted epoch")
		require.Contains(t, err.Error(), blocker)
	case <-time.After(waitTimeout):
		t.Fatal("Serve went on without durable epochs")
	}
}
