package recipes_test

import (
	"encoding/binary"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/recipes"
)

func TestAtomicLong(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		c := connect(t, addr, sessionTimeout)
		path := uniquePath("counter")
		a, err := recipes.NewAtomicLong(c, path)
		require.NoError(t, err)
		v, err := a.Get(ctxT(t))
		require.NoError(t, err)
		require.Zero(t, v, "an absent counter reads 0")
		ok, err := a.CompareAndSet(ctxT(t), 0, 5)
		require.NoError(t, err)
		require.False(t, ok, "compare-and-set fails on an absent counter, as Curator's")
		ok, err = a.Initialize(ctxT(t), 10)
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = a.Initialize(ctxT(t), 20)
		require.NoError(t, err)
		require.False(t, ok)
		pre, post, err := a.Add(ctxT(t), -3)
		require.NoError(t, err)
		require.Equal(t, [2]int64{10, 7}, [2]int64{pre, post})

		// The format is Curator's: 8 bytes, big-endian.
		data, _, err := c.Conn().Get(path)
		require.NoError(t, err)
		require.Equal(t, []byte{0, 0, 0, 0, 0, 0, 0, 7}, data)
		_, err = c.Conn().Set(path, binary.BigEndian.AppendUint64(nil, uint64(1)<<40), -1)
		require.NoError(t, err)
		v, err = a.Get(ctxT(t))
		require.NoError(t, err)
		require.Equal(t, int64(1)<<40, v)
		ok, err = a.CompareAndSet(ctxT(t), 1<<40, -1)
		require.NoError(t, err)
		require.True(t, ok)
		v, err = a.Decrement(ctxT(t))
		require.NoError(t, err)
		require.Equal(t, int64(-2), v)

		_, err = c.Conn().Set(path, []byte("abc"), -1)
		require.NoError(t, err)
		_, err = a.Get(ctxT(t))
		require.ErrorContains(t, err, "3 bytes")
		_, err = a.Increment(ctxT(t))
		require.Error(t, err, "a corrupt counter is not overwritten")
		require.NoError(t, a.Set(ctxT(t), 0))
	})
}

// TestAtomicLongContention increments from several clients at once: every
// increment counts.
func TestAtomicLongContention(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		path := uniquePath("counter-race")
		const workers, each = 4, 15
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := 0; w < workers; w++ {
			a, err := recipes.NewAtomicLong(connect(t, addr, sessionTimeout), path)
			require.NoError(t, err)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					if _, err := a.Increment(ctxT(t)); err != nil {
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
		a, err := recipes.NewAtomicLong(connect(t, addr, sessionTimeout), path)
		require.NoError(t, err)
		v, err := a.Get(ctxT(t))
		require.NoError(t, err)
		require.Equal(t, int64(workers*each), v)
	})
}
