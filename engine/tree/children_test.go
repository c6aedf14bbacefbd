package tree

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// TestChildSet checks childSet against a sorted slice under random adds and
// removes, with names drawn from a small alphabet (so removes hit, and
// chunks fill, split and empty) and in increasing order (the dense path).
func TestChildSet(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		var s childSet
		st := newStore()
		ids := map[string]int32{}
		id := func(name string) int32 {
			if i, ok := ids[name]; ok {
				return i
			}
			ids[name] = st.create("/"+name, &node{})
			return ids[name]
		}
		model := []string{}
		ops := rapid.IntRange(0, 2000).Draw(rt, "ops")
		seq := 0
		for range ops {
			var name string
			switch rapid.IntRange(0, 4).Draw(rt, "how") {
			case 0: // in order, as sequential znodes
				seq++
				name = fmt.Sprintf("z%010d", seq)
			case 1: // one 8-byte prefix, so the chunks' keys tie
				name = fmt.Sprintf("c1-1234%d", rapid.IntRange(0, 400).Draw(rt, "name"))
			default:
				name = fmt.Sprintf("n%d", rapid.IntRange(0, 400).Draw(rt, "name"))
			}
			j, found := slices.BinarySearch(model, name)
			if rapid.IntRange(0, 2).Draw(rt, "remove") == 0 {
				require.Equal(rt, found, s.remove(&st, id(name)), "remove %q", name)
				if found {
					model = slices.Delete(model, j, j+1)
				}
			} else {
				require.Equal(rt, !found, s.add(&st, id(name)), "add %q", name)
				if !found {
					model = slices.Insert(model, j, name)
				}
			}
			require.Equal(rt, len(model), s.len())
		}
		require.Equal(rt, model, s.names(&st))
		var byID []string
		for i := range s.all() {
			byID = append(byID, string(st.name(i)))
		}
		require.Equal(rt, model, append([]string{}, byID...))
		require.Len(rt, s.lastKeys, len(s.chunks))
		for i, c := range s.chunks {
			require.NotEmpty(rt, c, "chunk %d", i)
			require.LessOrEqual(rt, len(c), childChunk, "chunk %d", i)
			require.Equal(rt, nameKey(st.name(c[len(c)-1])), s.lastKeys[i], "chunk %d's key", i)
		}
	})
}

// nameKey orders names as their bytes do wherever the keys differ.
func TestNameKeyOrder(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		name := rapid.StringMatching(`[a-z0-9-]{0,12}`)
		a, b := name.Draw(rt, "a"), name.Draw(rt, "b")
		ka, kb := nameKey([]byte(a)), nameKey([]byte(b))
		if ka < kb {
			require.Less(rt, a, b)
		}
		if ka > kb {
			require.Greater(rt, a, b)
		}
		if a == b {
			require.Equal(rt, ka, kb)
		}
	})
}

func TestChildSetNil(t *testing.T) {
	var s *childSet
	require.Equal(t, 0, s.len())
	st := newStore()
	require.Empty(t, s.names(&st))
	require.Empty(t, slices.Collect(s.all()))
}
