package recipes_test

import (
	"context"
	"encoding/json"
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
	t.Parallel() // mostly waits for a JVM
	requireCurator(t)
	addr := testserver.Start(t, testserver.Config(t, tickMs)).Addr
	java := startCurator(t, addr)
	t.Run("mutex", func(t *testing.T) { curatorMutex(t, addr, java.in(t)) })
	t.Run("latch", func(t *testing.T) { curatorLatch(t, addr, java.in(t)) })
	t.Run("selector", func(t *testing.T) { curatorSelector(t, addr, java.in(t)) })
	t.Run("discovery", func(t *testing.T) { curatorDiscovery(t, addr, java.in(t)) })
	t.Run("rwlock", func(t *testing.T) { curatorRWLock(t, addr, java.in(t)) })
	t.Run("semaphore", func(t *testing.T) { curatorSemaphore(t, addr, java.in(t)) })
	t.Run("counter", func(t *testing.T) { curatorCounter(t, addr, java.in(t)) })
}

// curatorRWLock: a Go writer holds Curator's reader back and the reverse;
// Go and Curator readers share.
func curatorRWLock(t *testing.T, addr string, java *curator) {
	path := uniquePath("curator-rw")
	rw, err := recipes.NewRWMutex(connect(t, addr, sessionTimeout), path, nil)
	require.NoError(t, err)
	count := func() int {
		p, err := rw.WriteLock().Participants(ctxT(t))
		require.NoError(t, err)
		return len(p)
	}
	_, err = rw.WriteLock().Acquire(ctxT(t))
	require.NoError(t, err)
	java.send("rlock " + path)
	waitFor(t, "Curator's reader queued", func() bool { return count() == 2 })
	require.False(t, java.said("rlocked "+path), "Curator reads while Go writes")
	require.NoError(t, rw.WriteLock().Release())
	java.expect("rlocked " + path)

	_, err = rw.ReadLock().Acquire(ctxT(t))
	require.NoError(t, err, "Go and Curator readers share")
	require.NoError(t, rw.ReadLock().Release())

	got := make(chan error, 1)
	go func() { _, err := rw.WriteLock().Acquire(ctxT(t)); got <- err }()
	waitFor(t, "Go's writer queued", func() bool { return count() == 2 })
	select {
	case err := <-got:
		t.Fatalf("Go writes while Curator reads (err %v)", err)
	default:
	}
	java.send("runlock " + path)
	java.expect("runlocked " + path)
	require.NoError(t, <-got)
	require.NoError(t, rw.WriteLock().Release())
}

// curatorSemaphore: Go and Curator share one semaphore of two leases.
func curatorSemaphore(t *testing.T, addr string, java *curator) {
	path := uniquePath("curator-sem")
	sem, err := recipes.NewSemaphore(connect(t, addr, sessionTimeout), path, 2, nil)
	require.NoError(t, err)
	l1, err := sem.Acquire(ctxT(t))
	require.NoError(t, err)
	l2, err := sem.Acquire(ctxT(t))
	require.NoError(t, err)
	java.send("lease " + path + " 2")
	waitFor(t, "Curator's lease waiting", func() bool {
		l, err := sem.Leases(ctxT(t))
		return err == nil && len(l) == 3
	})
	require.False(t, java.said("leased "+path), "three leases of two")
	l1.Release()
	java.expect("leased " + path)

	got := make(chan error, 1)
	go func() {
		l, err := sem.Acquire(ctxT(t))
		if err == nil {
			defer l.Release()
		}
		got <- err
	}()
	waitFor(t, "Go's lease waiting", func() bool {
		l, err := sem.Leases(ctxT(t))
		return err == nil && len(l) == 3
	})
	select {
	case err := <-got:
		t.Fatalf("Go got a third lease of two (err %v)", err)
	default:
	}
	java.send("unlease " + path)
	java.expect("unleased " + path)
	require.NoError(t, <-got)
	l2.Release()
}

// curatorCounter: Go's AtomicLong and Curator's DistributedAtomicLong count
// on one znode.
func curatorCounter(t *testing.T, addr string, java *curator) {
	path := uniquePath("curator-counter")
	a, err := recipes.NewAtomicLong(connect(t, addr, sessionTimeout), path)
	require.NoError(t, err)
	_, _, err = a.Add(ctxT(t), 41)
	require.NoError(t, err)
	java.send("increment " + path)
	java.expect("counter " + path + " 42")
	v, err := a.Increment(ctxT(t))
	require.NoError(t, err)
	require.Equal(t, int64(43), v)
}

// curatorSelector runs Go's TakeTurns and Curator's LeaderSelector on one
// path: they take turns, never both leading.
func curatorSelector(t *testing.T, addr string, java *curator) {
	path := uniquePath("curator-selector")
	observer, err := recipes.NewMutex(connect(t, addr, sessionTimeout), path, nil)
	require.NoError(t, err)
	queued := func(n int) func() bool {
		return func() bool {
			p, err := observer.Participants(ctxT(t))
			return err == nil && len(p) == n
		}
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	leading, stop := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- recipes.TakeTurns(ctx, connect(t, addr, sessionTimeout), path, "go-1", func(lctx context.Context) error {
			select {
			case leading <- struct{}{}:
			case <-lctx.Done():
				return nil
			}
			select {
			case <-stop:
			case <-lctx.Done():
			}
			return nil
		})
	}()
	<-leading
	java.send("select " + path + " java-1")
	waitFor(t, "Curator's selector queued behind Go", queued(2))
	require.False(t, java.said("selected java-1"), "Curator leads beside Go")
	stop <- struct{}{} // Go's turn ends; it queues again behind Curator
	java.expect("selected java-1")
	waitFor(t, "Go queued behind Curator", queued(2))
	select {
	case <-leading:
		t.Fatal("Go leads beside Curator")
	default:
	}
	java.send("unselect " + path)
	java.expect("deselected java-1")
	<-leading // Go's next turn
	cancel()
	require.NoError(t, <-done)
}

// curatorDiscovery registers instances from Go and from Curator under one
// base path: each side lists the other's with every field intact.
func curatorDiscovery(t *testing.T, addr string, java *curator) {
	c := connect(t, addr, sessionTimeout)
	base := uniquePath("curator-services")
	d, err := recipes.NewDiscovery(c, base)
	require.NoError(t, err)
	defer d.Close()
	cache := d.NewCache("web")
	defer cache.Close()

	in := recipes.NewInstance("web", "10.0.0.7", 8080)
	in.ID = "go-1"
	in.URISpec, err = recipes.ParseURISpec("{scheme}://{address}:{port}")
	require.NoError(t, err)
	require.NoError(t, d.Register(ctxT(t), in))
	require.Equal(t, []string{"instance go-1 10.0.0.7 8080 true DYNAMIC http://10.0.0.7:8080"},
		java.collect("query "+base+" web"), "Curator reads Go's instance")

	java.send("register " + base + " web java-1 10.0.0.8 9090")
	java.expect("registered java-1")
	waitFor(t, "Curator's instance in Go's cache", func() bool { return len(cache.Instances()) == 2 })
	got, err := d.Instance(ctxT(t), "web", "java-1")
	require.NoError(t, err)
	require.Equal(t, "web", got.Name)
	require.Equal(t, "10.0.0.8", got.Address)
	require.Equal(t, 9090, *got.Port)
	require.Nil(t, got.SSLPort)
	require.True(t, got.Enabled)
	require.Equal(t, recipes.Dynamic, got.ServiceType)
	require.Equal(t, "http://10.0.0.8:9090", got.URI())
	require.NotZero(t, got.RegistrationTimeUTC)

	// Curator's default serializer (compatible mode) leaves "enabled" out,
	// which means enabled; otherwise Go writes the same document back.
	raw, _, err := c.Conn().Get(base + "/web/java-1")
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(raw, &doc))
	require.NotContains(t, doc, "enabled")
	doc["enabled"] = true
	want, err := json.Marshal(doc)
	require.NoError(t, err)
	again, err := json.Marshal(got)
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(again))

	rr := recipes.NewProvider(cache, nil)
	seen := map[string]bool{}
	for i := 0; i < 2; i++ {
		inst, err := rr.Instance()
		require.NoError(t, err)
		seen[inst.ID] = true
	}
	require.Equal(t, map[string]bool{"go-1": true, "java-1": true}, seen)

	java.send("unregister java-1")
	java.expect("unregistered java-1")
	waitFor(t, "Curator's instance gone from Go's cache", func() bool { return len(cache.Instances()) == 1 })
	require.NoError(t, d.Unregister(ctxT(t), in))
	require.Empty(t, java.collect("query "+base+" web"))
}

// curatorLatch runs a Go LeaderLatch and Curator's LeaderLatch in one
// election: one leader at a time, leadership passes both ways, and each
// sees the other's id.
func curatorLatch(t *testing.T, addr string, java *curator) {
	c := connect(t, addr, sessionTimeout)
	path := uniquePath("curator-latch")
	g, err := recipes.NewLeaderLatch(c, path, "go-1")
	require.NoError(t, err)
	defer g.Close()
	term, err := g.Await(ctxT(t))
	require.NoError(t, err)

	java.send("latch " + path + " java-1")
	waitFor(t, "Curator's participant behind Go's", func() bool {
		p, err := g.Participants(ctxT(t))
		return err == nil && len(p) == 2
	})
	p, err := g.Participants(ctxT(t))
	require.NoError(t, err)
	require.Equal(t, "go-1", p[0].ID)
	require.Equal(t, "java-1", p[1].ID)
	require.True(t, strings.HasPrefix(p[1].Node, "_c_") && strings.Contains(p[1].Node, "-latch-"), "Curator's znode %q", p[1].Node)
	require.False(t, java.said("leader java-1"), "Curator leads while Go does")

	require.NoError(t, g.Close())
	requireDone(t, term, recipes.ErrReleased, "Go's term after Close")
	java.expect("leader java-1")

	// Go joins behind Curator and leads only once Curator leaves.
	g2, err := recipes.NewLeaderLatch(c, path, "go-2")
	require.NoError(t, err)
	defer g2.Close()
	waitFor(t, "Go's participant behind Curator's", func() bool {
		p, err := g2.Participants(ctxT(t))
		return err == nil && len(p) == 2 && p[1].ID == "go-2"
	})
	require.False(t, g2.IsLeader(), "Go leads while Curator does")
	java.send("unlatch " + path)
	java.expect("unlatched " + path)
	_, err = g2.Await(ctxT(t))
	require.NoError(t, err, "Go leads after Curator leaves")
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
