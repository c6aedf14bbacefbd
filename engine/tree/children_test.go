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
				require.Equal(rt, found, s.remove(name), "remove %q", name)
				if found {
					model = slices.Delete(model, j, j+1)
				}
			} else {
				require.Equal(rt, !found, s.add(name), "add %q", name)
				if !found {
					model = slices.Insert(model, j, name)
				}
			}
			require.Equal(rt, len(model), s.len())
		}
		require.Equal(rt, model, s.sorted())
		require.Equal(rt, model, append([]string{}, slices.Collect(s.all())...))
		for i, c := range s.chunks {
			require.NotEmpty(rt, c, "chunk %d", i)
			require.LessOrEqual(rt, len(c), childChunk, "chunk %d", i)
		}
	})
}

func TestChildSetNil(t *testing.T) {
	var s *childSet
	require.Equal(t, 0, s.len())
	require.Empty(t, s.sorted())
	require.Empty(t, slices.Collect(s.all()))
}
