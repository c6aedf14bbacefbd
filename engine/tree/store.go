package tree

import (
	"encoding/binary"
)

// The node store keeps a tree of millions of znodes in a form the garbage
// collector does not scan. Go's collector marks every live pointer on
// every cycle, so a tree of a node, a data slice and a path string per
// znode, indexed by a map of strings, made each collection walk millions
// of objects, and a tighter GOGC (the only way to keep RSS near the live
// heap) cost reads (BENCHMARKS.md, "A tighter collector was measured and
// not adopted"). Here:
//
//   - a znode is an int32 id; its fixed fields are a rec (56 bytes, no
//     pointers) in pages of pageSize recs;
//   - its path and data are one record in an arena of byte chunks of up
//     to 1 MB (no pointers), written once and never changed: a setData writes a
//     new record, and a chunk whose records are mostly dead is compacted
//     (its live records copied to the chunk being filled, the chunk
//     dropped);
//   - the path→id index is an open-addressing table of uint64 slots (a
//     32-bit hash and the id), checked against the arena's path;
//   - a parent's children are sorted chunks of int32 ids (children.go);
//   - a node's ACL list and counters (nodeMeta, shared between leaves with
//     an equal list) are referred to by a uint32 index into metas.
//
// Snapshots: Tree.Snapshot must capture a view that stays the same while
// the tree goes on changing (the writer runs on another goroutine). Arena
// bytes never change once written and a dropped chunk's memory is left to
// the collector, never reused, so the view keeps a copy of the chunk list
// (the store may give a dropped chunk's index to a new one); rec pages are
// copied on write: Snapshot bumps gen, and the first change to a page whose
// pageGen is older copies the page first. metas is copied (one pointer per
// distinct list or parent). The view is a few slice headers per page and
// chunk.

const (
	pageBits = 8
	pageSize = 1 << pageBits // recs per page: 14 KB
	pageMask = pageSize - 1
	// chunkSize is the arena's chunk: large enough that its pointer costs
	// the collector nothing, small enough that compacting one is a short
	// pause. A record larger than chunkSize/8 gets a chunk of its own. A
	// store's first chunk is firstChunk bytes, each next one twice the
	// last up to chunkSize, so a small tree (the simulator makes
	// thousands) stays small.
	chunkSize  = 1 << 20
	firstChunk = 4 << 10
	// recHeader is the largest header of an arena record: the lengths of
	// the path and the data as uvarints.
	recHeader = 2 * binary.MaxVarintLen32
	// A rec's bits hold its meta's index (below metaBits), its kind and
	// whether it is in use (liveBit).
	metaBits = 28
	metaMask = 1<<metaBits - 1
	kindMask = 7 << metaBits
	liveBit  = 1 << 31
)

// rec is a znode's fixed fields as the store keeps them: node's fields
// without its pointers (see node.go for their meaning).
type rec struct {
	czxid   int64
	mzxid   int64
	ctime   int64
	mtime   int64
	owner   int64
	chunk   uint32 // the arena record holding the path and data
	off     uint32
	version int32
	bits    uint32 // meta index (0: a nil meta), kind, live: see metaBits
}

func (r *rec) meta() uint32 { return r.bits & metaMask }
func (r *rec) kind() kind   { return kind(r.bits & kindMask >> metaBits) }
func (r *rec) live() bool   { return r.bits&liveBit != 0 }

func (r *rec) setMeta(m uint32) { r.bits = r.bits&^metaMask | m }

// store holds the znodes of a Tree. Ids are handed out lowest free first
// from a LIFO free list, so a store built by the same operations is the
// same, whatever the run.
type store struct {
	pages   [][]rec
	pageGen []uint32
	gen     uint32
	count   int
	next    int32   // ids below next were handed out
	free    []int32 // ids to reuse

	chunks [][]byte // nil: dropped
	used   []int    // bytes written per chunk
	live   []int    // bytes of live records per chunk
	cur    int      // the chunk being filled; -1 before the first
	// freeChunks are indexes of dropped chunks, for new ones.
	freeChunks []int
	// dirty lists chunks that may be worth compacting (see release).
	dirty      []int
	compacting bool

	index pathIndex

	metas     []*nodeMeta
	metaRefs  []int32
	freeMetas []uint32
}

func newStore() store {
	return store{cur: -1, metas: []*nodeMeta{nil}, metaRefs: []int32{0}}
}

// rec returns the rec of id for reading.
func (s *store) rec(id int32) *rec { return &s.pages[id>>pageBits][id&pageMask] }

// mutable returns the rec of id for writing, copying its page first if a
// snapshot may still read it.
func (s *store) mutable(id int32) *rec {
	p := id >> pageBits
	if s.pageGen[p] != s.gen {
		s.pages[p] = append([]rec(nil), s.pages[p]...)
		s.pageGen[p] = s.gen
	}
	return &s.pages[p][id&pageMask]
}

// record returns the path and data of the arena record at chunk, off, and
// the record's size. A record holds no id: compaction finds a record's node
// by its path.
func record(chunks [][]byte, chunk, off uint32) (path, data []byte, size int) {
	b := chunks[chunk][off:]
	i := 0
	pl, k := binary.Uvarint(b[i:])
	i += k
	dl, k := binary.Uvarint(b[i:])
	i += k
	path = b[i : i+int(pl)]
	i += int(pl)
	if dl > 0 {
		data = b[i : i+int(dl)-1 : i+int(dl)-1]
		i += int(dl) - 1
	}
	return path, data, i
}

// path returns the path of id (bytes of the arena: never modify them).
func (s *store) path(id int32) []byte {
	r := s.rec(id)
	p, _, _ := record(s.chunks, r.chunk, r.off)
	return p
}

// name returns the last component of id's path.
func (s *store) name(id int32) []byte {
	p := s.path(id)
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}

// view fills n with the node id.
func (s *store) view(id int32, n *node) {
	r := s.rec(id)
	_, data, _ := record(s.chunks, r.chunk, r.off)
	*n = node{
		data: data, meta: s.metas[r.meta()],
		czxid: r.czxid, mzxid: r.mzxid, ctime: r.ctime, mtime: r.mtime,
		owner: r.owner, version: r.version, kind: r.kind(),
	}
}

// find returns the id of path, or -1.
func (s *store) find(path string) int32 {
	return findPath(s, path, hashPath(path))
}

// create stores n at path, which holds no node, and returns its id.
func (s *store) create(path string, n *node) int32 {
	id := s.newID()
	r := s.mutable(id)
	r.bits = liveBit
	r.chunk, r.off = write(s, path, n.data)
	s.index.insert(hashPath(path), id)
	s.count++
	r.setMeta(s.refMeta(n.meta))
	s.setFields(r, n)
	s.compact()
	return id
}

// update stores n as the node id at path.
func (s *store) update(id int32, path string, n *node) {
	r := s.mutable(id)
	if m := s.refMeta(n.meta); m != r.meta() {
		s.unrefMeta(r.meta())
		r.setMeta(m)
	} else {
		s.unrefMeta(m) // refMeta counted it again
	}
	_, old, size := record(s.chunks, r.chunk, r.off)
	if !sameBytes(old, n.data) {
		oc := r.chunk
		r.chunk, r.off = write(s, path, n.data)
		s.release(oc, size)
	}
	s.setFields(r, n)
	s.compact()
}

func (s *store) setFields(r *rec, n *node) {
	r.czxid, r.mzxid, r.ctime, r.mtime = n.czxid, n.mzxid, n.ctime, n.mtime
	r.owner, r.version = n.owner, n.version
	r.bits = r.bits&^kindMask | uint32(n.kind)<<metaBits
}

// sameBytes reports whether a and b are the same bytes in memory (not
// just equal): a node view keeps its data while unchanged.
func sameBytes(a, b []byte) bool {
	if len(a) != len(b) || (a == nil) != (b == nil) {
		return false
	}
	return len(a) == 0 || &a[0] == &b[0]
}

// remove deletes the node id at path.
func (s *store) remove(id int32, path string) {
	s.index.remove(id, hashPath(path))
	r := s.mutable(id)
	_, _, size := record(s.chunks, r.chunk, r.off)
	s.release(r.chunk, size)
	s.unrefMeta(r.meta())
	*r = rec{}
	s.free = append(s.free, id)
	s.count--
	s.compact()
}

func (s *store) newID() int32 {
	if k := len(s.free); k > 0 {
		id := s.free[k-1]
		s.free = s.free[:k-1]
		return id
	}
	id := s.next
	s.next++
	if int(id>>pageBits) == len(s.pages) {
		s.pages = append(s.pages, make([]rec, pageSize))
		s.pageGen = append(s.pageGen, s.gen)
	}
	return id
}

// write appends a record of path and data to the arena.
func write[S string | []byte](s *store, path S, data []byte) (chunk, off uint32) {
	var hdr [recHeader]byte
	k := binary.PutUvarint(hdr[:], uint64(len(path)))
	dl := uint64(0)
	if data != nil {
		dl = uint64(len(data)) + 1
	}
	k += binary.PutUvarint(hdr[k:], dl)
	size := k + len(path) + len(data)
	c := s.cur
	if size > chunkSize/8 {
		c = s.newChunk(size)
	} else if c < 0 || s.used[c]+size > len(s.chunks[c]) {
		next := firstChunk
		if c >= 0 {
			s.dirty = append(s.dirty, c)
			next = min(2*len(s.chunks[c]), chunkSize)
		}
		c = s.newChunk(max(next, size))
		s.cur = c
	}
	b := s.chunks[c]
	o := s.used[c]
	copy(b[o:], hdr[:k])
	copy(b[o+k:], path)
	copy(b[o+k+len(path):], data)
	s.used[c] += size
	s.live[c] += size
	return uint32(c), uint32(o)
}

// newChunk adds a chunk of size bytes, at the index of a dropped one if
// there is one (a snapshot has its own copy of the list, and update tells
// a view's data from the stored one by address, not by index).
func (s *store) newChunk(size int) int {
	if k := len(s.freeChunks); k > 0 {
		c := s.freeChunks[k-1]
		s.freeChunks = s.freeChunks[:k-1]
		s.chunks[c] = make([]byte, size)
		return c
	}
	s.chunks = append(s.chunks, make([]byte, size))
	s.used = append(s.used, 0)
	s.live = append(s.live, 0)
	return len(s.chunks) - 1
}

// release notes that a record of size bytes in chunk c is dead. A chunk
// that is not being filled and holds more dead bytes than live ones is
// compacted once the operation under way is done.
func (s *store) release(c uint32, size int) {
	s.live[c] -= size
	if int(c) != s.cur && s.live[c]*2 <= s.used[c] {
		s.dirty = append(s.dirty, int(c))
	}
}

// compact moves the live records of every dirty chunk that is mostly
// dead to the chunk being filled and drops the chunk. It runs at the end
// of put and remove, so no rec is half-changed.
func (s *store) compact() {
	if s.compacting || len(s.dirty) == 0 {
		return
	}
	s.compacting = true
	for len(s.dirty) > 0 {
		c := s.dirty[len(s.dirty)-1]
		s.dirty = s.dirty[:len(s.dirty)-1]
		if s.chunks[c] == nil || c == s.cur || s.live[c]*2 > s.used[c] {
			continue
		}
		for off := 0; off < s.used[c]; {
			path, data, size := record(s.chunks, uint32(c), uint32(off))
			if id := findPath(s, path, hashPath(path)); id >= 0 {
				if r := s.rec(id); int(r.chunk) == c && int(r.off) == off {
					r = s.mutable(id)
					r.chunk, r.off = write(s, path, data)
				}
			}
			off += size
		}
		s.chunks[c] = nil
		s.used[c], s.live[c] = 0, 0
		s.freeChunks = append(s.freeChunks, c)
	}
	s.compacting = false
}

// refMeta counts a reference to m and returns its index.
func (s *store) refMeta(m *nodeMeta) uint32 {
	if m == nil {
		return 0
	}
	if m.idx == 0 {
		if len(s.metas) > metaMask {
			panic("tree: more distinct node metas than a rec can refer to")
		}
		if k := len(s.freeMetas); k > 0 {
			m.idx = s.freeMetas[k-1]
			s.freeMetas = s.freeMetas[:k-1]
			s.metas[m.idx] = m
		} else {
			m.idx = uint32(len(s.metas))
			s.metas = append(s.metas, m)
			s.metaRefs = append(s.metaRefs, 0)
		}
	}
	s.metaRefs[m.idx]++
	return m.idx
}

// unrefMeta drops a reference to the meta at i, freeing its slot when it
// was the last.
func (s *store) unrefMeta(i uint32) {
	if i == 0 {
		return
	}
	if s.metaRefs[i]--; s.metaRefs[i] == 0 {
		s.metas[i].idx = 0
		s.metas[i] = nil
		s.freeMetas = append(s.freeMetas, i)
	}
}

// snapshot returns a view of the store as it is now (see the top of this
// file): later changes copy the pages they touch.
func (s *store) snapshot() storeView {
	s.gen++
	return storeView{
		pages:  append([][]rec(nil), s.pages...),
		chunks: append([][]byte(nil), s.chunks...),
		metas:  append([]*nodeMeta(nil), s.metas...),
		count:  s.count,
	}
}

// storeView is a store frozen by snapshot.
type storeView struct {
	pages  [][]rec
	chunks [][]byte
	metas  []*nodeMeta
	count  int
	// order is the ids in the order a snapshot writes them (for a view
	// of a tree: Tree.preorder).
	order []int32
}

// rec returns the rec of id.
func (v *storeView) rec(id int32) *rec { return &v.pages[id>>pageBits][id&pageMask] }

// path returns the path of id.
func (v *storeView) path(id int32) []byte {
	r := v.rec(id)
	p, _, _ := record(v.chunks, r.chunk, r.off)
	return p
}

// node returns the node view of r.
func (v *storeView) node(r *rec) node {
	_, data, _ := record(v.chunks, r.chunk, r.off)
	return node{
		data: data, meta: v.metas[r.meta()],
		czxid: r.czxid, mzxid: r.mzxid, ctime: r.ctime, mtime: r.mtime,
		owner: r.owner, version: r.version, kind: r.kind(),
	}
}

// hashPath is FNV-1a folded to 32 bits: deterministic (the index's layout
// is then the same in every run, though nothing observable depends on it).
func hashPath[S string | []byte](p S) uint32 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(p); i++ {
		h ^= uint64(p[i])
		h *= 1099511628211
	}
	h ^= h >> 29
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 32
	return uint32(h)
}

// pathIndex maps paths to ids: linear probing over slots holding the
// path's 32-bit hash in the high half and id+1 in the low half (0: empty).
// The slot of a hash is hash*len>>32, so any length works and the table
// grows by half when it is 4/5 full and halves when 1/4 full. Deletion
// shifts the following entries back (no tombstones).
type pathIndex struct {
	slots []uint64
	n     int
}

func (x *pathIndex) home(h uint32) int { return int(uint64(h) * uint64(len(x.slots)) >> 32) }

// findPath returns the id of path, whose hash is h, or -1.
func findPath[S string | []byte](s *store, path S, h uint32) int32 {
	x := &s.index
	if len(x.slots) == 0 {
		return -1
	}
	for i := x.home(h); ; {
		v := x.slots[i]
		if v == 0 {
			return -1
		}
		if uint32(v>>32) == h {
			id := int32(uint32(v)) - 1
			if string(s.path(id)) == string(path) {
				return id
			}
		}
		if i++; i == len(x.slots) {
			i = 0
		}
	}
}

func (x *pathIndex) insert(h uint32, id int32) {
	if (x.n+1)*5 > len(x.slots)*4 {
		x.grow()
	}
	x.put(uint64(h)<<32 | uint64(uint32(id)+1))
	x.n++
}

func (x *pathIndex) put(v uint64) {
	for i := x.home(uint32(v >> 32)); ; {
		if x.slots[i] == 0 {
			x.slots[i] = v
			return
		}
		if i++; i == len(x.slots) {
			i = 0
		}
	}
}

func (x *pathIndex) grow() { x.resize(max(16, len(x.slots)+len(x.slots)/2)) }

// resize rehashes the entries into a table of n slots.
func (x *pathIndex) resize(n int) {
	old := x.slots
	x.slots = make([]uint64, n)
	for _, v := range old {
		if v != 0 {
			x.put(v)
		}
	}
}

// remove deletes id, whose path hashes to h.
func (x *pathIndex) remove(id int32, h uint32) {
	want := uint64(h)<<32 | uint64(uint32(id)+1)
	i := x.home(h)
	for x.slots[i] != want {
		if i++; i == len(x.slots) {
			i = 0
		}
	}
	x.n--
	for j := i; ; {
		if j++; j == len(x.slots) {
			j = 0
		}
		v := x.slots[j]
		if v == 0 {
			break
		}
		k := x.home(uint32(v >> 32))
		// The entry at j stays if its home lies cyclically in (i, j].
		if (i <= j && i < k && k <= j) || (i > j && (i < k || k <= j)) {
			continue
		}
		x.slots[i] = v
		i = j
	}
	x.slots[i] = 0
	// A tree that shrank gives the table back: half the slots once a
	// quarter are used.
	if len(x.slots) > 64 && x.n*4 < len(x.slots) {
		x.resize(len(x.slots) / 2)
	}
}
