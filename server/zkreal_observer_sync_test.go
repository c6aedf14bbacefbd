package server_test

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/internal/zkreal"
)

// TestMixedZooKeeperObserverSyncsDuringWrites: an Apache ZooKeeper 3.8
// observer joins a zabkeeper leader while clients keep writing, so
// proposals are outstanding when the leader syncs it. The leader sends an
// observer committed txns only (ZooKeeper's startForwarding): a ZooKeeper
// observer given an outstanding proposal during sync logs "Committing …,
// but next proposal is …" and drops it, or fails when no commit is left
// to match. The observer ends with every write, once.
func TestMixedZooKeeperObserverSyncsDuringWrites(t *testing.T) {
	e := newMixedEnsemble(t, 3)
	spec := e.servers[2]
	spec.Observer = true
	e.servers[2] = spec
	ours := e.startZabkeeper(t, 3)
	z1 := e.startZooKeeper(t, 1)
	pollUntil(t, "zabkeeper leads ZooKeeper 1", func() bool {
		return mode(t, ours.addr) == "leader" && zkMode(z1) == "follower"
	})
	oc := connectMixed(t, ours.addr)
	mustCreate(t, oc, "/w", nil, 0)

	// Writers keep proposals in flight until the observer has synced and
	// a while after.
	var (
		stop    atomic.Bool
		created atomic.Int64
		wg      sync.WaitGroup
		errs    = make(chan error, 4)
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				if _, err := oc.Create(fmt.Sprintf("/w/%d-%d", w, i), []byte("x"), 0, zk.WorldACL(zk.PermAll)); err != nil {
					errs <- fmt.Errorf("writer %d create %d: %w", w, i, err)
					return
				}
				created.Add(1)
			}
		}()
	}
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()
	z2 := e.startZooKeeper(t, 2)
	pollUntil(t, "ZooKeeper 2 observes", func() bool { return zkMode(z2) == "observer" })
	atBoth := created.Load()
	pollUntil(t, "more writes after the observer synced", func() bool { return created.Load() > atBoth+50 })
	stop.Store(true)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	total := created.Load()
	mustCreate(t, oc, "/done", []byte("d"), 0)

	zc2 := connectMixed(t, z2.Addr)
	readEventually(t, zc2, "/done", []byte("d"))
	kids, _, err := zc2.Children("/w")
	require.NoError(t, err)
	require.Len(t, kids, int(total), "the observer holds every write")
	_, st, err := zc2.Get("/w")
	require.NoError(t, err)
	require.Equal(t, int32(total), st.NumChildren)
	for _, z := range []*zkreal.Server{z1, z2} {
		requireCleanZooKeeperLog(t, z, 0)
		for _, bad := range []string{"but next proposal is", "Exception when observing the leader", "Digests are not matching"} {
			require.False(t, strings.Contains(z.Log(), bad), "ZooKeeper's log says %q (its tail is logged)", bad)
		}
	}
	t.Logf("%d writes, %d of them before the observer served", total, atBoth)
}
