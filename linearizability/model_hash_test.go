package linearizability

import (
	"fmt"
	"math"
	"reflect"
	"strings"
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
			beforeNodes, beforeClosed, beforeHash := st.all(), clonedClosed(st), st.hash
			_, next := applyWrite(st, s, &op)
			if !reflect.DeepEqual(st.all(), beforeNodes) || !reflect.DeepEqual(st.closed.m, beforeClosed) || st.hash != beforeHash {
				t.Fatalf("applyWrite changed its input state")
			}
			st = next
			if want := st.fullHash(); st.hash != want {
				t.Fatalf("after %s: incremental hash %#x, full rehash %#x (0: a bucket's hash is off)", describeRequest(&op), st.hash, want)
			}
			c := st.clone()
			if !st.Equal(c) || !c.Equal(st) {
				t.Fatalf("a clone is not Equal to its state")
			}
			// The same contents built from scratch (no shared buckets)
			// must be Equal; a state with one field changed must not.
			fresh := rebuild(st)
			if !st.Equal(fresh) || !fresh.Equal(st) {
				t.Fatalf("a state rebuilt from its contents is not Equal to it: %s", st)
			}
			if paths := st.paths(); len(paths) > 0 {
				p := rapid.SampledFrom(sortedCopy(paths)).Draw(t, "tweak")
				// Rebuilt again: Equal made fresh share st's buckets,
				// which only a copy may change.
				tw := rebuild(st)
				n, _ := tw.get(p)
				n.version++
				tw.owned = ^uint32(0)
				tw.put(p, n)
				if st.Equal(tw) || tw.Equal(st) {
					t.Fatalf("states differing in %s's version are Equal", p)
				}
			}
		}
	})
}

func clonedClosed(s *State) map[int64]bool {
	c := map[int64]bool{}
	for k := range s.closed.m {
		c[k] = true
	}
	return c
}

// rebuild builds a State with s's contents and no buckets shared with it.
func rebuild(s *State) *State {
	r := &State{closed: &sessions{m: clonedClosed(s)}, owned: ^uint32(0), ownsCl: true}
	for i := range r.buckets {
		r.buckets[i] = &bucket{m: map[string]znode{}}
	}
	for p, n := range s.all() {
		r.put(p, n)
	}
	for id := range s.closed.m {
		r.hash ^= closedHash(id)
	}
	r.owned, r.ownsCl = 0, false
	return r
}

// validPath's component scan must agree with splitting the path.
func TestValidPathComponents(t *testing.T) {
	split := func(p string) bool {
		if p == "" || p[0] != '/' {
			return false
		}
		if p == "/" {
			return true
		}
		if strings.HasSuffix(p, "/") {
			return false
		}
		for _, c := range strings.Split(p[1:], "/") {
			if c == "" || c == "." || c == ".." {
				return false
			}
		}
		return true
	}
	rapid.Check(t, func(t *rapid.T) {
		p := rapid.StringOfN(rapid.SampledFrom([]rune{'/', '.', 'a', 'b'}), 0, 12, -1).Draw(t, "path")
		if got, want := validPath(p), split(p); got != want {
			t.Fatalf("validPath(%q) = %v, splitting says %v", p, got, want)
		}
	})
}

// sequentialName gives fmt's "%s%010d".
func TestSequentialNameMatchesFmt(t *testing.T) {
	for _, c := range []int32{0, 1, 9, 10, 123456789, 1234567890, math.MaxInt32, -1, -12345, math.MinInt32} {
		if got, want := sequentialName("/a/n-", c), fmt.Sprintf("%s%010d", "/a/n-", c); got != want {
			t.Fatalf("sequentialName(%d) = %q, want %q", c, got, want)
		}
	}
}
