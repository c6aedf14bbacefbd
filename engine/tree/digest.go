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
	if strings.HasPrefix(path, systemSubtree) {
		return 0
	}
	if path == rootPath {
		path = ""
	}
	var b [60]byte
	binary.BigEndian.PutUint64(b[0:], uint64(n.czxid))
	binary.BigEndian.PutUint64(b[8:], uint64(n.mzxid))
	binary.BigEndian.PutUint64(b[16:], uint64(n.pzxid()))
	binary.BigEndian.PutUint64(b[24:], uint64(n.ctime))
	binary.BigEndian.PutUint64(b[32:], uint64(n.mtime))
	binary.BigEndian.PutUint32(b[40:], uint32(n.version))
	binary.BigEndian.PutUint32(b[44:], uint32(n.cversion()))
	binary.BigEndian.PutUint32(b[48:], uint32(n.aversion()))
	binary.BigEndian.PutUint64(b[52:], uint64(n.ephemeralOwner()))
	crc := crc32.Update(0, crc32.IEEETable, []byte(path))
	crc = crc32.Update(crc, crc32.IEEETable, n.data)
	crc = crc32.Update(crc, crc32.IEEETable, b[:])
	return uint64(crc)
}
