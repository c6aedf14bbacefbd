package server_test

import (
	"crypto/tls"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"net"
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

// guardedTLS is a server with a TLS port, mntr allowed, and its admin
// listener.
type guardedTLS struct {
	plain, secure, admin string
	logs                 *syncBuffer
}

func startGuardedTLS(t *testing.T, e *tlsEnv, mutate func(*server.Config)) guardedTLS {
	t.Helper()
	cfg := testConfig(t)
	e.configure(&cfg)
	cfg.FourLetterWords = map[string]bool{"ruok": true, "srvr": true, "mntr": true, "conf": true}
	if mutate != nil {
		mutate(&cfg)
	}
	g := guardedTLS{logs: &syncBuffer{}}
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(io.MultiWriter(g.logs, newTestLog(t)), nil)))
	require.NoError(t, err)
	testserver.Serve(t, srv)
	g.plain = srv.Addr().String()
	if a := srv.SecureAddr(); a != nil {
		g.secure = a.String()
	}
	if a := srv.AdminAddr(); a != nil {
		g.admin = "http://" + a.String()
	}
	return g
}

// mntrFigure reads one zk_ figure of mntr over the plain port.
func mntrFigure(t *testing.T, addr, name string) int64 {
	t.Helper()
	for _, line := range strings.Split(fourLetter(t, addr, "mntr"), "\n") {
		if v, ok := strings.CutPrefix(line, "zk_"+name+"\t"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			require.NoError(t, err, line)
			return n
		}
	}
	t.Fatalf("mntr has no zk_%s", name)
	return 0
}

// tlsHandshake dials addr and finishes a TLS handshake, reading once so
// that a TLS 1.3 server's verdict (or its closing the connection) is seen.
func tlsHandshake(addr string, cfg *tls.Config) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: waitTimeout}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	_, err = c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return nil // accepted: the server waits for a ConnectRequest
	}
	return err
}

// TestTLSOutstandingHandshakeLimit: with
// zookeeper.netty.server.outstandingHandshake.limit=2, two connections
// that hold their handshake open take both slots; a third TLS client is
// closed and counted (mntr, admin monitor, /metrics), the plain port is
// unaffected, and once a slot is free TLS clients get in again.
func TestTLSOutstandingHandshakeLimit(t *testing.T) {
	e := newTLSEnv(t)
	parsed, err := server.ParseConfig(strings.NewReader("zookeeper.netty.server.outstandingHandshake.limit=2\n"), nil)
	require.NoError(t, err)
	require.Equal(t, 2, parsed.TLS.OutstandingHandshakeLimit)
	require.Equal(t, -1, server.DefaultConfig().TLS.OutstandingHandshakeLimit, "ZooKeeper's default: no cap")
	g := startGuardedTLS(t, e, func(c *server.Config) {
		c.TLS.OutstandingHandshakeLimit = parsed.TLS.OutstandingHandshakeLimit
		c.TLS.HandshakeTimeout = time.Minute // the holders are not timed out during the test
	})
	require.Zero(t, mntrFigure(t, g.plain, "outstanding_tls_handshake"))

	hold1, hold2 := dialRaw(t, g.secure), dialRaw(t, g.secure)
	waitFor(t, "two handshakes in progress", func() bool {
		return mntrFigure(t, g.plain, "outstanding_tls_handshake") == 2
	})
	good := e.clientConfig(t, pkix.Name{CommonName: "good"}, tlstest.Options{})
	require.Error(t, tlsHandshake(g.secure, good), "a third handshake is over the limit")
	require.Equal(t, int64(1), mntrFigure(t, g.plain, "tls_handshake_exceeded"))
	require.Equal(t, int64(2), mntrFigure(t, g.plain, "outstanding_tls_handshake"))
	waitFor(t, "the refusal logged", func() bool {
		return strings.Contains(g.logs.String(), "TLS handshake refused: too many in progress")
	})
	// The plain port has no handshake to cap.
	zp := connect(t, g.plain)
	_, err = zp.Create("/p", nil, 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)

	hold1.close()
	waitFor(t, "a slot freed", func() bool { return mntrFigure(t, g.plain, "outstanding_tls_handshake") == 1 })
	zt := connectTLS(t, g.secure, good)
	_, _, err = zt.Get("/p")
	require.NoError(t, err)
	require.Equal(t, int64(1), mntrFigure(t, g.plain, "outstanding_tls_handshake"), "an established client holds no slot")
	hold2.close()

	mon := adminCommand(t, g.admin, "monitor")
	require.Equal(t, 1.0, mon["tls_handshake_exceeded"])
	require.Contains(t, mon, "outstanding_tls_handshake")
	require.Contains(t, mon, "unsuccessful_handshake")
	waitFor(t, "/metrics shows the refusal", func() bool {
		f, ok := scrape(t, g.admin)["tls_handshake_exceeded"]
		return ok && f.GetMetric()[0].GetGauge().GetValue() == 1
	})
}

// TestTLSHandshakeDeadline: a client that opens TCP to the TLS port and
// never sends a ClientHello is closed after
// ssl.handshakeDetectionTimeoutMillis (not the 10 s sessionless timeout),
// counted as an unsuccessful handshake, and its slot freed.
func TestTLSHandshakeDeadline(t *testing.T) {
	e := newTLSEnv(t)
	parsed, err := server.ParseConfig(strings.NewReader("ssl.handshakeDetectionTimeoutMillis=300\n"), nil)
	require.NoError(t, err)
	require.Equal(t, 300*time.Millisecond, parsed.TLS.HandshakeTimeout)
	_, err = server.ParseConfig(strings.NewReader("ssl.handshakeDetectionTimeoutMillis=0\n"), nil)
	require.ErrorContains(t, err, "ssl.handshakeDetectionTimeoutMillis")
	g := startGuardedTLS(t, e, func(c *server.Config) {
		c.TLS.HandshakeTimeout = parsed.TLS.HandshakeTimeout
		c.TLS.OutstandingHandshakeLimit = 1
	})

	start := time.Now()
	silent := dialRaw(t, g.secure)
	_ = silent.nc.SetReadDeadline(time.Now().Add(waitTimeout))
	_, err = silent.nc.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "the server closes a silent connection")
	require.Less(t, time.Since(start), 5*time.Second, "closed by the handshake deadline")
	waitFor(t, "the failure counted", func() bool {
		return mntrFigure(t, g.plain, "unsuccessful_handshake") == 1
	})
	require.Contains(t, g.logs.String(), "no TLS handshake within 300ms")
	require.Zero(t, mntrFigure(t, g.plain, "outstanding_tls_handshake"))
	// The one slot is free again.
	connectTLS(t, g.secure, e.clientConfig(t, pkix.Name{CommonName: "late"}, tlstest.Options{}))
}

// TestTLSHandshakeFailuresLogPaced: a flood of bad clients on the TLS port
// is counted one by one but logged as a burst and then one line per
// second, each saying how many lines it stands for; a good client is
// unaffected.
func TestTLSHandshakeFailuresLogPaced(t *testing.T) {
	e := newTLSEnv(t)
	g := startGuardedTLS(t, e, nil)
	const flood = 40
	const marker = "plain text on the TLS port"
	start := time.Now()
	for range flood {
		raw := dialRaw(t, g.secure)
		raw.write(proto.AppendRecords(nil, &proto.ConnectRequest{TimeOut: 30000, Passwd: make([]byte, 16)}))
		raw.expectClosed()
	}
	waitFor(t, "every failure counted", func() bool {
		return mntrFigure(t, g.plain, "unsuccessful_handshake") == flood
	})
	lines := strings.Count(g.logs.String(), marker)
	allowed := 10 + int(time.Since(start)/time.Second) + 1
	require.LessOrEqual(t, lines, allowed, "log lines for %d bad clients", flood)
	require.GreaterOrEqual(t, lines, 1)

	// Once the pace allows another line, it reports what was left out.
	deadline := time.Now().Add(waitTimeout)
	for !strings.Contains(g.logs.String(), "suppressed_since_last_line=") {
		require.True(t, time.Now().Before(deadline), "no line reports the suppressed ones")
		raw := dialRaw(t, g.secure)
		raw.write([]byte("not TLS at all"))
		raw.expectClosed()
		time.Sleep(100 * time.Millisecond) // pacing the bad clients, not synchronising
	}
	connectTLS(t, g.secure, e.clientConfig(t, pkix.Name{CommonName: "good"}, tlstest.Options{}))
}

// TestTLSConfShowsBoundPorts: conf and the admin configuration command
// show the ports actually bound, as ZooKeeper's dumpConf does, not the 0
// that asked for a free port.
func TestTLSConfShowsBoundPorts(t *testing.T) {
	e := newTLSEnv(t)
	g := startGuardedTLS(t, e, nil)
	_, plainPort, err := net.SplitHostPort(g.plain)
	require.NoError(t, err)
	_, securePort, err := net.SplitHostPort(g.secure)
	require.NoError(t, err)
	conf := fourLetter(t, g.plain, "conf")
	require.Contains(t, conf, "\nsecureClientPort="+securePort+"\n")
	require.True(t, strings.HasPrefix(conf, "clientPort="+plainPort+"\n"), conf)
	m := adminCommand(t, g.admin, "configuration")
	require.Equal(t, mustFloat(t, securePort), m["secure_client_port"])
	require.Equal(t, mustFloat(t, plainPort), m["client_port"])
}

func mustFloat(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	require.NoError(t, err)
	return f
}
