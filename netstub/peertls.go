package netstub

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"
)

// PeerTLS turns the peer links into mutual TLS (ZooKeeper's sslQuorum;
// netstub/zktcp wraps both ports in it). The functions are called for every
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
	// connection, coming from remote, may speak for the id its handshake
	// header claims (VerifyPeerHost with the dialer's server.N host). An
	// error refuses the connection: it is logged here and told to the
	// dialer.
	VerifyPeer func(peer int64, remote net.Addr, state tls.ConnectionState) error
}

// VerifyPeerHost checks that a peer's certificate names the peer, as
// ZooKeeper's ZKTrustManager does on both ends of a quorum link
// (ssl.quorum.hostnameVerification): a certificate naming host (the
// server.N host, a name or an IP) passes, and so does one naming the IP
// address of the connection (ZooKeeper's first check) when ipOfHost says
// that address is one of host's. ZooKeeper's fallback, a reverse lookup of
// the address, is not done: whoever runs the reverse zone would choose
// the name checked. The matching is crypto/x509's VerifyHostname.
func VerifyPeerHost(cert *x509.Certificate, host string, remote net.Addr, ipOfHost func(ip string) bool) error {
	err := cert.VerifyHostname(host)
	if err == nil {
		return nil
	}
	if ip := addrIP(remote); ip != "" && ip != host && cert.VerifyHostname(ip) == nil && ipOfHost(ip) {
		return nil
	}
	return err
}

// addrIP is the IP of a TCP address, "" for anything else.
func addrIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok && ta.IP != nil {
		return ta.IP.String()
	}
	if a == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil || net.ParseIP(host) == nil {
		return ""
	}
	return host
}

// clientConfig is Client's configuration for dialing peer at host over
// conn. When host is a name and the configuration verifies it, the
// certificate may name the address dialed instead (VerifyPeerHost: that
// address is host's, it was just looked up), as ZooKeeper's dialer
// accepts; the chain is verified as crypto/tls would.
func (pt *PeerTLS) clientConfig(peer int64, host string, remote net.Addr) *tls.Config {
	cfg := pt.Client(peer, host)
	if cfg == nil || cfg.InsecureSkipVerify || cfg.VerifyConnection != nil || net.ParseIP(host) != nil || addrIP(remote) == "" {
		return cfg
	}
	cfg = cfg.Clone()
	cfg.InsecureSkipVerify = true // verified below, chain and name
	roots, now := cfg.RootCAs, cfg.Time
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("peer sent no certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		opts := x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		if now != nil {
			opts.CurrentTime = now()
		}
		leaf := cs.PeerCertificates[0]
		if _, err := leaf.Verify(opts); err != nil {
			return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
		}
		if err := VerifyPeerHost(leaf, host, remote, func(string) bool { return true }); err != nil {
			return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
		}
		return nil
	}
	return cfg
}

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
