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

// node is a view of one znode: the store (store.go) keeps its fields and
// data in an arena record and its meta and kind in a rec, and Tree.node
// builds the view. Changes
// build a modified copy (see with*) and store it with putNode; data and
// meta are never modified in place.
//
// The ACL list and the fields most znodes leave at their initial values
// are in meta, shared between all such znodes with an equal ACL list
// (aclcache.go), so the store keeps one index per znode for them; one
// field holds an ephemeral's session or a TTL node's ttl (a node is never
// both). The path is not in it: the store keeps the name and the parent.
type node struct {
	data    []byte
	meta    *nodeMeta
	czxid   int64
	mzxid   int64
	ctime   int64
	mtime   int64
	owner   int64 // kindEphemeral: the session; kindTTL: the ttl in ms
	version int32
	kind    kind
}

// nodeMeta is a node's ACL list and the Stat fields a leaf keeps at their
// initial values: pzxid (the czxid until a child is created or deleted),
// cversion and aversion (0). A node whose fields are at those values points
// at the meta aclCache.share returns for its list, shared by every such
// node; a parent, or a node whose ACL was set, has a meta of its own (32
// bytes). Immutable once a node refers to it.
type nodeMeta struct {
	acl      *[]proto.ACL // nil: a nil list
	pzxid    int64        // valid when ownPzxid, else the node's czxid
	cversion int32        // internal: counts child creations only
	aversion int32
	// idx is the meta's slot in the store's metas while a stored node
	// refers to it (0: none); bookkeeping, not part of the value.
	idx      uint32
	ownPzxid bool
}

// metaOf returns a meta of its own for acl with the initial field values.
func metaOf(acl []proto.ACL) *nodeMeta { return &nodeMeta{acl: aclRefOf(acl)} }

// initial reports whether m holds the initial field values (a shared meta).
func (m *nodeMeta) initial() bool { return !m.ownPzxid && m.cversion == 0 && m.aversion == 0 }

// acl returns the node's ACL list (shared: never modify it).
func (n *node) acl() []proto.ACL {
	if n.meta == nil || n.meta.acl == nil {
		return nil
	}
	return *n.meta.acl
}

// pzxid returns the zxid of the last change to the node's children.
func (n *node) pzxid() int64 {
	if n.meta != nil && n.meta.ownPzxid {
		return n.meta.pzxid
	}
	return n.czxid
}

// cversion returns the internal count of child creations.
func (n *node) cversion() int32 {
	if n.meta == nil {
		return 0
	}
	return n.meta.cversion
}

// aversion returns the ACL version.
func (n *node) aversion() int32 {
	if n.meta == nil {
		return 0
	}
	return n.meta.aversion
}

// setCounters sets pzxid, cversion and aversion, keeping the shared meta
// when they are the initial values and taking one of its own otherwise.
func (n *node) setCounters(pzxid int64, cversion, aversion int32) {
	var acl *[]proto.ACL
	if n.meta != nil {
		acl = n.meta.acl
		if pzxid == n.czxid && cversion == 0 && aversion == 0 && n.meta.initial() {
			return
		}
	}
	m := &nodeMeta{acl: acl, cversion: cversion, aversion: aversion}
	if pzxid != n.czxid {
		m.pzxid, m.ownPzxid = pzxid, true
	}
	n.meta = m
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
		Cversion:       2*n.cversion() - int32(numChildren),
		Aversion:       n.aversion(),
		EphemeralOwner: owner,
		DataLength:     int32(len(n.data)),
		NumChildren:    int32(numChildren),
		Pzxid:          n.pzxid(),
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
	c.setCounters(zxid, cversion, n.aversion())
	return c
}

// withChildDeleted returns n after a child deletion at zxid.
func (n *node) withChildDeleted(zxid int64) *node {
	c := n.clone()
	c.setCounters(zxid, n.cversion(), n.aversion())
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

// withACL returns n after a setACL; acl is a meta with initial values from
// metaOf or aclCache.share, kept if n's other fields are initial too.
func (n *node) withACL(acl *nodeMeta, aversion int32) *node {
	c := n.clone()
	c.meta = acl
	c.setCounters(n.pzxid(), n.cversion(), aversion)
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

// newNode builds the node a create txn makes, with acl as its meta (from
// metaOf or aclCache.share, for txn.ACL).
func newNode(txn *Txn, acl *nodeMeta, session, zxid, time int64) *node {
	n := &node{
		data:  txn.Data,
		meta:  acl,
		czxid: zxid, mzxid: zxid,
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
