package netstub

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"time"
)

// Helpers of the peer transport (netstub/zktcp, ZooKeeper's two ports):
// dialing with a fresh name lookup, TLS on both ends, the redial backoff,
// instance nonces.

// Resolver is the part of *net.Resolver DialPeer uses; tests inject one
// whose answers change (a restarted Kubernetes pod's new IP).
type Resolver interface {
	// LookupHost returns the addresses of host.
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// DefaultMaxSnapshot bounds a received snapshot when a transport's
// configuration leaves it zero.
const DefaultMaxSnapshot = 64 << 30

// Tunables of the peer links.
const (
	backoffMin = 50 * time.Millisecond
	backoffMax = 2 * time.Second
	// handshakeTimeout bounds a TLS handshake and the first byte of a
	// port-unified connection.
	handshakeTimeout = 5 * time.Second
	// writeTimeout is the TCP_USER_TIMEOUT of peer sockets
	// (peerDialControl).
	writeTimeout = 10 * time.Second
	// snapChunk is the snapshot bytes per streamed chunk: small enough
	// that a heartbeat waits for at most one chunk.
	snapChunk = 32 << 10
)

// newNonce returns a random, non-zero instance nonce. Two processes, or
// two runs of one, draw the same one with probability 2⁻⁶⁴.
func newNonce() uint64 {
	for {
		if n := rand.Uint64(); n != 0 {
			return n
		}
	}
}

// fmtNonce formats a nonce for log lines.
func fmtNonce(n uint64) string { return fmt.Sprintf("%016x", n) }

// DialPeer connects to addr (host:port). A host name is looked up with
// resolver (nil: net.DefaultResolver) on every call, never cached, so a
// peer whose name now points at another IP (a restarted Kubernetes pod) is
// reached at the new one. The socket gets TCP_USER_TIMEOUT (see
// peerDialControl). It returns the connection and the host part of addr,
// which a TLS client checks the peer's certificate against.
func DialPeer(ctx context.Context, resolver Resolver, addr string, timeout time.Duration) (net.Conn, string, error) {
	if addr == "" {
		return nil, "", errors.New("no address")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, "", err
	}
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	ips := []string{host}
	if net.ParseIP(host) == nil {
		lctx, cancel := context.WithTimeout(ctx, timeout)
		ips, err = resolver.LookupHost(lctx, host)
		cancel()
		if err != nil {
			return nil, "", fmt.Errorf("resolve %s: %w", host, err)
		}
		if len(ips) == 0 {
			return nil, "", fmt.Errorf("resolve %s: no addresses", host)
		}
	}
	d := net.Dialer{Timeout: timeout, Control: peerDialControl}
	var conn net.Conn
	for _, ip := range ips {
		if conn, err = d.DialContext(ctx, "tcp", net.JoinHostPort(ip, port)); err == nil {
			return conn, host, nil
		}
	}
	return nil, "", err
}

// Backoff is the redial pause of a peer link: jittered in [d/2, d), d
// doubling from BackoffMin up to BackoffMax. The zero value is ready.
type Backoff struct{ d time.Duration }

// Redial backoff bounds.
const (
	BackoffMin = backoffMin
	BackoffMax = backoffMax
)

// Next returns the pause to wait before the next attempt and doubles the
// following one.
func (b *Backoff) Next() time.Duration {
	if b.d < backoffMin {
		b.d = backoffMin
	}
	p := b.d/2 + rand.N(b.d/2)
	b.d = min(2*b.d, backoffMax)
	return p
}

// Reset starts over from BackoffMin (after a link that lasted, or when the
// peer's address changed).
func (b *Backoff) Reset() { b.d = backoffMin }

// DialTLS runs the dialer's side of the TLS handshake on conn with peer at
// host, or returns conn as is when Client is nil (plain-text dialing under
// AcceptPlain). On error conn is closed.
func (pt *PeerTLS) DialTLS(ctx context.Context, conn net.Conn, peer int64, host string) (net.Conn, error) {
	if pt.Client == nil {
		return conn, nil
	}
	tc := tlsClient(conn, pt.clientConfig(peer, host, conn.RemoteAddr()))
	_ = conn.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("TLS handshake with peer %d at %s: %w", peer, host, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return tc, nil
}

// AcceptTLS runs the acceptor's side on an accepted connection: TLS, or
// plain text when AcceptPlain and the first byte says so. It returns the
// stream to read and, for TLS, the *tls.Conn whose certificate
// VerifyPeer checks. It does not close c.
func (pt *PeerTLS) AcceptTLS(ctx context.Context, c net.Conn) (net.Conn, *tlsConn, error) {
	stream, isTLS, err := pt.unify(c)
	if err != nil || !isTLS {
		return stream, nil, err
	}
	tc := tlsServer(stream, pt.Server())
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, nil, fmt.Errorf("TLS handshake failed: %w", err)
	}
	_ = c.SetDeadline(time.Time{})
	return tc, tc, nil
}
