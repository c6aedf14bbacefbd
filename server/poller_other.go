//go:build !linux

package server

import (
	"bufio"
	"errors"
)

// poller reads connections' frames from an epoll set on Linux
// (poller_linux.go); elsewhere every connection is read by its goroutine.
type poller struct{}

// pollerFor returns nil: no poller off Linux.
func (s *Server) pollerFor(*clientConn) *poller { return nil }

func (p *poller) serve(*clientConn, *bufio.Reader) error {
	return errors.New("poller: not on this platform")
}
