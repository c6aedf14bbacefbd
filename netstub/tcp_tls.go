package netstub

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"time"
)

// PeerTLS turns the peer links of a TCP transport into mutual TLS
// (ZooKeeper's sslQuorum). The frames and the handshake header travel
// unchanged inside the TLS stream. The functions are called for every
// connection, so a configuration rebuilt from reloaded files applies to the
// next connection while the links already up keep theirs.
type PeerTLS struct {
	// Server returns the configuration for an accepted connection. It
	// should require and verify a client certificate.
	Server func() *tls.Config
	// Client returns the configuration for dialing peer at host, the host
	// part of its configured address (a name or an IP), which its
	// certificate is checked against unless the configuration says not to.
	// Nil dials in plain text (with AcceptPlain, the first step of a
	// rolling move of an ensemble to TLS).
	Client func(peer int64, host string) *tls.Config
	// AcceptPlain accepts plain-text links as well as TLS ones, told apart
	// by their first byte (ZooKeeper's quorum portUnification), so that
	// an ensemble can move to quorum TLS one server at a time.
	AcceptPlain bool
	// VerifyPeer, if set, checks that the certificate of an accepted
	// connection may speak for the id its handshake header claims (the
	// dialer's server.N host among its names). An error refuses the
	// connection: it is logged here and told to the dialer.
	VerifyPeer func(peer int64, state tls.ConnectionState) error
}

// refuseCertificate is the refusal of a dialer whose TLS certificate does
// not name the host of the id it claims.
const refuseCertificate refusalCode = refuseDuplicateID + 1

// tlsHandshakeRecord is the first byte of a TLS connection.
const tlsHandshakeRecord = 22

// peekedConn reads first what a bufio.Reader already took from the
// socket; CloseWrite reaches the socket (see refuse).
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (p *peekedConn) Read(b []byte) (int, error) { return p.r.Read(b) }

func (p *peekedConn) CloseWrite() error {
	if cw, ok := p.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// tlsConn, tlsClient and tlsServer name crypto/tls for peerconn.go.
type tlsConn = tls.Conn

var (
	tlsClient = tls.Client
	tlsServer = tls.Server
)

// unify tells TLS from plain text on an accepted connection by its first
// byte (AcceptPlain) and returns the connection to read, with tls false
// for plain text.
func (pt *PeerTLS) unify(c net.Conn) (net.Conn, bool, error) {
	if !pt.AcceptPlain {
		return c, true, nil
	}
	br := bufio.NewReaderSize(c, 16)
	_ = c.SetReadDeadline(time.Now().Add(handshakeTimeout))
	first, err := br.Peek(1)
	if err != nil {
		return nil, false, fmt.Errorf("reading the first byte: %w", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	return &peekedConn{Conn: c, r: br}, first[0] == tlsHandshakeRecord, nil
}

// clientTLS runs the dialer's side of the TLS handshake on conn, unless
// this side dials in plain text.
func (t *TCP) clientTLS(conn net.Conn, peer int64, host string) (net.Conn, error) {
	remote := conn.RemoteAddr().String()
	tc, err := t.tls.DialTLS(t.ctx, conn, peer, host)
	if err != nil {
		t.log.Warn("TLS handshake with peer failed", "peer", peer, "host", host, "remote", remote, "err", err)
	}
	return tc, err
}

// verifyPeerTLS checks an accepted TLS connection's certificate against
// the id its header claimed.
func (t *TCP) verifyPeerTLS(tc *tls.Conn, peer int64) error {
	if t.tls == nil || t.tls.VerifyPeer == nil || tc == nil {
		return nil
	}
	if err := t.tls.VerifyPeer(peer, tc.ConnectionState()); err != nil {
		return refused(refuseCertificate, "TLS certificate does not match peer %d: %v", peer, err)
	}
	return nil
}
