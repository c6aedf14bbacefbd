package server_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// zkCliPath is where Debian's zookeeper package installs the Java CLI.
const zkCliPath = "/usr/share/zookeeper/bin/zkCli.sh"

// TestJavaClientZkCli drives the server with Apache ZooKeeper's own Java
// client (zkCli.sh): create2, auth on xid -4, getACL, setACL, addWatch,
// whoAmI, getAllChildrenNumber, getEphemerals, sync and deleteall, as a
// ZooKeeper user types them. CI installs the package and sets
// ZABKEEPER_REQUIRE_JAVA=1 so the test cannot silently skip there.
func TestJavaClientZkCli(t *testing.T) {
	requireZkCli(t)
	addr, _ := startServer(t, nil)
	script := strings.Join([]string{
		"create /app hello",
		"create -s /app/seq- x",
		"create -e /app/eph e",
		"create -c /cont c",
		"get /app",
		"set /app world",
		"ls /app",
		"addauth digest user:password",
		"create /secure s digest:user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY=:cdrwa",
		"getAcl /secure",
		"get /secure",
		"setAcl /app world:anyone:cdrwa",
		"addWatch -m PERSISTENT_RECURSIVE /app",
		"whoami",
		"getAllChildrenNumber /",
		"getEphemerals",
		"sync /app",
		"deleteall /app",
		"ls /",
		"quit",
	}, "\n") + "\n"
	text := runZkCli(t, script, "-server", addr)
	for _, want := range []string{
		"Created /app\n",
		"Created /app/seq-0000000000",
		"Created /app/eph",
		"Created /cont",
		"hello\n",
		"[eph, seq-0000000000]",
		"Created /secure",
		"'digest,'user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY=",
		"digest: user",
		"ip: 127.0.0.1",
		"\n8\n", // app, seq, eph, cont, secure, zookeeper, quota, config
		"[/app/eph]",
		"Sync is OK",
		"type:NodeDeleted path:/app/eph",
		"[cont, secure, zookeeper]",
	} {
		require.Contains(t, text, want, "zkCli output:\n%s", text)
	}
	require.NotContains(t, text, "Exception", "zkCli output:\n%s", text)
}

// requireZkCli skips the test when Debian's zkCli.sh is not installed, or
// fails it when ZABKEEPER_REQUIRE_JAVA is set (as CI does).
func requireZkCli(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(zkCliPath); err != nil {
		if os.Getenv("ZABKEEPER_REQUIRE_JAVA") != "" {
			t.Fatalf("zkCli.sh not found at %s (apt-get install zookeeper)", zkCliPath)
		}
		t.Skipf("zkCli.sh not installed (apt-get install zookeeper); skipping the Java client test")
	}
}

// runZkCli runs zkCli.sh with args, types script into it, and returns what
// it printed (stdout and stderr).
func runZkCli(t *testing.T, script string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, zkCliPath, args...)
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "zkCli.sh failed:\n%s", out)
	return string(out)
}
