package server_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"
)

// TestOIDCJavaZkCli authenticates Apache ZooKeeper's own Java client with
// `addauth oidc <token>`: the ordinary addAuthInfo, no plugin on the client.
func TestOIDCJavaZkCli(t *testing.T) {
	requireZkCli(t)
	f := newOIDCFixture(t, time.Minute)
	tok := f.k8sToken(t, "system:serviceaccount:apps:java", time.Hour, nil)
	text := runZkCli(t, strings.Join([]string{
		"addauth oidc " + tok,
		"whoami",
		"create /java hello oidc:system:serviceaccount:apps:java:cdrwa",
		"getAcl /java",
		"get /java",
		"quit",
	}, "\n")+"\n", "-server", f.addr)
	for _, want := range []string{
		"oidc: system:serviceaccount:apps:java",
		"Created /java",
		"'oidc,'system:serviceaccount:apps:java",
		"hello\n",
	} {
		require.Contains(t, text, want, "zkCli output:\n%s", text)
	}

	// Without the token the node is closed to zkCli; with a bad one the
	// client is told its auth failed.
	text = runZkCliMayFail(t, "get /java\nquit\n", "-server", f.addr)
	require.Contains(t, text, "Insufficient permission", "zkCli output:\n%s", text)
	text = runZkCliMayFail(t, "addauth oidc "+tok[:len(tok)-4]+"AAAA\nget /java\nquit\n", "-server", f.addr)
	require.Contains(t, text, "AuthFailed", "zkCli output:\n%s", text)
	require.NotContains(t, f.log.String(), tok[:40], "no token in the server log")
}

// kazooScript authenticates kazoo with a token, is held to an ACL, and
// shows a bad token failing. It prints one line per check.
const kazooScript = `
import sys
from kazoo.client import KazooClient
from kazoo.security import make_acl
from kazoo.exceptions import NoAuthError, AuthFailedError
addr, good, bad = sys.argv[1], sys.argv[2], sys.argv[3]
zk = KazooClient(hosts=addr, auth_data=[("oidc", good)])
zk.start(timeout=20)
zk.create("/kazoo", b"v", acl=[make_acl("oidc", "system:serviceaccount:apps:kazoo", all=True)])
print("created", zk.get("/kazoo")[0].decode())
anon = KazooClient(hosts=addr)
anon.start(timeout=20)
try:
    anon.get("/kazoo")
    print("anonymous read allowed")
except NoAuthError:
    print("anonymous NoAuth")
anon.stop()
evil = KazooClient(hosts=addr)
evil.start(timeout=20)
try:
    evil.add_auth("oidc", bad)
    print("bad token accepted")
except AuthFailedError:
    print("bad token AuthFailed")
except Exception as e:
    print("bad token", type(e).__name__)
evil.stop()
zk.stop()
`

// TestOIDCKazoo runs the same with kazoo (Debian's python3-kazoo).
func TestOIDCKazoo(t *testing.T) {
	python := "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import kazoo").Run(); err != nil {
		if os.Getenv("ZABKEEPER_REQUIRE_KAZOO") != "" {
			t.Fatalf("kazoo not importable by %s (apt-get install python3-kazoo): %v", python, err)
		}
		t.Skip("kazoo not installed (apt-get install python3-kazoo)")
	}
	f := newOIDCFixture(t, time.Minute)
	good := f.k8sToken(t, "system:serviceaccount:apps:kazoo", time.Hour, nil)
	bad := f.k8sToken(t, "system:serviceaccount:apps:kazoo", -time.Hour, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "-c", kazooScript, f.addr, good, bad).CombinedOutput()
	require.NoError(t, err, "kazoo:\n%s", out)
	text := string(out)
	for _, want := range []string{"created v", "anonymous NoAuth", "bad token AuthFailed"} {
		require.Contains(t, text, want, "kazoo:\n%s", text)
	}
	// And go-zk sees what kazoo made.
	c := connect(t, f.addr)
	_, _, err = c.Get("/kazoo")
	require.ErrorIs(t, err, zk.ErrNoAuth)
}

// runZkCliMayFail is runZkCli for scripts whose last command fails (zkCli
// then exits non-zero).
func runZkCliMayFail(t *testing.T, script string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, zkCliPath, args...)
	cmd.Stdin = strings.NewReader(script)
	out, _ := cmd.CombinedOutput()
	require.NoError(t, ctx.Err(), "zkCli.sh timed out:\n%s", out)
	return string(out)
}
