// Package tree is zabkeeper's znode data tree: Stat bookkeeping, ACL checks,
// the watch registry, the preparation of write requests into deterministic
// transactions and their application, snapshots and an incremental digest.
//
// The package is pure: it reads no clock, does no I/O of its own and never
// lets map iteration order decide anything observable. Time enters only as
// Txn.Time, stamped by the caller. A Tree is not safe for concurrent use,
// except that a Snapshot it returned may be written on another goroutine
// while the Tree goes on changing.
package tree

import (
	"slices"

	"github.com/zabkeeper/zabkeeper/proto"
)

// Options configures a Tree.
type Options struct {
	// SuperDigest is a digest id of the form "super:<base64 sha1>" (as
	// produced by DigestID); a caller authenticated with exactly this digest
	// id bypasses every ACL check. Empty means no super user.
	SuperDigest string
	// ExtendedTypes enables TTL nodes (ZooKeeper's
	// zookeeper.extendedTypesEnabled). Without it createTTL and the TTL
	// create modes fail with ErrUnimplemented.
	ExtendedTypes bool
	// MaxTxnSize bounds the marshalled txn Prepare turns a client request
	// into (proto.TxnLimit of jute.maxbuffer): a larger one fails with
	// BadArguments before it is proposed, so no layer below (log record,
	// peer frame, snapshot) is ever handed more than it holds. Zero means
	// proto.TxnLimit(proto.DefaultMaxBuffer).
	MaxTxnSize int
	// EnforceQuota fails a create or setData past a hard quota limit with
	// QuotaExceeded (ZooKeeper's zookeeper.enforceQuota; quota.go).
	EnforceQuota bool
	// ConfigData is what /zookeeper/config holds in an ensemble: the
	// server.N lines and "version=<hex>" as ZooKeeper 3.8's QuorumVerifier
	// prints them (engine.ConfigData formats them). Empty for a standalone
	// server, whose node stays empty as ZooKeeper's does. Every server of
	// an ensemble sets it from its own configuration, as ZooKeeper does, so
	// the node is never replicated: it is set in New and again over
	// whatever a snapshot (a leader's SNAP included) brought.
	ConfigData string
	// ConfigVersion is the configuration's version, which ZooKeeper also
	// stores as the node's mzxid.
	ConfigVersion int64
	// ReconfigEnabled makes the node replicated state: reconfig txns
	// write it, and a loaded snapshot whose node holds a newer
	// configuration (by mzxid) than ConfigData keeps it (a learner synced
	// past a reconfig by SNAP), as ZooKeeper's learner then activates the
	// leader's configuration.
	ReconfigEnabled bool
}

// maxTxnSize is MaxTxnSize with its default.
func (o Options) maxTxnSize() int {
	if o.MaxTxnSize > 0 {
		return o.MaxTxnSize
	}
	return proto.TxnLimit(proto.DefaultMaxBuffer)
}

// Caller identifies who makes a request, for ACL checks and ephemeral
// ownership.
type Caller struct {
	// SessionID is the caller's session; it owns the ephemerals it creates.
	SessionID int64
	// Auth lists the caller's authenticated ids, e.g. ("ip", "127.0.0.1")
	// and ("digest", "user:base64sha1").
	Auth []proto.Id
}

// WatcherID identifies who receives watch events; the engine uses one per
// client connection. It is opaque to the tree.
type WatcherID uint64

// Event is one watch notification for one watcher.
type Event struct {
	// Watcher is the watcher to notify.
	Watcher WatcherID
	// Event is the notification body (State is always SyncConnected).
	Event proto.WatcherEvent
	// Zxid is the zxid of the txn that fired the event, or -1 for events
	// fired by SetWatches.
	Zxid int64
}

// Result is the outcome of applying one txn.
type Result struct {
	// Err is the error code for the originating request (ErrOK on success,
	// and for multi, whose per-op codes are in the MultiResponse).
	Err proto.ErrCode
	// Resp is the response body for the originating request, or nil.
	Resp proto.Record
	// Events are the watch events the txn fired, in delivery order.
	Events []Event
}

// Special paths.
const (
	rootPath      = "/"
	procPath      = "/zookeeper"
	quotaPath     = "/zookeeper/quota"
	configPath    = "/zookeeper/config"
	maxTTL        = int64(0xFF_FFFF_FFFF)
	sequenceWidth = 10
)

// Tree is the znode data tree of one replica.
type Tree struct {
	opts Options
	// hashScratch is hashNode's buffer (the tree changes on one goroutine).
	hashScratch []byte

	// st holds the znodes, out of the collector's sight (store.go).
	st store
	// kids maps a node's id to its children (derived state;
	// children.go); a node without children has no entry.
	kids map[int32]*childSet
	// ephemerals maps a session to the paths of its ephemerals.
	ephemerals map[int64]map[string]struct{}
	// reapable holds the paths of containers and TTL nodes.
	reapable map[string]struct{}

	watches watchRegistry
	pending pendingChanges
	// acls shares equal ACL lists between nodes (aclcache.go).
	acls aclCache

	digest   uint64
	dataSize int64
	lastZxid int64

	// quotas are the paths with a quota (a zookeeper_limits node);
	// quotaWarnings the excesses Prepare noticed (quota.go).
	quotas        map[string]struct{}
	quotaWarnings []QuotaWarning

	// unresolved maps the nodes a fuzzy snapshot loaded with an ACL id its
	// ACL cache lacks to that id (unresolvedACL; snapshot.go): nil when
	// there are none. A node leaves it when its ACL is set (a replayed
	// create or setACL txn) or it is deleted.
	unresolved map[string]int64
}

// New returns the initial tree: "/", "/zookeeper", "/zookeeper/quota" and
// "/zookeeper/config", as ZooKeeper 3.8 starts it: empty (zero-length, not
// null) data, which clients such as Curator's getConfig() read as an empty
// config rather than null; a zero Stat but for /zookeeper/config's aversion
// of -1 (ZooKeeper sets its ACL with version -1). "/", "/zookeeper" and
// "/zookeeper/quota" carry world:anyone ALL (ZooKeeper's OPEN_ACL_UNSAFE),
// "/zookeeper/config" world:anyone READ.
func New(opts Options) *Tree {
	t := newEmpty(opts)
	open := t.acls.share(slices.Clone(proto.OpenACLUnsafe))
	t.putNode(rootPath, &node{data: []byte{}, meta: open})
	t.putNode(procPath, &node{data: []byte{}, meta: open})
	t.putNode(quotaPath, &node{data: []byte{}, meta: open})
	t.putNode(configPath, configNode(t.acls.share(slices.Clone(proto.ReadACLUnsafe))))
	t.initConfigNode()
	return t
}

// initConfigNode gives /zookeeper/config this server's configuration when
// it is a member of an ensemble (Options.ConfigData), as ZooKeeper's
// ZKDatabase.initConfigInZKDatabase does at start-up and after every sync
// with a leader (Learner.syncWithLeader; ZOOKEEPER-2819 for a SNAP): the
// data, mzxid = the config's version, dataVersion -1 (it calls
// DataTree.setData with version -1), the rest of the Stat untouched. Its
// mtime is ZooKeeper's wall clock at that moment (different on every
// server); the tree reads no clock, so ours stays as it was (0 in a new
// tree). The node is missing only in a snapshot from before ZooKeeper 3.5:
// then it is created, as addConfigNode does. The digest skips /zookeeper/,
// as ZooKeeper's DigestCalculator does, so no digest depends on it.
func (t *Tree) initConfigNode() {
	if t.opts.ConfigData == "" {
		return
	}
	n := t.node(configPath)
	if n != nil && t.opts.ReconfigEnabled && n.mzxid > t.opts.ConfigVersion && len(n.data) > 0 {
		t.opts.ConfigData, t.opts.ConfigVersion = string(n.data), n.mzxid
		return
	}
	if n == nil {
		if t.node(procPath) == nil {
			return // no /zookeeper: not a tree ZooKeeper would load
		}
		n = configNode(t.acls.share(slices.Clone(proto.ReadACLUnsafe)))
	}
	cp := *n
	cp.data = []byte(t.opts.ConfigData)
	cp.mzxid = t.opts.ConfigVersion
	cp.version = -1
	t.putNode(configPath, &cp)
}

func newEmpty(opts Options) *Tree {
	return &Tree{
		opts:       opts,
		st:         newStore(),
		kids:       map[int32]*childSet{},
		ephemerals: map[int64]map[string]struct{}{},
		reapable:   map[string]struct{}{},
		watches:    newWatchRegistry(),
		pending:    newPendingChanges(),
		quotas:     map[string]struct{}{},
	}
}

// node returns a view of the node at path, or nil. The view is a copy:
// changing the node takes putNode.
func (t *Tree) node(path string) *node {
	n := new(node)
	if t.get(path, n) < 0 {
		return nil
	}
	return n
}

// get fills n with a view of the node at path and returns its id, or -1
// (n untouched) when there is none. Readers pass a node of their own
// stack, so a read allocates no view.
func (t *Tree) get(path string, n *node) int32 {
	id := t.st.find(path)
	if id >= 0 {
		t.st.view(id, n)
	}
	return id
}

// putNode inserts or replaces the node at path, keeping every derived index
// (children, ephemerals, reapable set, digest, data size) up to date.
func (t *Tree) putNode(path string, n *node) {
	if t.unresolved != nil && (n.meta == nil || n.meta.acl != unresolvedACL) {
		t.resolved(path)
	}
	if id := t.st.find(path); id >= 0 {
		var old node
		t.st.view(id, &old)
		t.digest -= hashNode(&t.hashScratch, path, &old)
		t.dataSize -= int64(len(old.data))
		t.st.update(id, path, n)
	} else {
		t.dataSize += int64(len(path))
		pid, name := t.st.parentOf(path)
		id = t.st.createIn(path, pid, name, n)
		if path != rootPath {
			set := t.kids[pid]
			if set == nil {
				set = &childSet{}
				t.kids[pid] = set
			}
			set.add(&t.st, id)
		}
		switch n.kind {
		case kindEphemeral:
			set := t.ephemerals[n.owner]
			if set == nil {
				set = map[string]struct{}{}
				t.ephemerals[n.owner] = set
			}
			set[path] = struct{}{}
		case kindContainer, kindTTL:
			t.reapable[path] = struct{}{}
		}
		t.indexQuota(path, true)
	}
	t.digest += hashNode(&t.hashScratch, path, n)
	t.dataSize += int64(len(n.data))
}

// removeNode deletes the node at path from every index.
func (t *Tree) removeNode(path string) {
	if t.unresolved != nil {
		t.resolved(path)
	}
	id := t.st.find(path)
	if id < 0 {
		return
	}
	var old node
	t.st.view(id, &old)
	t.digest -= hashNode(&t.hashScratch, path, &old)
	t.dataSize -= int64(len(old.data)) + int64(len(path))
	delete(t.kids, id)
	t.indexQuota(path, false)
	if path != rootPath {
		parent, _ := splitPath(path)
		pid := t.st.find(parent)
		if set := t.kids[pid]; set != nil {
			set.remove(&t.st, id)
			if set.len() == 0 {
				delete(t.kids, pid)
			}
		}
	}
	switch old.kind {
	case kindEphemeral:
		if set := t.ephemerals[old.owner]; set != nil {
			delete(set, path)
			if len(set) == 0 {
				delete(t.ephemerals, old.owner)
			}
		}
	case kindContainer, kindTTL:
		delete(t.reapable, path)
	}
	t.st.remove(id, path)
}

// children returns the children of path in the applied tree (nil: none).
func (t *Tree) children(path string) *childSet {
	id := t.st.find(path)
	if id < 0 {
		return nil
	}
	return t.kids[id]
}

// numChildren returns the number of children of path in the applied tree.
func (t *Tree) numChildren(path string) int { return t.children(path).len() }

// statOf returns the client-visible Stat of the node at path.
func (t *Tree) statOf(path string, n *node) proto.Stat {
	return n.stat(t.numChildren(path))
}

// statByID returns the client-visible Stat of n, the node id.
func (t *Tree) statByID(id int32, n *node) proto.Stat {
	return n.stat(t.kids[id].len())
}

// NodeCount returns the number of znodes, the root and /zookeeper included.
func (t *Tree) NodeCount() int { return t.st.count }

// ApproximateDataSize returns the sum of the lengths of every path and data.
func (t *Tree) ApproximateDataSize() int64 { return t.dataSize }

// EphemeralCount returns the number of ephemeral znodes.
func (t *Tree) EphemeralCount() int {
	n := 0
	for _, set := range t.ephemerals {
		n += len(set)
	}
	return n
}

// LastZxid returns the zxid of the newest txn applied (0 for a new tree).
func (t *Tree) LastZxid() int64 { return t.lastZxid }

// Digest returns the digest of the whole tree as Apache ZooKeeper computes
// it (see nodeHash), maintained on every change: trees with equal paths,
// data and Stats have equal digests, and ZooKeeper reports the same value
// for the same tree.
func (t *Tree) Digest() uint64 { return t.digest }

// configNode returns the initial /zookeeper/config node: aversion -1.
func configNode(acl *nodeMeta) *node {
	n := &node{data: []byte{}, meta: acl}
	n.setCounters(0, 0, -1)
	return n
}
