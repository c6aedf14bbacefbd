package sim

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// The queue pops in (at, seq) order whatever the pushes and pops between
// them: times repeat often, and equal times pop in scheduling order.
func TestQueuePopsInTimeThenSchedulingOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	q := newQueue()
	var want []event // what is queued, kept sorted on (at, seq)
	var seq uint64
	for step := 0; step < 20000; step++ {
		if len(want) == 0 || r.IntN(3) > 0 {
			e := event{at: r.Int64N(50), node: int64(step)}
			q.push(&e)
			seq++
			e.seq = seq
			i, _ := slices.BinarySearchFunc(want, e, func(a, b event) int {
				if a.before(&b) {
					return -1
				}
				return 1
			})
			want = slices.Insert(want, i, e)
			continue
		}
		at, ok := q.peekAt()
		if !ok || at != want[0].at {
			t.Fatalf("step %d: peekAt %d %v, want %d", step, at, ok, want[0].at)
		}
		got := q.pop()
		if got.at != want[0].at || got.seq != want[0].seq || got.node != want[0].node {
			t.Fatalf("step %d: popped (at %d, seq %d, node %d), want (at %d, seq %d, node %d)",
				step, got.at, got.seq, got.node, want[0].at, want[0].seq, want[0].node)
		}
		want = want[1:]
	}
	for len(want) > 0 {
		if got := q.pop(); got.seq != want[0].seq {
			t.Fatalf("drain: popped seq %d, want %d", got.seq, want[0].seq)
		}
		want = want[1:]
	}
	if _, ok := q.peekAt(); ok {
		t.Fatal("queue not empty after draining")
	}
}

// BenchmarkQueue schedules and runs events the way the loop does: a
// queue of a few hundred pending events, each pop followed by a push.
func BenchmarkQueue(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	q := newQueue()
	for i := range 300 {
		q.push(&event{at: r.Int64N(1_000_000), node: int64(i)})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		e := q.pop()
		q.push(&event{at: e.at + 1 + r.Int64N(10_000), kind: e.kind, node: e.node})
	}
}
