package tlsconf_test

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/server/tlsconf"
	"github.com/zabkeeper/zabkeeper/server/tlsconf/tlstest"
)

// The expected strings are what Java's X500Principal.getName() prints for
// the same subjects (RFC 2253: last RDN first, Java's escapes).
func TestSubjectDNAsJava(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	oid := func(s ...int) asn1.ObjectIdentifier { return asn1.ObjectIdentifier(s) }
	cases := []struct {
		name    string
		subject pkix.Name
		want    string
	}{
		{"plain", pkix.Name{CommonName: "client", OrganizationalUnit: []string{"eng"}, Organization: []string{"Acme, Inc."}, Country: []string{"US"}},
			`CN=client,OU=eng,O=Acme\, Inc.,C=US`},
		{"escapes anywhere", pkix.Name{CommonName: `a=b#c+d;e<f>"g\h`}, `CN=a\=b\#c\+d\;e\<f\>\"g\\h`},
		{"blanks at the ends", pkix.Name{CommonName: " x y "}, `CN=\ x y\ `},
		{"locality and state", pkix.Name{CommonName: "n", Locality: []string{"Paris"}, Province: []string{"IDF"}},
			"CN=n,L=Paris,ST=IDF"},
		{"serial number by OID", pkix.Name{CommonName: "n", SerialNumber: "42"}, "2.5.4.5=#13023432,CN=n"},
		{"e-mail by OID", pkix.Name{CommonName: "n", ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: oid(1, 2, 840, 113549, 1, 9, 1), Value: "a@b"}}}, "1.2.840.113549.1.9.1=#0c03614062,CN=n"},
		{"domain components", pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: oid(0, 9, 2342, 19200300, 100, 1, 25), Value: "org"},
			{Type: oid(0, 9, 2342, 19200300, 100, 1, 25), Value: "example"},
			{Type: oid(0, 9, 2342, 19200300, 100, 1, 1), Value: "jdoe"}}}, "UID=jdoe,DC=example,DC=org"},
		{"unicode", pkix.Name{CommonName: "zoé"}, "CN=zoé"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			leaf := ca.Issue(t, tlstest.Options{Subject: c.subject})
			got, err := tlsconf.SubjectDN(leaf.Cert.RawSubject)
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
	// A multi-valued RDN joins its values with '+'.
	raw, err := asn1.Marshal(pkix.RDNSequence{{
		{Type: oid(2, 5, 4, 3), Value: "a"}, {Type: oid(2, 5, 4, 11), Value: "b"},
	}})
	require.NoError(t, err)
	got, err := tlsconf.SubjectDN(raw)
	require.NoError(t, err)
	require.Equal(t, "CN=a+OU=b", got)
	_, err = tlsconf.SubjectDN([]byte{1, 2, 3})
	require.Error(t, err)
}

func TestClientIDFromSAN(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	leaf := ca.Issue(t, tlstest.Options{Subject: pkix.Name{CommonName: "x"},
		DNSNames: []string{"other.example", "app.team.svc"}, Emails: []string{"ops@example.com"}})
	s := tlsconf.IDSettings{Type: "SAN", SANMatchType: tlsconf.SANDNS, SANMatch: regexp.MustCompile(`\.svc$`)}
	require.NoError(t, s.Validate())
	id, err := s.ClientID(leaf.Cert)
	require.NoError(t, err)
	require.Equal(t, "app.team.svc", id)
	s.SANExtract, s.SANExtractGroup = regexp.MustCompile(`^([^.]+)\.([^.]+)\.svc$`), 2
	id, err = s.ClientID(leaf.Cert)
	require.NoError(t, err)
	require.Equal(t, "team", id)
	id, err = tlsconf.IDSettings{Type: "SAN", SANMatchType: tlsconf.SANEmail}.ClientID(leaf.Cert)
	require.NoError(t, err)
	require.Equal(t, "ops@example.com", id)
	_, err = tlsconf.IDSettings{Type: "SAN", SANMatchType: tlsconf.SANIP}.ClientID(leaf.Cert)
	require.ErrorContains(t, err, "0 subject alternative names")
	_, err = tlsconf.IDSettings{Type: "SAN", SANMatchType: tlsconf.SANDNS}.ClientID(leaf.Cert)
	require.ErrorContains(t, err, "2 subject alternative names", "as ZooKeeper: exactly one must match")
	require.Error(t, tlsconf.IDSettings{Type: "SAN", SANMatchType: 3}.Validate())
	require.Error(t, tlsconf.IDSettings{Type: "CN"}.Validate())
	id, err = tlsconf.IDSettings{}.ClientID(leaf.Cert)
	require.NoError(t, err)
	require.Equal(t, "CN=x", id)
}

func TestSettingsRefuseWhatIsNotPEM(t *testing.T) {
	s := tlsconf.Settings{KeyStoreLocation: "/k/server.jks"}
	err := s.Validate("ssl.")
	require.ErrorContains(t, err, "ssl.keyStore.type: JKS stores are not supported")
	require.ErrorContains(t, err, "ssl.keyStore.type=PEM")
	s = tlsconf.Settings{KeyStoreLocation: "/k/server.pem", TrustStoreLocation: "/k/ca", TrustStoreType: "PKCS12"}
	require.ErrorContains(t, s.Validate("ssl.quorum."), "ssl.quorum.trustStore.type: PKCS12 stores are not supported")
	require.ErrorContains(t, tlsconf.Settings{}.Validate("ssl."), "ssl.keyStore.location: not set")
	require.ErrorContains(t, tlsconf.Settings{KeyStoreLocation: "k", Protocol: "TLSv1.1"}.Validate("ssl."), "insecure")
	require.ErrorContains(t, tlsconf.Settings{KeyStoreLocation: "k", CipherSuites: []string{"TLS_NOPE"}}.Validate("ssl."), "TLS_NOPE")
	require.NoError(t, tlsconf.Settings{KeyStoreLocation: "k", EnabledProtocols: []string{"TLSv1.2", "TLSv1.3"},
		CipherSuites: []string{"TLS_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}}.Validate("ssl."))
}

func TestOpenRefusesEncryptedAndBrokenKeys(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	leaf := ca.Issue(t, tlstest.Options{})
	enc := strings.ReplaceAll(string(leaf.KeyStorePEM), "BEGIN PRIVATE KEY", "BEGIN ENCRYPTED PRIVATE KEY")
	enc = strings.ReplaceAll(enc, "END PRIVATE KEY", "END ENCRYPTED PRIVATE KEY")
	_, err := tlsconf.Open("client", "ssl.", tlsconf.Settings{KeyStoreLocation: tlstest.WriteFile(t, dir, "enc.pem", []byte(enc))}, nil)
	require.ErrorContains(t, err, "encrypted")
	_, err = tlsconf.Open("client", "ssl.", tlsconf.Settings{KeyStoreLocation: tlstest.WriteFile(t, dir, "cert.pem", leaf.CertPEM)}, nil)
	require.ErrorContains(t, err, "ssl.keyStore.location")
	_, err = tlsconf.Open("client", "ssl.", tlsconf.Settings{KeyStoreLocation: tlstest.WriteFile(t, dir, "ks.pem", leaf.KeyStorePEM),
		TrustStoreLocation: tlstest.WriteFile(t, dir, "empty.pem", []byte("nothing"))}, nil)
	require.ErrorContains(t, err, "ssl.trustStore.location")
	// No secret in the errors.
	require.NotContains(t, err.Error(), "PRIVATE KEY")
}

// A Kubernetes secret volume updates by swapping a symbolic link: the
// store picks the new files up, keeps serving the old ones while a change
// does not parse, and handshakes made afterwards use the new material.
func TestReloadFollowsSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	caA, caB := tlstest.NewCA(t, "CA A"), tlstest.NewCA(t, "CA B")
	write := func(gen string, ca *tlstest.CA, cn string) {
		d := filepath.Join(dir, gen)
		require.NoError(t, os.MkdirAll(d, 0o755))
		leaf := ca.Issue(t, tlstest.Options{Subject: pkix.Name{CommonName: cn}})
		tlstest.WriteFile(t, d, "tls.pem", leaf.KeyStorePEM)
		tlstest.WriteFile(t, d, "ca.pem", ca.PEM)
	}
	swap := func(gen string) {
		tmp := filepath.Join(dir, "..data_tmp")
		require.NoError(t, os.Symlink(gen, tmp))
		require.NoError(t, os.Rename(tmp, filepath.Join(dir, "..data")))
	}
	write("gen1", caA, "server-1")
	swap("gen1")
	for _, f := range []string{"tls.pem", "ca.pem"} {
		require.NoError(t, os.Symlink(filepath.Join("..data", f), filepath.Join(dir, f)))
	}
	st, err := tlsconf.Open("client", "ssl.", tlsconf.Settings{KeyStoreLocation: filepath.Join(dir, "tls.pem"),
		TrustStoreLocation: filepath.Join(dir, "ca.pem"), ClientAuth: tlsconf.ClientAuthNone}, nil)
	require.NoError(t, err)
	defer st.Close()
	require.Equal(t, "server-1", st.Leaf().Subject.CommonName)
	require.False(t, st.Reload(), "nothing changed")

	ln, err := tls.Listen("tcp", "127.0.0.1:0", st.ServerConfig())
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _ = c.(*tls.Conn).Handshake(); _ = c.Close() }()
		}
	}()
	peerCN := func(ca *tlstest.CA) (string, error) {
		pool := x509Pool(t, ca)
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "localhost"})
		if err != nil {
			return "", err
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
	}
	cn, err := peerCN(caA)
	require.NoError(t, err)
	require.Equal(t, "server-1", cn)

	// A broken generation is refused; the old one stays.
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "bad"), 0o755))
	tlstest.WriteFile(t, filepath.Join(dir, "bad"), "tls.pem", []byte("-----BEGIN half"))
	tlstest.WriteFile(t, filepath.Join(dir, "bad"), "ca.pem", caA.PEM)
	swap("bad")
	require.False(t, st.Reload())
	require.Equal(t, "server-1", st.Leaf().Subject.CommonName)

	write("gen2", caB, "server-2")
	swap("gen2")
	require.True(t, st.Reload())
	require.Equal(t, "server-2", st.Leaf().Subject.CommonName)
	cn, err = peerCN(caB)
	require.NoError(t, err)
	require.Equal(t, "server-2", cn)
	_, err = peerCN(caA)
	require.Error(t, err, "the old CA no longer vouches for the server")
}

func TestIsTLSHandshake(t *testing.T) {
	require.True(t, tlsconf.IsTLSHandshake([]byte{22, 3, 1, 0, 200}))
	require.False(t, tlsconf.IsTLSHandshake([]byte("ruok")))
	require.False(t, tlsconf.IsTLSHandshake([]byte{0, 0, 0, 45}))
	require.True(t, tlsconf.IsTLSHandshake([]byte{22}))
	require.False(t, tlsconf.IsTLSHandshake([]byte{22, 0}))
	require.False(t, tlsconf.IsTLSHandshake(nil))
}

func TestClientConfigWithoutHostnameVerification(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "CA")
	srv := ca.Issue(t, tlstest.Options{DNSNames: []string{"elsewhere.example"}, IPs: []net.IP{}})
	st, err := tlsconf.Open("quorum", "ssl.quorum.", tlsconf.Settings{KeyStoreLocation: tlstest.WriteFile(t, dir, "s.pem", srv.KeyStorePEM),
		TrustStoreLocation: tlstest.WriteFile(t, dir, "ca.pem", ca.PEM), ClientAuth: tlsconf.ClientAuthNone,
		HostnameVerification: true}, nil)
	require.NoError(t, err)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", st.ServerConfig())
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _ = c.(*tls.Conn).Handshake(); _ = c.Close() }()
		}
	}()
	_, err = tls.Dial("tcp", ln.Addr().String(), st.ClientConfig("127.0.0.1"))
	require.ErrorContains(t, err, "127.0.0.1", "hostname verification is off only when asked")
	noVerify, err := tlsconf.Open("quorum", "ssl.quorum.", tlsconf.Settings{KeyStoreLocation: filepath.Join(dir, "s.pem"),
		TrustStoreLocation: filepath.Join(dir, "ca.pem")}, nil)
	require.NoError(t, err)
	c, err := tls.Dial("tcp", ln.Addr().String(), noVerify.ClientConfig("127.0.0.1"))
	require.NoError(t, err)
	_ = c.Close()
	// The chain is still checked.
	other := tlstest.NewCA(t, "other")
	_, err = tlsconf.VerifyChain([][]byte{srv.Cert.Raw}, x509Pool(t, other), 0)
	require.Error(t, err)
}

// ssl.protocol alone enables only that protocol, as in ZooKeeper;
// ssl.enabledProtocols lists several; ssl.ciphersuites bounds TLS 1.2.
func TestProtocolsAndSuites(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "CA")
	ks := tlstest.WriteFile(t, dir, "s.pem", ca.Issue(t, tlstest.Options{}).KeyStorePEM)
	serve := func(s tlsconf.Settings) string {
		s.KeyStoreLocation, s.ClientAuth = ks, tlsconf.ClientAuthNone
		st, err := tlsconf.Open("client", "ssl.", s, nil)
		require.NoError(t, err)
		ln, err := tls.Listen("tcp", "127.0.0.1:0", st.ServerConfig())
		require.NoError(t, err)
		t.Cleanup(func() { _ = ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { _ = c.(*tls.Conn).Handshake(); _ = c.Close() }()
			}
		}()
		return ln.Addr().String()
	}
	dial := func(addr string, c *tls.Config) (tls.ConnectionState, error) {
		c.RootCAs, c.ServerName = x509Pool(t, ca), "localhost"
		conn, err := tls.Dial("tcp", addr, c)
		if err != nil {
			return tls.ConnectionState{}, err
		}
		defer conn.Close()
		return conn.ConnectionState(), nil
	}
	only12 := serve(tlsconf.Settings{Protocol: "TLSv1.2"})
	_, err := dial(only12, &tls.Config{MinVersion: tls.VersionTLS13})
	require.Error(t, err)
	st, err := dial(only12, &tls.Config{})
	require.NoError(t, err)
	require.Equal(t, uint16(tls.VersionTLS12), st.Version)

	both := serve(tlsconf.Settings{Protocol: "TLSv1.3", EnabledProtocols: []string{"TLSv1.2", "TLSv1.3"},
		CipherSuites: []string{"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"}})
	st, err = dial(both, &tls.Config{})
	require.NoError(t, err)
	require.Equal(t, uint16(tls.VersionTLS13), st.Version)
	st, err = dial(both, &tls.Config{MaxVersion: tls.VersionTLS12})
	require.NoError(t, err)
	require.Equal(t, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, st.CipherSuite)
	_, err = dial(both, &tls.Config{MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}})
	require.Error(t, err, "a suite left out of ssl.ciphersuites is refused")
}

// BenchmarkHandshake is the CPU cost of one mutual TLS 1.3 handshake with
// ECDSA P-256 certificates over an in-memory pipe, both ends included.
func BenchmarkHandshake(b *testing.B) {
	dir := b.TempDir()
	ca := tlstest.NewCA(b, "CA")
	st, err := tlsconf.Open("client", "ssl.", tlsconf.Settings{
		KeyStoreLocation:   tlstest.WriteFile(b, dir, "s.pem", ca.Issue(b, tlstest.Options{}).KeyStorePEM),
		TrustStoreLocation: tlstest.WriteFile(b, dir, "ca.pem", ca.PEM)}, nil)
	require.NoError(b, err)
	leaf := ca.Issue(b, tlstest.Options{Subject: pkix.Name{CommonName: "c"}})
	cert, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	require.NoError(b, err)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	ccfg := &tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: []tls.Certificate{cert}}
	scfg := st.ServerConfig()
	for b.Loop() {
		c1, c2 := net.Pipe()
		errc := make(chan error, 1)
		go func() { errc <- tls.Server(c2, scfg).Handshake() }()
		require.NoError(b, tls.Client(c1, ccfg).Handshake())
		require.NoError(b, <-errc)
		_ = c1.Close()
		_ = c2.Close()
	}
}
