package tree

import (
	"encoding/binary"

	"github.com/zabkeeper/zabkeeper/proto"
)

// maxSharedACLs bounds the distinct ACL lists aclCache keeps. Most trees use
// a handful (world:anyone, a few digest users); a tree with more distinct
// lists than this stores the rest per node, as before.
const maxSharedACLs = 4096

// aclCache shares equal ACL lists between znodes, as ZooKeeper's
// ReferenceCountedACLCache does: a million znodes created with the same ACL
// hold one list instead of a million copies (a list of one entry is about 64
// bytes with its strings). Lists stored in nodes are never modified, so
// sharing them is safe. Entries are never dropped; maxSharedACLs bounds them.
//
// What it hands out is a nodeMeta with the initial Stat fields, so the
// leaves with an equal list share their meta too (node.go).
type aclCache struct {
	lists map[string]*nodeMeta
	key   []byte // scratch for the lookup key
}

// share returns the meta of the cached list equal to acl, caching acl if
// there is none yet and room for it (else a meta of its own, as metaOf).
// Every leaf with an equal list then holds the same pointer.
func (c *aclCache) share(acl []proto.ACL) *nodeMeta {
	if len(acl) == 0 {
		return metaOf(acl)
	}
	k := c.key[:0]
	for _, a := range acl {
		k = binary.BigEndian.AppendUint32(k, uint32(a.Perms))
		k = binary.AppendUvarint(k, uint64(len(a.Id.Scheme)))
		k = append(k, a.Id.Scheme...)
		k = binary.AppendUvarint(k, uint64(len(a.Id.ID)))
		k = append(k, a.Id.ID...)
	}
	c.key = k
	if l, ok := c.lists[string(k)]; ok {
		return l
	}
	if c.lists == nil {
		c.lists = map[string]*nodeMeta{}
	}
	ref := metaOf(acl)
	if len(c.lists) < maxSharedACLs {
		c.lists[string(k)] = ref
	}
	return ref
}
