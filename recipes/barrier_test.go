package recipes_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/recipes"
)

func TestBarrier(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		path := uniquePath("barrier") + "/b"
		setter, err := recipes.NewBarrier(connect(t, addr, sessionTimeout), path)
		require.NoError(t, err)
		require.NoError(t, setter.Wait(ctxT(t)), "no barrier, no wait")
		require.NoError(t, setter.Set(ctxT(t)))
		require.NoError(t, setter.Set(ctxT(t)), "setting twice")

		var wg sync.WaitGroup
		released := make(chan error, 3)
		for i := 0; i < 3; i++ {
			b, err := recipes.NewBarrier(connect(t, addr, sessionTimeout), path)
			require.NoError(t, err)
			wg.Add(1)
			go func() { defer wg.Done(); released <- b.Wait(ctxT(t)) }()
		}
		short, cancel := context.WithCancel(ctxT(t))
		cancel()
		require.ErrorIs(t, setter.Wait(short), context.Canceled, "a raised barrier holds")
		require.Empty(t, released)
		require.NoError(t, setter.Remove(ctxT(t)))
		wg.Wait()
		close(released)
		for err := range released {
			require.NoError(t, err)
		}
	})
}

func TestDoubleBarrier(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		path := uniquePath("double")
		const n = 3
		var mu sync.Mutex
		var events []string
		record := func(e string) {
			mu.Lock()
			events = append(events, e)
			mu.Unlock()
		}
		// Two rounds on one path: the barrier resets after everyone leaves.
		for round := 0; round < 2; round++ {
			events = nil
			var wg sync.WaitGroup
			errs := make(chan error, 2*n)
			for i := 0; i < n; i++ {
				b, err := recipes.NewDoubleBarrier(connect(t, addr, sessionTimeout), path, n)
				require.NoError(t, err)
				wg.Add(1)
				go func() {
					defer wg.Done()
					record(fmt.Sprintf("0 arrive %d", i))
					if err := b.Enter(ctxT(t)); err != nil {
						errs <- err
						return
					}
					record(fmt.Sprintf("1 entered %d", i))
					if err := b.Leave(ctxT(t)); err != nil {
						errs <- err
						return
					}
					record(fmt.Sprintf("2 left %d", i))
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			// Nobody entered before all arrived; nobody left before all entered.
			require.Len(t, events, 3*n)
			phases := make([]string, len(events))
			for i, e := range events {
				phases[i] = e[:1]
			}
			require.True(t, sort.StringsAreSorted(phases), "round %d: %v", round, events)
		}
	})
}

func TestQueue(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		path := uniquePath("queue")
		q, err := recipes.NewQueue(connect(t, addr, sessionTimeout), path)
		require.NoError(t, err)
		_, ok, err := q.Poll(ctxT(t))
		require.NoError(t, err)
		require.False(t, ok)
		for i := 0; i < 3; i++ {
			_, err := q.Put(ctxT(t), []byte(fmt.Sprint(i)))
			require.NoError(t, err)
		}
		n, err := q.Len(ctxT(t))
		require.NoError(t, err)
		require.Equal(t, 3, n)
		for i := 0; i < 3; i++ {
			item, err := q.Take(ctxT(t))
			require.NoError(t, err)
			require.Equal(t, fmt.Sprint(i), string(item), "first in, first out")
		}

		// Competing consumers take every item exactly once.
		const items = 30
		var wg sync.WaitGroup
		taken := make(chan string, items)
		ctx, cancel := context.WithCancel(ctxT(t))
		defer cancel()
		for c := 0; c < 3; c++ {
			cq, err := recipes.NewQueue(connect(t, addr, sessionTimeout), path)
			require.NoError(t, err)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					item, err := cq.Take(ctx)
					if err != nil {
						return
					}
					taken <- string(item)
				}
			}()
		}
		for i := 0; i < items; i++ {
			_, err := q.Put(ctxT(t), []byte(fmt.Sprint("item-", i)))
			require.NoError(t, err)
		}
		seen := map[string]bool{}
		for len(seen) < items {
			select {
			case it := <-taken:
				require.False(t, seen[it], "%s taken twice", it)
				seen[it] = true
			case <-ctxT(t).Done():
				t.Fatalf("only %d of %d items taken", len(seen), items)
			}
		}
		cancel()
		wg.Wait()
		close(taken)
		require.Empty(t, taken, "no item taken twice")
	})
}
