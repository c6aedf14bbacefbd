package tree

// The digest of a tree is the wrapping sum of one 64-bit hash per node, so a
// change updates it in O(size of the node): subtract the old node's hash,
// add the new one's. Each hash is FNV-1a over the node's path, data, stored
// Stat fields, kind and ACL, passed through a 64-bit finalizer so that sums
// of similar nodes do not cancel.

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

type hasher uint64

func (h *hasher) bytes(b []byte) {
	x := uint64(*h)
	for _, c := range b {
		x ^= uint64(c)
		x *= fnvPrime
	}
	*h = hasher(x)
}

func (h *hasher) str(s string) {
	x := uint64(*h)
	for i := 0; i < len(s); i++ {
		x ^= uint64(s[i])
		x *= fnvPrime
	}
	*h = hasher(x)
}

func (h *hasher) u64(v uint64) {
	x := uint64(*h)
	for range 8 {
		x ^= v & 0xff
		x *= fnvPrime
		v >>= 8
	}
	*h = hasher(x)
}

// nodeHash returns the digest contribution of the node at path.
func nodeHash(path string, n *node) uint64 {
	h := hasher(fnvOffset)
	h.u64(uint64(len(path)))
	h.str(path)
	if n.data == nil {
		h.u64(^uint64(0))
	} else {
		h.u64(uint64(len(n.data)))
		h.bytes(n.data)
	}
	h.u64(uint64(n.czxid))
	h.u64(uint64(n.mzxid))
	h.u64(uint64(n.ctime))
	h.u64(uint64(n.mtime))
	h.u64(uint64(n.pzxid))
	h.u64(uint64(uint32(n.version)) | uint64(uint32(n.cversion))<<32)
	h.u64(uint64(uint32(n.aversion)) | uint64(n.kind)<<32)
	h.u64(uint64(n.owner))
	h.u64(uint64(n.ttl))
	h.u64(uint64(len(n.acl)))
	for _, a := range n.acl {
		h.u64(uint64(uint32(a.Perms)))
		h.u64(uint64(len(a.Id.Scheme)))
		h.str(a.Id.Scheme)
		h.u64(uint64(len(a.Id.ID)))
		h.str(a.Id.ID)
	}
	return mix64(uint64(h))
}

// mix64 is the splitmix64 finalizer.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
