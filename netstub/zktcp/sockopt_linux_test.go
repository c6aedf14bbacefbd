package zktcp

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestZKTCPAcceptedConnectionsHaveUserTimeout: ZooKeeper's protocol writes
// on accepted connections too (the leader's packets on a learner's, the
// smaller id's votes on the larger id's), so they get the
// TCP_USER_TIMEOUT of a dialed peer connection (netstub.TuneAccepted):
// unacknowledged data breaks the connection after writeTimeout instead of
// the kernel's ~15 minutes.
func TestZKTCPAcceptedConnectionsHaveUserTimeout(t *testing.T) {
	tr := cluster(t, 1)[0]
	for _, addr := range []net.Addr{tr.ElectionAddr(), tr.QuorumAddr()} {
		c, err := net.Dial("tcp", addr.String())
		require.NoError(t, err)
		defer c.Close()
	}
	var accepted []net.Conn
	require.Eventually(t, func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		accepted = accepted[:0]
		for c := range tr.conns {
			accepted = append(accepted, c)
		}
		return len(accepted) == 2
	}, 5*time.Second, 10*time.Millisecond)
	for _, c := range accepted {
		raw, err := c.(*net.TCPConn).SyscallConn()
		require.NoError(t, err)
		var got int
		var gerr error
		require.NoError(t, raw.Control(func(fd uintptr) {
			got, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
		}))
		require.NoError(t, gerr)
		require.Equal(t, int(writeTimeout.Milliseconds()), got, "accepted on %s", c.LocalAddr())
	}
}
