package tree

import (
	"encoding/binary"
	"math/bits"
	"strings"
)

// The node store keeps a tree of millions of znodes in a form the garbage
// collector does not scan. Go's collector marks every live pointer on
// every cycle, so a tree of a node, a data slice and a path string per
// znode, indexed by a map of strings, made each collection walk millions
// of objects, and a tighter GOGC (the only way to keep RSS near the live
// heap) cost reads (BENCHMARKS.md, "A tighter collector was measured and
// not adopted"). Here:
//
//   - a znode is an int32 id; a rec (12 bytes, no pointers, in pages of
//     pageSize recs) says where its record is and holds the fields that
//     change without its data: its meta, kind and liveness;
//   - its record, in an arena of byte chunks of up to 1 MB (no pointers),
//     holds its parent's id, its name (the last path component: the path
//     is its parent's path and the name), its Stat fields as varints
//     (mzxid and mtime as deltas from czxid and ctime, so a node never
//     changed spends a byte on each) and its data. A record is written
//     once and never changed: a setData writes a new one, and a chunk
//     whose records are mostly dead is compacted (its live records copied
//     to the chunk being filled, the chunk dropped);
//   - the path→id index is an open-addressing table of uint64 slots (a
//     32-bit hash of the full path and the id), checked by walking the
//     candidate's names up its parents;
//   - a parent's children are sorted chunks of int32 ids (children.go);
//   - a node's ACL list and counters (nodeMeta, shared between leaves with
//     an equal list) are referred to by a uint32 index into metas.
//
// A node's parent must outlive it (the tree deletes only childless
// nodes). A node stored while its parent path is not (only the root, and
// a store of loose paths in tests) keeps its full path as its name, with
// no parent.
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
	pageBits = 10
	pageSize = 1 << pageBits // recs per page: 12 KB
	pageMask = pageSize - 1
	// chunkSize is the arena's chunk: large enough that its pointer costs
	// the collector nothing, small enough that compacting one is a short
	// pause. A record larger than chunkSize/8 gets a chunk of its own. A
	// store's first chunk is firstChunk bytes, each next one twice the
	// last up to chunkSize, so a small tree (the simulator makes
	// thousands) stays small.
	chunkSize  = 1 << 20
	firstChunk = 4 << 10
	// A rec's bits hold its meta's index (below metaBits), its kind and
	// whether it is in use (liveBit).
	metaBits = 28
	metaMask = 1<<metaBits - 1
	kindMask = 7 << metaBits
	liveBit  = 1 << 31
)

// rec is where a znode's record is, and the fields the store changes in
// place (see node.go for their meaning).
type rec struct {
	chunk uint32 // the arena record holding the name, Stat and data
	off   uint32
	bits  uint32 // meta index (0: a nil meta), kind, live: see metaBits
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
	// scratch is compact's path buffer.
	scratch []byte

	index pathIndex
	// root is the id of "/", or -1.
	root int32

	metas     []*nodeMeta
	metaRefs  []int32
	freeMetas []uint32
}

func newStore() store {
	return store{cur: -1, root: -1, metas: []*nodeMeta{nil}, metaRefs: []int32{0}}
}

// rec returns the rec of id for reading.
func (s *store) rec(id int32) *rec { return recOf(s.pages, id) }

func recOf(pages [][]rec, id int32) *rec { return &pages[id>>pageBits][id&pageMask] }

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

// uvarint decodes the uvarint at b[i:] and returns it and the index past
// it; the arena holds only records the store wrote, so it trusts them.
func uvarint(b []byte, i int) (uint64, int) {
	if c := b[i]; c < 0x80 {
		return uint64(c), i + 1
	}
	return uvarintLong(b, i)
}

func uvarintLong(b []byte, i int) (uint64, int) {
	var v uint64
	for s := uint(0); ; s += 7 {
		c := b[i]
		i++
		if c < 0x80 {
			return v | uint64(c)<<s, i
		}
		v |= uint64(c&0x7f) << s
	}
}

// uvarintLen returns the size of v as a uvarint.
func uvarintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

// putUvarint writes v at b[i:] and returns the index past it.
func putUvarint(b []byte, i int, v uint64) int {
	for v >= 0x80 {
		b[i] = byte(v) | 0x80
		v >>= 7
		i++
	}
	b[i] = byte(v)
	return i + 1
}

func zigzag(v int64) uint64   { return uint64(v<<1) ^ uint64(v>>63) }
func unzigzag(v uint64) int64 { return int64(v>>1) ^ -int64(v&1) }

// recordName returns the parent (-1: none) and name of the record at
// chunk, off, and the index in its chunk past the name.
func recordName(chunks [][]byte, chunk, off uint32) (b []byte, parent int32, name []byte, i int) {
	b = chunks[chunk]
	p, i := uvarint(b, int(off))
	nl, i := uvarint(b, i)
	return b, int32(p) - 1, b[i : i+int(nl)], i + int(nl)
}

// A record's fields after its name are numFields unsigned integers (the
// data length plus one, 0 for nil data; czxid; mzxid-czxid zigzagged;
// ctime; mtime-ctime zigzagged; version zigzagged; owner), each stored in
// as few little-endian bytes as it needs, after 3 bytes holding a 3-bit
// code of each one's size (fieldSize). A reader loads the 8 bytes ending
// at a field's last byte, never past it (a snapshot reads a chunk the
// store goes on appending to): chunkPad bytes lead each chunk so that
// those 8 bytes are in it.
const (
	numFields = 7
	chunkPad  = 8
)

// fieldSize is the size of a field of each code; fieldCode's inverse.
var fieldSize = [8]int{0, 1, 2, 3, 4, 5, 6, 8}

// fieldCode returns the code of the size v takes.
func fieldCode(v uint64) uint32 {
	n := (bits.Len64(v) + 7) / 8
	return uint32(min(n, 7))
}

// field returns the field of size n ending at b[j-1].
func field(b []byte, j, n int) uint64 {
	return binary.LittleEndian.Uint64(b[j-8:j]) >> (64 - 8*n) // a shift by 64 gives 0
}

// recordSpan returns the parent, name and data of the record at chunk, off
// and its size, without decoding the Stat fields.
func recordSpan(chunks [][]byte, chunk, off uint32) (parent int32, name, data []byte, size int) {
	b, parent, name, i := recordName(chunks, chunk, off)
	codes := uint32(b[i]) | uint32(b[i+1])<<8 | uint32(b[i+2])<<16
	i += 3
	dn := fieldSize[codes&7]
	dl := field(b, i+dn, dn)
	for k := range numFields {
		i += fieldSize[codes>>(3*k)&7]
	}
	if dl > 0 {
		data = b[i : i+int(dl)-1 : i+int(dl)-1]
		i += int(dl) - 1
	}
	return parent, name, data, i - int(off)
}

// recordSize returns the size of the record at chunk, off.
func recordSize(chunks [][]byte, chunk, off uint32) int {
	_, _, _, size := recordSpan(chunks, chunk, off)
	return size
}

// decode fills n's data, kind and Stat fields from the record of r and
// returns the record's size.
func decode(chunks [][]byte, r *rec, n *node) int {
	n.kind = r.kind()
	return decodeAt(chunks, r.chunk, r.off, n)
}

// decodeAt fills n's data and Stat fields but its kind from the record at
// chunk, off and returns the record's size.
func decodeAt(chunks [][]byte, chunk, off uint32, n *node) int {
	b, _, _, i := recordName(chunks, chunk, off)
	codes := uint32(b[i]) | uint32(b[i+1])<<8 | uint32(b[i+2])<<16
	i += 3
	i += fieldSize[codes&7]
	dl := field(b, i, fieldSize[codes&7])
	i += fieldSize[codes>>3&7]
	cz := field(b, i, fieldSize[codes>>3&7])
	i += fieldSize[codes>>6&7]
	dz := field(b, i, fieldSize[codes>>6&7])
	i += fieldSize[codes>>9&7]
	ct := field(b, i, fieldSize[codes>>9&7])
	i += fieldSize[codes>>12&7]
	dt := field(b, i, fieldSize[codes>>12&7])
	i += fieldSize[codes>>15&7]
	v := field(b, i, fieldSize[codes>>15&7])
	i += fieldSize[codes>>18&7]
	o := field(b, i, fieldSize[codes>>18&7])
	n.czxid, n.mzxid = int64(cz), int64(cz)+unzigzag(dz)
	n.ctime, n.mtime = int64(ct), int64(ct)+unzigzag(dt)
	n.version = int32(unzigzag(v))
	n.owner = int64(o)
	n.data = nil
	if dl > 0 {
		n.data = b[i : i+int(dl)-1 : i+int(dl)-1]
		i += int(dl) - 1
	}
	return i - int(off)
}

// baseName returns the last component of a stored name (a parentless
// node's name is its path).
func baseName(name []byte, parent int32) []byte {
	if parent < 0 {
		for i := len(name) - 1; i >= 0; i-- {
			if name[i] == '/' {
				return name[i+1:]
			}
		}
	}
	return name
}

// name returns the last component of id's path (bytes of the arena: never
// modify them).
func (s *store) name(id int32) []byte {
	r := s.rec(id)
	_, parent, name, _ := recordName(s.chunks, r.chunk, r.off)
	return baseName(name, parent)
}

// appendPath appends the path of id to dst.
func appendPath(pages [][]rec, chunks [][]byte, dst []byte, id int32) []byte {
	r := recOf(pages, id)
	_, parent, name, _ := recordName(chunks, r.chunk, r.off)
	if parent < 0 {
		return append(dst, name...)
	}
	k := len(dst)
	dst = appendPath(pages, chunks, dst, parent)
	if len(dst) == k+1 { // the parent is the root, "/"
		dst = dst[:k]
	}
	dst = append(dst, '/')
	return append(dst, name...)
}

// path returns the path of id (a new slice).
func (s *store) path(id int32) []byte { return appendPath(s.pages, s.chunks, nil, id) }

// isPath reports whether p is the path of id: p ends in id's name, and
// what comes before it is its parent's path. It is on every lookup, so it
// reads a record's parent and name in place when both lengths fit a byte
// (a parent id below 127, a name shorter than 128 bytes).
func isPath[S string | []byte](s *store, id int32, p S) bool {
	first := true
	for {
		r := s.rec(id)
		b, o := s.chunks[r.chunk], int(r.off)
		var parent int32
		var name []byte
		if c0, c1 := b[o], b[o+1]; c0|c1 < 0x80 {
			parent, name = int32(c0)-1, b[o+2:o+2+int(c1)]
		} else {
			_, parent, name, _ = recordName(s.chunks, r.chunk, r.off)
		}
		if parent < 0 {
			if !first && len(name) == 1 && name[0] == '/' { // the root
				return len(p) == 0
			}
			return string(p) == string(name) // the root, or a node stored without its parent
		}
		k := len(p) - len(name) - 1
		if k < 0 || p[k] != '/' || string(p[k+1:]) != string(name) {
			return false
		}
		if parent == s.root {
			return k == 0
		}
		p, id, first = p[:k], parent, false
	}
}

// parentOf returns the id of path's parent and path's name, or -1 and the
// whole path when the parent is not stored (or path is the root, or a
// path the parent's path and a name would not spell again).
func (s *store) parentOf(path string) (int32, string) {
	i := strings.LastIndexByte(path, '/')
	switch {
	case path == rootPath || i < 0 || i == 1:
		return -1, path
	case i == 0:
		return s.find(rootPath), path[1:]
	}
	if pid := s.find(path[:i]); pid >= 0 {
		return pid, path[i+1:]
	}
	return -1, path
}

// parent returns the id of id's parent, or -1.
func (s *store) parent(id int32) int32 {
	r := s.rec(id)
	_, parent, _, _ := recordName(s.chunks, r.chunk, r.off)
	return parent
}

// view fills n with the node id.
func (s *store) view(id int32, n *node) {
	r := s.rec(id)
	decode(s.chunks, r, n)
	n.meta = s.metas[r.meta()]
}

// find returns the id of path, or -1.
func (s *store) find(path string) int32 {
	return findPath(s, path, hashPath(path))
}

// create stores n at path, which holds no node, and returns its id.
func (s *store) create(path string, n *node) int32 {
	pid, name := s.parentOf(path)
	return s.createIn(path, pid, name, n)
}

// createIn is create for a caller that knows the parent and name
// (parentOf).
func (s *store) createIn(path string, pid int32, name string, n *node) int32 {
	if pid < 0 {
		name = path
	}
	id := s.newID()
	r := s.mutable(id)
	r.bits = liveBit | uint32(n.kind)<<metaBits
	r.chunk, r.off = write(s, pid, name, n)
	s.index.insert(hashPath(path), id)
	s.count++
	if path == rootPath {
		s.root = id
	}
	r.setMeta(s.refMeta(n.meta))
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
	pid, name, data, size := recordSpan(s.chunks, r.chunk, r.off)
	changed := !sameBytes(data, n.data) || r.kind() != n.kind
	if !changed { // a child or the ACL changed: is the Stat the same?
		var old node
		decode(s.chunks, r, &old)
		changed = old.czxid != n.czxid || old.mzxid != n.mzxid || old.ctime != n.ctime ||
			old.mtime != n.mtime || old.version != n.version || old.owner != n.owner
	}
	if changed {
		oc := r.chunk
		r.bits = r.bits&^kindMask | uint32(n.kind)<<metaBits
		r.chunk, r.off = write(s, pid, name, n)
		s.release(oc, size)
	}
	s.compact()
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
	if id == s.root {
		s.root = -1
	}
	r := s.mutable(id)
	s.release(r.chunk, recordSize(s.chunks, r.chunk, r.off))
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

// write appends a record of n under parent pid with name to the arena.
func write[S string | []byte](s *store, pid int32, name S, n *node) (chunk, off uint32) {
	dl := uint64(0)
	if n.data != nil {
		dl = uint64(len(n.data)) + 1
	}
	f := [numFields]uint64{dl, uint64(n.czxid), zigzag(n.mzxid - n.czxid), uint64(n.ctime),
		zigzag(n.mtime - n.ctime), zigzag(int64(n.version)), uint64(n.owner)}
	p := uint64(pid + 1)
	size := uvarintLen(p) + uvarintLen(uint64(len(name))) + len(name) + 3 + len(n.data)
	codes := uint32(0)
	for k, v := range f {
		c := fieldCode(v)
		codes |= c << (3 * k)
		size += fieldSize[c]
	}
	c, o := s.alloc(size)
	b := s.chunks[c][o:] // chunkPad bytes past the record are free: see alloc
	i := putUvarint(b, 0, p)
	i = putUvarint(b, i, uint64(len(name)))
	i += copy(b[i:], name)
	b[i], b[i+1], b[i+2] = byte(codes), byte(codes>>8), byte(codes>>16)
	i += 3
	for k, v := range f {
		binary.LittleEndian.PutUint64(b[i:i+8], v) // the bytes past the field are written next
		i += fieldSize[codes>>(3*k)&7]
	}
	copy(b[i:], n.data)
	return uint32(c), uint32(o)
}

// alloc reserves size bytes of the arena for a record, followed by at
// least chunkPad bytes no record uses yet (write stores 8 bytes at a time).
func (s *store) alloc(size int) (chunk, off int) {
	c := s.cur
	if size > chunkSize/8 {
		c = s.newChunk(chunkPad + size + chunkPad)
	} else if c < 0 || s.used[c]+size+chunkPad > len(s.chunks[c]) {
		next := firstChunk
		if c >= 0 {
			s.dirty = append(s.dirty, c)
			next = min(2*len(s.chunks[c]), chunkSize)
		}
		c = s.newChunk(max(next, chunkPad+size+chunkPad))
		s.cur = c
	}
	o := s.used[c]
	s.used[c] += size
	s.live[c] += size
	return c, o
}

// newChunk adds a chunk of size bytes, chunkPad of them used, at the
// index of a dropped one if there is one (a snapshot has its own copy of
// the list, and update tells a view's data from the stored one by
// address, not by index).
func (s *store) newChunk(size int) int {
	if k := len(s.freeChunks); k > 0 {
		c := s.freeChunks[k-1]
		s.freeChunks = s.freeChunks[:k-1]
		s.chunks[c] = make([]byte, size)
		s.used[c] = chunkPad
		return c
	}
	s.chunks = append(s.chunks, make([]byte, size))
	s.used = append(s.used, chunkPad)
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
// of put and remove, so no rec is half-changed. A record holds no id: its
// node is the one its path finds, if that node's rec points at it; the
// parent of a dead record may be gone, so the path is only spelled while
// its parents are live.
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
		var hashOf parentHash
		for off := chunkPad; off < s.used[c]; {
			id, size := s.recordOwner(c, off, &hashOf)
			if id >= 0 {
				nc, no := s.alloc(size)
				copy(s.chunks[nc][no:], s.chunks[c][off:off+size])
				r := s.mutable(id)
				r.chunk, r.off = uint32(nc), uint32(no)
			}
			off += size
		}
		s.chunks[c] = nil
		s.used[c], s.live[c] = 0, 0
		s.freeChunks = append(s.freeChunks, c)
	}
	s.compacting = false
}

// recordOwner returns the node whose record is at off in chunk c (-1: a
// dead record) and the record's size. The node is the one whose path
// hash finds it in the index and whose rec points at the record; the path
// is hashed from the parent's path (cached in hashOf for the next record
// of the same parent, as most are). A dead record's parent may be gone,
// or its id given to another node; a live node's parents are live.
func (s *store) recordOwner(c, off int, hashOf *parentHash) (int32, int) {
	size := recordSize(s.chunks, uint32(c), uint32(off))
	_, parent, name, _ := recordName(s.chunks, uint32(c), uint32(off))
	h := uint64(fnvOffset)
	if parent >= 0 {
		if parent >= s.next || !s.rec(parent).live() {
			return -1, size
		}
		if hashOf.id != parent || !hashOf.ok {
			s.scratch = appendPath(s.pages, s.chunks, s.scratch[:0], parent)
			if len(s.scratch) == 1 { // the root
				s.scratch = s.scratch[:0]
			}
			*hashOf = parentHash{id: parent, ok: true, h: fnvAdd(fnvOffset, append(s.scratch, '/'))}
		}
		h = hashOf.h
	}
	return s.index.at(s, fnvFinish(fnvAdd(h, name)), uint32(c), uint32(off)), size
}

// parentHash is a parent's path and a '/' hashed (fnvAdd), for
// recordOwner.
type parentHash struct {
	id int32
	ok bool
	h  uint64
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
	// order, when set, is the ids in the order a snapshot writes them
	// (a store of loose paths in tests); nil means storeView.preorder,
	// worked out by the writer.
	order []int32
}

// rec returns the rec of id.
func (v *storeView) rec(id int32) *rec { return recOf(v.pages, id) }

// path returns the path of id (a new slice).
func (v *storeView) path(id int32) []byte { return appendPath(v.pages, v.chunks, nil, id) }

// name returns the last component of id's path (arena bytes).
func (v *storeView) name(id int32) []byte {
	r := v.rec(id)
	_, parent, name, _ := recordName(v.chunks, r.chunk, r.off)
	return baseName(name, parent)
}

// node returns the node view of r.
func (v *storeView) node(r *rec) node {
	var n node
	decode(v.chunks, r, &n)
	n.meta = v.metas[r.meta()]
	return n
}

// pathWriter spells the paths of a view's nodes visited parents first
// (Tree.preorder) from their names, keeping the path of each ancestor of
// the node last spelled as a prefix of one buffer.
type pathWriter struct {
	v    *storeView
	buf  []byte
	ids  []int32 // the ancestors spelled in buf, the root first
	ends []int   // where each one's path ends in buf
}

// path returns the path of id; it is good until the next call.
func (w *pathWriter) path(id int32) []byte {
	r := w.v.rec(id)
	_, parent, name, _ := recordName(w.v.chunks, r.chunk, r.off)
	k := len(w.ids)
	for k > 0 && w.ids[k-1] != parent {
		k--
	}
	w.ids, w.ends = w.ids[:k], w.ends[:k]
	switch {
	case parent < 0:
		w.buf = append(w.buf[:0], name...)
	case k == 0: // not visited parents first: spell it all
		w.buf = appendPath(w.v.pages, w.v.chunks, w.buf[:0], id)
	default:
		w.buf = w.buf[:w.ends[k-1]]
		if len(w.buf) == 1 { // the parent is the root
			w.buf = w.buf[:0]
		}
		w.buf = append(w.buf, '/')
		w.buf = append(w.buf, name...)
	}
	w.ids, w.ends = append(w.ids, id), append(w.ends, len(w.buf))
	return w.buf
}

// hashPath is FNV-1a folded to 32 bits: deterministic (the index's layout
// is then the same in every run, though nothing observable depends on it).
func hashPath[S string | []byte](p S) uint32 { return fnvFinish(fnvAdd(fnvOffset, p)) }

const fnvOffset = 14695981039346656037

// fnvAdd continues the FNV-1a hash h over p.
func fnvAdd[S string | []byte](h uint64, p S) uint64 {
	for i := 0; i < len(p); i++ {
		h ^= uint64(p[i])
		h *= 1099511628211
	}
	return h
}

// fnvFinish folds an FNV-1a hash to hashPath's 32 bits.
func fnvFinish(h uint64) uint32 {
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
			if isPath(s, id, path) {
				return id
			}
		}
		if i++; i == len(x.slots) {
			i = 0
		}
	}
}

// at returns the id whose path hashes to h and whose record is at chunk,
// off, or -1.
func (x *pathIndex) at(s *store, h uint32, chunk, off uint32) int32 {
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
			if r := s.rec(id); r.chunk == chunk && r.off == off {
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
