package linearizability

import (
	"reflect"
	"testing"

	"pgregory.net/rapid"
)

// The model keeps its hash incrementally (put, del, closeSession); a wrong
// update would make Porcupine's cache treat different states as unequal, or
// skip the field comparison's work in the wrong places. After any sequence of
// writes the hash must be the one a full rehash gives, and states reached by
// different routes must compare equal exactly when their contents match.
func TestPropertyIncrementalHash(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		st := initialState()
		for i, n := 0, rapid.IntRange(1, 40).Draw(t, "n"); i < n; i++ {
			s := rapid.Int64Range(1, 3).Draw(t, "session")
			var op Op
			switch rapid.IntRange(0, 9).Draw(t, "kind") {
			case 0:
				op = Op{Kind: CloseSession}
			case 1, 2:
				op = Op{Kind: Multi}
				for k := rapid.IntRange(1, 3).Draw(t, "nsub"); k > 0; k-- {
					op.Ops = append(op.Ops, drawWrite(t, "sub", true))
				}
			default:
				op = drawWrite(t, "w", false)
			}
			op.Session = s
			before := st.clone()
			_, next := applyWrite(st, s, &op)
			if !reflect.DeepEqual(st.nodes, before.nodes) || !reflect.DeepEqual(st.closed, before.closed) || st.hash != before.hash {
				t.Fatalf("applyWrite changed its input state")
			}
			st = next
			want := *st
			want.rehash()
			if st.hash != want.hash {
				t.Fatalf("after %s: incremental hash %#x, full rehash %#x", describeRequest(&op), st.hash, want.hash)
			}
			c := st.clone()
			if !st.Equal(c) || !c.Equal(st) {
				t.Fatalf("a clone is not Equal to its state")
			}
		}
	})
}
