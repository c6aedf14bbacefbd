package tree

// pendingChanges are the effects of txns prepared but not yet applied
// ("outstanding changes" in ZooKeeper's PrepRequestProcessor). Prepare reads
// the tree through them so that a request sees every earlier prepared one.
type pendingChanges struct {
	byPath map[string]*change
	log    []*change
	// digest is the sum of the digest deltas of the changes in log: the
	// tree digest once they are applied is Tree.digest + digest.
	digest uint64
}

// change is the state of one path after a prepared txn.
type change struct {
	zxid       int64
	path       string
	n          *node // nil: deleted
	childCount int
	prev       *change // what byPath held before (for multi rollback)
	hadPrev    bool
	// delta is what the change adds to the tree digest.
	delta uint64
}

func newPendingChanges() pendingChanges {
	return pendingChanges{byPath: map[string]*change{}}
}

// lookup returns the node at path and its child count as the tree will be
// once every prepared txn is applied. n is nil when the node does not exist.
func (t *Tree) lookup(path string) (n *node, childCount int) {
	if c, ok := t.pending.byPath[path]; ok {
		return c.n, c.childCount
	}
	return t.node(path), t.numChildren(path)
}

// record notes that path will hold n (nil: deleted) with childCount children
// after the txn zxid.
func (t *Tree) record(zxid int64, path string, n *node, childCount int) {
	prev, had := t.pending.byPath[path]
	var oldDigest uint64
	var old node
	if had {
		oldDigest = t.nodeDigest(path, prev.n)
	} else if t.get(path, &old) >= 0 {
		oldDigest = t.nodeDigest(path, &old)
	}
	c := &change{zxid: zxid, path: path, n: n, childCount: childCount, prev: prev, hadPrev: had,
		delta: t.nodeDigest(path, n) - oldDigest}
	t.pending.digest += c.delta
	t.pending.byPath[path] = c
	t.pending.log = append(t.pending.log, c)
}

// rollback undoes every change recorded after the log had length mark.
func (t *Tree) rollback(mark int) {
	for i := len(t.pending.log) - 1; i >= mark; i-- {
		c := t.pending.log[i]
		t.pending.digest -= c.delta
		if c.hadPrev {
			t.pending.byPath[c.path] = c.prev
		} else {
			delete(t.pending.byPath, c.path)
		}
		t.pending.log[i] = nil
	}
	t.pending.log = t.pending.log[:mark]
}

// maxReusedLog bounds the pending log's array that settle keeps for reuse,
// so that one large multi does not pin a large array.
const maxReusedLog = 1024

// settle drops the changes of txns up to zxid, now applied.
func (t *Tree) settle(zxid int64) {
	i := 0
	for ; i < len(t.pending.log) && t.pending.log[i].zxid <= zxid; i++ {
		c := t.pending.log[i]
		t.pending.digest -= c.delta
		if t.pending.byPath[c.path] == c {
			delete(t.pending.byPath, c.path)
		}
		t.pending.log[i] = nil
	}
	switch {
	case i == len(t.pending.log) && cap(t.pending.log) <= maxReusedLog:
		// All applied: the next txns reuse the array (cleared above).
		t.pending.log = t.pending.log[:0]
	case i == len(t.pending.log):
		t.pending.log = nil
	case i > 0:
		t.pending.log = t.pending.log[i:]
	}
}

// AbandonPending drops every prepared-but-not-applied change, as a new
// leader must.
func (t *Tree) AbandonPending() {
	t.pending = newPendingChanges()
}

// PendingDigest returns the tree digest as it will be once every prepared
// txn is applied: what a txn carries in its TxnDigest, as ZooKeeper's
// PrepRequestProcessor computes it from its outstanding changes.
func (t *Tree) PendingDigest() uint64 { return t.digest + t.pending.digest }

// nodeDigest is the digest contribution of the node at path; a missing node
// (nil) contributes nothing.
func (t *Tree) nodeDigest(path string, n *node) uint64 {
	if n == nil {
		return 0
	}
	return hashNode(&t.hashScratch, path, n)
}

// PendingCount returns the number of outstanding path changes.
func (t *Tree) PendingCount() int { return len(t.pending.log) }
