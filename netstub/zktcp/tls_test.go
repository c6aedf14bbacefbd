package zktcp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/netstub"
)

// testPeerTLS returns mutual TLS for peers on 127.0.0.1, all with one
// certificate signed by a fresh CA.
func testPeerTLS(t *testing.T) *netstub.PeerTLS {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &key.PublicKey, key)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "peer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		KeyUsage:    x509.KeyUsageDigitalSignature,
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, key)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	cert := tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}
	return &netstub.PeerTLS{
		Server: func() *tls.Config {
			return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
		},
		Client: func(_ int64, host string) *tls.Config {
			return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}
		},
	}
}

// TestZKTCPTLS runs both ports in mutual TLS (sslQuorum): votes both ways
// and a leader/learner handshake with a SNAP body.
func TestZKTCPTLS(t *testing.T) {
	pt := testPeerTLS(t)
	ts := clusterWith(t, 2, func(c *Config) { c.TLS = pt })
	leader, learner := ts[0], ts[1]
	for _, p := range [][2]*Transport{{leader, learner}, {learner, leader}} {
		v := zab.Vote{Leader: p[0].id, Round: 3, State: zab.Looking}
		p[0].Send(zab.Message{Type: zab.MsgNotification, To: p[1].id, Vote: v})
		m := recv(t, p[1], zab.MsgNotification)
		for m.Vote != v {
			m = recv(t, p[1], zab.MsgNotification)
		}
	}
	leader.SetRole(zab.Leading, 1)
	learner.Send(zab.Message{Type: zab.MsgFollowerInfo, To: 1, Epoch: 1})
	learner.SetRole(zab.Following, 1)
	recv(t, leader, zab.MsgFollowerInfo)
	leader.Send(zab.Message{Type: zab.MsgLeaderInfo, To: 2, Epoch: 2})
	recv(t, learner, zab.MsgLeaderInfo)
	learner.Send(zab.Message{Type: zab.MsgAckEpoch, To: 1, Epoch: 1})
	recv(t, leader, zab.MsgAckEpoch)
	leader.Send(zab.Message{Type: zab.MsgSnap, To: 2, Epoch: 2, Zxid: 5, Snapshot: zab.SnapshotBytes(snapBody())})
	got, err := zab.ReadSnapshot(recv(t, learner, zab.MsgSnap).Snapshot)
	require.NoError(t, err)
	require.Equal(t, snapBody(), got)

	// A plain-text peer is refused on both ports.
	for _, addr := range []net.Addr{leader.ElectionAddr(), leader.QuorumAddr()} {
		c, err := net.Dial("tcp", addr.String())
		require.NoError(t, err)
		_, _ = c.Write(make([]byte, 64))
		requireClosed(t, c)
		c.Close()
	}
}
