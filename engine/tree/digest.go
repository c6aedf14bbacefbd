package tree

import (
	"encoding/binary"
	"hash/crc32"
	"strings"
)

// The tree digest is Apache ZooKeeper's (DigestCalculator, digest version
// 2, summed as AdHash does), so a digest zabkeeper writes in a snapshot or
// txn verifies in ZooKeeper and the other way round. Each node contributes
// the CRC-32 (IEEE) of its path ("" for the root), its data and a 60-byte
// block of stored Stat fields; the tree's digest is the wrapping 64-bit sum
// of the contributions, so a change costs O(size of the node): subtract the
// old node's hash, add the new one's. Nodes under "/zookeeper/" contribute
// nothing (ZooKeeper updates quota nodes locally, so it leaves them out).
// The ACL and the child list are not covered.

// DigestVersion is the version of the digest, as ZooKeeper writes it beside
// a digest in snapshots and txns (DigestCalculator.DIGEST_VERSION).
const DigestVersion = 2

// systemSubtree prefixes the paths the digest leaves out
// (ZooDefs.ZOOKEEPER_NODE_SUBTREE).
const systemSubtree = "/zookeeper/"

// nodeHash returns the digest contribution of the node at path.
func nodeHash(path string, n *node) uint64 {
	var scratch []byte
	return hashNode(&scratch, path, n)
}

// hashNode is nodeHash with a scratch buffer the caller keeps: the CRC
// routines take slices that escape, so hashing from the stack would cost two
// allocations per call, four per write (Tree.hashScratch).
func hashNode(scratch *[]byte, path string, n *node) uint64 {
	if strings.HasPrefix(path, systemSubtree) {
		return 0
	}
	if path == rootPath {
		path = ""
	}
	b := append((*scratch)[:0], path...)
	crc := crc32.Update(0, crc32.IEEETable, b)
	crc = crc32.Update(crc, crc32.IEEETable, n.data)
	b = binary.BigEndian.AppendUint64(b[:0], uint64(n.czxid))
	b = binary.BigEndian.AppendUint64(b, uint64(n.mzxid))
	b = binary.BigEndian.AppendUint64(b, uint64(n.pzxid()))
	b = binary.BigEndian.AppendUint64(b, uint64(n.ctime))
	b = binary.BigEndian.AppendUint64(b, uint64(n.mtime))
	b = binary.BigEndian.AppendUint32(b, uint32(n.version))
	b = binary.BigEndian.AppendUint32(b, uint32(n.cversion()))
	b = binary.BigEndian.AppendUint32(b, uint32(n.aversion()))
	b = binary.BigEndian.AppendUint64(b, uint64(n.ephemeralOwner()))
	crc = crc32.Update(crc, crc32.IEEETable, b)
	*scratch = b
	return uint64(crc)
}
