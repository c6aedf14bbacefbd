package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"time"

	"github.com/zabkeeper/zabkeeper/netstub"
	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/server/tlsconf"
)

// connMode is what a client listener speaks.
type connMode int

const (
	// modePlain is the plain client port.
	modePlain connMode = iota
	// modeUnified is the plain client port with client.portUnification:
	// a connection whose first byte starts a TLS handshake is TLS.
	modeUnified
	// modeTLS is the secureClientPort: TLS only.
	modeTLS
)

func (m connMode) String() string {
	switch m {
	case modeUnified:
		return "unified"
	case modeTLS:
		return "tls"
	}
	return "plain"
}

// requiresTLSReply is what a four-letter word sent in plain text to the
// TLS port gets back, so that an operator's nc sees why.
const requiresTLSReply = "zabkeeper: this port (secureClientPort) requires TLS\n"

// openTLS reads the PEM files of the client and quorum sides and starts
// watching them for changes.
func (s *Server) openTLS() error {
	t := s.cfg.TLS
	if t.ClientTLS() {
		st, err := tlsconf.Open("client", "ssl.", t.Client, s.log)
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		st.Watch(t.ReloadInterval)
		s.clientTLS = st
	}
	if t.QuorumTLS() && len(s.cfg.Servers) > 0 {
		qs := t.QuorumSettings
		if qs.ClientAuth != "" && qs.ClientAuth != tlsconf.ClientAuthNeed {
			s.log.Warn("ssl.quorum.clientAuth ignored: quorum TLS is always mutual", "value", string(qs.ClientAuth))
		}
		qs.ClientAuth = tlsconf.ClientAuthNeed
		st, err := tlsconf.Open("quorum", "ssl.quorum.", qs, s.log)
		if err != nil {
			s.closeTLS()
			return fmt.Errorf("server: %w", err)
		}
		st.Watch(t.ReloadInterval)
		s.quorumTLS = st
	}
	return nil
}

// closeTLS stops watching the PEM files.
func (s *Server) closeTLS() {
	if s.clientTLS != nil {
		s.clientTLS.Close()
	}
	if s.quorumTLS != nil {
		s.quorumTLS.Close()
	}
}

// peekedConn reads first what a bufio.Reader already took from the socket.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (p *peekedConn) Read(b []byte) (int, error) { return p.r.Read(b) }

// secure runs before anything else on a connection of a TLS or unified
// port: it tells TLS from plain text by the first byte (unified), runs the
// TLS handshake within the handshake timeout
// (ssl.handshakeDetectionTimeoutMillis, counted from here: a client that
// connects and sends nothing is closed, not held), and turns a client
// certificate into the connection's x509 ids. On success c.rw is the
// stream to use. A failure is the client's alone: secureFailed counts
// and logs it and the connection closes. The connection's handshake slot
// (admitHandshake) is given back on return.
func (c *clientConn) secure() error {
	if c.mode == modePlain {
		return nil
	}
	defer c.releaseHandshake()
	timeout := c.srv.cfg.TLS.HandshakeTimeout
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	_ = c.nc.SetDeadline(time.Now().Add(timeout))
	// A small buffer: once the peeked bytes are consumed, larger reads go
	// straight to the socket (and the reader above has a buffer of its own).
	br := bufio.NewReaderSize(c.nc, 16)
	first, err := br.Peek(1)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			if c.mode == modeTLS {
				err = &handshakeError{fmt.Errorf("no TLS handshake within %v of connecting: %w", timeout, err)}
			} else {
				// A unified port: neither TLS nor plain text began.
				err = fmt.Errorf("nothing received within %v of connecting: %w", timeout, err)
			}
		}
		return err
	}
	c.rw = &peekedConn{Conn: c.nc, r: br}
	if !tlsconf.IsTLSHandshake(first) {
		if c.mode == modeUnified {
			_ = c.nc.SetWriteDeadline(time.Time{})
			return nil
		}
		if head, _ := br.Peek(4); isFourLetterWord(string(head)) {
			_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			_, _ = io.WriteString(c.nc, requiresTLSReply)
		}
		return &handshakeError{errors.New("plain text on the TLS port (secureClientPort); the client must use TLS")}
	}
	tc := tls.Server(c.rw, c.srv.clientTLS.ServerConfig())
	if err := tc.Handshake(); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			err = fmt.Errorf("not finished within %v of connecting: %w", timeout, err)
		}
		return &handshakeError{fmt.Errorf("TLS handshake failed: %w", err)}
	}
	_ = c.nc.SetWriteDeadline(time.Time{})
	c.rw = tc
	st := tc.ConnectionState()
	if len(st.PeerCertificates) == 0 {
		c.log.Debug("TLS client without a certificate", "version", tls.VersionName(st.Version))
		return nil
	}
	ids, err := c.srv.x509IDs(st.PeerCertificates[0])
	if err != nil {
		return &handshakeError{fmt.Errorf("x509 authentication failed: %w", err)}
	}
	c.transportIDs = ids
	c.log.Info("TLS client authenticated", "x509", ids[len(ids)-1].ID, "super", len(ids) > 1,
		"version", tls.VersionName(st.Version))
	return nil
}

// x509IDs returns the ids of a verified client certificate, as ZooKeeper's
// X509AuthenticationProvider: super:<id> first when the id is the
// configured super user, then x509:<id>.
func (s *Server) x509IDs(cert *x509.Certificate) ([]proto.Id, error) {
	id, err := s.cfg.TLS.ClientID.ClientID(cert)
	if err != nil {
		return nil, err
	}
	var ids []proto.Id
	if s.cfg.TLS.SuperUser != "" && id == s.cfg.TLS.SuperUser {
		ids = append(ids, proto.Id{Scheme: "super", ID: id})
	}
	return append(ids, proto.Id{Scheme: "x509", ID: id}), nil
}

// peerTLS is the quorum TLS of the peer links, nil without sslQuorum or
// portUnification (with which the quorum port accepts plain text too, and
// this server dials in plain text unless sslQuorum is set):
// both ends present their certificate, the dialer checks the acceptor's
// against the host it dials, and the acceptor checks the dialer's against
// the server.N host of the id it claims, or its own address when that is
// one of the host's (ssl.quorum.hostnameVerification, default true, as
// ZooKeeper's; with it off only the chain is checked).
func (s *Server) peerTLS() *netstub.PeerTLS {
	st := s.quorumTLS
	if st == nil {
		return nil
	}
	p := &netstub.PeerTLS{Server: st.ServerConfig, AcceptPlain: s.cfg.TLS.QuorumPortUnification}
	if s.cfg.TLS.Quorum {
		p.Client = func(_ int64, host string) *tls.Config { return st.ClientConfig(host) }
	}
	if s.cfg.TLS.QuorumSettings.HostnameVerification {
		p.VerifyPeer = func(peer int64, remote net.Addr, state tls.ConnectionState) error {
			if len(state.PeerCertificates) == 0 {
				return errors.New("no certificate")
			}
			host, ok := s.peerHost(peer)
			if !ok {
				// A server outside every configuration known here (about
				// to join): no server.N host to hold it to, so its
				// certificate must name the address it connects from,
				// ZooKeeper's own check of any quorum peer.
				ip := addrIP(remote)
				if ip == "" {
					return fmt.Errorf("server.%d is not configured and connects from %s", peer, remote)
				}
				if err := state.PeerCertificates[0].VerifyHostname(ip); err != nil {
					return fmt.Errorf("server.%d is not configured: its certificate does not name %s: %w", peer, ip, err)
				}
				return nil
			}
			if err := netstub.VerifyPeerHost(state.PeerCertificates[0], host, remote, hostHasIP(host)); err != nil {
				return fmt.Errorf("server.%d is %s: %w", peer, host, err)
			}
			return nil
		}
	}
	return p
}

// peerHost is the host of server peer: its server.N line, else the
// address book of the configurations seen since (a server that joined by
// reconfig, with reconfigEnabled).
func (s *Server) peerHost(peer int64) (string, bool) {
	if spec, ok := s.cfg.Servers[int(peer)]; ok {
		return spec.Host, true
	}
	if s.book != nil {
		if m, ok := s.book.lookup(peer); ok {
			return m.Host, true
		}
	}
	return "", false
}

// addrIP is the IP of a TCP address, "" for anything else.
func addrIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok && ta.IP != nil {
		return ta.IP.String()
	}
	return ""
}

// hostHasIP returns whether ip is one of host's addresses (a fresh lookup,
// bounded by the handshake timeout: the check runs once per accepted peer
// connection).
func hostHasIP(host string) func(ip string) bool {
	return func(ip string) bool {
		if host == ip {
			return true
		}
		ctx, cancel := context.WithTimeout(context.Background(), DefaultHandshakeTimeout)
		defer cancel()
		addrs, err := net.DefaultResolver.LookupHost(ctx, host)
		return err == nil && slices.Contains(addrs, ip)
	}
}
