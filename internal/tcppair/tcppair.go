// Package tcppair gives tests a connected pair of real loopback TCP sockets,
// for code that writes on a socket's descriptor (internal/nbwrite) and must
// be shown to keep frames whole and in order once the peer stops reading.
package tcppair

import (
	"net"
	"testing"
)

// New returns both ends of one loopback TCP connection: the one t dialed
// and the one the listener accepted. t's cleanup closes both.
func New(t testing.TB) (dialed, accepted net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("tcppair: listen: %v", err)
	}
	defer ln.Close()
	got := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			c = nil
		}
		got <- c
	}()
	dialed, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("tcppair: dial: %v", err)
	}
	t.Cleanup(func() { dialed.Close() })
	accepted = <-got
	if accepted == nil {
		t.Fatal("tcppair: accept failed")
	}
	t.Cleanup(func() { accepted.Close() })
	return dialed, accepted
}
