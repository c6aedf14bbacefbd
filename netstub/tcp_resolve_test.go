package netstub

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
)

// movingResolver answers one name with an address the test changes, as a
// headless service's DNS does when a pod comes back with a new IP.
type movingResolver struct {
	mu      sync.Mutex
	name    string
	ip      string
	lookups int
}

func (r *movingResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookups++
	if host != r.name || r.ip == "" {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return []string{r.ip}, nil
}

func (r *movingResolver) move(ip string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ip = ip
}

// TestTCPResolvesPeerNameOnEveryDial: a peer named by host name that
// restarts on another IP is reached there. An implementation that resolved
// the name once, at start, would keep dialing the old IP and fail.
func TestTCPResolvesPeerNameOnEveryDial(t *testing.T) {
	noLeaks(t)
	sink := &logSink{}
	// The peer's first incarnation fixes the port; it moves from
	// 127.0.0.2 to 127.0.0.3 (all of 127.0.0.0/8 is loopback on Linux).
	first, err := NewTCP(TCPConfig{ID: 2, ListenAddr: "127.0.0.2:0", Logger: sink.logger()})
	require.NoError(t, err)
	defer first.Close()
	port := first.Addr().(*net.TCPAddr).Port
	res := &movingResolver{name: "zk-1.zk-hs.test", ip: "127.0.0.2"}
	a, err := NewTCP(TCPConfig{
		ID: 1, ListenAddr: "127.0.0.1:0", Logger: sink.logger(), Resolver: res,
		Peers: map[int64]string{2: net.JoinHostPort(res.name, strconv.Itoa(port))},
	})
	require.NoError(t, err)
	defer a.Close()
	first.SetPeers(map[int64]string{1: a.Addr().String()})

	// sendUntil sends pings to 2 until to receives one from 1.
	sendUntil := func(to *TCP) {
		t.Helper()
		deadline := time.After(waitFor)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			a.Send(zab.Message{Type: zab.MsgPing, To: 2, Epoch: 7})
			select {
			case m := <-to.Recv():
				if m.Type == zab.MsgPing && m.From == 1 {
					return
				}
			case <-tick.C:
			case <-deadline:
				t.Fatalf("no message reached %s", to.Addr())
			}
		}
	}
	sendUntil(first)

	require.NoError(t, first.Close())
	second, err := NewTCP(TCPConfig{
		ID: 2, ListenAddr: net.JoinHostPort("127.0.0.3", strconv.Itoa(port)), Logger: sink.logger(),
		Peers: map[int64]string{1: a.Addr().String()},
	})
	require.NoError(t, err)
	defer second.Close()
	res.move("127.0.0.3")
	sendUntil(second)
	require.True(t, sink.has("remote=127.0.0.3:"+strconv.Itoa(port)), "outbound link names the new IP")
	res.mu.Lock()
	require.GreaterOrEqual(t, res.lookups, 2)
	res.mu.Unlock()
}

// TestTCPRetriesUnresolvedPeerName: a peer whose name does not resolve yet
// is dialed again until it does.
func TestTCPRetriesUnresolvedPeerName(t *testing.T) {
	noLeaks(t)
	sink := &logSink{}
	b, err := NewTCP(TCPConfig{ID: 2, ListenAddr: "127.0.0.1:0", Logger: sink.logger()})
	require.NoError(t, err)
	defer b.Close()
	res := &movingResolver{name: "zk-1.zk-hs.test"}
	a, err := NewTCP(TCPConfig{
		ID: 1, ListenAddr: "127.0.0.1:0", Logger: sink.logger(), Resolver: res,
		Peers: map[int64]string{2: net.JoinHostPort(res.name, strconv.Itoa(b.Addr().(*net.TCPAddr).Port))},
	})
	require.NoError(t, err)
	defer a.Close()
	b.SetPeers(map[int64]string{1: a.Addr().String()})
	require.Eventually(t, func() bool { return sink.has("no such host") }, waitFor, 10*time.Millisecond)
	res.move("127.0.0.1")
	a.Send(zab.Message{Type: zab.MsgPing, To: 2, Epoch: 1})
	select {
	case m := <-b.Recv():
		require.Equal(t, zab.MsgPing, m.Type)
	case <-time.After(waitFor):
		t.Fatal("the peer was never reached after its name resolved")
	}
}
