package tree

import (
	"iter"
	"slices"
	"sort"
)

// childChunk is the most names one chunk of a childSet holds: a chunk of
// 128 names is 2 KB (a Go size class), small enough that inserting into
// it is a short copy, large enough that the chunk list stays short.
const childChunk = 128

// childSet is the names of one node's children, kept sorted in chunks of
// at most childChunk names: the chunks are in order and each is non-empty.
//
// It replaces a map per parent. A node with a few children holds one small
// slice (16 bytes a name) instead of a map (about 200 bytes however few
// names), a node with a million children about 20 bytes a name instead of
// a map's 25, and getChildren reads the names in order instead of sorting
// them on every call. Adding or removing a name costs a binary search and
// a copy within one chunk (and, on a split, of the chunk list). Names are
// substrings of the paths that are Tree.nodes' keys, so their bytes are
// stored once.
type childSet struct {
	chunks [][]string
	n      int
}

// len returns the number of names.
func (s *childSet) len() int {
	if s == nil {
		return 0
	}
	return s.n
}

// chunkFor returns the index of the chunk where name is or would go: the
// first whose last name is not below name, or the last chunk.
func (s *childSet) chunkFor(name string) int {
	i := sort.Search(len(s.chunks), func(i int) bool {
		c := s.chunks[i]
		return c[len(c)-1] >= name
	})
	return min(i, len(s.chunks)-1)
}

// add inserts name; it reports false if name was there already.
func (s *childSet) add(name string) bool {
	if len(s.chunks) == 0 {
		s.chunks = append(s.chunks, []string{name})
		s.n = 1
		return true
	}
	// Names past the last (a snapshot load, sequential znodes) skip the
	// searches.
	i, j := len(s.chunks)-1, 0
	if c := s.chunks[i]; c[len(c)-1] < name {
		j = len(c)
	} else {
		i = s.chunkFor(name)
		var found bool
		if j, found = slices.BinarySearch(s.chunks[i], name); found {
			return false
		}
	}
	c := s.chunks[i]
	s.n++
	if len(c) < childChunk {
		s.chunks[i] = slices.Insert(c, j, name)
		return true
	}
	// The chunk is full. Past the end of the last chunk (names added in
	// order, as sequential znodes are) a new chunk starts, so such a set
	// stays dense; elsewhere the chunk splits in halves.
	if i == len(s.chunks)-1 && j == len(c) {
		s.chunks = append(s.chunks, []string{name})
		return true
	}
	h := len(c) / 2
	lo, hi := slices.Clone(c[:h]), slices.Clone(c[h:])
	if j <= h {
		lo = slices.Insert(lo, j, name)
	} else {
		hi = slices.Insert(hi, j-h, name)
	}
	s.chunks[i] = lo
	s.chunks = slices.Insert(s.chunks, i+1, hi)
	return true
}

// remove deletes name; it reports false if name was not there.
func (s *childSet) remove(name string) bool {
	if s.len() == 0 {
		return false
	}
	i := s.chunkFor(name)
	c := s.chunks[i]
	j, found := slices.BinarySearch(c, name)
	if !found {
		return false
	}
	s.n--
	c = slices.Delete(c, j, j+1)
	if len(c) == 0 {
		s.chunks = slices.Delete(s.chunks, i, i+1)
	} else {
		s.chunks[i] = c
	}
	return true
}

// all yields the names in sorted order.
func (s *childSet) all() iter.Seq[string] {
	return func(yield func(string) bool) {
		if s == nil {
			return
		}
		for _, c := range s.chunks {
			for _, name := range c {
				if !yield(name) {
					return
				}
			}
		}
	}
}

// sorted returns a new slice of the names in sorted order.
func (s *childSet) sorted() []string {
	out := make([]string, 0, s.len())
	if s != nil {
		for _, c := range s.chunks {
			out = append(out, c...)
		}
	}
	return out
}
