package benchcompare

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A stopped cluster's directory (data, zoo.cfg, server log) goes with it
// unless KeepData, which --keep-data sets so a failed round can be read.
func TestDoneKeepsDataOnlyWhenAsked(t *testing.T) {
	for _, keep := range []bool{false, true} {
		work := t.TempDir()
		cfg := DefaultConfig()
		cfg.WorkDir = work
		cfg.KeepData = keep
		r := &runner{cfg: cfg}
		c, err := r.newCluster(Zabkeeper, 1, "test")
		require.NoError(t, err)
		require.NotEmpty(t, c.nodes)
		log := filepath.Join(c.nodes[0].dir, "server.log")
		require.NoError(t, os.WriteFile(log, []byte("the round's log\n"), 0o644))
		r.done(c)
		_, err = os.Stat(log)
		if keep {
			require.NoError(t, err, "KeepData: the log stays")
		} else {
			require.ErrorIs(t, err, os.ErrNotExist, "without KeepData the cluster's directory is deleted")
		}
	}
}
