package zktcp

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
)

// tlsFailures remembers the last TLS handshake failure with each peer this
// side dialed, so that a peer that keeps failing (a certificate from
// another CA, a name that does not match) is logged once per distinct
// reason at Warn rather than on every redial, and again after it
// recovered.
type tlsFailures struct {
	mu   sync.Mutex
	last map[int64]string
}

// failed reports whether err is news for peer (to be logged at Warn).
func (f *tlsFailures) failed(peer int64, err error) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.last == nil {
		f.last = map[int64]string{}
	}
	msg := err.Error()
	if f.last[peer] == msg {
		return false
	}
	f.last[peer] = msg
	return true
}

// ok forgets peer's failure after a handshake that worked.
func (f *tlsFailures) ok(peer int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.last, peer)
}

// dialTLS runs the dialer's side of the TLS handshake on c with peer at
// host, logging a failure with the peer and the reason.
func (t *Transport) dialTLS(c net.Conn, peer int64, host string) (net.Conn, error) {
	remote := c.RemoteAddr().String()
	tc, err := t.cfg.TLS.DialTLS(t.ctx, c, peer, host)
	if err != nil {
		if t.ctx.Err() == nil && t.tlsFail.failed(peer, err) {
			t.log.Warn("TLS handshake with peer failed", "peer", peer, "remote", remote, "err", withTLSReason(err))
		}
		return nil, err
	}
	t.tlsFail.ok(peer)
	return tc, nil
}

// tlsReason names why a TLS handshake failed, for the log line ("" when
// the error says it well enough: a timeout, a reset).
func tlsReason(err error) string {
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var record tls.RecordHeaderError
	switch {
	case errors.As(err, &unknown):
		return "peer's certificate is from an untrusted CA"
	case errors.As(err, &hostname):
		return "peer's certificate does not name its host"
	case errors.As(err, &invalid):
		return "peer's certificate is invalid"
	case strings.Contains(err.Error(), "remote error: tls: "):
		// crypto/tls reports an alert from the peer as a net.OpError
		// around an unexported type: the peer refused our certificate
		// (or our offer).
		_, alert, _ := strings.Cut(err.Error(), "remote error: tls: ")
		return "peer refused the TLS handshake: " + alert
	case errors.As(err, &record):
		return "plain text, not TLS"
	case strings.Contains(err.Error(), "didn't provide a certificate"):
		return "peer sent no certificate"
	}
	return ""
}

// withTLSReason puts err's reason (tlsReason) in front of it, if it has one.
func withTLSReason(err error) error {
	if r := tlsReason(err); r != "" {
		return fmt.Errorf("%s: %w", r, err)
	}
	return err
}
