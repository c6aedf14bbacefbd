package server_test

import (
	"context"
	"crypto/x509/pkix"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/server"
	"github.com/zabkeeper/zabkeeper/server/tlsconf/tlstest"
)

// TestJavaClientTLS runs Apache ZooKeeper's Java client (ZooKeeperMain,
// zkCli) over the Netty socket with TLS and PEM stores, as a ZooKeeper
// user configures it: the client's key store holds its key and
// certificate, its trust store the CA. The server authenticates it as
// x509:CN=java, an x509 ACL admits it, whoami shows it.
func TestJavaClientTLS(t *testing.T) {
	requireZkCli(t)
	e := newTLSEnv(t)
	_, secure, _ := startTLSServer(t, e, nil)
	client := e.ca.Issue(t, tlstest.Options{Subject: pkix.Name{CommonName: "java"}})
	keyStore := tlstest.WriteFile(t, e.dir, "java-client.pem", client.KeyStorePEM)
	script := strings.Join([]string{
		"create /jtls hello x509:CN=java:cdrwa",
		"getAcl /jtls",
		"get /jtls",
		"whoami",
		"quit",
	}, "\n") + "\n"
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "java", "-cp", nettyClassPath, nettySocket,
		"-Dzookeeper.client.secure=true",
		"-Dzookeeper.ssl.keyStore.location="+keyStore, "-Dzookeeper.ssl.keyStore.type=PEM",
		"-Dzookeeper.ssl.trustStore.location="+e.trust, "-Dzookeeper.ssl.trustStore.type=PEM",
		"org.apache.zookeeper.ZooKeeperMain", "-server", secure)
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	text := string(out)
	require.NoError(t, err, "ZooKeeperMain failed:\n%s", text)
	for _, want := range []string{
		"Created /jtls",
		"'x509,'CN=java",
		"hello\n",
		"x509: CN=java",
	} {
		require.Contains(t, text, want, "zkCli output:\n%s", text)
	}
	for _, bad := range []string{"KeeperErrorCode", "ConnectionLoss", "SSLHandshakeException"} {
		require.NotContains(t, text, bad, "zkCli output:\n%s", text)
	}
}

// TestJavaClientTLSPortUnification: the Java client over TLS and over
// plain text on one unified port.
func TestJavaClientTLSPortUnification(t *testing.T) {
	requireZkCli(t)
	e := newTLSEnv(t)
	plain, _, _ := startTLSServer(t, e, func(c *server.Config) {
		c.TLS.SecureClientPort = -1
		c.TLS.PortUnification = true
	})
	client := e.ca.Issue(t, tlstest.Options{Subject: pkix.Name{CommonName: "java"}})
	keyStore := tlstest.WriteFile(t, e.dir, "java-client.pem", client.KeyStorePEM)
	run := func(script string, flags ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		args := append([]string{"-cp", nettyClassPath, nettySocket}, flags...)
		args = append(args, "org.apache.zookeeper.ZooKeeperMain", "-server", plain)
		cmd := exec.CommandContext(ctx, "java", args...)
		cmd.Stdin = strings.NewReader(script)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "ZooKeeperMain failed:\n%s", out)
		return string(out)
	}
	text := run("create /both tls\nwhoami\nquit\n", "-Dzookeeper.client.secure=true",
		"-Dzookeeper.ssl.keyStore.location="+keyStore, "-Dzookeeper.ssl.keyStore.type=PEM",
		"-Dzookeeper.ssl.trustStore.location="+e.trust, "-Dzookeeper.ssl.trustStore.type=PEM")
	require.Contains(t, text, "Created /both", text)
	require.Contains(t, text, "x509: CN=java", text)
	text = run("get /both\nwhoami\nquit\n")
	require.Contains(t, text, "tls\n", text)
	require.NotContains(t, text, "x509:", text)
}
