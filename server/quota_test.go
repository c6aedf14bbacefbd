package server_test

import (
	"strings"
	"testing"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"
)

// TestQuotaZkCli runs zkCli's setquota, listquota and delquota against the
// server with zookeeper.enforceQuota=true: hard limits refuse writes with
// QuotaExceeded, soft limits are logged.
func TestQuotaZkCli(t *testing.T) {
	requireZkCli(t)
	cfg := testConfig(t)
	cfg.Security.EnforceQuota = true
	srv, log := startServerObj(t, cfg)
	addr := srv.Addr().String()
	text := runZkCliMayFail(t, strings.Join([]string{
		"create /q x",
		"create /q/a 12345",
		"setquota -N 3 /q",
		"setquota -b 8 /q",
		"listquota /q",
		"create /q/b y",
		"create /q/c z",
		"delquota -N /q",
		"create /q/c z",
		"listquota /q",
		"delquota /q",
		"listquota /q",
		"ls /zookeeper/quota",
		"quit",
	}, "\n")+"\n", "-server", addr)
	t.Logf("zkCli:\n%s", text)
	for _, want := range []string{
		"Output quota for /q count=-1,bytes=8=;byteHardLimit=-1;countHardLimit=3",
		"Output stat for /q count=2,bytes=6",
		"Created /q/b",
		"Quota has exceeded",
		"Output quota for /q count=-1,bytes=8=;byteHardLimit=-1;countHardLimit=-1",
		"Output stat for /q count=4,bytes=8",
		"quota for /q does not exist.",
	} {
		require.Contains(t, text, want)
	}
	require.Equal(t, 1, strings.Count(text, "Created /q/c"), "the first create /q/c was refused")
	require.Contains(t, log.String(), "Quota exceeded: /q [current count=4, hard limit=3]")

	// go-zk sees the QuotaExceeded code (-125) too.
	c := connect(t, addr)
	_, err := c.Create("/h", nil, 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	_, err = c.Create("/zookeeper/quota/h", nil, 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	_, err = c.Create("/zookeeper/quota/h/zookeeper_limits", []byte("count=-1,bytes=-1=;byteHardLimit=4;countHardLimit=-1"), 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	_, err = c.Create("/zookeeper/quota/h/zookeeper_stats", []byte("count=0,bytes=0"), 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	_, err = c.Set("/h", []byte("12345"), -1)
	require.Error(t, err)
	require.Contains(t, err.Error(), "-125", "go-zk has no name for QuotaExceeded; the code is ZooKeeper's")
	_, err = c.Set("/h", []byte("1234"), -1)
	require.NoError(t, err)
}
