package minheap

import (
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// TestPopsInOrder: whatever is pushed, pops come out sorted.
func TestPopsInOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		xs := rapid.SliceOf(rapid.Int()).Draw(t, "xs")
		h := New(func(a, b int) bool { return a < b })
		for _, x := range xs {
			h.Push(x)
		}
		var got []int
		for h.Len() > 0 {
			top, ok := h.Peek()
			if !ok {
				t.Fatal("Peek failed on a non-empty heap")
			}
			if p := h.Pop(); p != top {
				t.Fatalf("Pop %d, Peek said %d", p, top)
			}
			got = append(got, top)
		}
		want := slices.Clone(xs)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("popped %v, want %v", got, want)
		}
		if _, ok := h.Peek(); ok {
			t.Fatal("Peek on an empty heap")
		}
	})
}
