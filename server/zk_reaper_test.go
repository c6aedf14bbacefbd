package server_test

import (
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/server"
)

// TestContainerAndTTLReaping: a container goes once its last child is
// deleted, a never-used container stays, and a TTL node goes once it has
// been unchanged for longer than its TTL — each by a txn, so watchers hear
// NodeDeleted as for any delete.
func TestContainerAndTTLReaping(t *testing.T) {
	addr, _ := startServer(t, func(c *server.Config) { c.ContainerCheckInterval = c.TickTime })
	c := connect(t, addr)
	acl := zk.WorldACL(zk.PermAll)

	_, err := c.CreateContainer("/used", nil, zk.FlagContainer, acl)
	require.NoError(t, err)
	_, err = c.CreateContainer("/unused", nil, zk.FlagContainer, acl)
	require.NoError(t, err)
	mustCreate(t, c, "/used/child", nil, 0)
	_, err = c.CreateTTL("/ttl", []byte("x"), zk.FlagTTL, acl, 300*time.Millisecond)
	require.NoError(t, err)

	_, _, usedEvents, err := c.ExistsW("/used")
	require.NoError(t, err)
	require.NoError(t, c.Delete("/used/child", -1))
	ev := recvEvent(t, usedEvents, "container /used deleted once empty")
	require.Equal(t, zk.EventNodeDeleted, ev.Type)

	waitFor(t, "TTL node /ttl deleted after its TTL", func() bool {
		ok, _, err := c.Exists("/ttl")
		require.NoError(t, err)
		return !ok
	})
	ok, _, err := c.Exists("/unused")
	require.NoError(t, err)
	require.True(t, ok, "a container that never had a child is kept, as in ZooKeeper 3.9")
}
