package recipes_test

import (
	"testing"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/internal/testserver"
	"github.com/zabkeeper/zabkeeper/recipes"
)

// TestNewClient wraps a go-zk connection the caller opened: the recipes
// work on it, and closing the Client ends every ownership at once.
func TestNewClient(t *testing.T) {
	addr := testserver.Start(t, testserver.Config(t, tickMs)).Addr
	conn, events, err := zk.Connect([]string{addr}, sessionTimeout, zk.WithLogger(testserver.NewLogWriter(t)))
	require.NoError(t, err)
	c := recipes.NewClient(conn, events)
	t.Cleanup(c.Close)
	waitFor(t, "a session", c.Connected)
	m, err := recipes.NewMutex(c, uniquePath("newclient"), nil)
	require.NoError(t, err)
	held, err := m.Acquire(ctxT(t))
	require.NoError(t, err)
	requireLive(t, held, "lock")
	l, err := recipes.NewLeaderLatch(c, uniquePath("newclient-latch"), "x")
	require.NoError(t, err)
	term, err := l.Await(ctxT(t))
	require.NoError(t, err)

	c.Close()
	requireDone(t, held, recipes.ErrOwnershipLost, "lock after Client.Close")
	requireDone(t, term, recipes.ErrOwnershipLost, "term after Client.Close")
	require.False(t, c.Connected())
	_, err = m.Acquire(ctxT(t))
	require.ErrorIs(t, err, recipes.ErrClosed)
	require.NoError(t, l.Close())
}

func TestInvalidPaths(t *testing.T) {
	for _, p := range []string{"", "relative", "/trailing/", "/double//slash"} {
		_, err := recipes.NewMutex(nil, p, nil)
		require.Error(t, err, "path %q", p)
		_, err = recipes.NewValue[int](nil, p, nil)
		require.Error(t, err, "path %q", p)
	}
	_, err := recipes.NewSemaphore(nil, "/s", 0, nil)
	require.Error(t, err)
	_, err = recipes.NewDoubleBarrier(nil, "/d", 0)
	require.Error(t, err)
}
