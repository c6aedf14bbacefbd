package tree

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/adler32"
	"io"
	"maps"
	"slices"
	"strconv"

	"github.com/zabkeeper/zabkeeper/proto"
)

// Snapshots are Apache ZooKeeper's version-2 snapshot stream, byte for byte
// what FileSnap.serialize writes (uncompressed; disk adds compression), so
// ZooKeeper reads ours and we read its:
//
//	FileHeader: int magic "ZKSN", int version 2, long dbid -1
//	int session count, per session: long id, int timeout (ms)
//	ACL cache: int count, per entry: long id, vector<ACL>
//	per node, parents before children (depth first, pre-order): ustring
//	  path ("" for the root), buffer data, long ACL id, StatPersisted
//	  {czxid, mzxid, ctime, mtime, int version, cversion, aversion,
//	  ephemeralOwner, pzxid}
//	ustring "/" (end of nodes)
//	seal: long Adler-32 of every byte before it, ustring "/"
//	ZxidDigest: long zxid, int digest version, long digest
//	seal: long Adler-32 of every byte before it, ustring "/"
//
// The ZxidDigest and its seal are absent from snapshots ZooKeeper wrote with
// digests disabled (or before 3.6); 3.9 may append a long lastProcessedZxid
// and a third seal, which readers ignore as ZooKeeper 3.8 does. ACL id -1
// stands for world:anyone ALL without a cache entry.
//
// The SNAP body a ZooKeeper leader streams after QuorumPacket(SNAP)
// (ZKDatabase.serializeSnapshot, then Learner.syncWithLeader's signature) is
// the middle of that file and nothing else:
//
//	int session count, sessions; ACL cache; nodes; ustring "/"
//	ustring "BenWasHere"
//
// No FileHeader, seals or digest. WriteBody and ReadSnapshotBody handle it
// with the same body writer and reader as the file (serialize,
// readSerialized).
const (
	snapMagic      = 0x5A4B534E // "ZKSN"
	snapVersion    = 2
	snapDBID       = -1
	openACLID      = -1
	flushAt        = 64 << 10
	statPersisted  = 60
	endOfNodesPath = "/"
	// SnapSignature ends a SNAP body ("Missing signature" otherwise).
	SnapSignature = "BenWasHere"
)

// ErrBadSnapshot is wrapped by every ReadSnapshot error about the content.
var ErrBadSnapshot = errors.New("tree: corrupt snapshot")

// ErrMissingACL is what Tree.CheckACLs wraps when a node a snapshot
// loaded still refers to an ACL the snapshot's ACL cache lacks.
//
// Apache ZooKeeper writes its ACL cache before the nodes of a fuzzy
// snapshot, so a node created (or given an ACL by setACL) with a new ACL
// list while the snapshot was written refers to an id the cache does not
// hold. ZooKeeper loads such a snapshot (ReferenceCountedACLCache.addUsage
// ignores the unknown id) and the txns it replays after the snapshot's
// zxid, which include the one that set the node's ACL, give the node its
// list (DataTree.createNode sets an existing node's ACL; setACL sets it).
// The readers do the same: such a node is loaded with an unresolved ACL
// (unresolvedACL, which grants nothing), and the create or setACL txn
// replayed for its path gives it the txn's list; deleting the node also
// ends it. Whoever serves the tree must call CheckACLs once the replay is
// over (the engine does when it starts serving): a node still unresolved
// then is an error naming it, never served with a wrong ACL.
var ErrMissingACL = errors.New("node refers to an ACL the ACL cache lacks")

// unresolvedACL is the ACL list of a node loaded with an ACL id its
// snapshot's cache lacks, until a replayed txn sets the node's ACL: a
// marker compared by pointer (never modified), whose single entry grants
// no permission to anyone. Snapshot.Write writes such a node with an ACL
// id its cache lacks, as the snapshot it came from did (aclNumbering).
var unresolvedACL = &[]proto.ACL{{Perms: 0, Id: proto.Id{Scheme: "zabkeeper", ID: "unresolved-acl"}}}

// resolved records that the node at path no longer has an unresolved ACL.
func (t *Tree) resolved(path string) {
	delete(t.unresolved, path)
	if len(t.unresolved) == 0 {
		t.unresolved = nil
	}
}

// UnresolvedACLs returns how many nodes still have an ACL id their
// snapshot's ACL cache lacked (see ErrMissingACL).
func (t *Tree) UnresolvedACLs() int { return len(t.unresolved) }

// CheckACLs returns an error wrapping ErrMissingACL, naming the first node
// by path and the ACL id it refers to, when a node loaded from a fuzzy
// snapshot still lacks its ACL list: the txns replayed after the snapshot
// did not set it, so the tree must not be served.
func (t *Tree) CheckACLs() error {
	if len(t.unresolved) == 0 {
		return nil
	}
	paths := slices.Sorted(maps.Keys(t.unresolved))
	return fmt.Errorf("tree: %w: node %q refers to ACL %d (%d node(s) in all) and no txn replayed after the snapshot set its ACL",
		ErrMissingACL, paths[0], t.unresolved[paths[0]], len(paths))
}

// Snapshot is a consistent view of a Tree's znodes at one moment. It shares
// the store's pages and arena with the Tree, which copies a page before
// changing it and never changes arena bytes (store.go), so it may be
// written on another goroutine while the Tree goes on applying txns.
type Snapshot struct {
	v      storeView
	zxid   int64
	digest uint64
}

// Snapshot captures the tree as it is now: it copies the lists of the
// store's pages, chunks and metas (a few slice headers per thousand
// znodes), not the znodes. The order the znodes are written in is worked
// out by Write, from the frozen records, on the goroutine that writes:
// walking the child lists here took 10 ms for 250,000 znodes on the event
// loop of every server, every snapshot (BenchmarkSnapshotTake), a stall
// every client request in flight waited out.
func (t *Tree) Snapshot() *Snapshot {
	return &Snapshot{v: t.st.snapshot(), zxid: t.lastZxid, digest: t.digest}
}

// preorder returns the ids of the view's live nodes in the order
// Tree.preorder gives for the tree the view froze (depth first, parents
// before children, siblings by name), from the records alone: each names
// its parent. Children are grouped by parent (counting sort) and each
// group sorted by name, comparing an 8-byte key of the name first. It
// calls yield every yieldEvery records or so.
func (v *storeView) preorder(yield func()) []int32 {
	n := int32(len(v.pages) * pageSize)
	parents := make([]int32, n)
	keys := make([]uint64, n)
	start := make([]int32, n+2) // start[p+1]: children of p begin here, after counting
	root := int32(-1)
	for id := range n {
		if id%yieldEvery == yieldEvery-1 {
			yield()
		}
		r := v.rec(id)
		if !r.live() {
			parents[id] = -2
			continue
		}
		_, parent, name, _ := recordName(v.chunks, r.chunk, r.off)
		parents[id] = parent
		if parent < 0 {
			if string(name) == rootPath {
				root = id
			}
			continue
		}
		keys[id] = nameKey(name)
		start[parent+2]++
	}
	out := make([]int32, 0, v.count)
	if root < 0 {
		return out
	}
	for p := int32(2); p < n+2; p++ {
		start[p] += start[p-1]
	}
	kids := make([]int32, start[n+1])
	for id := range n { // ids ascending: start[p+1] ends as p's end
		if p := parents[id]; p >= 0 {
			kids[start[p+1]] = id
			start[p+1]++
		}
	}
	children := func(p int32) []int32 { return kids[start[p]:start[p+1]] }
	byName := func(a, b int32) int {
		switch ka, kb := keys[a], keys[b]; {
		case ka < kb:
			return -1
		case ka > kb:
			return 1
		}
		return bytes.Compare(v.name(a), v.name(b))
	}
	stack := []int32{root}
	var scratch []keyID
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		out = append(out, id)
		if len(out)%yieldEvery == 0 {
			yield()
		}
		c := children(id)
		sortByNameInto(c, keys, byName, yield, &scratch)
		for j := len(c) - 1; j >= 0; j-- {
			stack = append(stack, c[j])
		}
	}
	return out
}

// sortByName sorts the ids c by name, given keys[id], the 8-byte key of
// each one's name, and byName, the whole comparison; it calls yield every
// yieldEvery ids or so. See sortByNameInto.
func sortByName(c []int32, keys []uint64, byName func(a, b int32) int, yield func()) {
	var scratch []keyID
	sortByNameInto(c, keys, byName, yield, &scratch)
}

// keyID is an id and the key of its name, as sortByNameInto sorts them.
type keyID struct {
	key uint64
	id  int32
}

// radixMin is the shortest list sortByNameInto radix-sorts.
const radixMin = 64

// sortByNameInto is sortByName with scratch space for the sort, kept
// between calls. A list shorter than radixMin is sorted at once; one
// longer than yieldEvery by sortLongByName. One in between is
// radix-sorted on its keys, carried beside the ids, a byte a pass from
// the last, skipping the bytes every key shares (the prefix of sequential
// znodes, the zero padding of short names), then each run of equal keys
// by byName: a comparison sort through byName of 100 parents' 2,500
// children each was a quarter of BenchmarkSnapshotWrite's CPU.
func sortByNameInto(c []int32, keys []uint64, byName func(a, b int32) int, yield func(), scratch *[]keyID) {
	switch {
	case len(c) < radixMin:
		slices.SortFunc(c, byName)
		return
	case len(c) > yieldEvery:
		sortLongByName(c, keys, byName, yield)
		return
	}
	if cap(*scratch) < 2*len(c) {
		*scratch = make([]keyID, 2*len(c))
	}
	src, dst := (*scratch)[:len(c)], (*scratch)[len(c):2*len(c)]
	var count [8][256]int32
	for i, id := range c {
		k := keys[id]
		src[i] = keyID{key: k, id: id}
		for d := range count {
			count[d][byte(k>>(8*d))]++
		}
	}
	for d := range count {
		shift := uint(8 * d)
		n := &count[d]
		if n[byte(src[0].key>>shift)] == int32(len(src)) {
			continue // every key has this byte
		}
		at := int32(0)
		for b, k := range n {
			n[b] = at
			at += k
		}
		for _, e := range src { // stable: equal bytes keep their order
			b := byte(e.key >> shift)
			dst[n[b]] = e
			n[b]++
		}
		src, dst = dst, src
	}
	for i, e := range src {
		c[i] = e.id
	}
	for lo := 0; lo < len(c); {
		hi := lo + 1
		for hi < len(src) && src[hi].key == src[lo].key {
			hi++
		}
		if hi-lo > 1 {
			slices.SortFunc(c[lo:hi], byName)
		}
		lo = hi
	}
}

// sortLongByName sorts a list longer than yieldEvery (a queue's 500,000
// sequential znodes under one parent) for sortByNameInto: radix-sorted on
// its keys, 16 bits a pass (half the passes of a byte a pass, which
// measured slower here), then each run of equal keys by byName; it calls
// yield every yieldEvery ids or so.
func sortLongByName(c []int32, keys []uint64, byName func(a, b int32) int, yield func()) {
	src, dst := c, make([]int32, len(c))
	var count [1 << 16]int32
	for shift := uint(0); shift < 64; shift += 16 {
		count = [1 << 16]int32{}
		for _, id := range src {
			count[keys[id]>>shift&0xffff]++
		}
		if count[keys[src[0]]>>shift&0xffff] == int32(len(src)) {
			continue // every key has this digit
		}
		at := int32(0)
		for d, n := range count {
			count[d] = at
			at += n
		}
		for i, id := range src { // stable: equal digits keep their order
			d := keys[id] >> shift & 0xffff
			dst[count[d]] = id
			count[d]++
			if i%yieldEvery == yieldEvery-1 {
				yield()
			}
		}
		src, dst = dst, src
	}
	if &src[0] != &c[0] {
		copy(c, src)
	}
	for lo := 0; lo < len(c); {
		hi := lo + 1
		for hi < len(c) && keys[c[hi]] == keys[c[lo]] {
			hi++
		}
		if hi-lo > 1 {
			slices.SortFunc(c[lo:hi], byName)
		}
		lo = hi
	}
	yield()
}

// Zxid returns the zxid of the newest txn the snapshot includes.
func (s *Snapshot) Zxid() int64 { return s.zxid }

// Digest returns the tree digest the snapshot was taken at.
func (s *Snapshot) Digest() uint64 { return s.digest }

// SnapshotSession is a session as a snapshot keeps it: ZooKeeper stores no
// password (it is derived from the id).
type SnapshotSession struct {
	ID      int64
	Timeout int32 // ms
}

// SnapshotDigest is the ZxidDigest a snapshot ends with: the tree digest at
// Zxid. ZooKeeper writes zxid 0 and digest 0 when no txn was applied since
// it started.
type SnapshotDigest struct {
	Zxid    int64
	Version int32
	Digest  uint64
}

// pathOrder orders paths depth first, pre-order, siblings by name: as
// strings with '/' below every other byte, so a node comes right before its
// subtree ("/a", "/a/b", "/a-c"), as ZooKeeper's DataTree.serializeNode
// walks the tree.
func pathOrder[S string | []byte](a, b S) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if ca == '/' {
			return -1
		}
		if cb == '/' {
			return 1
		}
		return int(ca) - int(cb)
	}
	return len(a) - len(b)
}

// builtinOpen reports whether ZooKeeper gives the node at path ACL id -1
// (its built-in nodes, created with world:anyone ALL without the cache).
func builtinOpen(path string, acl []proto.ACL) bool {
	return (path == rootPath || path == procPath || path == quotaPath) && slices.Equal(acl, proto.OpenACLUnsafe)
}

// snapWriter encodes into a buffer and flushes it to w in chunks, keeping
// the Adler-32 of everything flushed.
type snapWriter struct {
	w     io.Writer
	e     *proto.Encoder
	sum   hash.Hash32
	total int64
	yield func() // w's Yield, or nothing
}

// Yielder is implemented by a writer that wants a snapshot's Write and
// WriteBody to give way to other goroutines now and then: every flushAt
// bytes and every yieldEvery znodes of the passes that write nothing. A
// server with one P (GOMAXPROCS 1) otherwise runs its event loop beside a
// snapshot of 250,000 znodes only when the runtime preempts the writer,
// every 10 ms: set p99.9 on 3 servers 60 ms against 19 ms with two Ps
// (BENCHMARKS.md "snapshot stalls").
type Yielder interface {
	Yield()
}

// yieldEvery is how many znodes a pass over the snapshot handles between
// yields (about 0.1 ms of work).
const yieldEvery = 4096

func (sw *snapWriter) flush() error {
	b := sw.e.Bytes()
	if sw.sum != nil {
		sw.sum.Write(b)
	}
	n, err := sw.w.Write(b)
	sw.total += int64(n)
	sw.e.Reset()
	sw.yield()
	return err
}

func (sw *snapWriter) maybeFlush() error {
	if sw.e.Len() >= flushAt {
		return sw.flush()
	}
	return nil
}

// seal writes ZooKeeper's SnapStream.sealStream: the checksum of every byte
// so far and the string "/".
func (sw *snapWriter) seal() error {
	if err := sw.flush(); err != nil {
		return err
	}
	sw.e.WriteLong(int64(sw.sum.Sum32()))
	sw.e.WriteString(endOfNodesPath)
	return sw.flush()
}

// newSnapWriter starts with a small buffer that grows to flushAt as the
// snapshot does: a small tree's snapshot (the simulator writes thousands)
// then costs a few KB instead of flushAt.
func newSnapWriter(w io.Writer, sum hash.Hash32) *snapWriter {
	sw := &snapWriter{w: w, e: proto.NewEncoder(make([]byte, 0, 4096)), sum: sum, yield: func() {}}
	if y, ok := w.(Yielder); ok {
		sw.yield = y.Yield
	}
	return sw
}

// Write writes the whole snapshot stream with the given sessions to w and
// returns the number of bytes written. The digest trailer carries the
// snapshot's zxid and digest (zero and zero for a tree no txn changed).
func (s *Snapshot) Write(w io.Writer, sessions []SnapshotSession) (int64, error) {
	sw := newSnapWriter(w, adler32.New())
	e := sw.e
	e.WriteInt(snapMagic)
	e.WriteInt(snapVersion)
	e.WriteLong(snapDBID)
	if err := s.serialize(sw, sessions); err != nil {
		return sw.total, err
	}
	if err := sw.seal(); err != nil {
		return sw.total, err
	}
	d := SnapshotDigest{Version: DigestVersion}
	if s.zxid > 0 {
		d.Zxid, d.Digest = s.zxid, s.digest
	}
	e.WriteLong(d.Zxid)
	e.WriteInt(d.Version)
	e.WriteLong(int64(d.Digest))
	return sw.total, sw.seal()
}

// WriteBody writes the snapshot as the body of a SNAP sync, exactly what a
// ZooKeeper leader writes after the SNAP packet: the sessions, ACL cache
// and nodes as in the file, then the signature; no file header, seals or
// digest (a learner recomputes the digest from the nodes). It returns the
// number of bytes written.
func (s *Snapshot) WriteBody(w io.Writer, sessions []SnapshotSession) (int64, error) {
	sw := newSnapWriter(w, nil)
	if err := s.serialize(sw, sessions); err != nil {
		return sw.total, err
	}
	sw.e.WriteString(SnapSignature)
	return sw.total, sw.flush()
}

// serialize writes ZooKeeper's serializeSnapshot, the part the file and
// the SNAP body share: sessions, ACL cache, nodes and the "/" that ends
// them. The end stays buffered for the caller to follow.
func (s *Snapshot) serialize(sw *snapWriter, sessions []SnapshotSession) error {
	e := sw.e
	e.WriteInt(int32(len(sessions)))
	for _, ss := range sessions {
		e.WriteLong(ss.ID)
		e.WriteInt(ss.Timeout)
		if err := sw.maybeFlush(); err != nil {
			return err
		}
	}

	// ACL ids in first-use order along the node order, as a ZooKeeper
	// that created the nodes in that order would have numbered them.
	v := &s.v
	ids := v.order
	if ids == nil {
		ids = v.preorder(sw.yield)
	}
	acls := aclNumbering{byList: map[*[]proto.ACL]int64{}, byKey: map[string]int64{}, key: proto.NewEncoder(nil)}
	paths := pathWriter{v: v}
	for i, id := range ids {
		// A list numbered already is numbered whatever the node's path
		// (which only decides whether a built-in node's list is
		// numbered at all): most nodes share a list, and their paths
		// need not be built in this pass.
		if m := v.metas[v.rec(id).meta()]; !acls.known(m) {
			acls.number(paths.path(id), m)
		}
		if i%yieldEvery == yieldEvery-1 {
			sw.yield()
		}
	}
	lists := acls.lists
	acls.missing = int64(len(lists) + 1)
	e.WriteInt(int32(len(lists)))
	for i, acl := range lists {
		e.WriteLong(int64(i + 1))
		proto.WriteACLs(e, acl)
		if err := sw.maybeFlush(); err != nil {
			return err
		}
	}

	for _, id := range ids {
		r := v.rec(id)
		n := v.node(r)
		p := paths.path(id)
		if string(p) == rootPath {
			e.WriteString("")
		} else {
			e.WriteBuffer(p)
		}
		e.WriteBuffer(n.data)
		e.WriteLong(acls.number(p, v.metas[r.meta()]))
		e.WriteLong(n.czxid)
		e.WriteLong(n.mzxid)
		e.WriteLong(n.ctime)
		e.WriteLong(n.mtime)
		e.WriteInt(n.version)
		e.WriteInt(n.cversion())
		e.WriteInt(n.aversion())
		e.WriteLong(n.ephemeralOwner())
		e.WriteLong(n.pzxid())
		if err := sw.maybeFlush(); err != nil {
			return err
		}
	}
	e.WriteString(endOfNodesPath)
	return nil
}

// aclNumbering gives the ACL lists of a snapshot's nodes their ids in the
// ACL cache, in first-use order; asked again for a node it numbered, it
// gives the same id.
type aclNumbering struct {
	lists  [][]proto.ACL
	byList map[*[]proto.ACL]int64 // the lists seen, by the node's reference
	byKey  map[string]int64       // by their encoding: equal lists, one id
	key    *proto.Encoder
	// missing is the id, one past the cache's, of the nodes whose ACL is
	// unresolved (a fuzzy snapshot's, until the replay sets it): set once
	// the cache is numbered. Such a node is written as it was read, with
	// an id the cache lacks, so that reading the snapshot back and
	// replaying the log after it resolves it again.
	missing int64
}

// known reports whether the ACL list of meta m has its id already (the
// nodes that share it get that id, or -1 as built-in open nodes).
func (a *aclNumbering) known(m *nodeMeta) bool {
	if m == nil || m.acl == nil {
		_, ok := a.byList[nil]
		return ok
	}
	_, ok := a.byList[m.acl]
	return ok
}

// number returns the ACL id of the node at path with meta m: -1 for the
// built-in open nodes.
func (a *aclNumbering) number(path []byte, m *nodeMeta) int64 {
	var ref *[]proto.ACL
	var acl []proto.ACL
	if m != nil && m.acl != nil {
		ref, acl = m.acl, *m.acl
	}
	if ref == unresolvedACL {
		return a.missing
	}
	if len(path) <= len(quotaPath) && builtinOpen(string(path), acl) {
		return openACLID
	}
	if id, ok := a.byList[ref]; ok {
		return id
	}
	a.key.Reset()
	proto.WriteACLs(a.key, acl)
	id, ok := a.byKey[string(a.key.Bytes())]
	if !ok {
		a.lists = append(a.lists, acl)
		id = int64(len(a.lists))
		a.byKey[string(a.key.Bytes())] = id
	}
	a.byList[ref] = id
	return id
}

// LoadedSnapshot is a snapshot read by ReadSnapshot or ReadSnapshotBody.
type LoadedSnapshot struct {
	// Tree is the data tree, with LastZxid the zxid ReadSnapshot was given.
	Tree *Tree
	// Sessions are the sessions in the snapshot, in file order.
	Sessions []SnapshotSession
	// Digest is the snapshot's ZxidDigest; HasDigest is false for a
	// snapshot written without one.
	Digest    SnapshotDigest
	HasDigest bool
	// PendingDigest is true when Digest is for a zxid past the snapshot's
	// (a fuzzy snapshot): the tree must match it once the log replayed up
	// to Digest.Zxid. ReadSnapshot already checked a digest for the
	// snapshot's own zxid.
	PendingDigest bool
	// DigestMismatch is true when the digest is for the snapshot's own zxid
	// and the tree read hashes otherwise. ZooKeeper's own fuzzy snapshots
	// can record that (its digest and its nodes are taken while txns
	// apply), and ZooKeeper then logs and counts the mismatch
	// (DataTree.compareSnapshotDigests) but serves the data: so do we.
	// Damage is what the Adler-32 seals catch.
	DigestMismatch bool
}

// snapReader reads jute from a buffered stream, keeping the offset past and
// (for files, with sum set) the Adler-32 of every byte consumed.
type snapReader struct {
	r   *bufio.Reader
	sum hash.Hash32 // nil for a SNAP body
	off int64
	buf [8]byte
	// scratch holds short strings while they are read; unread is the
	// length of a long one str already consumed, for bytes.
	scratch []byte
	unread  int32
	data    []byte // buffer's
}

// maxDirectAlloc is the largest length read into a buffer allocated up
// front; longer ones grow with the input, so a corrupt length costs no more
// memory than the stream holds.
const maxDirectAlloc = 1 << 20

// newSnapReader buffers r by up to snapReadBuffer bytes, fewer when r
// says how many bytes it holds (a bytes.Reader of a snapshot in memory):
// the simulator reads thousands of small snapshots, and a 256 KiB buffer
// each was a fifth of its allocated bytes.
func newSnapReader(r io.Reader, sum hash.Hash32) *snapReader {
	size := snapReadBuffer
	if l, ok := r.(interface{ Len() int }); ok {
		size = max(16, min(size, l.Len()))
	}
	return &snapReader{r: bufio.NewReaderSize(r, size), sum: sum}
}

// snapReadBuffer is a snapshot reader's buffer.
const snapReadBuffer = 256 << 10

// consumed accounts for bytes read.
func (sr *snapReader) consumed(p []byte) {
	if sr.sum != nil {
		sr.sum.Write(p)
	}
	sr.off += int64(len(p))
}

func (sr *snapReader) errf(format string, args ...any) error {
	return fmt.Errorf("%w: at offset %d: %s", ErrBadSnapshot, sr.off, fmt.Sprintf(format, args...))
}

func (sr *snapReader) full(p []byte, what string) error {
	n, err := io.ReadFull(sr.r, p)
	sr.consumed(p[:n])
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return sr.errf("truncated in %s: %v", what, io.ErrUnexpectedEOF)
		}
		return fmt.Errorf("tree: read snapshot %s at offset %d: %w", what, sr.off, err)
	}
	return nil
}

func (sr *snapReader) int32(what string) (int32, error) {
	if err := sr.full(sr.buf[:4], what); err != nil {
		return 0, err
	}
	return int32(binary.BigEndian.Uint32(sr.buf[:4])), nil
}

func (sr *snapReader) int64(what string) (int64, error) {
	if err := sr.full(sr.buf[:8], what); err != nil {
		return 0, err
	}
	return int64(binary.BigEndian.Uint64(sr.buf[:8])), nil
}

// bytes reads a jute buffer; -1 is null.
func (sr *snapReader) bytes(what string) ([]byte, error) {
	n := sr.unread
	if n != 0 {
		sr.unread = 0
	} else {
		var err error
		if n, err = sr.int32(what); err != nil {
			return nil, err
		}
	}
	switch {
	case n == -1:
		return nil, nil
	case n < 0:
		return nil, sr.errf("%s of length %d", what, n)
	case n <= maxDirectAlloc:
		b := make([]byte, n)
		return b, sr.full(b, what)
	}
	var bb bytes.Buffer
	k, err := io.Copy(&bb, io.LimitReader(sr.r, int64(n)))
	sr.consumed(bb.Bytes())
	if err != nil {
		return nil, fmt.Errorf("tree: read snapshot %s at offset %d: %w", what, sr.off, err)
	}
	if k != int64(n) {
		return nil, sr.errf("truncated in %s: %v", what, io.ErrUnexpectedEOF)
	}
	return bb.Bytes(), nil
}

// buffer is bytes for data the caller copies before the next read: a
// short buffer is read into one of the reader's, allocated once.
func (sr *snapReader) buffer(what string) ([]byte, error) {
	n, err := sr.int32(what)
	if err != nil {
		return nil, err
	}
	if n < 0 || n > maxDirectAlloc {
		sr.unread = n
		if n == -1 {
			sr.unread = 0
			return nil, nil
		}
		return sr.bytes(what)
	}
	if cap(sr.data) < int(n) || sr.data == nil {
		sr.data = make([]byte, max(int(n), 4096))
	}
	b := sr.data[:n]
	return b, sr.full(b, what)
}

// str reads a jute ustring; null reads as "" with ok false. Short strings
// (paths, ACL ids) are read through a scratch buffer: one allocation each.
func (sr *snapReader) str(what string) (s string, ok bool, err error) {
	n, err := sr.int32(what)
	if err != nil {
		return "", false, err
	}
	switch {
	case n == -1:
		return "", false, nil
	case n < 0:
		return "", false, sr.errf("%s of length %d", what, n)
	case n <= 4096:
		if cap(sr.scratch) < int(n) {
			sr.scratch = make([]byte, 4096)
		}
		b := sr.scratch[:n]
		if err := sr.full(b, what); err != nil {
			return "", false, err
		}
		return string(b), true, nil
	}
	sr.unread = n
	b, err := sr.bytes(what)
	return string(b), err == nil, err
}

// seal checks ZooKeeper's SnapStream.checkSealIntegrity: a long equal to
// the checksum of every byte before it, then the string "/".
func (sr *snapReader) seal(which string) error {
	want := int64(sr.sum.Sum32())
	got, err := sr.int64(which + " checksum")
	if err != nil {
		return err
	}
	if got != want {
		return sr.errf("%s checksum %#x, the bytes before it sum to %#x (CRC corruption)", which, got, want)
	}
	s, _, err := sr.str(which + " end")
	if err != nil {
		return err
	}
	if s != endOfNodesPath {
		return sr.errf("%s ends with %q, not %q", which, s, endOfNodesPath)
	}
	return nil
}

// ReadSnapshot reads a ZooKeeper version-2 snapshot stream (uncompressed)
// whose file is named for zxid and rebuilds the tree (children, ephemerals,
// containers and TTL nodes, digest). It checks the file header, the
// structure (every node's parent comes first), the ACL references and both
// seals, and a digest recorded for zxid itself; it never panics on corrupt
// input and bounds every allocation by the input. Bytes after the digest
// seal (ZooKeeper 3.9's lastProcessedZxid) are not read.
func ReadSnapshot(r io.Reader, opts Options, zxid int64) (*LoadedSnapshot, error) {
	sr := newSnapReader(r, adler32.New())
	magic, err := sr.int32("file header")
	if err != nil {
		return nil, err
	}
	if magic != snapMagic {
		return nil, fmt.Errorf("%w: at offset 0: magic %#08x, not ZKSN (%#08x): not a ZooKeeper snapshot", ErrBadSnapshot, uint32(magic), snapMagic)
	}
	v, err := sr.int32("file header")
	if err != nil {
		return nil, err
	}
	if v != snapVersion {
		return nil, fmt.Errorf("%w: at offset 4: snapshot format version %d, only %d is known", ErrBadSnapshot, v, snapVersion)
	}
	if _, err := sr.int64("file header dbid"); err != nil {
		return nil, err
	}
	ls, t, err := sr.readSerialized(opts, zxid)
	if err != nil {
		return nil, err
	}
	if err := sr.seal("snapshot"); err != nil {
		return nil, err
	}
	// The digest is optional: a snapshot without one ends here.
	if _, err := sr.r.Peek(1); err == io.EOF {
		t.finishLoad()
		ls.Tree = t
		return ls, nil
	}
	if ls.Digest.Zxid, err = sr.int64("digest zxid"); err != nil {
		return nil, err
	}
	if ls.Digest.Version, err = sr.int32("digest version"); err != nil {
		return nil, err
	}
	if ls.Digest.Version < 2 { // ZooKeeper's first digests were hex strings
		s, ok, err := sr.str("digest")
		if err != nil {
			return nil, err
		}
		if ok {
			d, perr := strconv.ParseUint(s, 16, 64)
			if perr != nil {
				return nil, sr.errf("digest %q is not hex", s)
			}
			ls.Digest.Digest = d
		}
	} else {
		d, err := sr.int64("digest")
		if err != nil {
			return nil, err
		}
		ls.Digest.Digest = uint64(d)
	}
	if err := sr.seal("digest"); err != nil {
		return nil, err
	}
	ls.HasDigest = true
	// As DataTree.deserializeZxidDigest and FileSnap.deserialize: a digest
	// for zxid 0 is empty, one older than the file's zxid is of no use, one
	// for the zxid is checked now and a later one once the log reaches it.
	if ls.Digest.Zxid > 0 && ls.Digest.Zxid >= zxid && ls.Digest.Version == DigestVersion {
		if ls.Digest.Zxid > zxid {
			ls.PendingDigest = true
		} else if ls.Digest.Digest != t.digest {
			ls.DigestMismatch = true
		}
	}
	t.finishLoad()
	ls.Tree = t
	return ls, nil
}

// ReadSnapshotBody reads a SNAP body (see WriteBody) for the leader's zxid
// and rebuilds the tree as ReadSnapshot does, with the same structure
// checks and bounds. r must hold the body and nothing else (a learner's
// spooled copy): a missing or wrong signature and bytes after it are
// errors. The body carries no digest: the tree's is computed from its
// nodes, so HasDigest is false.
func ReadSnapshotBody(r io.Reader, opts Options, zxid int64) (*LoadedSnapshot, error) {
	sr := newSnapReader(r, nil)
	ls, t, err := sr.readSerialized(opts, zxid)
	if err != nil {
		return nil, err
	}
	at := sr.off
	sig, ok, err := sr.str("signature")
	if err != nil {
		return nil, err
	}
	if !ok || sig != SnapSignature {
		return nil, fmt.Errorf("%w: at offset %d: signature %q, not %q", ErrBadSnapshot, at, sig, SnapSignature)
	}
	switch _, err := sr.r.Peek(1); {
	case err == nil:
		return nil, sr.errf("bytes after the signature")
	case err != io.EOF:
		return nil, fmt.Errorf("tree: read SNAP body after the signature at offset %d: %w", sr.off, err)
	}
	t.finishLoad()
	ls.Tree = t
	return ls, nil
}

// readSerialized reads what serialize writes: sessions, ACL cache and
// nodes through the "/" that ends them, into a tree whose LastZxid is
// zxid. The tree still lacks emptySystemData.
func (sr *snapReader) readSerialized(opts Options, zxid int64) (*LoadedSnapshot, *Tree, error) {
	ls := &LoadedSnapshot{}
	count, err := sr.int32("session count")
	if err != nil {
		return nil, nil, err
	}
	if count < 0 {
		return nil, nil, sr.errf("session count %d", count)
	}
	ls.Sessions = make([]SnapshotSession, 0, min(int(count), 1<<16))
	for range count {
		id, err := sr.int64("session id")
		if err != nil {
			return nil, nil, err
		}
		to, err := sr.int32("session timeout")
		if err != nil {
			return nil, nil, err
		}
		ls.Sessions = append(ls.Sessions, SnapshotSession{ID: id, Timeout: to})
	}

	acls, err := sr.aclCache()
	if err != nil {
		return nil, nil, err
	}
	t := newEmpty(opts)
	t.lastZxid = zxid
	// The loaded lists go into the tree's ACL cache, so nodes created
	// later with an equal list share it with the loaded ones.
	// In id order: which lists fit under maxSharedACLs must not depend
	// on map order (it decides nothing observable, but stays the same).
	refs := make(map[int64]*nodeMeta, len(acls))
	for _, id := range slices.Sorted(maps.Keys(acls)) {
		refs[id] = t.acls.share(acls[id])
	}
	open := t.acls.share(slices.Clone(proto.OpenACLUnsafe))
	// The nodes whose ACL id the cache lacks (see ErrMissingACL).
	unresolved := metaOf(nil)
	unresolved.acl = unresolvedACL
	var stat [statPersisted]byte
	var n node
	for {
		at := sr.off
		p, ok, err := sr.str("node path")
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			return nil, nil, fmt.Errorf("%w: at offset %d: null node path", ErrBadSnapshot, at)
		}
		if p == endOfNodesPath {
			break
		}
		// The data is read into a buffer of the reader's: putNode copies
		// it into the store's arena.
		data, err := sr.buffer("node data")
		if err != nil {
			return nil, nil, err
		}
		aclID, err := sr.int64("node ACL id")
		if err != nil {
			return nil, nil, err
		}
		if err := sr.full(stat[:], "node stat"); err != nil {
			return nil, nil, err
		}
		n = node{data: data}
		missing := false
		if aclID == openACLID {
			n.meta = open
		} else if ref, ok := refs[aclID]; ok {
			n.meta = ref
		} else {
			n.meta, missing = unresolved, true
		}
		n.czxid = int64(binary.BigEndian.Uint64(stat[0:]))
		n.mzxid = int64(binary.BigEndian.Uint64(stat[8:]))
		n.ctime = int64(binary.BigEndian.Uint64(stat[16:]))
		n.mtime = int64(binary.BigEndian.Uint64(stat[24:]))
		n.version = int32(binary.BigEndian.Uint32(stat[32:]))
		n.setEphemeralOwner(int64(binary.BigEndian.Uint64(stat[44:])))
		n.setCounters(int64(binary.BigEndian.Uint64(stat[52:])), int32(binary.BigEndian.Uint32(stat[36:])), int32(binary.BigEndian.Uint32(stat[40:])))
		if err := t.loadNode(p, &n); err != nil {
			return nil, nil, fmt.Errorf("%w: at offset %d: %w", ErrBadSnapshot, at, err)
		}
		if missing {
			if t.unresolved == nil {
				t.unresolved = map[string]int64{}
			}
			if p == "" {
				p = rootPath
			}
			t.unresolved[p] = aclID
		}
	}
	if t.st.find(rootPath) < 0 {
		return nil, nil, sr.errf("no root node")
	}
	return ls, t, nil
}

// aclCache reads ZooKeeper's ReferenceCountedACLCache: the ACL lists the
// nodes refer to by id.
func (sr *snapReader) aclCache() (map[int64][]proto.ACL, error) {
	count, err := sr.int32("ACL cache size")
	if err != nil {
		return nil, err
	}
	if count < 0 {
		return nil, sr.errf("ACL cache size %d", count)
	}
	out := make(map[int64][]proto.ACL, min(int(count), 1<<10))
	for range count {
		id, err := sr.int64("ACL id")
		if err != nil {
			return nil, err
		}
		n, err := sr.int32("ACL count")
		if err != nil {
			return nil, err
		}
		if n < 0 { // ZooKeeper fails on a null vector here too
			return nil, sr.errf("ACL %d has a null list", id)
		}
		acl := make([]proto.ACL, 0, min(int(n), 16))
		for range n {
			perms, err := sr.int32("ACL perms")
			if err != nil {
				return nil, err
			}
			scheme, _, err := sr.str("ACL scheme")
			if err != nil {
				return nil, err
			}
			ident, _, err := sr.str("ACL id")
			if err != nil {
				return nil, err
			}
			acl = append(acl, proto.ACL{Perms: perms, Id: proto.Id{Scheme: scheme, ID: ident}})
		}
		if len(acl) == 0 {
			acl = []proto.ACL{} // an empty list still resolves
		}
		out[id] = acl
	}
	return out, nil
}

// loadNode inserts a node read from a snapshot: its parent must be there
// already, as ZooKeeper's DataTree.deserialize requires.
func (t *Tree) loadNode(p string, n *node) error {
	if p == "" {
		p = rootPath
	} else {
		if p == rootPath || !validatePath(p) {
			return fmt.Errorf("invalid path %q", p)
		}
		parent, _ := splitPath(p)
		pid := t.st.find(parent)
		if pid < 0 {
			return fmt.Errorf("unable to find parent %s of path %s", parent, p)
		}
		if t.st.rec(pid).kind() == kindEphemeral {
			return fmt.Errorf("%q is the child of an ephemeral", p)
		}
	}
	if t.st.find(p) >= 0 {
		return fmt.Errorf("duplicate path %q", p)
	}
	t.putNode(p, n)
	return nil
}

// finishLoad makes a tree read from a snapshot file or a SNAP body what
// this server serves: system nodes as ZooKeeper fills them, and
// /zookeeper/config from this server's own configuration, never the one
// the snapshot brought (ZOOKEEPER-2819).
func (t *Tree) finishLoad() {
	t.emptySystemData()
	t.initConfigNode()
}

// emptySystemData gives the system nodes a snapshot stored with null data
// the empty data ZooKeeper (and New) gives them, so a restarted server
// answers as a fresh one does. Data is not in the digest's way: null and
// empty data hash alike.
func (t *Tree) emptySystemData() {
	for _, p := range []string{rootPath, procPath, quotaPath, configPath} {
		if n := t.node(p); n != nil && n.data == nil {
			cp := *n
			cp.data = []byte{}
			t.putNode(p, &cp)
		}
	}
}
