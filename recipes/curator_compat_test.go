package recipes_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/internal/testserver"
	"github.com/zabkeeper/zabkeeper/recipes"
)

// TestCurator runs Go recipes beside Apache Curator's (one JVM for the
// whole test, against one zabkeeper server): the znode names, ordering and
// formats must agree for them to cooperate.
func TestCurator(t *testing.T) {
	requireCurator(t)
	addr := testserver.Start(t, testserver.Config(t, tickMs)).Addr
	java := startCurator(t, addr)
	t.Run("mutex", func(t *testing.T) { curatorMutex(t, addr, java.in(t)) })
}

// curatorMutex runs a Go Mutex and Curator's InterProcessMutex on one path:
// each waits while the other holds the lock, and the waiter gets it as soon
// as the holder releases.
func curatorMutex(t *testing.T, addr string, java *curator) {
	c := connect(t, addr, sessionTimeout)
	path := uniquePath("curator-mutex")
	m, err := recipes.NewMutex(c, path, nil)
	require.NoError(t, err)
	participants := func() []string {
		p, err := m.Participants(ctxT(t))
		require.NoError(t, err)
		return p
	}

	// Go holds; Curator queues behind it and does not get the lock.
	held, err := m.Acquire(ctxT(t))
	require.NoError(t, err)
	java.send("lock " + path)
	waitFor(t, "Curator's znode queued behind Go's", func() bool { return len(participants()) == 2 })
	p := participants()
	require.True(t, strings.HasPrefix(p[0], "_c_") && strings.Contains(p[0], "-lock-"), "Go's znode %q", p[0])
	require.False(t, java.said("locked "+path), "Curator got the lock while Go holds it")
	requireLive(t, held, "Go's lock")
	require.NoError(t, m.Release())
	java.expect("locked " + path)

	// Curator holds; Go queues behind it.
	acquired := make(chan error, 1)
	go func() { _, err := m.Acquire(ctxT(t)); acquired <- err }()
	waitFor(t, "Go's znode queued behind Curator's", func() bool { return len(participants()) == 2 })
	select {
	case err := <-acquired:
		t.Fatalf("Go got the lock while Curator holds it (err %v)", err)
	default:
	}
	java.send("unlock " + path)
	java.expect("unlocked " + path)
	require.NoError(t, <-acquired)
	require.True(t, m.Held())
	require.NoError(t, m.Release())
}
