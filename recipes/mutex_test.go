package recipes_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/internal/testserver"
	"github.com/zabkeeper/zabkeeper/internal/zkreal"
	"github.com/zabkeeper/zabkeeper/netstub"
	"github.com/zabkeeper/zabkeeper/recipes"
)

func TestMutex(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		c1, c2 := connect(t, addr, sessionTimeout), connect(t, addr, sessionTimeout)
		path := uniquePath("mutex")
		a, err := recipes.NewMutex(c1, path, []byte("a"))
		require.NoError(t, err)
		b, err := recipes.NewMutex(c2, path, nil)
		require.NoError(t, err)

		held, err := a.Acquire(ctxT(t))
		require.NoError(t, err)
		again, err := a.Acquire(ctxT(t))
		require.NoError(t, err, "reentrant acquire")
		require.Equal(t, held, again, "a reentrant Acquire returns the same ownership context")

		// b queues behind a: its znode is second, and it does not get the lock.
		bctx, bcancel := context.WithCancel(context.Background())
		bDone := make(chan error, 1)
		go func() { _, err := b.Acquire(bctx); bDone <- err }()
		waitFor(t, "b's znode queued", func() bool {
			p, err := a.Participants(ctxT(t))
			return err == nil && len(p) == 2
		})
		require.NoError(t, a.Release(), "first release of two")
		requireLive(t, held, "a after one of two releases")
		p, err := a.Participants(ctxT(t))
		require.NoError(t, err)
		require.Len(t, p, 2, "a still holds after one of two releases")
		require.False(t, b.Held())

		// Cancelling b's wait removes its znode.
		bcancel()
		require.ErrorIs(t, <-bDone, context.Canceled)
		waitFor(t, "b's znode gone", func() bool {
			p, err := a.Participants(ctxT(t))
			return err == nil && len(p) == 1
		})

		go func() { _, err := b.Acquire(ctxT(t)); bDone <- err }()
		waitFor(t, "b queued again", func() bool {
			p, err := a.Participants(ctxT(t))
			return err == nil && len(p) == 2
		})
		require.NoError(t, a.Release())
		requireDone(t, held, recipes.ErrReleased, "a after its last release")
		require.NoError(t, <-bDone, "b gets the lock once a releases")
		require.True(t, b.Held())
		require.ErrorIs(t, a.Release(), recipes.ErrNotHeld)
		require.NoError(t, b.Release())
	})
}

// TestMutexExclusion runs many owners on a few clients against each other
// and checks that no two are ever inside at once, and that waiters are
// served in the order they queued.
func TestMutexExclusion(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		clients := []*recipes.Client{connect(t, addr, sessionTimeout), connect(t, addr, sessionTimeout)}
		path := uniquePath("exclusion")
		const owners, rounds = 6, 5
		var (
			mu     sync.Mutex
			inside int
			total  int
			wg     sync.WaitGroup
			errs   = make(chan error, owners)
		)
		for i := 0; i < owners; i++ {
			m, err := recipes.NewMutex(clients[i%len(clients)], path, nil)
			require.NoError(t, err)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := 0; r < rounds; r++ {
					held, err := m.Acquire(ctxT(t))
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					inside++
					if inside != 1 {
						errs <- errors.New("two owners inside the lock")
					}
					mu.Unlock()
					if held.Err() != nil {
						errs <- context.Cause(held)
					}
					mu.Lock()
					inside--
					total++
					mu.Unlock()
					if err := m.Release(); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.Equal(t, owners*rounds, total)
	})
}

// TestMutexSessionLoss cuts a lock holder off the server: its ownership
// context is cancelled before anyone else can hold the lock, the lock passes
// on once the session expires, and the old holder can take it again after.
func TestMutexSessionLoss(t *testing.T) {
	t.Parallel() // waits for session expiry, mostly idle
	eachServer(t, mutexSessionLoss)
}

// TestMutexSessionLossDefaultTick is TestMutexSessionLoss on servers with
// the default tickTime of 2000 ms, as users run them: the client's 1.5 s
// session is negotiated up to the 4 s minimum.
func TestMutexSessionLossDefaultTick(t *testing.T) {
	t.Parallel() // waits for session expiry, mostly idle
	t.Run("zabkeeper", func(t *testing.T) {
		mutexSessionLoss(t, testserver.Start(t, testserver.Config(t, 0)).Addr)
	})
	t.Run("zookeeper", func(t *testing.T) {
		mutexSessionLoss(t, zkreal.Start(t, zkreal.Options{DataDir: t.TempDir(), Config: map[string]string{"maxSessionTimeout": "40000"}}).Addr)
	})
}

func mutexSessionLoss(t *testing.T, addr string) {
	holder := connectProxied(t, addr)
	other := connect(t, addr, sessionTimeout)
	path := uniquePath("loss")
	a, err := recipes.NewMutex(holder.Client, path, nil)
	require.NoError(t, err)
	b, err := recipes.NewMutex(other, path, nil)
	require.NoError(t, err)
	held, err := a.Acquire(ctxT(t))
	require.NoError(t, err)

	// A silent partition: bytes stop both ways, no connection closes.
	holder.proxy.CutOneWay(netstub.ToTarget)
	holder.proxy.CutOneWay(netstub.FromTarget)
	_, err = b.Acquire(ctxT(t))
	require.NoError(t, err, "b gets the lock once a's session expires")
	// By the time b holds the lock, a must already have been told.
	select {
	case <-held.Done():
	default:
		t.Fatal("double ownership: b holds the lock while a's ownership context is live")
	}
	require.ErrorIs(t, context.Cause(held), recipes.ErrOwnershipLost)
	require.False(t, a.Held())

	holder.proxy.Restore()
	waitFor(t, "the holder's new session", holder.Connected)
	require.NoError(t, a.Release(), "release after loss still counts down")
	require.NoError(t, b.Release())
	held2, err := a.Acquire(ctxT(t))
	require.NoError(t, err, "a takes the lock again in its new session")
	requireLive(t, held2, "a's new ownership")
	require.NoError(t, a.Release())
}

// TestMutexLostCreateReply loses the reply to the create of the participant
// znode: the create went through, the connection drops before the client
// hears of it. The protected name (_c_<uuid>-) lets Acquire find its znode
// again in the same session instead of creating a second one that would
// wait behind the first forever.
func TestMutexLostCreateReply(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		pc := connectProxiedTimeout(t, addr, sessionTimeout)
		observer := connect(t, addr, sessionTimeout)
		path := uniquePath("lost-reply")
		m, err := recipes.NewMutex(pc.Client, path, nil)
		require.NoError(t, err)
		watch, err := recipes.NewMutex(observer, path, nil)
		require.NoError(t, err)
		participants := func() []string {
			p, err := watch.Participants(ctxT(t))
			require.NoError(t, err)
			return p
		}

		// The lock's parent exists, so the held create is the only request.
		_, err = observer.Conn().Create("/recipes-test", nil, 0, zk.WorldACL(zk.PermAll))
		if !errors.Is(err, zk.ErrNodeExists) {
			require.NoError(t, err)
		}
		_, err = observer.Conn().Create(path, nil, 0, zk.WorldACL(zk.PermAll))
		require.NoError(t, err)

		pc.proxy.CutOneWay(netstub.FromTarget) // requests arrive, replies are held
		session := pc.Conn().SessionID()
		done := make(chan error, 1)
		go func() { _, err := m.Acquire(ctxT(t)); done <- err }()
		waitFor(t, "the participant znode created", func() bool { return len(participants()) == 1 })
		pc.proxy.Cut() // the reply is lost with the connection
		pc.proxy.Restore()
		require.NoError(t, <-done)
		require.Equal(t, session, pc.Conn().SessionID(), "the session survived")
		require.Len(t, participants(), 1, "no second participant znode")
		require.NoError(t, m.Release())
		waitFor(t, "the znode released", func() bool { return len(participants()) == 0 })
	})
}
