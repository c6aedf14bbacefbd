package netstub

import (
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// peerDialControl sets TCP_USER_TIMEOUT to writeTimeout on an outbound
// peer connection: data that stays unacknowledged that long breaks the
// connection, so the link is redialed.
//
// The write deadline alone does not cover it: a write that fits in the
// kernel's send buffer returns at once, and the kernel keeps retransmitting
// for up to ~15 minutes (tcp_retries2). That is what happens when this
// server's own address goes away under an open connection, as when a
// container is disconnected from its network and reconnected with a new IP:
// without the timeout, its votes went into the dead connection, its peers'
// replies could not reach it, and it stayed LOOKING until the kernel gave up.
func peerDialControl(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(writeTimeout.Milliseconds()))
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("set TCP_USER_TIMEOUT: %w", err)
	}
	return nil
}

// TuneAccepted gives an accepted peer connection the socket options a
// dialed one gets (TCP_USER_TIMEOUT; see peerDialControl). A transport
// that writes on connections it accepted needs them there too: ZooKeeper's
// protocol writes the leader's packets on the learner's connection and
// the smaller id's votes on the larger id's, so a peer whose address went
// away would otherwise hold those writes for the kernel's ~15 minutes.
func TuneAccepted(c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("tune accepted peer connection: %w", err)
	}
	return peerDialControl("tcp", c.LocalAddr().String(), raw)
}
