// Package minheap is a binary min-heap ordered by a caller's function. The
// simulator's event queue and the in-memory network's delivery queue both
// need one with a strict total order (time, then sequence), so that equal
// times pop in a reproducible order.
package minheap

// Heap is a min-heap of T under Less. The zero value is not usable; build
// one with New.
type Heap[T any] struct {
	items []T
	less  func(a, b T) bool
}

// New returns an empty heap ordered by less, which must be a strict total
// order for pops to be deterministic.
func New[T any](less func(a, b T) bool) *Heap[T] { return &Heap[T]{less: less} }

// Len returns the number of items.
func (h *Heap[T]) Len() int { return len(h.items) }

// Peek returns the least item without removing it; ok is false when empty.
func (h *Heap[T]) Peek() (item T, ok bool) {
	if len(h.items) == 0 {
		return item, false
	}
	return h.items[0], true
}

// Push adds x.
func (h *Heap[T]) Push(x T) {
	h.items = append(h.items, x)
	i := len(h.items) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(h.items[i], h.items[p]) {
			break
		}
		h.items[i], h.items[p] = h.items[p], h.items[i]
		i = p
	}
}

// Pop removes and returns the least item. It panics on an empty heap.
func (h *Heap[T]) Pop() T {
	q := h.items
	top := q[0]
	last := len(q) - 1
	q[0] = q[last]
	var zero T
	q[last] = zero // let the garbage collector have it
	q = q[:last]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(q) && h.less(q[l], q[m]) {
			m = l
		}
		if r < len(q) && h.less(q[r], q[m]) {
			m = r
		}
		if m == i {
			break
		}
		q[i], q[m] = q[m], q[i]
		i = m
	}
	h.items = q
	return top
}
