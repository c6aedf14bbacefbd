package server

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPeerProtocolConfig(t *testing.T) {
	c, err := ParseConfig(strings.NewReader("tickTime=2000\n"), nil)
	require.NoError(t, err)
	require.Equal(t, PeerProtocolZooKeeper, c.PeerProtocol, "the default")
	for _, text := range []string{"zabkeeper.peerProtocol=zookeeper\n", "peerProtocol=ZooKeeper\n"} {
		c, err := ParseConfig(strings.NewReader(text), nil)
		require.NoError(t, err)
		require.Equal(t, PeerProtocolZooKeeper, c.PeerProtocol, text)
	}
	_, err = ParseConfig(strings.NewReader("tickTime=2000\nzabkeeper.peerProtocol=zab\n"), nil)
	var ce *ConfigError
	require.True(t, errors.As(err, &ce), "%v", err)
	require.Equal(t, "zabkeeper.peerProtocol", ce.Key)
	require.Equal(t, 2, ce.Line)
	require.Contains(t, err.Error(), `"zab" is not a peer protocol (want zookeeper)`)
	// zabkeeper's former one-port protocol is gone: the error says what
	// to do.
	_, err = ParseConfig(strings.NewReader("tickTime=2000\nzabkeeper.peerProtocol=zabkeeper\n"), nil)
	require.True(t, errors.As(err, &ce), "%v", err)
	require.Equal(t, "zabkeeper.peerProtocol", ce.Key)
	require.Contains(t, err.Error(), errPeerProtocolRemoved.Error())
	require.Contains(t, err.Error(), "remove the key")

	c = DefaultConfig()
	c.DataDir, c.DataLogDir = t.TempDir(), t.TempDir()
	c.PeerProtocol = "raft"
	err = c.Validate()
	require.True(t, errors.As(err, &ce), "%v", err)
	require.Equal(t, "zabkeeper.peerProtocol", ce.Key)
}

func TestZooKeeperConfigString(t *testing.T) {
	c, err := ParseConfig(strings.NewReader("server.2=10.0.0.2:2888:3888;2181\nserver.1=zk1:2888:3888\nserver.3=zk3:2888:3888:observer\n"), nil)
	require.NoError(t, err)
	require.Equal(t, "server.1=zk1:2888:3888:participant\n"+
		"server.2=10.0.0.2:2888:3888:participant;0.0.0.0:2181\n"+
		"server.3=zk3:2888:3888:observer\n"+
		"version=0", c.quorumConfigString())
}
