package server

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// lateDNS answers "not found" until told a name's address, as a headless
// service's DNS does before the pod is ready.
type lateDNS struct {
	mu      sync.Mutex
	addrs   map[string]string
	lookups int
}

func (d *lateDNS) lookup(_ context.Context, host string) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lookups++
	if a, ok := d.addrs[host]; ok {
		return []string{a}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (d *lateDNS) set(host, addr string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.addrs[host] = addr
}

func (d *lateDNS) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lookups
}

func ownNameConfig(t *testing.T, host string) Config {
	cfg := DefaultConfig()
	cfg.AdminServerAddress, cfg.AdminServerPort = "127.0.0.1", 0 // a free port: tests run side by side
	cfg.DataDir = t.TempDir()
	cfg.DataLogDir = cfg.DataDir
	cfg.ClientPort = 0
	cfg.ClientPortAddress = host
	cfg.ServerID = 1
	cfg.Servers = map[int]ServerSpec{
		1: {ID: 1, Host: host, QuorumPort: 0, ElectionPort: 3888},
		2: {ID: 2, Host: "zk-1.zk-hs.test", QuorumPort: 2888, ElectionPort: 3888},
		3: {ID: 3, Host: "zk-2.zk-hs.test", QuorumPort: 2888, ElectionPort: 3888},
	}
	return cfg
}

// TestNewContextWaitsForOwnName: binding the quorum and client listeners on
// this server's own name is retried, logged, until the name resolves.
func TestNewContextWaitsForOwnName(t *testing.T) {
	const host = "zk-0.zk-hs.test"
	dns := &lateDNS{addrs: map[string]string{}}
	logger, buf := captureLogger()
	type result struct {
		s   *Server
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := newServer(context.Background(), true, ownNameConfig(t, host), logger, dns.lookup)
		done <- result{s, err}
	}()
	// A few failed lookups (the backoff starts at 100 ms) before the name
	// appears; the count is read under the resolver's lock.
	require.Eventually(t, func() bool { return dns.count() >= 3 }, 20*time.Second, 10*time.Millisecond)
	dns.set(host, "127.0.0.1")
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not bind after its name resolved")
	}
	require.NoError(t, r.err)
	defer func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		require.NoError(t, r.s.Serve(ctx))
	}()
	require.Equal(t, "127.0.0.1", r.s.PeerAddr().(*net.TCPAddr).IP.String())
	require.Equal(t, "127.0.0.1", r.s.Addr().(*net.TCPAddr).IP.String())
	require.Contains(t, buf.String(), "cannot bind yet, retrying")
	require.Contains(t, buf.String(), "listener=quorum")
	require.Contains(t, buf.String(), "no such host")
}

func TestNewContextStopsWaitingWhenCancelled(t *testing.T) {
	dns := &lateDNS{addrs: map[string]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := newServer(ctx, true, ownNameConfig(t, "zk-0.zk-hs.test"), nil, dns.lookup)
		done <- err
	}()
	require.Eventually(t, func() bool { return dns.count() >= 1 }, 20*time.Second, 10*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.ErrorContains(t, err, "quorum listener on zk-0.zk-hs.test:0: stopped while waiting")
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(20 * time.Second):
		t.Fatal("cancelling did not stop the wait")
	}
}

// TestNewFailsFastOnUnresolvedName: without a context to wait on (New), a
// name that does not resolve is an error at once, as before.
func TestNewFailsFastOnUnresolvedName(t *testing.T) {
	dns := &lateDNS{addrs: map[string]string{}}
	_, err := newServer(context.Background(), false, ownNameConfig(t, "zk-0.zk-hs.test"), nil, dns.lookup)
	require.ErrorContains(t, err, "no such host")
	require.Equal(t, 1, dns.count())
}

func TestQuorumListenOnAllIPs(t *testing.T) {
	dns := &lateDNS{addrs: map[string]string{}} // the own name never resolves: not needed
	cfg := ownNameConfig(t, "zk-0.zk-hs.test")
	cfg.ClientPortAddress = "127.0.0.1"
	cfg.QuorumListenOnAllIPs = true
	s, err := newServer(context.Background(), false, cfg, nil, dns.lookup)
	require.NoError(t, err)
	defer func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		require.NoError(t, s.Serve(ctx))
	}()
	require.True(t, s.PeerAddr().(*net.TCPAddr).IP.IsUnspecified(), s.PeerAddr().String())
	require.Zero(t, dns.count())
}

func TestRetryableListenError(t *testing.T) {
	_, err := net.Listen("tcp", "192.0.2.1:0") // TEST-NET-1: not on this machine
	require.Error(t, err)
	require.True(t, retryableListenError(err), err.Error())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	_, err = net.Listen("tcp", ln.Addr().String()) // in use: retrying would not help
	require.False(t, retryableListenError(err), err.Error())
}
