package server_test

import (
	"crypto/tls"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/internal/zkreal"
	"github.com/zabkeeper/zabkeeper/server"
	"github.com/zabkeeper/zabkeeper/server/tlsconf/tlstest"
)

// Mixed ensembles over encrypted quorum links: ZooKeeper 3.8 and zabkeeper
// read the same zoo.cfg keys (sslQuorum, ssl.quorum.keyStore.* and
// ssl.quorum.trustStore.* with type PEM), and both the election port and
// the quorum port speak mutual TLS. Every certificate names 127.0.0.1 and
// localhost, so hostname verification (on by default on both sides)
// passes.

// mixedTLSKeys writes server id's PEM key store (a certificate issued by
// ca naming 127.0.0.1 and localhost) and ca's bundle under dir and returns
// the zoo.cfg keys a ZooKeeper user sets for quorum TLS.
func mixedTLSKeys(t *testing.T, dir string, ca *tlstest.CA, id int) map[string]string {
	leaf := ca.Issue(t, tlstest.Options{Subject: pkix.Name{CommonName: "server-" + strconv.Itoa(id)}})
	return map[string]string{
		"sslQuorum":                       "true",
		"ssl.quorum.keyStore.location":    tlstest.WriteFile(t, dir, fmt.Sprintf("quorum-%d.pem", id), leaf.KeyStorePEM),
		"ssl.quorum.keyStore.type":        "PEM",
		"ssl.quorum.trustStore.location":  tlstest.WriteFile(t, dir, fmt.Sprintf("quorum-ca-%d.pem", id), ca.PEM),
		"ssl.quorum.trustStore.type":      "PEM",
		"ssl.quorum.hostnameVerification": "true",
	}
}

// newMixedTLSEnsemble is newMixedEnsemble with quorum TLS on every server,
// all certificates from one CA.
func newMixedTLSEnsemble(t *testing.T, n int) (*mixedEnsemble, *tlstest.CA) {
	e := newMixedEnsemble(t, n)
	ca := tlstest.NewCA(t, "quorum CA")
	dir := t.TempDir()
	e.extra = map[int]map[string]string{}
	for id := 1; id <= n; id++ {
		e.extra[id] = mixedTLSKeys(t, dir, ca, id)
	}
	return e, ca
}

// startZabkeeperLogged is startZabkeeper with its log kept for the test to
// read.
func (e *mixedEnsemble) startZabkeeperLogged(t *testing.T, id int) (*member, *syncBuffer) {
	cfg := e.zabkeeperConfig(t, id, "", "")
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(logs, newTestLog(t)), nil)).With("server", id)
	srv, err := server.New(cfg, logger)
	require.NoError(t, err)
	m := &member{id: id, cfg: cfg, srv: srv, addr: srv.Addr().String()}
	m.serve(t)
	e.ours[id] = m
	return m, logs
}

// sslHandshakeWith is the line ZooKeeper's QuorumCnxManager logs after a
// TLS handshake on an election connection it dialed.
func sslHandshakeWith(port int) string {
	return fmt.Sprintf("SSL handshake complete with /127.0.0.1:%d", port)
}

// TestMixedTLSZabkeeperFollowsZooKeeper: (a) two Apache ZooKeeper 3.8
// servers with sslQuorum=true and PEM stores form an ensemble and take
// writes; a zabkeeper server with the same keys joins over TLS on both
// ports (ZooKeeper's ports accept nothing else), follows the ZooKeeper
// leader, syncs, and serves a go-zk client; writes go both ways.
func TestMixedTLSZabkeeperFollowsZooKeeper(t *testing.T) {
	e, _ := newMixedTLSEnsemble(t, 3)
	z1 := e.startZooKeeper(t, 1)
	z2 := e.startZooKeeper(t, 2)
	pollUntil(t, "ZooKeeper 1 and 2 serve over TLS, one leading", func() bool {
		m1, m2 := zkMode(z1), zkMode(z2)
		return (m1 == "leader" && m2 == "follower") || (m1 == "follower" && m2 == "leader")
	})
	zc := connectMixed(t, z1.Addr)
	for i := range 3 {
		mustCreate(t, zc, fmt.Sprintf("/zk%d", i), []byte("from zookeeper"), 0)
	}

	ours, logs := e.startZabkeeperLogged(t, 3)
	pollUntil(t, "zabkeeper follows the ZooKeeper leader over TLS", func() bool { return mode(t, ours.addr) == "follower" })
	oc := connectMixed(t, ours.addr)
	for i := range 3 {
		readEventually(t, oc, fmt.Sprintf("/zk%d", i), []byte("from zookeeper"))
	}
	mustCreate(t, oc, "/from-zabkeeper", []byte("o"), 0)
	readEventually(t, zc, "/from-zabkeeper", []byte("o"))
	mustCreate(t, zc, "/later-zk", []byte("z"), 0)
	readEventually(t, oc, "/later-zk", []byte("z"))

	// ZooKeeper's election and quorum ports took nothing but TLS, so
	// zabkeeper's links to them (it has the largest id: it dials) are TLS.
	for _, z := range []*zkreal.Server{z1, z2} {
		require.Contains(t, z.Log(), "Creating TLS-only quorum server socket")
	}
	require.NotContains(t, logs.String(), "TLS handshake with peer failed")
	for _, z := range []*zkreal.Server{z1, z2} {
		requireCleanZooKeeperLog(t, z, 0)
		require.NotContains(t, z.Log(), "SSLHandshakeException")
	}
}

// TestMixedTLSZooKeeperFollowsZabkeeper: (b) a zabkeeper leader with
// sslQuorum=true leads an Apache ZooKeeper 3.8 follower over TLS. (c) A
// ZooKeeper server whose certificate comes from another CA is refused on
// the election port both ways, and a peer with such a certificate on the
// quorum port too, each with a log line naming the peer and the reason;
// (d) a plain-text peer is refused on both ports. The ensemble keeps
// serving throughout.
func TestMixedTLSZooKeeperFollowsZabkeeper(t *testing.T) {
	e, _ := newMixedTLSEnsemble(t, 3)
	other := tlstest.NewCA(t, "another CA")
	e.extra[2] = mixedTLSKeys(t, t.TempDir(), other, 2)

	ours, logs := e.startZabkeeperLogged(t, 3)
	z1 := e.startZooKeeper(t, 1)
	pollUntil(t, "zabkeeper leads ZooKeeper 1 over TLS", func() bool {
		return mode(t, ours.addr) == "leader" && zkMode(z1) == "follower"
	})
	oc := connectMixed(t, ours.addr)
	zc := connectMixed(t, z1.Addr)
	mustCreate(t, oc, "/ours", []byte("from zabkeeper"), 0)
	mustCreate(t, zc, "/zk1", []byte("from zookeeper 1"), 0)
	readEventually(t, zc, "/ours", []byte("from zabkeeper"))
	readEventually(t, oc, "/zk1", []byte("from zookeeper 1"))
	// The election link is TLS whichever side opened it: ZooKeeper 1
	// dials zabkeeper's election port only if it has a notification to
	// send before zabkeeper's own dial (the larger id keeps its
	// connection) reaches it, a race either side may win.
	if l := z1.Log(); !strings.Contains(l, sslHandshakeWith(e.servers[3].ElectionPort)) {
		require.Contains(t, l, "Accepted TLS connection from", "the election link between ZooKeeper 1 and zabkeeper is TLS")
	}

	// (c) ZooKeeper 2 trusts another CA and has a certificate from it.
	z2 := e.startZooKeeper(t, 2)
	pollUntil(t, "zabkeeper refuses ZooKeeper 2's election connection and its own to ZooKeeper 2", func() bool {
		l := logs.String()
		return strings.Contains(l, "refused election connection") && strings.Contains(l, "certificate") &&
			regexpLine(l, `TLS handshake with peer failed.*peer=2.*certificate`)
	})
	t.Logf("zabkeeper's refusals:\n%s", grepLines(logs.String(), "TLS handshake with peer failed", "refused election connection"))
	require.Contains(t, z2.Log(), "SSLHandshakeException", "ZooKeeper 2 refuses zabkeeper's certificate too")
	require.Empty(t, zkMode(z2), "ZooKeeper 2 never joins")

	// The quorum and election ports refuse a peer whose certificate is
	// from another CA, and a peer speaking plain text.
	bad := other.Issue(t, tlstest.Options{Subject: pkix.Name{CommonName: "server-2"}})
	badCert, err := tls.X509KeyPair(bad.CertPEM, bad.KeyPEM)
	require.NoError(t, err)
	for _, port := range []struct {
		name string
		addr net.Addr
	}{{"quorum", ours.srv.PeerAddr()}, {"election", ours.srv.ElectionAddr()}} {
		mark := len(logs.String())
		c, err := net.Dial("tcp", port.addr.String())
		require.NoError(t, err)
		// GetClientCertificate sends the certificate although the server
		// names the CAs it trusts (Go's client would otherwise send none).
		tc := tls.Client(c, &tls.Config{
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &badCert, nil },
			InsecureSkipVerify:   true, //nolint:gosec // the probe is the untrusted side
		})
		_ = tc.SetDeadline(time.Now().Add(mixedWait))
		err = tc.Handshake()
		if err == nil {
			_, err = tc.Read(make([]byte, 1))
		}
		_ = tc.Close()
		require.Error(t, err, "the %s port refuses a certificate from another CA", port.name)
		local := c.LocalAddr().String()
		pollUntil(t, "zabkeeper logs refusing the other CA's certificate on its "+port.name+" port", func() bool {
			return regexpLine(logs.String()[mark:], `refused \w+ connection.*remote=`+regexp.QuoteMeta(local)+`.*untrusted CA.*unknown authority`)
		})

		mark = len(logs.String())
		plain, err := net.Dial("tcp", port.addr.String())
		require.NoError(t, err)
		local = plain.LocalAddr().String()
		_, _ = plain.Write(make([]byte, 64))
		requireClosedConn(t, plain)
		pollUntil(t, "zabkeeper logs refusing plain text on its "+port.name+" port", func() bool {
			return regexpLine(logs.String()[mark:], `refused \w+ connection.*remote=`+regexp.QuoteMeta(local))
		})
	}

	// The ensemble kept serving.
	mustCreate(t, oc, "/after", []byte("still"), 0)
	readEventually(t, zc, "/after", []byte("still"))
	require.Equal(t, "leader", mode(t, ours.addr))
	requireCleanZooKeeperLog(t, z1, 0)
}

// TestMixedTLSPortUnification: (d) ZooKeeper's documented move of a
// running ensemble to quorum TLS has a step where every server sets
// portUnification=true and some already dial in TLS (sslQuorum=true)
// while others still dial in plain text. A zabkeeper leader in that step
// (sslQuorum=true, portUnification=true) takes a ZooKeeper follower that
// dials in plain text, and that ZooKeeper's unified ports take
// zabkeeper's TLS.
func TestMixedTLSPortUnification(t *testing.T) {
	e, _ := newMixedTLSEnsemble(t, 3)
	e.extra[3]["portUnification"] = "true"
	e.extra[1]["portUnification"] = "true"
	e.extra[1]["sslQuorum"] = "false"

	ours, logs := e.startZabkeeperLogged(t, 3)
	z1 := e.startZooKeeper(t, 1)
	pollUntil(t, "zabkeeper leads a ZooKeeper that dials in plain text", func() bool {
		return mode(t, ours.addr) == "leader" && zkMode(z1) == "follower"
	})
	oc := connectMixed(t, ours.addr)
	zc := connectMixed(t, z1.Addr)
	mustCreate(t, oc, "/ours", []byte("o"), 0)
	mustCreate(t, zc, "/zk1", []byte("z"), 0)
	readEventually(t, zc, "/ours", []byte("o"))
	readEventually(t, oc, "/zk1", []byte("z"))
	require.NotContains(t, z1.Log(), sslHandshakeWith(e.servers[3].ElectionPort), "ZooKeeper 1 dials in plain text")
	require.NotContains(t, logs.String(), "refused")
	requireCleanZooKeeperLog(t, z1, 0)
}

// regexpLine reports whether a line of log matches pattern.
func regexpLine(log, pattern string) bool {
	re := regexp.MustCompile(`(?m)^.*` + pattern + `.*$`)
	return re.MatchString(log)
}

// grepLines returns the lines of log holding any of subs.
func grepLines(log string, subs ...string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		for _, s := range subs {
			if strings.Contains(l, s) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// requireClosedConn waits until the server closes c.
func requireClosedConn(t *testing.T, c net.Conn) {
	t.Helper()
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(mixedWait))
	for {
		if _, err := c.Read(make([]byte, 256)); err != nil {
			var ne net.Error
			require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server did not close the connection")
			return
		}
	}
}

// mixedTLSKeysNamed is mixedTLSKeys with a certificate naming only dns.
func mixedTLSKeysNamed(t *testing.T, dir string, ca *tlstest.CA, id int, dns string) map[string]string {
	keys := mixedTLSKeys(t, dir, ca, id)
	leaf := ca.Issue(t, tlstest.Options{Subject: pkix.Name{CommonName: dns}, DNSNames: []string{dns}})
	keys["ssl.quorum.keyStore.location"] = tlstest.WriteFile(t, dir, fmt.Sprintf("quorum-%d-named.pem", id), leaf.KeyStorePEM)
	return keys
}

// TestMixedTLSHostnameVerification: ssl.quorum.hostnameVerification is
// on by default on both sides. A zabkeeper whose certificate (from the
// right CA) names only zk-3.example, not the 127.0.0.1 of its server.3
// line, is refused by the ZooKeepers on both ends of a link: as a client
// (ZooKeeper's election and quorum ports check the dialer's address too)
// and as a server. zabkeeper logs the refusals with the peer, and the
// ZooKeepers keep serving.
func TestMixedTLSHostnameVerification(t *testing.T) {
	e, ca := newMixedTLSEnsemble(t, 3)
	e.extra[3] = mixedTLSKeysNamed(t, t.TempDir(), ca, 3, "zk-3.example")
	delete(e.extra[3], "ssl.quorum.hostnameVerification") // the default: on
	z1 := e.startZooKeeper(t, 1)
	z2 := e.startZooKeeper(t, 2)
	pollUntil(t, "ZooKeeper 1 and 2 serve", func() bool {
		m1, m2 := zkMode(z1), zkMode(z2)
		return (m1 == "leader" && m2 == "follower") || (m1 == "follower" && m2 == "leader")
	})
	ours, logs := e.startZabkeeperLogged(t, 3)
	pollUntil(t, "zabkeeper logs that ZooKeeper 1 and 2 refuse its certificate", func() bool {
		l := logs.String()
		return regexpLine(l, `TLS handshake with peer failed.*peer=1.*peer refused the TLS handshake`) &&
			regexpLine(l, `TLS handshake with peer failed.*peer=2.*peer refused the TLS handshake`)
	})
	pollUntil(t, "ZooKeeper logs the name mismatch", func() bool {
		return strings.Contains(z1.Log()+z2.Log(), "Failed to verify host address: 127.0.0.1")
	})
	t.Logf("zabkeeper's refusals:\n%s", grepLines(logs.String(), "TLS handshake with peer failed"))
	require.NotEqual(t, "follower", mode(t, ours.addr))
	zc := connectMixed(t, z1.Addr)
	mustCreate(t, zc, "/still", nil, 0)
}

// TestMixedTLSHostnameVerificationOff: with
// ssl.quorum.hostnameVerification=false on every server, certificates of
// the quorum CA that do not name 127.0.0.1 are accepted both ways (only
// the chain is checked, as ZooKeeper does): zabkeeper, with such a
// certificate, follows ZooKeepers whose certificates name other hosts.
func TestMixedTLSHostnameVerificationOff(t *testing.T) {
	e, ca := newMixedTLSEnsemble(t, 3)
	dir := t.TempDir()
	for id := 1; id <= 3; id++ {
		e.extra[id] = mixedTLSKeysNamed(t, dir, ca, id, fmt.Sprintf("zk-%d.example", id))
		e.extra[id]["ssl.quorum.hostnameVerification"] = "false"
	}
	z1 := e.startZooKeeper(t, 1)
	z2 := e.startZooKeeper(t, 2)
	pollUntil(t, "ZooKeeper 1 and 2 serve", func() bool {
		m1, m2 := zkMode(z1), zkMode(z2)
		return (m1 == "leader" && m2 == "follower") || (m1 == "follower" && m2 == "leader")
	})
	ours, logs := e.startZabkeeperLogged(t, 3)
	pollUntil(t, "zabkeeper follows over TLS without hostname verification", func() bool { return mode(t, ours.addr) == "follower" })
	oc := connectMixed(t, ours.addr)
	mustCreate(t, oc, "/no-names", []byte("o"), 0)
	readEventually(t, connectMixed(t, z1.Addr), "/no-names", []byte("o"))
	require.NotContains(t, logs.String(), "TLS handshake with peer failed")
}

// TestMixedTLSZabkeeperVerifiesHostnames: a zabkeeper leader (hostname
// verification on, the default) refuses a ZooKeeper whose certificate,
// from the right CA, names zk-2.example rather than the 127.0.0.1 of its
// server.2 line: when ZooKeeper dials it (the certificate must name the
// host of the id the connection claims) and when it dials ZooKeeper (the
// certificate must name the address dialed). The ZooKeeper with a proper
// certificate follows and the ensemble serves.
func TestMixedTLSZabkeeperVerifiesHostnames(t *testing.T) {
	e, ca := newMixedTLSEnsemble(t, 3)
	e.extra[2] = mixedTLSKeysNamed(t, t.TempDir(), ca, 2, "zk-2.example")
	e.extra[2]["ssl.quorum.hostnameVerification"] = "false" // ZooKeeper 2 itself checks chains only
	ours, logs := e.startZabkeeperLogged(t, 3)
	z1 := e.startZooKeeper(t, 1)
	pollUntil(t, "zabkeeper leads ZooKeeper 1", func() bool {
		return mode(t, ours.addr) == "leader" && zkMode(z1) == "follower"
	})
	z2 := e.startZooKeeper(t, 2)
	pollUntil(t, "zabkeeper refuses ZooKeeper 2's certificate both ways", func() bool {
		l := logs.String()
		return regexpLine(l, `refused election connection.*peer=2.*does not match peer 2: server.2 is 127.0.0.1`) &&
			regexpLine(l, `TLS handshake with peer failed.*peer=2.*does not name its host`)
	})
	t.Logf("zabkeeper's refusals:\n%s", grepLines(logs.String(), "TLS handshake with peer failed", "refused election connection"))
	require.Empty(t, zkMode(z2), "ZooKeeper 2 never joins")
	oc := connectMixed(t, ours.addr)
	mustCreate(t, oc, "/served", []byte("o"), 0)
	readEventually(t, connectMixed(t, z1.Addr), "/served", []byte("o"))
}

// TestMixedTLSPortUnificationPlainZabkeeper: the same step of the move to
// quorum TLS the other way round: zabkeeper 2 still dials in plain text
// (portUnification=true, sslQuorum=false) and is let in by ZooKeeper 1's
// unified election port (which itself dials in TLS) and by zabkeeper 3,
// the leader, whose unified ports take both.
func TestMixedTLSPortUnificationPlainZabkeeper(t *testing.T) {
	e, _ := newMixedTLSEnsemble(t, 3)
	for id := 1; id <= 3; id++ {
		e.extra[id]["portUnification"] = "true"
	}
	e.extra[2]["sslQuorum"] = "false"

	leader, leaderLogs := e.startZabkeeperLogged(t, 3)
	z1 := e.startZooKeeper(t, 1)
	pollUntil(t, "zabkeeper 3 leads ZooKeeper 1 over TLS", func() bool {
		return mode(t, leader.addr) == "leader" && zkMode(z1) == "follower"
	})
	plain, plainLogs := e.startZabkeeperLogged(t, 2)
	pollUntil(t, "zabkeeper 2, dialing in plain text, follows", func() bool { return mode(t, plain.addr) == "follower" })
	pc := connectMixed(t, plain.addr)
	zc := connectMixed(t, z1.Addr)
	mustCreate(t, pc, "/plain", []byte("p"), 0)
	mustCreate(t, zc, "/zk1", []byte("z"), 0)
	readEventually(t, zc, "/plain", []byte("p"))
	readEventually(t, pc, "/zk1", []byte("z"))
	pollUntil(t, "zabkeeper 2's plain election link with ZooKeeper 1 is up", func() bool {
		return regexpLine(plainLogs.String(), `election link up.*peer=1`)
	})
	require.Contains(t, z1.Log(), "Creating TLS-enabled quorum server socket", "ZooKeeper 1's ports are unified")
	require.NotContains(t, leaderLogs.String(), "refused")
	require.NotContains(t, plainLogs.String(), "refused")
	requireCleanZooKeeperLog(t, z1, 0)
}
