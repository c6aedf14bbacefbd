package server_test

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/internal/testserver"
	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/server"
	"github.com/zabkeeper/zabkeeper/server/tlsconf/tlstest"
)

// tlsEnv is a CA, a server key store and trust bundle on disk, and a
// server configured to use them.
type tlsEnv struct {
	dir      string
	ca       *tlstest.CA
	keyStore string // the server's PEM key store
	trust    string // the CA bundle the server trusts clients by
}

func newTLSEnv(t *testing.T) *tlsEnv {
	t.Helper()
	e := &tlsEnv{dir: t.TempDir(), ca: tlstest.NewCA(t, "zabkeeper test CA")}
	leaf := e.ca.Issue(t, tlstest.Options{Subject: pkix.Name{CommonName: "localhost"}})
	e.keyStore = tlstest.WriteFile(t, e.dir, "server.pem", leaf.KeyStorePEM)
	e.trust = tlstest.WriteFile(t, e.dir, "ca.pem", e.ca.PEM)
	return e
}

// configure turns on the TLS client port with e's files.
func (e *tlsEnv) configure(cfg *server.Config) {
	cfg.TLS.SecureClientPort = 0
	cfg.TLS.Client.KeyStoreLocation = e.keyStore
	cfg.TLS.Client.KeyStoreType = "PEM"
	cfg.TLS.Client.TrustStoreLocation = e.trust
	cfg.TLS.Client.TrustStoreType = "PEM"
	cfg.TLS.ReloadInterval = 20 * time.Millisecond
}

// clientConfig is a TLS client configuration trusting e's CA, with a
// certificate for subject when it is not empty.
func (e *tlsEnv) clientConfig(t *testing.T, subject pkix.Name, o tlstest.Options) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(e.ca.Cert)
	c := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	if subject.CommonName != "" {
		o.Subject = subject
		leaf := e.ca.Issue(t, o)
		cert, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
		require.NoError(t, err)
		c.Certificates = []tls.Certificate{cert}
	}
	return c
}

// startTLSServer starts a server with a TLS port beside its plain one and
// returns both addresses and what it logs.
func startTLSServer(t *testing.T, e *tlsEnv, mutate func(*server.Config)) (plain, secure string, logs *syncBuffer) {
	t.Helper()
	cfg := testConfig(t)
	e.configure(&cfg)
	if mutate != nil {
		mutate(&cfg)
	}
	logs = &syncBuffer{}
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(io.MultiWriter(logs, newTestLog(t)), nil)))
	require.NoError(t, err)
	testserver.Serve(t, srv)
	plain = srv.Addr().String()
	if a := srv.SecureAddr(); a != nil {
		secure = a.String()
	}
	return plain, secure, logs
}

// connectTLS opens a go-zk session over TLS.
func connectTLS(t *testing.T, addr string, cfg *tls.Config) *zk.Conn {
	t.Helper()
	dialer := func(network, address string, timeout time.Duration) (net.Conn, error) {
		return tls.DialWithDialer(&net.Dialer{Timeout: timeout}, network, address, cfg)
	}
	c, _, err := zk.Connect([]string{addr}, clientSessionTimeout, zk.WithDialer(dialer),
		zk.WithLogger(zkLogger{newTestLog(t)}), zk.WithLogInfo(false))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	waitFor(t, "go-zk session over TLS", func() bool { return c.State() == zk.StateHasSession })
	return c
}

// rawTLS opens a raw protocol client over TLS and starts a session.
func rawTLS(t *testing.T, addr string, cfg *tls.Config) *rawClient {
	t.Helper()
	nc, err := tls.DialWithDialer(&net.Dialer{Timeout: waitTimeout}, "tcp", addr, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	c := &rawClient{t: t, nc: nc}
	resp, _ := c.handshake(proto.ConnectRequest{TimeOut: 30000, Passwd: make([]byte, 16)})
	require.NotZero(t, resp.SessionID)
	return c
}

func whoAmI(t *testing.T, c *rawClient) []string {
	t.Helper()
	var w proto.WhoAmIResponse
	require.Equal(t, proto.ErrOK, c.call(proto.OpWhoAmI, nil, &w).Err)
	var out []string
	for _, ci := range w.ClientInfo {
		out = append(out, ci.AuthScheme+":"+ci.User)
	}
	return out
}

// TestTLSClientX509ACLs: go-zk over TLS on the secure port beside the
// plain one; a client certificate authenticates the connection as
// x509:<subject in Java's RFC 2253 form>; x509 ACLs hold other clients
// out; the x509 super user passes every ACL; whoAmI shows the ids.
func TestTLSClientX509ACLs(t *testing.T) {
	e := newTLSEnv(t)
	const aliceDN = `CN=alice,OU=apps,O=Acme\, Inc.`
	const adminDN = "CN=admin,O=Acme"
	plain, secure, logs := startTLSServer(t, e, func(c *server.Config) {
		c.TLS.Client.ClientAuth = "want"
		c.TLS.SuperUser = adminDN
	})
	require.NotEmpty(t, secure)
	alice := pkix.Name{CommonName: "alice", OrganizationalUnit: []string{"apps"}, Organization: []string{"Acme, Inc."}}
	aliceCfg := e.clientConfig(t, alice, tlstest.Options{})
	za := connectTLS(t, secure, aliceCfg)
	acl := []zk.ACL{{Perms: zk.PermAll, Scheme: "x509", ID: aliceDN}}
	_, err := za.Create("/alice", []byte("secret"), 0, acl)
	require.NoError(t, err)
	data, _, err := za.Get("/alice")
	require.NoError(t, err)
	require.Equal(t, "secret", string(data))
	got, _, err := za.GetACL("/alice")
	require.NoError(t, err)
	require.Equal(t, acl, got)
	// An "auth" ACL expands to the x509 id.
	_, err = za.Create("/alice-auth", nil, 0, zk.AuthACL(zk.PermAll))
	require.NoError(t, err)
	got, _, err = za.GetACL("/alice-auth")
	require.NoError(t, err)
	require.Equal(t, []zk.ACL{{Perms: zk.PermAll, Scheme: "x509", ID: aliceDN}}, got)

	// Plain client, and a TLS client with another certificate: NoAuth.
	zp := connect(t, plain)
	_, _, err = zp.Get("/alice")
	require.ErrorIs(t, err, zk.ErrNoAuth)
	bob := connectTLS(t, secure, e.clientConfig(t, pkix.Name{CommonName: "bob"}, tlstest.Options{}))
	_, _, err = bob.Get("/alice")
	require.ErrorIs(t, err, zk.ErrNoAuth)
	// A TLS client without a certificate (clientAuth=want): no x509 id.
	anon := rawTLS(t, secure, e.clientConfig(t, pkix.Name{}, tlstest.Options{}))
	require.Equal(t, []string{"ip:127.0.0.1"}, whoAmI(t, anon))

	// The super user reads anything.
	zs := connectTLS(t, secure, e.clientConfig(t, pkix.Name{CommonName: "admin", Organization: []string{"Acme"}}, tlstest.Options{}))
	data, _, err = zs.Get("/alice")
	require.NoError(t, err)
	require.Equal(t, "secret", string(data))

	// whoAmI shows the x509 ids (and super for the super user).
	require.Equal(t, []string{"ip:127.0.0.1", "x509:" + aliceDN}, whoAmI(t, rawTLS(t, secure, aliceCfg)))
	sup := rawTLS(t, secure, e.clientConfig(t, pkix.Name{CommonName: "admin", Organization: []string{"Acme"}}, tlstest.Options{}))
	require.Equal(t, []string{"ip:127.0.0.1", "super:" + adminDN, "x509:" + adminDN}, whoAmI(t, sup))
	require.Contains(t, logs.String(), `x509="`+strings.ReplaceAll(aliceDN, `\`, `\\`)+`"`)

	// addauth x509 (zkCli's `addauth x509`): OK with a certificate, which
	// alone names the identity; AuthFailed and closed without one.
	withCert := rawTLS(t, secure, aliceCfg)
	require.Equal(t, proto.ErrOK, withCert.call(proto.OpAuth, &proto.AuthPacket{Scheme: "x509", Auth: []byte("ignored")}, nil).Err)
	require.Equal(t, []string{"ip:127.0.0.1", "x509:" + aliceDN}, whoAmI(t, withCert))
	noCert := rawTLS(t, secure, e.clientConfig(t, pkix.Name{}, tlstest.Options{}))
	require.Equal(t, proto.ErrAuthFailed, noCert.call(proto.OpAuth, &proto.AuthPacket{Scheme: "x509"}, nil).Err)
	noCert.expectClosed()
}

// TestTLSClientIDFromSAN: with ssl.clientCertIdType=SAN the x509 id is a
// subject alternative name.
func TestTLSClientIDFromSAN(t *testing.T) {
	e := newTLSEnv(t)
	_, secure, _ := startTLSServer(t, e, func(c *server.Config) {
		tc, err := server.ParseConfig(strings.NewReader("ssl.clientCertIdType=SAN\nzookeeper.ssl.x509.clientCertIdSanMatchType=2\n"+
			"ssl.clientCertIdSanMatchRegex=\\\\.svc$\n"), nil)
		require.NoError(t, err)
		c.TLS.ClientID = tc.TLS.ClientID
	})
	cfg := e.clientConfig(t, pkix.Name{CommonName: "ignored"}, tlstest.Options{DNSNames: []string{"x.example", "orders.shop.svc"}})
	require.Equal(t, []string{"ip:127.0.0.1", "x509:orders.shop.svc"}, whoAmI(t, rawTLS(t, secure, cfg)))
}

// TestTLSPortUnification: client.portUnification lets the plain port take
// TLS clients too, told apart by their first byte; four-letter words and
// plain clients go on working there.
func TestTLSPortUnification(t *testing.T) {
	e := newTLSEnv(t)
	plain, secure, _ := startTLSServer(t, e, func(c *server.Config) {
		c.TLS.SecureClientPort = -1
		c.TLS.PortUnification = true
		c.TLS.Client.ClientAuth = "need"
	})
	require.Empty(t, secure)
	zt := connectTLS(t, plain, e.clientConfig(t, pkix.Name{CommonName: "carol"}, tlstest.Options{}))
	_, err := zt.Create("/u", []byte("tls"), 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	zp := connect(t, plain)
	data, _, err := zp.Get("/u")
	require.NoError(t, err)
	require.Equal(t, "tls", string(data))
	require.Equal(t, "imok", fourLetter(t, plain, "ruok"))
	require.Equal(t, []string{"ip:127.0.0.1", "x509:CN=carol"},
		whoAmI(t, rawTLS(t, plain, e.clientConfig(t, pkix.Name{CommonName: "carol"}, tlstest.Options{}))))
}

// TestTLSBadClients: a plain-text client on the TLS port, an expired
// certificate, a certificate from an unknown CA and a missing certificate
// (clientAuth=need) each fail alone, with an error at the client and a
// log line; a good client in the middle of it all is unaffected.
func TestTLSBadClients(t *testing.T) {
	e := newTLSEnv(t)
	_, secure, logs := startTLSServer(t, e, nil) // clientAuth defaults to need
	good := connectTLS(t, secure, e.clientConfig(t, pkix.Name{CommonName: "good"}, tlstest.Options{}))
	_, err := good.Create("/g", nil, 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)

	// Plain text: a four-letter word is told why; a ZooKeeper handshake is
	// closed.
	require.Equal(t, "zabkeeper: this port (secureClientPort) requires TLS\n", fourLetter(t, secure, "ruok"))
	raw := dialRaw(t, secure)
	raw.write(proto.AppendRecords(nil, &proto.ConnectRequest{TimeOut: 30000, Passwd: make([]byte, 16)}))
	raw.expectClosed()

	handshake := func(cfg *tls.Config) error {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: waitTimeout}, "tcp", secure, cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		// TLS 1.3 reports the server's verdict on the client certificate
		// at the first read.
		_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
		_, err = c.Read(make([]byte, 1))
		return err
	}
	expired := e.clientConfig(t, pkix.Name{CommonName: "expired"}, tlstest.Options{
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	require.ErrorContains(t, handshake(expired), "expired")
	other := tlstest.NewCA(t, "other CA")
	stranger := e.clientConfig(t, pkix.Name{}, tlstest.Options{})
	leaf := other.Issue(t, tlstest.Options{Subject: pkix.Name{CommonName: "stranger"}})
	cert, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	require.NoError(t, err)
	// Sent even though the server asks for certificates of its own CA.
	stranger.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	require.ErrorContains(t, handshake(stranger), "unknown certificate authority")
	require.ErrorContains(t, handshake(e.clientConfig(t, pkix.Name{}, tlstest.Options{})), "certificate required")

	waitFor(t, "log lines for each bad client", func() bool {
		l := logs.String()
		return strings.Contains(l, "plain text on the TLS port") && strings.Contains(l, "certificate has expired") &&
			strings.Contains(l, "unknown authority") && strings.Contains(l, "didn't provide a certificate")
	})
	data, _, err := good.Get("/g")
	require.NoError(t, err)
	require.Empty(t, data)
	require.Equal(t, zk.StateHasSession, good.State())
}

// TestTLSReloadKeepsConnections: the server's certificate and the trust
// bundle are replaced on disk (as cert-manager does, by a link swap):
// new connections see the new certificate and are judged by the new
// bundle, the connection made before goes on working.
func TestTLSReloadKeepsConnections(t *testing.T) {
	e := newTLSEnv(t)
	// The server reads its files through a symbolic link to a generation
	// directory, as a Kubernetes secret volume is laid out.
	e.dir = filepath.Join(e.dir, "mnt")
	require.NoError(t, os.MkdirAll(e.dir, 0o755))
	gen := func(name string, ca *tlstest.CA, cn string) {
		d := filepath.Join(e.dir, name)
		require.NoError(t, os.MkdirAll(d, 0o755))
		leaf := ca.Issue(t, tlstest.Options{Subject: pkix.Name{CommonName: cn}})
		tlstest.WriteFile(t, d, "tls.pem", leaf.KeyStorePEM)
		tlstest.WriteFile(t, d, "ca.pem", ca.PEM)
		tmp := filepath.Join(e.dir, "..data_tmp")
		require.NoError(t, os.Symlink(name, tmp))
		require.NoError(t, os.Rename(tmp, filepath.Join(e.dir, "..data")))
	}
	gen("gen1", e.ca, "localhost")
	e.keyStore, e.trust = filepath.Join(e.dir, "tls.pem"), filepath.Join(e.dir, "ca.pem")
	require.NoError(t, os.Symlink("..data/tls.pem", e.keyStore))
	require.NoError(t, os.Symlink("..data/ca.pem", e.trust))
	_, secure, logs := startTLSServer(t, e, nil)

	oldClient := e.clientConfig(t, pkix.Name{CommonName: "old"}, tlstest.Options{})
	before := connectTLS(t, secure, oldClient)
	_, err := before.Create("/r", []byte("1"), 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)

	next := &tlsEnv{dir: e.dir, ca: tlstest.NewCA(t, "rotated CA")}
	gen("gen2", next.ca, "localhost")
	waitFor(t, "the server reloads its files", func() bool { return strings.Contains(logs.String(), "TLS key store reloaded") })

	after := connectTLS(t, secure, next.clientConfig(t, pkix.Name{CommonName: "new"}, tlstest.Options{}))
	data, _, err := after.Get("/r")
	require.NoError(t, err)
	require.Equal(t, "1", string(data))
	_, err = tls.DialWithDialer(&net.Dialer{Timeout: waitTimeout}, "tcp", secure, oldClient)
	require.Error(t, err, "the server's new certificate is not from the old CA")

	// The connection made before the rotation is untouched.
	_, err = before.Set("/r", []byte("2"), -1)
	require.NoError(t, err)
	require.Equal(t, zk.StateHasSession, before.State())
}

// TestTLSConfigKeysAndSecrets reads ZooKeeper's TLS keys from a zoo.cfg,
// refuses JKS with an error saying what to do, and never shows a password
// in the logs or in conf.
func TestTLSConfigKeysAndSecrets(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	cfg, err := server.ParseConfig(strings.NewReader(`
secureClientPort=2281
secureClientPortAddress=127.0.0.1
client.portUnification=true
ssl.keyStore.location=/etc/zk/tls.pem
ssl.keyStore.type=PEM
ssl.keyStore.password=hunter2
zookeeper.ssl.trustStore.location=/etc/zk/ca.pem
ssl.trustStore.password=hunter3
ssl.clientAuth=WANT
ssl.protocol=TLSv1.3
ssl.enabledProtocols=TLSv1.2,TLSv1.3
ssl.ciphersuites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_AES_128_GCM_SHA256
sslQuorum=true
ssl.quorum.keyStore.location=/etc/zk/quorum.pem
ssl.quorum.trustStore.location=/etc/zk/quorum-ca.pem
ssl.quorum.hostnameVerification=false
zookeeper.X509AuthenticationProvider.superUser=CN=admin
zookeeper.some.password=hunter4
`), log)
	require.NoError(t, err)
	tc := cfg.TLS
	require.Equal(t, 2281, tc.SecureClientPort)
	require.Equal(t, "127.0.0.1", tc.SecureClientPortAddress)
	require.True(t, tc.PortUnification)
	require.Equal(t, "/etc/zk/tls.pem", tc.Client.KeyStoreLocation)
	require.Equal(t, "/etc/zk/ca.pem", tc.Client.TrustStoreLocation)
	require.True(t, tc.Client.KeyStorePasswordSet)
	require.EqualValues(t, "want", tc.Client.ClientAuth)
	require.Equal(t, []string{"TLSv1.2", "TLSv1.3"}, tc.Client.EnabledProtocols)
	require.Len(t, tc.Client.CipherSuites, 2)
	require.True(t, tc.Quorum)
	require.Equal(t, "/etc/zk/quorum.pem", tc.QuorumSettings.KeyStoreLocation)
	require.False(t, tc.QuorumSettings.HostnameVerification)
	require.True(t, tc.Client.HostnameVerification)
	require.Equal(t, "CN=admin", tc.SuperUser)
	require.NotContains(t, logs.String(), "hunter")
	require.NotContains(t, strings.Join(cfg.Membership(), ""), "hunter")
	for _, kv := range cfg.Properties() {
		require.NotContains(t, kv[1], "hunter")
	}

	jks, err := server.ParseConfig(strings.NewReader("secureClientPort=2281\nssl.keyStore.location=/k/zk.jks\n"), nil)
	require.NoError(t, err)
	err = jks.Validate()
	require.ErrorContains(t, err, "JKS stores are not supported")
	require.ErrorContains(t, err, "ssl.keyStore.type=PEM")
	_, err = server.ParseConfig(strings.NewReader("ssl.clientAuth=sometimes\n"), nil)
	require.ErrorContains(t, err, "ssl.clientAuth")
}

// TestTLSSecretsNotServed: conf, envi and the logs show the TLS port,
// never the key store's contents.
func TestTLSSecretsNotServed(t *testing.T) {
	e := newTLSEnv(t)
	plain, secure, logs := startTLSServer(t, e, func(c *server.Config) {
		c.FourLetterWords = map[string]bool{"conf": true, "envi": true, "srvr": true, "ruok": true}
	})
	conf := fourLetter(t, plain, "conf")
	_, securePort, err := net.SplitHostPort(secure)
	require.NoError(t, err)
	require.Contains(t, conf, "secureClientPort="+securePort+"\n")
	key, err := os.ReadFile(e.keyStore)
	require.NoError(t, err)
	for _, out := range []string{conf, fourLetter(t, plain, "envi"), logs.String()} {
		require.NotContains(t, out, "PRIVATE KEY")
		require.NotContains(t, out, string(key[40:80]))
	}
}

// quorumTLSFiles writes a PEM key store per server id, each certificate
// naming hosts (default the IP 127.0.0.1), and the CA bundle; it returns
// the mutate function that turns quorum TLS on.
func quorumTLSFiles(t *testing.T, ca *tlstest.CA, override map[int]tlstest.Options) func(*server.Config) {
	dir := t.TempDir()
	trust := tlstest.WriteFile(t, dir, "quorum-ca.pem", ca.PEM)
	return func(c *server.Config) {
		o, ok := override[c.ServerID]
		if !ok {
			// The zoo.cfg lines the fault harness can use.
			parsed, err := server.ParseConfig(strings.NewReader(ca.QuorumCfg(t, dir, c.ServerID)), nil)
			require.NoError(t, err)
			c.TLS.Quorum, c.TLS.QuorumSettings = parsed.TLS.Quorum, parsed.TLS.QuorumSettings
			c.TLS.ReloadInterval = 50 * time.Millisecond
			return
		}
		o.Subject = pkix.Name{CommonName: "server-" + strconv.Itoa(c.ServerID)}
		leaf := ca.Issue(t, o)
		c.TLS.Quorum = true
		c.TLS.QuorumSettings.KeyStoreLocation = tlstest.WriteFile(t, dir, "quorum-"+strconv.Itoa(c.ServerID)+".pem", leaf.KeyStorePEM)
		c.TLS.QuorumSettings.TrustStoreLocation = trust
		c.TLS.ReloadInterval = 50 * time.Millisecond
	}
}

// TestQuorumTLSEnsemble runs a 3-server ensemble whose peer links are
// mutual TLS (sslQuorum): it elects, replicates and serves, and its peer
// ports take only TLS clients with a certificate of the quorum CA.
func TestQuorumTLSEnsemble(t *testing.T) {
	ca := tlstest.NewCA(t, "quorum CA")
	ms := startEnsembleWith(t, 3, quorumTLSFiles(t, ca, nil))
	c0 := connect(t, ms[0].addr)
	_, err := c0.Create("/q", []byte("over tls"), 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	for _, m := range ms[1:] {
		c := connect(t, m.addr)
		waitFor(t, "the write reaches every server", func() bool {
			data, _, err := c.Get("/q")
			return err == nil && string(data) == "over tls"
		})
	}

	peer := tlsProbeAddr(ms[1])
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	leaf := ca.Issue(t, tlstest.Options{Subject: pkix.Name{CommonName: "probe"}})
	cert, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	require.NoError(t, err)
	tc, err := tls.Dial("tcp", peer, &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}})
	require.NoError(t, err, "the quorum port speaks TLS")
	_ = tc.Close()
	noCert, err := tls.Dial("tcp", peer, &tls.Config{RootCAs: pool})
	if err == nil {
		_ = noCert.SetReadDeadline(time.Now().Add(waitTimeout))
		_, err = noCert.Read(make([]byte, 1))
		_ = noCert.Close()
	}
	require.ErrorContains(t, err, "certificate required", "quorum TLS is mutual")
	plain, err := net.Dial("tcp", peer)
	require.NoError(t, err)
	_, _ = plain.Write([]byte("ZBKP\x02 plain text is no TLS handshake"))
	_ = plain.SetReadDeadline(time.Now().Add(waitTimeout))
	n, _ := plain.Read(make([]byte, 64))
	_ = plain.Close()
	require.Zero(t, n, "plain text gets nothing from the quorum port")
}

// TestQuorumTLSRefusesWrongHost: server 3's certificate does not name the
// host its server.3 line gives (127.0.0.1): the others refuse it, saying
// why in their logs, and form their quorum without it.
func TestQuorumTLSRefusesWrongHost(t *testing.T) {
	ca := tlstest.NewCA(t, "quorum CA")
	mutate := quorumTLSFiles(t, ca, map[int]tlstest.Options{3: {DNSNames: []string{"zk-3.example"}}})
	servers := map[int]server.ServerSpec{}
	for id := 1; id <= 3; id++ {
		servers[id] = server.ServerSpec{ID: id, Host: "127.0.0.1"}
	}
	logs := make([]*syncBuffer, 3)
	ms := make([]*member, 3)
	for i := range ms {
		cfg := testConfig(t)
		cfg.ServerID, cfg.Servers = i+1, servers
		cfg.FourLetterWords = map[string]bool{"srvr": true, "ruok": true}
		cfg.TickTime, cfg.InitLimit, cfg.SyncLimit = 200, 20, 10
		mutate(&cfg)
		logs[i] = &syncBuffer{}
		srv, err := server.New(cfg, slog.New(slog.NewTextHandler(io.MultiWriter(logs[i], newTestLog(t)), nil)).With("server", i+1))
		require.NoError(t, err)
		ms[i] = &member{id: i + 1, cfg: cfg, srv: srv, addr: srv.Addr().String()}
	}
	exchangeAddrs(ms)
	for _, m := range ms {
		m.serve(t)
	}
	waitFor(t, "servers 1 and 2 serve", func() bool {
		a, b := mode(t, ms[0].addr), mode(t, ms[1].addr)
		return (a == "leader" && b == "follower") || (a == "follower" && b == "leader")
	})
	waitFor(t, "both say why they refuse server 3", func() bool {
		for _, l := range logs[:2] {
			s := l.String()
			if !strings.Contains(s, "TLS certificate does not match peer 3: server.3 is 127.0.0.1") ||
				!strings.Contains(s, "TLS handshake with peer failed") {
				return false
			}
		}
		return true
	})
	// ZooKeeper's protocol has no refusal message: server 3 learns it
	// from the TLS alert of the peers that dial it and refuse its
	// certificate.
	require.Contains(t, logs[2].String(), "peer refused the TLS handshake: bad certificate")
	require.Equal(t, "not serving", mode(t, ms[2].addr))
}

// tlsProbeAddr is the peer port of m that takes TLS connections whatever
// its role: ZooKeeper's election port (only a leader listens for learners
// on the quorum port), or the deprecated transport's one port.
func tlsProbeAddr(m *member) string {
	if e := m.srv.ElectionAddr(); e != nil {
		return e.String()
	}
	return m.srv.PeerAddr().String()
}

// TestQuorumTLSRotation rotates the quorum certificates of a running
// ensemble to a new CA, as cert-manager would (trust bundle with both CAs
// first, then the new key stores, each file replaced by a rename): every
// server presents the new certificate on its quorum port without a
// restart, and a server restarted afterwards rejoins over the new
// material while the others still run on their reloaded files.
func TestQuorumTLSRotation(t *testing.T) {
	dir := t.TempDir()
	caA, caB := tlstest.NewCA(t, "quorum CA A"), tlstest.NewCA(t, "quorum CA B")
	replace := func(name string, data []byte) {
		tlstest.WriteFile(t, dir, name+".tmp", data)
		require.NoError(t, os.Rename(filepath.Join(dir, name+".tmp"), filepath.Join(dir, name)))
	}
	issue := func(ca *tlstest.CA, id int) []byte {
		return ca.Issue(t, tlstest.Options{Subject: pkix.Name{CommonName: "server-" + strconv.Itoa(id)},
			IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}).KeyStorePEM
	}
	replace("ca.pem", caA.PEM)
	ms := startEnsembleWith(t, 3, func(c *server.Config) {
		name := "quorum-" + strconv.Itoa(c.ServerID) + ".pem"
		replace(name, issue(caA, c.ServerID))
		c.TLS.Quorum = true
		c.TLS.QuorumSettings.KeyStoreLocation = filepath.Join(dir, name)
		c.TLS.QuorumSettings.TrustStoreLocation = filepath.Join(dir, "ca.pem")
		c.TLS.ReloadInterval = 20 * time.Millisecond
	})

	replace("ca.pem", append(append([]byte{}, caA.PEM...), caB.PEM...))
	for _, m := range ms {
		replace("quorum-"+strconv.Itoa(m.id)+".pem", issue(caB, m.id))
	}
	poolB := x509.NewCertPool()
	poolB.AddCert(caB.Cert)
	leaf := caB.Issue(t, tlstest.Options{Subject: pkix.Name{CommonName: "probe"}})
	cert, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	require.NoError(t, err)
	for _, m := range ms {
		addr := tlsProbeAddr(m)
		waitFor(t, "server "+strconv.Itoa(m.id)+" presents the new certificate", func() bool {
			c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: poolB, Certificates: []tls.Certificate{cert}})
			if err != nil {
				return false
			}
			_ = c.Close()
			return true
		})
	}

	c0 := connect(t, ms[0].addr)
	_, err = c0.Create("/rotated", []byte("b"), 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	last := ms[2]
	last.stop(t)
	last.open(t)
	exchangeAddrs(ms)
	last.serve(t)
	waitServing(t, ms)
	cl := connect(t, last.addr)
	waitFor(t, "the restarted server has the data", func() bool {
		data, _, err := cl.Get("/rotated")
		return err == nil && string(data) == "b"
	})
}

// TestTLSX509OnFollower: a TLS client of a follower is judged by its x509
// id on writes too, which the leader checks with the ids the follower
// forwards (and the x509 super user likewise).
func TestTLSX509OnFollower(t *testing.T) {
	e := newTLSEnv(t)
	ms := startEnsembleWith(t, 3, func(c *server.Config) {
		e.configure(c)
		c.TLS.SuperUser = "CN=root"
	})
	leader := waitServing(t, ms)
	var follower *member
	for _, m := range ms {
		if m != leader {
			follower = m
		}
	}
	secure := follower.srv.SecureAddr().String()
	dave := connectTLS(t, secure, e.clientConfig(t, pkix.Name{CommonName: "dave"}, tlstest.Options{}))
	_, err := dave.Create("/dave", []byte("1"), 0, []zk.ACL{{Perms: zk.PermAll, Scheme: "x509", ID: "CN=dave"}})
	require.NoError(t, err)
	_, err = dave.Set("/dave", []byte("2"), -1)
	require.NoError(t, err, "the leader admits the write by the forwarded x509 id")
	_, err = dave.Create("/dave/child", nil, 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	eve := connectTLS(t, secure, e.clientConfig(t, pkix.Name{CommonName: "eve"}, tlstest.Options{}))
	_, err = eve.Set("/dave", []byte("3"), -1)
	require.ErrorIs(t, err, zk.ErrNoAuth)
	_, err = eve.Create("/dave/eve", nil, 0, zk.WorldACL(zk.PermAll))
	require.ErrorIs(t, err, zk.ErrNoAuth)
	root := connectTLS(t, secure, e.clientConfig(t, pkix.Name{CommonName: "root"}, tlstest.Options{}))
	_, err = root.Set("/dave", []byte("4"), -1)
	require.NoError(t, err, "the x509 super user passes every ACL, on the leader too")
	data, _, err := dave.Get("/dave")
	require.NoError(t, err)
	require.Equal(t, "4", string(data))
}

// BenchmarkSessionConnect measures what a new session costs over plain TCP
// and over TLS 1.3 with a client certificate (the handshake, x509 id
// included): dial, ConnectRequest, ConnectResponse, close.
func BenchmarkSessionConnect(b *testing.B) {
	e := &tlsEnv{dir: b.TempDir(), ca: tlstest.NewCA(b, "bench CA")}
	e.keyStore = tlstest.WriteFile(b, e.dir, "server.pem", e.ca.Issue(b, tlstest.Options{}).KeyStorePEM)
	e.trust = tlstest.WriteFile(b, e.dir, "ca.pem", e.ca.PEM)
	cfg := testConfig(b)
	e.configure(&cfg)
	srv := testserver.StartLogged(b, cfg, slog.New(slog.DiscardHandler)).Srv
	leaf := e.ca.Issue(b, tlstest.Options{Subject: pkix.Name{CommonName: "bench"}})
	cert, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	require.NoError(b, err)
	pool := x509.NewCertPool()
	pool.AddCert(e.ca.Cert)
	tcfg := &tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: []tls.Certificate{cert}}
	session := func(b *testing.B, dial func() (net.Conn, error)) {
		for b.Loop() {
			nc, err := dial()
			require.NoError(b, err)
			c := &rawClient{t: b, nc: nc}
			resp, _ := c.handshake(proto.ConnectRequest{TimeOut: 30000, Passwd: make([]byte, 16)})
			require.NotZero(b, resp.SessionID)
			c.call(proto.OpCloseSession, nil, nil)
			_ = nc.Close()
		}
	}
	b.Run("plain", func(b *testing.B) {
		session(b, func() (net.Conn, error) { return net.Dial("tcp", srv.Addr().String()) })
	})
	b.Run("tls", func(b *testing.B) {
		session(b, func() (net.Conn, error) { return tls.Dial("tcp", srv.SecureAddr().String(), tcfg) })
	})
}

// TestTLSProbeIsQuiet: a TCP health check that connects to the TLS port
// and hangs up is not logged as a failure.
func TestTLSProbeIsQuiet(t *testing.T) {
	e := newTLSEnv(t)
	_, secure, logs := startTLSServer(t, e, nil)
	for range 3 {
		c, err := net.Dial("tcp", secure)
		require.NoError(t, err)
		_ = c.Close()
	}
	// A failed handshake after them is logged: once it is, the probes
	// before it were handled too.
	if c, err := tls.Dial("tcp", secure, e.clientConfig(t, pkix.Name{}, tlstest.Options{})); err == nil {
		_ = c.Close() // TLS 1.3: the server's verdict comes at the first read
	}
	waitFor(t, "the failed handshake is logged", func() bool { return strings.Contains(logs.String(), "TLS handshake failed") })
	require.Equal(t, 1, strings.Count(logs.String(), `msg="closing connection"`), logs.String())
}

// TestTLSOnly: a zoo.cfg that names secureClientPort and no clientPort
// opens no plain port, as ZooKeeper; the server's own server.N
// ";clientPort" still opens one.
func TestTLSOnly(t *testing.T) {
	c, err := server.ParseConfig(strings.NewReader("secureClientPort=2281\nssl.keyStore.location=/k.pem\n"), nil)
	require.NoError(t, err)
	require.Equal(t, -1, c.ClientPort)
	require.NoError(t, c.Validate())
	c, err = server.ParseConfig(strings.NewReader("clientPort=2181\nsecureClientPort=2281\nssl.keyStore.location=/k.pem\n"), nil)
	require.NoError(t, err)
	require.Equal(t, 2181, c.ClientPort)
	c, err = server.ParseConfig(strings.NewReader("tickTime=2000\n"), nil)
	require.NoError(t, err)
	require.Equal(t, 2181, c.ClientPort, "no TLS: the default plain port")
	c.ClientPort = -1
	require.ErrorContains(t, c.Validate(), "clientPort")

	e := newTLSEnv(t)
	cfg := testConfig(t)
	e.configure(&cfg)
	cfg.ClientPort = -1
	srv, err := server.New(cfg, newServerLogger(t))
	require.NoError(t, err)
	testserver.Serve(t, srv)
	require.Equal(t, srv.SecureAddr(), srv.Addr())
	z := connectTLS(t, srv.Addr().String(), e.clientConfig(t, pkix.Name{CommonName: "only"}, tlstest.Options{}))
	_, err = z.Create("/only", nil, 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
}

// TestQuorumTLSRollingUpgrade moves a running plain-text ensemble to
// quorum TLS one server at a time, as ZooKeeper's portUnification allows:
// (1) each server restarts accepting TLS and plain peers, (2) each
// restarts dialing TLS (sslQuorum=true), (3) each restarts refusing plain
// text. After every restart the ensemble serves and has every write.
func TestQuorumTLSRollingUpgrade(t *testing.T) {
	ca := tlstest.NewCA(t, "quorum CA")
	dir := t.TempDir()
	files := map[int]string{}
	ms := startEnsemble(t, 3)
	for _, m := range ms {
		files[m.id] = ca.QuorumCfg(t, dir, m.id)
	}
	writes := 0
	step := func(name string, set func(*server.Config)) {
		for _, m := range ms {
			m.stop(t)
			parsed, err := server.ParseConfig(strings.NewReader(files[m.id]), nil)
			require.NoError(t, err)
			m.cfg.TLS.QuorumSettings = parsed.TLS.QuorumSettings
			set(&m.cfg)
			m.open(t)
			exchangeAddrs(ms)
			m.serve(t)
			waitServing(t, ms)
			writes++
			path := "/step-" + strconv.Itoa(writes)
			c := connect(t, m.addr) // the restarted server has a new client port
			waitFor(t, name+": a write after restarting server "+strconv.Itoa(m.id), func() bool {
				_, err := c.Create(path, []byte(name), 0, zk.WorldACL(zk.PermAll))
				return err == nil || errors.Is(err, zk.ErrNodeExists)
			})
			c.Close()
		}
	}
	step("unified", func(c *server.Config) { c.TLS.QuorumPortUnification = true })
	step("dial tls", func(c *server.Config) { c.TLS.Quorum = true })
	step("tls only", func(c *server.Config) { c.TLS.QuorumPortUnification = false })

	for _, m := range ms {
		cm := connect(t, m.addr)
		waitFor(t, "every write on server "+strconv.Itoa(m.id), func() bool {
			children, _, err := cm.Children("/")
			n := 0
			for _, ch := range children {
				if strings.HasPrefix(ch, "step-") {
					n++
				}
			}
			return err == nil && n == writes
		})
	}
	// The quorum ports now refuse plain text: a peer speaking it gets
	// nothing back.
	plain, err := net.Dial("tcp", ms[0].srv.PeerAddr().String())
	require.NoError(t, err)
	_, _ = plain.Write([]byte("ZBKP"))
	_ = plain.SetReadDeadline(time.Now().Add(waitTimeout))
	n, _ := plain.Read(make([]byte, 16))
	_ = plain.Close()
	require.Zero(t, n)
}
