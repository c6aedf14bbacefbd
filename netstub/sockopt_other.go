//go:build !linux

package netstub

import (
	"net"
	"syscall"
)

// peerDialControl is nil where TCP_USER_TIMEOUT is not available: the write
// deadline and the kernel's own retransmission limit apply.
var peerDialControl func(network, address string, c syscall.RawConn) error

// TuneAccepted does nothing where TCP_USER_TIMEOUT is not available.
func TuneAccepted(net.Conn) error { return nil }
