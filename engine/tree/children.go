package tree

import (
	"encoding/binary"
	"iter"
	"slices"
	"sort"
)

// childChunk is the most ids one chunk of a childSet holds: 512 bytes, so
// inserting into a chunk is a short copy while the chunk list stays short.
const childChunk = 128

// childSet is the ids of one node's children, kept sorted by name in chunks
// of at most childChunk ids: the chunks are in order and each is non-empty.
//
// A child costs 4 bytes and no pointer (the chunks are []int32, which the
// collector does not scan); names are read from the store when compared,
// so their bytes are stored once, in the arena. getChildren reads the names
// in order instead of sorting them on every call. Adding or removing a
// child costs a binary search and a copy within one chunk (and, on a
// split, of the chunk list). Each chunk's last name is also kept as a
// number (lastKeys): the search for a name's chunk compares those and
// decodes a name from the arena only on a tie, where it decoded one at
// every step (about a tenth of a create's time in the tree with 200,000
// children, BenchmarkCreateInterleaved).
type childSet struct {
	chunks [][]int32
	// lastKeys[i] is nameKey of chunk i's last name.
	lastKeys []uint64
	n        int
}

// nameKey is the first 8 bytes of name, big-endian, zero-padded: for two
// names a key below the other's means the name is below the other's
// (a znode name holds no zero byte, so padding sorts before any byte), and
// equal keys say nothing.
func nameKey(name []byte) uint64 {
	var b [8]byte
	copy(b[:], name)
	return binary.BigEndian.Uint64(b[:])
}

// setKey recomputes lastKeys[i] from chunk i.
func (s *childSet) setKey(st *store, i int) {
	c := s.chunks[i]
	s.lastKeys[i] = nameKey(st.name(c[len(c)-1]))
}

// cmpLast compares the last name of chunk i with name, whose key is key.
func (s *childSet) cmpLast(st *store, i int, name []byte, key uint64) int {
	switch k := s.lastKeys[i]; {
	case k < key:
		return -1
	case k > key:
		return 1
	}
	c := s.chunks[i]
	return cmpName(st, c[len(c)-1], name)
}

// len returns the number of children.
func (s *childSet) len() int {
	if s == nil {
		return 0
	}
	return s.n
}

// cmpName compares the name of id with name.
func cmpName(st *store, id int32, name []byte) int {
	a := st.name(id)
	switch {
	case string(a) < string(name):
		return -1
	case string(a) == string(name):
		return 0
	}
	return 1
}

// search returns where name is or would go in chunk c.
func search(st *store, c []int32, name []byte) (int, bool) {
	return slices.BinarySearchFunc(c, name, func(id int32, name []byte) int { return cmpName(st, id, name) })
}

// chunkFor returns the index of the chunk where name is or would go: the
// first whose last name is not below name, or the last chunk.
func (s *childSet) chunkFor(st *store, name []byte, key uint64) int {
	i := sort.Search(len(s.chunks), func(i int) bool { return s.cmpLast(st, i, name, key) >= 0 })
	return min(i, len(s.chunks)-1)
}

// add inserts id, whose name st knows; it reports false if a child of that
// name was there already.
func (s *childSet) add(st *store, id int32) bool {
	name := st.name(id)
	key := nameKey(name)
	if len(s.chunks) == 0 {
		s.chunks = append(s.chunks, []int32{id})
		s.lastKeys = append(s.lastKeys, key)
		s.n = 1
		return true
	}
	// Names past the last (a snapshot load, sequential znodes) skip the
	// searches.
	i, j := len(s.chunks)-1, 0
	if s.cmpLast(st, i, name, key) < 0 {
		j = len(s.chunks[i])
	} else {
		i = s.chunkFor(st, name, key)
		var found bool
		if j, found = search(st, s.chunks[i], name); found {
			return false
		}
	}
	c := s.chunks[i]
	s.n++
	if len(c) < childChunk {
		s.chunks[i] = slices.Insert(c, j, id)
		if j == len(c) {
			s.lastKeys[i] = key
		}
		return true
	}
	// The chunk is full. Past the end of the last chunk (names added in
	// order, as sequential znodes are) a new chunk starts, so such a set
	// stays dense; elsewhere the chunk splits in halves.
	if i == len(s.chunks)-1 && j == len(c) {
		s.chunks = append(s.chunks, []int32{id})
		s.lastKeys = append(s.lastKeys, key)
		return true
	}
	h := len(c) / 2
	lo, hi := slices.Clone(c[:h]), slices.Clone(c[h:])
	if j <= h {
		lo = slices.Insert(lo, j, id)
	} else {
		hi = slices.Insert(hi, j-h, id)
	}
	s.chunks[i] = lo
	s.chunks = slices.Insert(s.chunks, i+1, hi)
	s.lastKeys = slices.Insert(s.lastKeys, i+1, 0)
	s.setKey(st, i)
	s.setKey(st, i+1)
	return true
}

// remove deletes the child named like id; it reports false if there was
// none.
func (s *childSet) remove(st *store, id int32) bool {
	if s.len() == 0 {
		return false
	}
	name := st.name(id)
	i := s.chunkFor(st, name, nameKey(name))
	c := s.chunks[i]
	j, found := search(st, c, name)
	if !found {
		return false
	}
	s.n--
	c = slices.Delete(c, j, j+1)
	switch {
	case len(c) == 0:
		s.chunks = slices.Delete(s.chunks, i, i+1)
		s.lastKeys = slices.Delete(s.lastKeys, i, i+1)
	case j == len(c):
		s.chunks[i] = c
		s.setKey(st, i)
	default:
		s.chunks[i] = c
	}
	return true
}

// all yields the ids in name order.
func (s *childSet) all() iter.Seq[int32] {
	return func(yield func(int32) bool) {
		if s == nil {
			return
		}
		for _, c := range s.chunks {
			for _, id := range c {
				if !yield(id) {
					return
				}
			}
		}
	}
}

// names returns the children's names in order. They are substrings of one
// string, one allocation for the lot.
func (s *childSet) names(st *store) []string {
	out := make([]string, 0, s.len())
	if s.len() == 0 {
		return out
	}
	size := 0
	for id := range s.all() {
		size += len(st.name(id))
	}
	buf := make([]byte, 0, size)
	for id := range s.all() {
		buf = append(buf, st.name(id)...)
	}
	all := string(buf)
	off := 0
	for id := range s.all() {
		k := len(st.name(id))
		out = append(out, all[off:off+k])
		off += k
	}
	return out
}
