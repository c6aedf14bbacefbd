package zktcp

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/netstub"
	"github.com/zabkeeper/zabkeeper/server/tlsconf/tlstest"
)

// lockedBuffer is a log sink safe for the transport's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// caPeerTLS is mutual TLS with a certificate of ca naming 127.0.0.1.
func caPeerTLS(t *testing.T, ca *tlstest.CA) *netstub.PeerTLS {
	leaf := ca.Issue(t, tlstest.Options{Subject: pkix.Name{CommonName: "peer"}})
	cert, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &netstub.PeerTLS{
		Server: func() *tls.Config {
			return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
		},
		Client: func(_ int64, host string) *tls.Config {
			return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: host}
		},
	}
}

// TestZKTCPTLSOtherCA: a peer whose certificate comes from another CA is
// refused on both ports: the acceptor logs the remote address and why
// (the dialer refused its certificate; or, on the quorum port, the
// dialer's is from an untrusted CA), the dialer logs the peer id and why,
// once per reason however often it redials.
func TestZKTCPTLSOtherCA(t *testing.T) {
	logs := &lockedBuffer{}
	ca, other := tlstest.NewCA(t, "quorum CA"), tlstest.NewCA(t, "another CA")
	ts := clusterWith(t, 2, func(c *Config) {
		c.TLS = caPeerTLS(t, ca)
		if c.ID == 2 {
			c.TLS = caPeerTLS(t, other)
		}
		c.Logger = slog.New(slog.NewTextHandler(logs, nil)).With("me", c.ID)
	})
	// Server 2 knocks on 1's election port and 1 dials 2's, over and over
	// as votes are sent; neither gets through.
	for range 3 {
		ts[0].Send(zab.Message{Type: zab.MsgNotification, To: 2, Vote: zab.Vote{Leader: 1, Round: 1, State: zab.Looking}})
		ts[1].Send(zab.Message{Type: zab.MsgNotification, To: 1, Vote: zab.Vote{Leader: 2, Round: 1, State: zab.Looking}})
	}
	deadline := time.Now().Add(10 * time.Second)
	has := func(sub ...string) bool {
		for _, l := range strings.Split(logs.String(), "\n") {
			all := true
			for _, s := range sub {
				all = all && strings.Contains(l, s)
			}
			if all {
				return true
			}
		}
		return false
	}
	// The dialer checks the acceptor's certificate first, so the acceptor
	// hears that its own was refused.
	for !(has("me=1", "refused election connection", "peer refused the TLS handshake: bad certificate") &&
		has("me=1", "TLS handshake with peer failed", "peer=2", "untrusted CA")) {
		require.False(t, time.Now().After(deadline), "no refusal logged:\n%s", logs.String())
		time.Sleep(20 * time.Millisecond)
	}

	// The quorum port refuses the other CA's certificate too.
	ts[0].SetRole(zab.Leading, 1)
	c, err := net.Dial("tcp", ts[0].QuorumAddr().String())
	require.NoError(t, err)
	local := c.LocalAddr().String()
	bad := other.Issue(t, tlstest.Options{})
	badCert, err := tls.X509KeyPair(bad.CertPEM, bad.KeyPEM)
	require.NoError(t, err)
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, //nolint:gosec // the untrusted side
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &badCert, nil }})
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	err = tc.Handshake()
	if err == nil {
		_, err = tc.Read(make([]byte, 1))
	}
	_ = tc.Close()
	require.Error(t, err)
	for !has("me=1", "refused learner connection", "remote="+local, "untrusted CA") {
		require.False(t, time.Now().After(deadline), "no quorum-port refusal logged:\n%s", logs.String())
		time.Sleep(20 * time.Millisecond)
	}
	require.Equal(t, 1, strings.Count(logs.String(), `msg="TLS handshake with peer failed" me=1`), "one dial failure line per reason:\n%s", logs.String())
}

// TestTLSFailuresOnce: a failure is news once per reason, and again after
// a handshake that worked.
func TestTLSFailuresOnce(t *testing.T) {
	var f tlsFailures
	a, b := errors.New("x509: certificate signed by unknown authority"), errors.New("remote error: tls: bad certificate")
	require.True(t, f.failed(2, a))
	require.False(t, f.failed(2, a))
	require.True(t, f.failed(3, a), "per peer")
	require.True(t, f.failed(2, b), "a new reason")
	f.ok(2)
	require.True(t, f.failed(2, b), "after a success")
}
