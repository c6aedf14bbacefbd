package recipes_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/netstub"
	"github.com/zabkeeper/zabkeeper/recipes"
)

func TestLeaderLatch(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		path := uniquePath("latch")
		var latches []*recipes.LeaderLatch
		for _, id := range []string{"a", "b", "c"} {
			l, err := recipes.NewLeaderLatch(connect(t, addr, sessionTimeout), path, id)
			require.NoError(t, err)
			t.Cleanup(func() { _ = l.Close() })
			latches = append(latches, l)
			if id == "a" {
				_, err := l.Await(ctxT(t))
				require.NoError(t, err, "the first participant leads")
			}
		}
		waitFor(t, "three participants", func() bool {
			p, err := latches[0].Participants(ctxT(t))
			return err == nil && len(p) == 3
		})
		p, err := latches[0].Participants(ctxT(t))
		require.NoError(t, err)
		require.Equal(t, []string{"a", "b", "c"}, []string{p[0].ID, p[1].ID, p[2].ID})
		require.True(t, p[0].Leader)

		// Leadership passes down the line, one at a time.
		for i, l := range latches {
			term, err := l.Await(ctxT(t))
			require.NoError(t, err)
			for j, other := range latches {
				if j != i {
					require.False(t, other.IsLeader(), "%s leads beside %s", other.ID(), l.ID())
				}
			}
			require.NoError(t, l.Close())
			requireDone(t, term, recipes.ErrReleased, l.ID()+"'s term after Close")
			_, err = l.Await(ctxT(t))
			require.ErrorIs(t, err, recipes.ErrClosed)
		}
	})
}

// TestLeaderLatchSessionLoss partitions the leader: its term ends before the
// other participant leads; when the partition heals with the session gone,
// it rejoins behind.
func TestLeaderLatchSessionLoss(t *testing.T) {
	t.Parallel() // waits for session expiry, mostly idle
	eachServer(t, func(t *testing.T, addr string) {
		path := uniquePath("latch-loss")
		pc := connectProxied(t, addr)
		a, err := recipes.NewLeaderLatch(pc.Client, path, "a")
		require.NoError(t, err)
		t.Cleanup(func() { _ = a.Close() })
		termA, err := a.Await(ctxT(t))
		require.NoError(t, err)
		b, err := recipes.NewLeaderLatch(connect(t, addr, sessionTimeout), path, "b")
		require.NoError(t, err)
		t.Cleanup(func() { _ = b.Close() })

		pc.proxy.CutOneWay(netstub.ToTarget)
		pc.proxy.CutOneWay(netstub.FromTarget)
		termB, err := b.Await(ctxT(t))
		require.NoError(t, err, "b leads once a's session expires")
		select {
		case <-termA.Done():
		default:
			t.Fatal("two leaders: b leads while a's term is live")
		}
		require.ErrorIs(t, context.Cause(termA), recipes.ErrOwnershipLost)

		pc.proxy.Restore()
		waitFor(t, "a back in the election behind b", func() bool {
			p, err := b.Participants(ctxT(t))
			return err == nil && len(p) == 2 && p[0].ID == "b" && p[1].ID == "a"
		})
		require.False(t, a.IsLeader())
		requireLive(t, termB, "b's term")
		require.NoError(t, b.Close())
		_, err = a.Await(ctxT(t))
		require.NoError(t, err, "a leads again after b leaves")
	})
}

// TestLeaderLatchSuspended drops the leader's connection without expiring
// its session: its term ends at once, and a new term starts when the
// connection is back, since it is still first.
func TestLeaderLatchSuspended(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		path := uniquePath("latch-suspend")
		// go-zk waits a second before it dials again: the session must
		// outlive that by far.
		pc := connectProxiedTimeout(t, addr, sessionTimeout)
		a, err := recipes.NewLeaderLatch(pc.Client, path, "a")
		require.NoError(t, err)
		t.Cleanup(func() { _ = a.Close() })
		term, err := a.Await(ctxT(t))
		require.NoError(t, err)
		session := pc.Conn().SessionID()

		pc.proxy.Cut()
		requireDone(t, term, recipes.ErrOwnershipLost, "term after the connection dropped")
		pc.proxy.Restore()
		term2, err := a.Await(ctxT(t))
		require.NoError(t, err)
		require.Equal(t, session, pc.Conn().SessionID(), "the session survived")
		requireLive(t, term2, "the new term")
	})
}

// TestTakeTurns runs three participants that lead in turn: never two at
// once, each lead ends when its function returns.
func TestTakeTurns(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		path := uniquePath("turns")
		ctx, cancel := context.WithCancel(ctxT(t))
		defer cancel()
		var inside, turns atomic.Int32
		var overlap atomic.Bool
		var wg sync.WaitGroup
		errs := make(chan error, 3)
		for _, id := range []string{"a", "b", "c"} {
			c := connect(t, addr, sessionTimeout)
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- recipes.TakeTurns(ctx, c, path, id, func(lctx context.Context) error {
					if inside.Add(1) != 1 {
						overlap.Store(true)
					}
					if errors.Is(context.Cause(lctx), recipes.ErrOwnershipLost) {
						overlap.Store(true) // nothing here loses a connection
					}
					inside.Add(-1)
					if turns.Add(1) >= 12 {
						cancel()
					}
					return nil
				})
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.False(t, overlap.Load(), "two leaders at once")
		require.GreaterOrEqual(t, turns.Load(), int32(12))
	})
}
