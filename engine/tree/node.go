package tree

import "github.com/zabkeeper/zabkeeper/proto"

// kind is what a znode is beyond its data: ZooKeeper encodes it in the
// ephemeralOwner field; we keep it apart and show clients 0 for containers
// and TTL nodes.
type kind uint8

const (
	kindPersistent kind = iota
	kindEphemeral
	kindContainer
	kindTTL
	kindLimit // first invalid value
)

// node is one znode. It is an immutable value once stored in Tree.nodes:
// changes build a modified copy (see with*) and replace the pointer.
//
// The layout is packed for trees of millions of znodes (96 bytes, a Go size
// class, against 128 before): the ACL list is a pointer to a list shared
// between equal lists (aclcache.go), the int32s sit together, and one field
// holds an ephemeral's session or a TTL node's ttl (a node is never both).
// The path is not stored: it is the key of Tree.nodes.
type node struct {
	data     []byte
	aclRef   *[]proto.ACL // nil: a nil list
	czxid    int64
	mzxid    int64
	ctime    int64
	mtime    int64
	pzxid    int64
	owner    int64 // kindEphemeral: the session; kindTTL: the ttl in ms
	version  int32
	cversion int32 // internal: counts child creations only
	aversion int32
	kind     kind
}

// acl returns the node's ACL list (shared: never modify it).
func (n *node) acl() []proto.ACL {
	if n.aclRef == nil {
		return nil
	}
	return *n.aclRef
}

// ttl returns a TTL node's ttl in ms (0 for other kinds).
func (n *node) ttl() int64 {
	if n.kind == kindTTL {
		return n.owner
	}
	return 0
}

// session returns the session owning an ephemeral (0 for other kinds).
func (n *node) session() int64 {
	if n.kind == kindEphemeral {
		return n.owner
	}
	return 0
}

// aclRefOf returns a reference to acl for a node (nil for a nil list, so an
// empty list stays distinct from none). Lists shared through aclCache have
// one reference for all their nodes.
func aclRefOf(acl []proto.ACL) *[]proto.ACL {
	if acl == nil {
		return nil
	}
	return &acl
}

// Stored forms of ZooKeeper's ephemeralOwner field for the kinds that are
// not sessions (EphemeralType: CONTAINER, TTL with extended types).
const (
	containerOwner = -1 << 63                  // 0x8000000000000000
	ttlOwnerMask   = -1 << 56                  // 0xFF00000000000000
	ttlOwnerBits   = ttlOwnerMask | 0xFFFF<<40 // type byte and the reserved feature bits
)

// ephemeralOwner returns the node's ephemeralOwner as ZooKeeper stores it
// (StatPersisted): 0 for a persistent node, the session for an ephemeral,
// 0x8000000000000000 for a container, 0xFF00000000000000|ttl for a TTL node.
func (n *node) ephemeralOwner() int64 {
	switch n.kind {
	case kindEphemeral:
		return n.owner
	case kindContainer:
		return containerOwner
	case kindTTL:
		return ttlOwnerMask | n.owner
	}
	return 0
}

// setEphemeralOwner sets the node's kind, owner and ttl from ZooKeeper's
// stored ephemeralOwner, the inverse of ephemeralOwner.
func (n *node) setEphemeralOwner(v int64) {
	n.owner = 0
	switch {
	case v == 0:
		n.kind = kindPersistent
	case v == containerOwner:
		n.kind = kindContainer
	case v&ttlOwnerBits == ttlOwnerMask:
		n.kind, n.owner = kindTTL, v&^ttlOwnerMask
	default:
		n.kind, n.owner = kindEphemeral, v
	}
}

// stat returns the client-visible Stat given the node's child count.
func (n *node) stat(numChildren int) proto.Stat {
	owner := n.session()
	return proto.Stat{
		Czxid:          n.czxid,
		Mzxid:          n.mzxid,
		Ctime:          n.ctime,
		Mtime:          n.mtime,
		Version:        n.version,
		Cversion:       2*n.cversion - int32(numChildren),
		Aversion:       n.aversion,
		EphemeralOwner: owner,
		DataLength:     int32(len(n.data)),
		NumChildren:    int32(numChildren),
		Pzxid:          n.pzxid,
	}
}

// clone returns a shallow copy; data and acl are shared (never mutated).
func (n *node) clone() *node {
	c := *n
	return &c
}

// withChildCreated returns n after a child creation at zxid.
func (n *node) withChildCreated(cversion int32, zxid int64) *node {
	c := n.clone()
	c.cversion = cversion
	c.pzxid = zxid
	return c
}

// withChildDeleted returns n after a child deletion at zxid.
func (n *node) withChildDeleted(zxid int64) *node {
	c := n.clone()
	c.pzxid = zxid
	return c
}

// withData returns n after a setData.
func (n *node) withData(data []byte, version int32, zxid, time int64) *node {
	c := n.clone()
	c.data = data
	c.version = version
	c.mzxid = zxid
	c.mtime = time
	return c
}

// withACL returns n after a setACL; acl is a reference from aclRefOf or
// aclCache.share.
func (n *node) withACL(acl *[]proto.ACL, aversion int32) *node {
	c := n.clone()
	c.aclRef = acl
	c.aversion = aversion
	return c
}

// nextVersion increments a version, wrapping at int32 and skipping -1, which
// means "any version" in requests (ZOOKEEPER-4743).
func nextVersion(v int32) int32 {
	v++
	if v == -1 {
		v = 0
	}
	return v
}

// createKind maps a create opcode and mode to the node kind.
func createKind(op proto.OpCode, mode int32) kind {
	switch {
	case op == proto.OpCreateContainer || mode == proto.ModeContainer:
		return kindContainer
	case mode == proto.ModePersistentWithTTL || mode == proto.ModePersistentSequentialWithTTL:
		return kindTTL
	case mode == proto.ModeEphemeral || mode == proto.ModeEphemeralSequential:
		return kindEphemeral
	}
	return kindPersistent
}

func isSequential(mode int32) bool {
	return mode == proto.ModePersistentSequential || mode == proto.ModeEphemeralSequential ||
		mode == proto.ModePersistentSequentialWithTTL
}

func isTTLMode(mode int32) bool {
	return mode == proto.ModePersistentWithTTL || mode == proto.ModePersistentSequentialWithTTL
}

// newNode builds the node a create txn makes, with acl as its ACL reference
// (from aclRefOf or aclCache.share, for txn.ACL).
func newNode(txn *Txn, acl *[]proto.ACL, session, zxid, time int64) *node {
	n := &node{
		data:   txn.Data,
		aclRef: acl,
		czxid:  zxid, mzxid: zxid, pzxid: zxid,
		ctime: time, mtime: time,
		kind: createKind(txn.Type, txn.Mode),
	}
	switch n.kind {
	case kindEphemeral:
		n.owner = session
	case kindTTL:
		n.owner = txn.TTL
	}
	return n
}
