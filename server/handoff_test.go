package server_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/server"
)

// Stopping the leader of an ensemble with the default tickTime under write
// load: it hands leadership over before Serve returns, a follower leads,
// the client's session lives on and every acknowledged write is there.
func TestEnsembleLeaderStopHandsOver(t *testing.T) {
	ms := launchEnsemble(t, 3, func(c *server.Config) {
		c.TickTime, c.InitLimit, c.SyncLimit = server.DefaultTickTime, server.DefaultInitLimit, server.DefaultSyncLimit
		c.MinSessionTimeout, c.MaxSessionTimeout = 2*server.DefaultTickTime, 20*server.DefaultTickTime
	})
	// With tickTime 2000 a first election that needs another round takes
	// longer than waitServing's patience.
	awaitElection(t, ms, time.Minute)
	leader := waitServing(t, ms)
	addrs := make([]string, len(ms))
	for i, m := range ms {
		addrs[i] = m.addr
	}
	c, _, err := zk.Connect(addrs, clientSessionTimeout, zk.WithLogger(zkLogger{newTestLog(t)}))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	waitFor(t, "a session", func() bool { return c.State() == zk.StateHasSession })
	session := c.SessionID()

	var mu sync.Mutex
	var acked []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := fmt.Sprintf("/h%d-%d", w, i)
				if _, err := c.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err == nil {
					mu.Lock()
					acked = append(acked, p)
					mu.Unlock()
				}
			}
		})
	}
	waitFor(t, "some writes", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 20
	})
	leader.stop(t)
	require.True(t, leader.srv.LeadershipHandedOver(), "the leader stopped without handing over")
	awaitElection(t, ms, time.Minute)
	next := waitServing(t, ms)
	require.NotEqual(t, leader.id, next.id)
	tries := 0
	waitFor(t, "a write through the new leader", func() bool {
		tries++
		_, err := c.Create(fmt.Sprintf("/after-%d", tries), nil, 0, zk.WorldACL(zk.PermAll))
		return err == nil
	})
	close(stop)
	wg.Wait()
	require.Equal(t, session, c.SessionID(), "the session survived the handoff")
	_, err = c.Sync("/")
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	for _, p := range acked {
		ok, _, err := c.Exists(p)
		require.NoError(t, err)
		require.True(t, ok, "acknowledged %s lost", p)
	}
}

// awaitElection waits up to d until the running members have one leader and
// the others follow it.
func awaitElection(t *testing.T, ms []*member, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		leaders, others := 0, 0
		for _, m := range ms {
			if m.cancel == nil {
				continue
			}
			switch mode(t, m.addr) {
			case "leader":
				leaders++
			case "follower", "observer":
				others++
			}
		}
		running := 0
		for _, m := range ms {
			if m.cancel != nil {
				running++
			}
		}
		if leaders == 1 && leaders+others == running {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no leader with every running server following within %v", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
