package recipes_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/netstub"
	"github.com/zabkeeper/zabkeeper/recipes"
)

func TestRWMutex(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		path := uniquePath("rw")
		newRW := func() *recipes.RWMutex {
			rw, err := recipes.NewRWMutex(connect(t, addr, sessionTimeout), path, nil)
			require.NoError(t, err)
			return rw
		}
		r1, r2, w := newRW(), newRW(), newRW()
		count := func() int {
			p, err := w.WriteLock().Participants(ctxT(t))
			require.NoError(t, err)
			return len(p)
		}

		// Readers share.
		_, err := r1.ReadLock().Acquire(ctxT(t))
		require.NoError(t, err)
		_, err = r2.ReadLock().Acquire(ctxT(t))
		require.NoError(t, err)

		// A writer waits for both readers.
		wDone := make(chan error, 1)
		go func() { _, err := w.WriteLock().Acquire(ctxT(t)); wDone <- err }()
		waitFor(t, "the writer queued", func() bool { return count() == 3 })
		require.NoError(t, r1.ReadLock().Release())
		waitFor(t, "r1 gone", func() bool { return count() == 2 })
		require.False(t, w.WriteLock().Held(), "writer beside a reader")

		// A reader that comes after a queued writer waits for it.
		r3 := newRW()
		rctx, rcancel := context.WithCancel(ctxT(t))
		r3Done := make(chan error, 1)
		go func() { _, err := r3.ReadLock().Acquire(rctx); r3Done <- err }()
		waitFor(t, "r3 queued", func() bool { return count() == 3 })
		require.NoError(t, r2.ReadLock().Release())
		require.NoError(t, <-wDone, "the writer gets the lock after the readers")
		require.False(t, r3.ReadLock().Held(), "a reader beside the writer")

		// Downgrade: the writer reads inside its write lock, then lets go of it.
		_, err = w.ReadLock().Acquire(ctxT(t))
		require.NoError(t, err, "read inside write")
		require.NoError(t, w.WriteLock().Release())
		require.NoError(t, <-r3Done, "r3 shares with the downgraded writer")
		rcancel()
		require.True(t, w.ReadLock().Held())
		require.NoError(t, w.ReadLock().Release())
		require.NoError(t, r3.ReadLock().Release())
	})
}

func TestSemaphore(t *testing.T) {
	t.Parallel() // waits for session expiry, mostly idle
	eachServer(t, func(t *testing.T, addr string) {
		path := uniquePath("sem")
		newSem := func(c *recipes.Client) *recipes.Semaphore {
			s, err := recipes.NewSemaphore(c, path, 2, nil)
			require.NoError(t, err)
			return s
		}
		pc := connectProxied(t, addr)
		s1, s2 := newSem(pc.Client), newSem(connect(t, addr, sessionTimeout))
		l1, err := s1.Acquire(ctxT(t))
		require.NoError(t, err)
		l2, err := s2.Acquire(ctxT(t))
		require.NoError(t, err)

		s3 := newSem(connect(t, addr, sessionTimeout))
		got := make(chan *recipes.Lease, 1)
		go func() {
			l, err := s3.Acquire(ctxT(t))
			if err != nil {
				t.Error(err)
			}
			got <- l
		}()
		waitFor(t, "a third lease znode waiting", func() bool {
			l, err := s1.Leases(ctxT(t))
			return err == nil && len(l) == 3
		})
		select {
		case <-got:
			t.Fatal("three leases on a semaphore of two")
		default:
		}
		l2.Release()
		requireDone(t, l2.Context(), recipes.ErrReleased, "released lease")
		l3 := <-got
		requireLive(t, l3.Context(), "third lease")

		// The holder of l1 is partitioned: its lease context ends before a
		// fourth participant can get a lease.
		pc.proxy.CutOneWay(netstub.ToTarget)
		pc.proxy.CutOneWay(netstub.FromTarget)
		l4, err := newSem(connect(t, addr, sessionTimeout)).Acquire(ctxT(t))
		require.NoError(t, err, "a lease frees up when l1's session expires")
		select {
		case <-l1.Context().Done():
		default:
			t.Fatal("three live leases: l1's context is live while l4 was granted")
		}
		l3.Release()
		l4.Release()
	})
}
