package server_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/zabkeeper/zabkeeper/disk"
	"github.com/zabkeeper/zabkeeper/internal/zkreal"
)

// zkCleanupScript is Debian's zkCleanup.sh. It sources ../libexec/zkEnv.sh
// when there is one, else bin/zkEnv.sh, whose zoo.cfg is fixed at
// /etc/zookeeper/conf (Debian's ignores ZOOCFGDIR).
const zkCleanupScript = "/usr/share/zookeeper/bin/zkCleanup.sh"

// TestZkCleanupOnOurDataDir: Debian's zkCleanup.sh, run unchanged (beside a
// libexec/zkEnv.sh of ours that points it at a zoo.cfg naming a dataDir
// zabkeeper wrote), exits 0, keeps the 3 newest snapshots and the logs they
// need, and zabkeeper then starts on what it left with every write.
func TestZkCleanupOnOurDataDir(t *testing.T) {
	zkreal.Require(t)
	script, err := os.ReadFile(zkCleanupScript)
	require.NoError(t, err, "apt-get install -y zookeeper")

	cfg := testConfig(t)
	cfg.SnapCount = 10
	cfg.FourLetterWords = map[string]bool{"mntr": true}
	addr, stop := startServerCfg(t, cfg)
	c := connect(t, addr)
	const n = 120
	for i := 0; i < n; i++ {
		mustCreate(t, c, fmt.Sprintf("/c%03d", i), []byte(fmt.Sprint(i)), 0)
	}
	waitFor(t, "more than 3 snapshots", func() bool {
		snaps, err := disk.ListSnapshots(cfg.DataDir)
		require.NoError(t, err)
		return len(snaps) > 4
	})
	c.Close()
	stop()
	before, err := disk.ListSnapshots(cfg.DataDir)
	require.NoError(t, err)

	home := t.TempDir()
	for _, d := range []string{"bin", "libexec", "conf", "log"} {
		require.NoError(t, os.MkdirAll(filepath.Join(home, d), 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(home, "bin", "zkCleanup.sh"), script, 0o755))
	env := fmt.Sprintf("ZOOCFGDIR=%[1]s/conf\nZOOCFG=%[1]s/conf/zoo.cfg\nZOO_LOG_DIR=%[1]s/log\nJAVA=java\nCLASSPATH=%[2]q\n",
		home, zkreal.Classpath)
	require.NoError(t, os.WriteFile(filepath.Join(home, "libexec", "zkEnv.sh"), []byte(env), 0o644))
	zooCfg := fmt.Sprintf("tickTime=2000\ndataDir=%s\nclientPort=2181\n", cfg.DataDir)
	require.NoError(t, os.WriteFile(filepath.Join(home, "conf", "zoo.cfg"), []byte(zooCfg), 0o644))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", filepath.Join(home, "bin", "zkCleanup.sh"), "-n", "3").CombinedOutput()
	require.NoError(t, err, "zkCleanup.sh:\n%s", out)
	require.NotContains(t, strings.ToLower(string(out)), "exception", "zkCleanup.sh:\n%s", out)

	after, err := disk.ListSnapshots(cfg.DataDir)
	require.NoError(t, err)
	require.Len(t, after, 3, "zkCleanup.sh -n 3 keeps 3 snapshots:\n%s", out)
	for i := range after {
		require.Equal(t, before[i].Path, after[i].Path, "the newest are kept")
	}

	addr, stop = startServerCfg(t, cfg)
	defer stop()
	c = connect(t, addr)
	children, _, err := c.Children("/")
	require.NoError(t, err)
	require.Len(t, children, n+1, "every znode and /zookeeper after zkCleanup.sh")
}
