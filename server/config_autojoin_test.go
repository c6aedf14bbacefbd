package server

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAutoJoinKeys: with zabkeeper.autojoin on, a server whose id zoo.cfg
// does not list loads (the ensemble decides its members) but cannot run
// until UseEnsembleConfig names it; the keys read from the environment.
func TestAutoJoinKeys(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	require.NoError(t, os.MkdirAll(data, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(data, "myid"), []byte("4\n"), 0o644))
	members := "server.1=zk-0:2888:3888\nserver.2=zk-1:2888:3888;2182\nserver.3=zk-2:2888:3888\n"
	write := func(extra string) string {
		path := filepath.Join(dir, "zoo.cfg")
		require.NoError(t, os.WriteFile(path, []byte("dataDir="+data+"\n"+members+extra), 0o644))
		return path
	}
	_, err := LoadConfig(write(""), nil)
	require.ErrorContains(t, err, "my id 4 not in the peer list")

	t.Setenv("ZABKEEPER_AUTOJOIN", "true")
	t.Setenv("ZABKEEPER_AUTOJOIN_DIGEST", "super:pw")
	c, err := LoadConfig(write("zabkeeper.autojoin=${ZABKEEPER_AUTOJOIN:-false}\n"+
		"zabkeeper.autojoin.server=zk-3:2888:3888;2181\nzabkeeper.autojoin.digest=${ZABKEEPER_AUTOJOIN_DIGEST}\n"), nil)
	require.NoError(t, err)
	require.True(t, c.AutoJoin.Enabled)
	require.Equal(t, "super:pw", c.AutoJoin.Digest)
	require.Equal(t, []string{"zk-0:2181", "zk-1:2182", "zk-2:2181"}, c.AutoJoinSeeds())
	self, err := c.AutoJoinSelf()
	require.NoError(t, err)
	require.Equal(t, ServerSpec{ID: 4, Host: "zk-3", QuorumPort: 2888, ElectionPort: 3888, ClientPort: 2181}, self)
	require.ErrorContains(t, c.Validate(), "my id 4 not in the peer list", "NewContext must refuse to run outside the members")

	require.ErrorContains(t, c.UseEnsembleConfig("server.1=zk-0:2888:3888:participant;0.0.0.0:2181\nversion=100000000"), "my id 4 not in the peer list")
	require.NoError(t, c.UseEnsembleConfig("server.1=zk-0:2888:3888:participant;0.0.0.0:2181\n"+
		"server.4=zk-3:2888:3888:observer;0.0.0.0:2185\nversion=10000000a\n"))
	require.Len(t, c.Servers, 2)
	require.True(t, c.Servers[4].Observer)
	require.Equal(t, int64(0x10000000a), c.Dynamic.Version)
	require.Equal(t, 2185, c.ClientPort)
	require.NoError(t, c.Validate())

	for _, bad := range []string{
		"zabkeeper.autojoin=maybe\n",
		"zabkeeper.autojoin.server=zk-3\n",
		"zabkeeper.autojoin.seeds=zk-0\n",
		"zabkeeper.autojoin.digest=nocolon\n",
		"zabkeeper.autojoin.sedes=zk-0:2181\n",
	} {
		_, err := LoadConfig(write("zabkeeper.autojoin=true\n"+bad), nil)
		require.Error(t, err, bad)
	}
}
