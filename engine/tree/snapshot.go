package tree

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"slices"

	"github.com/zabkeeper/zabkeeper/proto"
)

// Snapshot is a consistent view of a Tree's znodes at one moment. It shares
// the immutable node values with the Tree, so it may be written on another
// goroutine while the Tree goes on applying txns.
type Snapshot struct {
	nodes  map[string]*node
	zxid   int64
	digest uint64
}

// Snapshot captures the tree as it is now. It copies the path→node map
// (pointers only); nothing it refers to is ever mutated.
func (t *Tree) Snapshot() *Snapshot {
	return &Snapshot{nodes: maps.Clone(t.nodes), zxid: t.lastZxid, digest: t.digest}
}

// Zxid returns the zxid of the newest txn the snapshot includes.
func (s *Snapshot) Zxid() int64 { return s.zxid }

// Digest returns the tree digest the snapshot was taken at.
func (s *Snapshot) Digest() uint64 { return s.digest }

// Snapshot stream layout (all jute, big-endian):
//
//	magic "ZKTR", int format, long zxid, long node count,
//	per node in path order: int length, then path, data, ACL vector,
//	  czxid, mzxid, ctime, mtime, pzxid, version, cversion (internal),
//	  aversion, int kind, owner, ttl,
//	long digest, int CRC-32C of everything before it.
const (
	snapMagic  = "ZKTR"
	snapFormat = 1
	flushAt    = 64 << 10
)

// WriteTo writes the snapshot to w in a deterministic order (sorted paths)
// and returns the number of bytes written.
func (s *Snapshot) WriteTo(w io.Writer) (int64, error) {
	var total int64
	var sum uint32
	e := proto.NewEncoder(append(make([]byte, 0, flushAt+4096), snapMagic...))
	flush := func() error {
		sum = crc32.Update(sum, crcTable, e.Bytes())
		n, err := w.Write(e.Bytes())
		total += int64(n)
		e.Reset()
		return err
	}
	e.WriteInt(snapFormat)
	e.WriteLong(s.zxid)
	e.WriteLong(int64(len(s.nodes)))
	for _, p := range slices.Sorted(maps.Keys(s.nodes)) {
		start := e.Len()
		e.WriteInt(0) // length, patched below
		encodeNode(e, p, s.nodes[p])
		binary.BigEndian.PutUint32(e.Bytes()[start:], uint32(e.Len()-start-4))
		if e.Len() >= flushAt {
			if err := flush(); err != nil {
				return total, err
			}
		}
	}
	e.WriteLong(int64(s.digest))
	if err := flush(); err != nil {
		return total, err
	}
	e.WriteInt(int32(sum))
	return total, flush()
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func encodeNode(e *proto.Encoder, path string, n *node) {
	e.WriteString(path)
	e.WriteBuffer(n.data)
	proto.WriteACLs(e, n.acl)
	e.WriteLong(n.czxid)
	e.WriteLong(n.mzxid)
	e.WriteLong(n.ctime)
	e.WriteLong(n.mtime)
	e.WriteLong(n.pzxid)
	e.WriteInt(n.version)
	e.WriteInt(n.cversion)
	e.WriteInt(n.aversion)
	e.WriteInt(int32(n.kind))
	e.WriteLong(n.owner)
	e.WriteLong(n.ttl)
}

// ErrBadSnapshot is wrapped by every Load error about the content.
var ErrBadSnapshot = errors.New("tree: corrupt snapshot")

// Load reads a snapshot written by Snapshot.WriteTo and rebuilds the tree
// (children, ephemerals, digest). It reads exactly the snapshot's bytes
// from r, bounds every allocation by the input, checks the structure and
// the digest, and returns an error (never panics) on corrupt input.
func Load(r io.Reader, opts Options) (*Tree, error) {
	crc := crc32.New(crcTable)
	raw := r
	r = io.TeeReader(raw, crc)
	var hdr [4 + 4 + 8 + 8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("tree: read snapshot header: %w", err)
	}
	if string(hdr[:4]) != snapMagic {
		return nil, fmt.Errorf("%w: bad magic", ErrBadSnapshot)
	}
	d := proto.NewDecoder(hdr[4:])
	if f := d.ReadInt(); f != snapFormat {
		return nil, fmt.Errorf("%w: unknown format %d", ErrBadSnapshot, f)
	}
	zxid := d.ReadLong()
	count := d.ReadLong()
	if count < 1 {
		return nil, fmt.Errorf("%w: %d nodes", ErrBadSnapshot, count)
	}
	t := newEmpty(opts)
	t.lastZxid = zxid
	var lenBuf [4]byte
	for i := int64(0); i < count; i++ {
		if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
			return nil, fmt.Errorf("tree: read snapshot node %d: %w", i, err)
		}
		size := int32(binary.BigEndian.Uint32(lenBuf[:]))
		// A node record holds a path, data and ACL no larger than a txn
		// (proto.MaxTxnSize, whatever jute.maxbuffer says now, since a
		// snapshot outlives a lowered setting), and a node may have had
		// both data and ACL set to the most: only jute's int32 bounds it.
		// It is read through a LimitReader, so a corrupt length costs no
		// more memory than the input holds.
		if size < 0 {
			return nil, fmt.Errorf("%w: node record of %d bytes", ErrBadSnapshot, size)
		}
		buf, err := io.ReadAll(io.LimitReader(r, int64(size)))
		if err != nil {
			return nil, fmt.Errorf("tree: read snapshot node %d: %w", i, err)
		}
		if len(buf) != int(size) {
			return nil, fmt.Errorf("tree: read snapshot node %d: %w", i, io.ErrUnexpectedEOF)
		}
		path, n, err := decodeNode(buf)
		if err != nil {
			return nil, err
		}
		if t.nodes[path] != nil {
			return nil, fmt.Errorf("%w: duplicate path %q", ErrBadSnapshot, path)
		}
		t.putNode(path, n)
	}
	var digest [8]byte
	if _, err := io.ReadFull(r, digest[:]); err != nil {
		return nil, fmt.Errorf("tree: read snapshot digest: %w", err)
	}
	var sum [4]byte
	if _, err := io.ReadFull(raw, sum[:]); err != nil {
		return nil, fmt.Errorf("tree: read snapshot checksum: %w", err)
	}
	if binary.BigEndian.Uint32(sum[:]) != crc.Sum32() {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrBadSnapshot)
	}
	if err := t.checkLoaded(); err != nil {
		return nil, err
	}
	if want := binary.BigEndian.Uint64(digest[:]); want != t.digest {
		return nil, fmt.Errorf("%w: digest %016x, content hashes to %016x", ErrBadSnapshot, want, t.digest)
	}
	t.emptySystemData()
	return t, nil
}

// emptySystemData gives the system nodes of a tree loaded from an older
// snapshot, which kept their data null, the empty data ZooKeeper (and New)
// gives them, so a restarted server answers as a fresh one does.
func (t *Tree) emptySystemData() {
	for _, p := range []string{rootPath, procPath, quotaPath, configPath} {
		if n := t.nodes[p]; n != nil && n.data == nil {
			cp := *n
			cp.data = []byte{}
			t.putNode(p, &cp)
		}
	}
}

func decodeNode(buf []byte) (string, *node, error) {
	d := proto.NewDecoder(buf)
	path := d.ReadString()
	n := &node{data: d.ReadBuffer(), acl: proto.ReadACLs(d)}
	n.czxid = d.ReadLong()
	n.mzxid = d.ReadLong()
	n.ctime = d.ReadLong()
	n.mtime = d.ReadLong()
	n.pzxid = d.ReadLong()
	n.version = d.ReadInt()
	n.cversion = d.ReadInt()
	n.aversion = d.ReadInt()
	k := d.ReadInt()
	n.owner = d.ReadLong()
	n.ttl = d.ReadLong()
	if d.Err() != nil {
		return "", nil, fmt.Errorf("%w: node record: %w", ErrBadSnapshot, d.Err())
	}
	if d.Remaining() != 0 {
		return "", nil, fmt.Errorf("%w: node record %q has %d trailing bytes", ErrBadSnapshot, path, d.Remaining())
	}
	if !validatePath(path) {
		return "", nil, fmt.Errorf("%w: invalid path %q", ErrBadSnapshot, path)
	}
	if k < 0 || k >= int32(kindLimit) {
		return "", nil, fmt.Errorf("%w: node %q of kind %d", ErrBadSnapshot, path, k)
	}
	n.kind = kind(k)
	if n.kind != kindEphemeral && n.owner != 0 || n.kind != kindTTL && n.ttl != 0 {
		return "", nil, fmt.Errorf("%w: node %q: owner or ttl on a node of kind %d", ErrBadSnapshot, path, k)
	}
	return path, n, nil
}

// checkLoaded verifies the structure of a loaded tree: a root, every node's
// parent present, and no children under an ephemeral.
func (t *Tree) checkLoaded() error {
	if t.nodes[rootPath] == nil {
		return fmt.Errorf("%w: no root", ErrBadSnapshot)
	}
	for _, p := range slices.Sorted(maps.Keys(t.nodes)) {
		if p == rootPath {
			continue
		}
		parent, _ := splitPath(p)
		pn := t.nodes[parent]
		if pn == nil {
			return fmt.Errorf("%w: %q has no parent", ErrBadSnapshot, p)
		}
		if pn.kind == kindEphemeral {
			return fmt.Errorf("%w: %q is the child of an ephemeral", ErrBadSnapshot, p)
		}
	}
	return nil
}
