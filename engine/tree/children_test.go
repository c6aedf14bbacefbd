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
			switch rapid.IntRange(0, 3).Draw(rt, "how") {
			case 0: // in order, as sequential znodes
				seq++
				name = fmt.Sprintf("z%010d", seq)
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
		for i, c := range s.chunks {
			require.NotEmpty(rt, c, "chunk %d", i)
			require.LessOrEqual(rt, len(c), childChunk, "chunk %d", i)
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
