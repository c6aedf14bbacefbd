package netstub

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The outbound peer connections carry TCP_USER_TIMEOUT = writeTimeout (see
// peerDialControl for the failure it prevents; deploy/dockertest's network
// cut of a follower shows it on real containers).
func TestPeerDialSetsUserTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			defer c.Close()
			_, _ = c.Read(make([]byte, 1))
		}
	}()
	d := net.Dialer{Timeout: 5 * time.Second, Control: peerDialControl}
	conn, err := d.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	raw, err := conn.(*net.TCPConn).SyscallConn()
	require.NoError(t, err)
	var got int
	var gerr error
	require.NoError(t, raw.Control(func(fd uintptr) {
		got, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
	}))
	require.NoError(t, gerr)
	require.Equal(t, int(writeTimeout.Milliseconds()), got)
}
