package netstub

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/server/tlsconf/tlstest"
)

// TestVerifyPeerHost: a certificate passes when it names the server.N
// host, or the connection's IP when that IP is the host's (ZooKeeper
// checks the address first); otherwise the host's mismatch is the error.
func TestVerifyPeerHost(t *testing.T) {
	ca := tlstest.NewCA(t, "peer CA")
	ipOnly := ca.Issue(t, tlstest.Options{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}).Cert
	named := ca.Issue(t, tlstest.Options{DNSNames: []string{"zk-1.example"}}).Cert
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	yes := func(string) bool { return true }
	no := func(string) bool { return false }

	require.NoError(t, VerifyPeerHost(named, "zk-1.example", remote, no), "the certificate names the host")
	require.NoError(t, VerifyPeerHost(ipOnly, "127.0.0.1", remote, no), "the host is the IP it names")
	require.NoError(t, VerifyPeerHost(ipOnly, "zk-1.example", remote, yes), "it names the address, which is the host's")
	var he x509.HostnameError
	require.ErrorAs(t, VerifyPeerHost(ipOnly, "zk-1.example", remote, no), &he, "an address not the host's does not speak for it")
	require.ErrorAs(t, VerifyPeerHost(named, "zk-2.example", remote, yes), &he, "names neither")
	require.ErrorAs(t, VerifyPeerHost(named, "127.0.0.1", remote, yes), &he, "names neither the IP host nor the address")
}

// TestDialTLSNameOrAddress: dialing a peer configured by name, DialTLS
// accepts a certificate naming the name or the address dialed (as
// ZooKeeper's dialer), still verifies the chain, and refuses a
// certificate naming neither.
func TestDialTLSNameOrAddress(t *testing.T) {
	ca := tlstest.NewCA(t, "peer CA")
	other := tlstest.NewCA(t, "other CA")
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	client := ca.Issue(t, tlstest.Options{})
	clientCert, err := tls.X509KeyPair(client.CertPEM, client.KeyPEM)
	require.NoError(t, err)
	pt := &PeerTLS{Client: func(_ int64, host string) *tls.Config {
		return &tls.Config{Certificates: []tls.Certificate{clientCert}, RootCAs: pool, ServerName: host}
	}}

	// serve runs a TLS listener with leaf's certificate for one handshake.
	serve := func(leaf *tlstest.Leaf) string {
		cert, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
		require.NoError(t, err)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		done := make(chan struct{})
		t.Cleanup(func() { _ = ln.Close(); <-done })
		go func() {
			defer close(done)
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			_ = tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}}).Handshake()
		}()
		return ln.Addr().String()
	}
	dial := func(addr, host string) error {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		tc, err := pt.DialTLS(context.Background(), c, 1, host)
		if err == nil {
			_ = tc.Close()
		}
		return err
	}

	ipOnly := ca.Issue(t, tlstest.Options{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	require.NoError(t, dial(serve(ipOnly), "localhost"), "the certificate names the address dialed")
	byName := ca.Issue(t, tlstest.Options{DNSNames: []string{"localhost"}})
	require.NoError(t, dial(serve(byName), "localhost"), "the certificate names the host")
	elsewhere := ca.Issue(t, tlstest.Options{Subject: pkix.Name{CommonName: "x"}, DNSNames: []string{"zk-9.example"}})
	var he x509.HostnameError
	require.ErrorAs(t, dial(serve(elsewhere), "localhost"), &he)
	foreign := other.Issue(t, tlstest.Options{})
	var ua x509.UnknownAuthorityError
	require.ErrorAs(t, dial(serve(foreign), "localhost"), &ua, "the chain is still verified")
	require.ErrorAs(t, dial(serve(ipOnly), "127.0.0.2"), &he, "an IP host is checked by crypto/tls as is")
}
