package netstub

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/server/tlsconf/tlstest"
)

// peerTLSFor makes the PeerTLS of one server: its certificate from ca,
// mutual verification against ca, and verify as the acceptor's check.
func peerTLSFor(t *testing.T, ca *tlstest.CA, cn string, verify func(int64, net.Addr, tls.ConnectionState) error) *PeerTLS {
	leaf := ca.Issue(t, tlstest.Options{Subject: pkix.Name{CommonName: cn}})
	cert, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &PeerTLS{
		Server: func() *tls.Config {
			return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
		},
		Client: func(_ int64, host string) *tls.Config {
			return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: host}
		},
		VerifyPeer: verify,
	}
}

// Over PeerTLS the frames travel unchanged inside mutual TLS; an acceptor
// whose VerifyPeer rejects the dialer refuses it with a reason both ends
// log.
func TestTCPPeerTLS(t *testing.T) {
	noLeaks(t)
	sink := &logSink{}
	ca := tlstest.NewCA(t, "peer CA")
	reject := errors.New("not the host of server.1")
	var refuse1 atomic.Bool
	verify := func(peer int64, _ net.Addr, st tls.ConnectionState) error {
		if len(st.PeerCertificates) == 0 {
			return errors.New("no certificate")
		}
		if refuse1.Load() && peer == 1 {
			return reject
		}
		return nil
	}
	trs := map[int64]*TCP{}
	for _, id := range []int64{1, 2} {
		tr, err := NewTCP(TCPConfig{ID: id, ListenAddr: "127.0.0.1:0", Logger: sink.logger().With("me", id),
			TLS: peerTLSFor(t, ca, "server", verify)})
		require.NoError(t, err)
		t.Cleanup(func() { _ = tr.Close() })
		trs[id] = tr
	}
	trs[1].SetPeers(map[int64]string{2: trs[2].Addr().String()})
	trs[2].SetPeers(map[int64]string{1: trs[1].Addr().String()})
	waitConnected(t, trs[1], 2)
	waitAdmitted(t, trs[2], 1)
	trs[1].Send(zab.Message{Type: zab.MsgProposal, To: 2, Zxid: 7, Entry: zab.Entry{Zxid: 7, Data: []byte("over tls")}})
	await(t, trs[2], nil, func(m zab.Message) bool {
		return m.Type == zab.MsgProposal && m.From == 1 && string(m.Entry.Data) == "over tls"
	})
	trs[1].mu.Lock()
	c := trs[1].peers[2].conn
	trs[1].mu.Unlock()
	_, isTLS := c.(*tls.Conn)
	require.True(t, isTLS, "the outbound link is TLS")

	// A third server with a certificate of another CA never gets in.
	other := tlstest.NewCA(t, "other CA")
	tr3, err := NewTCP(TCPConfig{ID: 3, ListenAddr: "127.0.0.1:0", Logger: sink.logger().With("me", 3),
		TLS: peerTLSFor(t, other, "intruder", verify)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr3.Close() })
	trs[2].SetPeers(map[int64]string{1: trs[1].Addr().String(), 3: tr3.Addr().String()})
	tr3.SetPeers(map[int64]string{2: trs[2].Addr().String()})
	require.Eventually(t, func() bool { return sink.has("TLS handshake with peer failed") && sink.has("unknown authority") },
		waitFor, 10*time.Millisecond)

	// Server 2 stops accepting server 1's certificate: the redial after a
	// broken link is refused, and both ends say why.
	refuse1.Store(true)
	_ = c.Close()
	require.Eventually(t, func() bool {
		return sink.has("code=certificate err=\"TLS certificate does not match peer 1: not the host of server.1\"") &&
			sink.has("peer refused our connection")
	}, waitFor, 10*time.Millisecond)
}
