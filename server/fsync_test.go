package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"
	"github.com/zabkeeper/zabkeeper/disk"
	"github.com/zabkeeper/zabkeeper/server"
)

// lockedBuffer collects a server's log lines for the test to search.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// When fsync of the txn log fails (EIO), nothing written since the last
// good fsync is acknowledged and the server stops with an error rather than
// go on as if the data were safe (PostgreSQL's "fsyncgate"); restarted on
// the same files it serves every write acknowledged before the failure
// (issue 8 item 8).
func TestFsyncFailureStopsServer(t *testing.T) {
	var failing atomic.Bool
	var failed atomic.Int32
	cfg := testConfig(t)
	cfg.LogFS = disk.WithFaults(disk.OSFS{}, func(op disk.Op, path string) error {
		// Every fsync of a log segment and of the log directory fails.
		if failing.Load() && (op == disk.OpSync && strings.HasPrefix(filepath.Base(path), "log.") || op == disk.OpSyncDir) {
			failed.Add(1)
			return fmt.Errorf("fsync %s: %w", path, errEIO)
		}
		return nil
	})
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(&logs, newTestLog(t)), nil))
	srv, err := server.New(cfg, logger)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background()) }()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(srv.Addr().(*net.TCPAddr).Port))

	c := connect(t, addr)
	var acked []string
	for i := 0; i < 20; i++ {
		p := fmt.Sprintf("/acked-%02d", i)
		_, err := c.Create(p, []byte(p), 0, zk.WorldACL(zk.PermAll))
		require.NoError(t, err)
		acked = append(acked, p)
	}

	failing.Store(true)
	// Several writers at once, so some writes share the failing fsync and
	// some arrive after it.
	var wg sync.WaitGroup
	var ackedAfter atomic.Int32
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				if _, err := c.Create(fmt.Sprintf("/late-%d-%d", w, i), nil, 0, zk.WorldACL(zk.PermAll)); err == nil {
					ackedAfter.Add(1)
				}
			}
		}()
	}
	var serveErr error
	select {
	case serveErr = <-done:
	case <-time.After(waitTimeout):
		t.Fatal("the server kept running after its txn log fsync failed")
	}
	c.Close()
	wg.Wait()
	require.Error(t, serveErr)
	require.ErrorIs(t, serveErr, errEIO)
	require.Contains(t, serveErr.Error(), "txn log failed")
	require.Positive(t, failed.Load(), "an fsync was failed")
	require.Zero(t, ackedAfter.Load(), "no write is acknowledged after the failed fsync")
	require.Contains(t, logs.String(), "level=ERROR msg=\"txn log write failed\"")

	// Restarted without faults on the durable files: every acknowledged
	// write is there, and the server takes writes again.
	cfg.LogFS = nil
	addr, _ = startServerCfg(t, cfg)
	c = connect(t, addr)
	for _, p := range acked {
		data, _, err := c.Get(p)
		require.NoError(t, err, p)
		require.Equal(t, p, string(data))
	}
	// The writes whose fsync failed were never acknowledged, and the page
	// cache that still holds them is no proof they reached the disk: the
	// restart must not take them for durable.
	kids, _, err := c.Children("/")
	require.NoError(t, err)
	for _, k := range kids {
		require.False(t, strings.HasPrefix(k, "late-"), "/%s came back from a log record whose fsync failed", k)
	}
	_, err = c.Create("/after-restart", nil, 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
}

// errEIO stands for the EIO a failing disk returns from fsync.
var errEIO = errors.New("input/output error")
