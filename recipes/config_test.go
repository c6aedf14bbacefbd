package recipes_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/netstub"
	"github.com/zabkeeper/zabkeeper/recipes"
)

type settings struct {
	Limit int    `json:"limit"`
	Mode  string `json:"mode"`
}

func TestValue(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		c := connect(t, addr, sessionTimeout)
		path := uniquePath("config") + "/app"
		v, err := recipes.NewValue[settings](c, path, nil)
		require.NoError(t, err)

		cur, err := v.Get(ctxT(t))
		require.NoError(t, err)
		require.False(t, cur.Exists)
		first, err := v.Create(ctxT(t), settings{Limit: 1, Mode: "a"})
		require.NoError(t, err)
		require.Equal(t, settings{Limit: 1, Mode: "a"}, first.Value)
		_, err = v.Create(ctxT(t), settings{})
		require.ErrorIs(t, err, recipes.ErrVersionConflict)

		second, err := v.CompareAndSet(ctxT(t), settings{Limit: 2}, first.Version)
		require.NoError(t, err)
		require.Greater(t, second.Zxid, first.Zxid)
		_, err = v.CompareAndSet(ctxT(t), settings{Limit: 99}, first.Version)
		require.ErrorIs(t, err, recipes.ErrVersionConflict, "a stale version loses")
		got, err := v.Get(ctxT(t))
		require.NoError(t, err)
		require.Equal(t, 2, got.Value.Limit)

		// Bad data is a clear error, not a zero value.
		_, err = c.Conn().Set(path, []byte("{not json"), -1)
		require.NoError(t, err)
		got, err = v.Get(ctxT(t))
		require.NoError(t, err)
		require.Error(t, got.Err)
		_, err = v.Update(ctxT(t), func(cur recipes.Versioned[settings]) (settings, error) {
			require.Error(t, cur.Err)
			return settings{Limit: 3}, nil
		})
		require.NoError(t, err)
	})
}

// TestValueConcurrentUpdates runs writers that each add to a field with
// Update: no increment is lost, and a watcher sees versions strictly in
// order ending with the last.
func TestValueConcurrentUpdates(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		path := uniquePath("config-cas")
		watcherClient := connect(t, addr, sessionTimeout)
		wv, err := recipes.NewValue[settings](watcherClient, path, nil)
		require.NoError(t, err)
		wctx, stop := context.WithCancel(ctxT(t))
		defer stop()
		ch := wv.Watch(wctx)
		require.False(t, (<-ch).Exists, "nothing there yet")

		const writers, each = 3, 10
		done := make(chan error, writers)
		for w := 0; w < writers; w++ {
			v, err := recipes.NewValue[settings](connect(t, addr, sessionTimeout), path, nil)
			require.NoError(t, err)
			go func() {
				for i := 0; i < each; i++ {
					if _, err := v.Update(ctxT(t), func(cur recipes.Versioned[settings]) (settings, error) {
						return settings{Limit: cur.Value.Limit + 1}, nil
					}); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
		}
		var lastZxid int64
		lastLimit := 0
		for lastLimit < writers*each {
			select {
			case x, ok := <-ch:
				require.True(t, ok)
				require.True(t, x.Exists)
				require.Greater(t, x.Zxid, lastZxid, "versions in commit order, never a stale one")
				require.Greater(t, x.Value.Limit, lastLimit)
				lastZxid, lastLimit = x.Zxid, x.Value.Limit
			case <-ctxT(t).Done():
				t.Fatalf("watch stopped at limit %d", lastLimit)
			}
		}
		for w := 0; w < writers; w++ {
			require.NoError(t, <-done)
		}
		require.Equal(t, writers*each, lastLimit, "no update lost")
	})
}

// TestValueWatchEveryVersion has the writer wait for each version to be
// delivered before writing the next: the watcher sees every version.
// Then it partitions the watcher while versions move on: after the
// partition (whether or not its session survived it) it delivers only the
// newest, never an older one.
func TestValueWatchEveryVersion(t *testing.T) {
	t.Parallel() // waits for session expiry, mostly idle
	eachServer(t, func(t *testing.T, addr string) {
		path := uniquePath("config-watch")
		pc := connectProxied(t, addr)
		wv, err := recipes.NewValue[int](pc.Client, path, nil)
		require.NoError(t, err)
		v, err := recipes.NewValue[int](connect(t, addr, sessionTimeout), path, nil)
		require.NoError(t, err)
		ctx, stop := context.WithCancel(ctxT(t))
		defer stop()
		ch := wv.Watch(ctx)
		require.False(t, (<-ch).Exists)
		next := func() recipes.Versioned[int] {
			select {
			case x := <-ch:
				return x
			case <-ctxT(t).Done():
				t.Fatal("no version delivered")
				return recipes.Versioned[int]{}
			}
		}
		_, err = v.Create(ctxT(t), 0)
		require.NoError(t, err)
		require.Equal(t, 0, next().Value)
		for i := 1; i <= 10; i++ {
			_, err := v.Update(ctxT(t), func(cur recipes.Versioned[int]) (int, error) { return cur.Value + 1, nil })
			require.NoError(t, err)
			x := next()
			require.Equal(t, i, x.Value)
			require.Equal(t, int32(i), x.Version)
		}

		pc.proxy.CutOneWay(netstub.ToTarget)
		pc.proxy.CutOneWay(netstub.FromTarget)
		for i := 0; i < 5; i++ {
			_, err := v.Update(ctxT(t), func(cur recipes.Versioned[int]) (int, error) { return cur.Value + 1, nil })
			require.NoError(t, err)
		}
		waitFor(t, "the watcher's session to expire", func() bool { return !pc.Connected() })
		pc.proxy.Restore()
		x := next()
		require.Equal(t, 15, x.Value, "after the partition the newest version, not an older one")
		require.NoError(t, c2Delete(v, ctxT(t)))
		require.False(t, next().Exists, "a deletion is delivered")
	})
}

func c2Delete(v *recipes.Value[int], ctx context.Context) error {
	cur, err := v.Get(ctx)
	if err != nil {
		return err
	}
	return v.Delete(ctx, cur.Version)
}
