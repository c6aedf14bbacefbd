package tree

import (
	"github.com/zabkeeper/zabkeeper/proto"
)

// Apply applies a committed txn (txns must come in zxid order) and returns
// the response body for the originating request, its error code, and the
// watch events it fired in order. Error txns and failed multis change
// nothing and fire nothing; createSession and moveSession change nothing in
// the tree; closeSession deletes the session's ephemerals. Apply also drops the
// prepared state of every txn up to this one.
//
// Response bodies: CreateResponse for create (1); Create2Response for
// create2, createContainer and createTTL; SetDataResponse; SetACLResponse;
// MultiResponse for multi; nil otherwise.
func (t *Tree) Apply(txn *Txn) Result {
	t.settle(txn.Zxid)
	if txn.Zxid > t.lastZxid {
		t.lastZxid = txn.Zxid
	}
	a := applier{t: t, zxid: txn.Zxid, time: txn.Time, session: txn.SessionID}
	var res Result
	switch txn.Type {
	case proto.OpError:
		res.Err = txn.Err
	case proto.OpCreateSession, OpMoveSession, proto.OpSync:
	case proto.OpCloseSession:
		a.closeSession(txn.Paths)
	case proto.OpMulti:
		res.Resp = a.multi(txn.Ops)
	default:
		var err proto.ErrCode
		res.Resp, _, err = a.op(txn)
		if err != proto.ErrOK {
			res.Resp = nil
		}
		res.Err = err
	}
	res.Events = a.events
	return res
}

// applier applies the ops of one txn, collecting their events.
type applier struct {
	t       *Tree
	zxid    int64
	time    int64
	session int64
	events  []Event
}

// multi applies the ops of a multi txn in order. A failed multi (any op of
// type error) applies nothing and reports each op's code.
func (a *applier) multi(ops []Txn) *proto.MultiResponse {
	resp := &proto.MultiResponse{Results: make([]proto.MultiResult, len(ops))}
	failed := false
	for i := range ops {
		if ops[i].Type == proto.OpError {
			failed = true
			break
		}
	}
	for i := range ops {
		if failed {
			resp.Results[i] = errorResult(ops[i].Err)
			continue
		}
		body, typ, err := a.op(&ops[i])
		if err != proto.ErrOK {
			resp.Results[i] = errorResult(err)
			continue
		}
		resp.Results[i] = proto.MultiResult{Type: typ, Resp: body}
	}
	return resp
}

func errorResult(err proto.ErrCode) proto.MultiResult {
	return proto.MultiResult{Type: proto.OpError, Err: err, Resp: &proto.ErrorResponse{Err: err}}
}

// op applies one non-multi txn body and returns the response body, the
// multi result type and the error code (non-zero only when the txn does
// not fit the tree, which a correct Prepare never produces).
func (a *applier) op(txn *Txn) (proto.Record, proto.OpCode, proto.ErrCode) {
	switch txn.Type {
	case proto.OpCreate, proto.OpCreate2, proto.OpCreateContainer, proto.OpCreateTTL:
		return a.create(txn)
	case proto.OpDelete, proto.OpDeleteContainer:
		return nil, proto.OpDelete, a.delete(txn.Path)
	case proto.OpSetData:
		t := a.t
		n := t.node(txn.Path)
		if n == nil {
			return nil, proto.OpSetData, proto.ErrNoNode
		}
		old := n
		n = n.withData(txn.Data, txn.Version, a.zxid, a.time)
		t.putNode(txn.Path, n)
		t.quotaApplied(txn.Path, 0, int64(len(n.data)-len(old.data)))
		a.events, _ = t.fire(true, txn.Path, proto.EventNodeDataChanged, a.zxid, n.acl(), nil, a.events)
		return &proto.SetDataResponse{Stat: t.statOf(txn.Path, n)}, proto.OpSetData, proto.ErrOK
	case proto.OpReconfig:
		return a.applyReconfig(txn)
	case proto.OpSetACL:
		t := a.t
		n := t.node(txn.Path)
		if n == nil {
			return nil, proto.OpSetACL, proto.ErrNoNode
		}
		n = n.withACL(t.acls.share(txn.ACL), txn.Version)
		t.putNode(txn.Path, n)
		return &proto.SetACLResponse{Stat: t.statOf(txn.Path, n)}, proto.OpSetACL, proto.ErrOK
	case proto.OpCheck:
		n := a.t.node(txn.Path)
		switch {
		case n == nil:
			return nil, proto.OpCheck, proto.ErrNoNode
		case txn.Version != n.version+1: // the txn holds the version + 1 (ZooKeeper's checkAndIncVersion)
			return nil, proto.OpCheck, proto.ErrBadVersion
		}
		return nil, proto.OpCheck, proto.ErrOK
	}
	return nil, proto.OpError, proto.ErrUnimplemented
}

func (a *applier) create(txn *Txn) (proto.Record, proto.OpCode, proto.ErrCode) {
	t := a.t
	typ := proto.OpCreate2
	if txn.Type == proto.OpCreate {
		typ = proto.OpCreate
	}
	if txn.Path == rootPath || !validatePath(txn.Path) {
		return nil, typ, proto.ErrBadArguments
	}
	parentPath, _ := splitPath(txn.Path)
	parent := t.node(parentPath)
	if existing := t.node(txn.Path); existing != nil {
		// Only when a txn is replayed over a fuzzy snapshot that holds
		// its effect already: as ZooKeeper's DataTree.createNode and
		// processTxn, the node takes the txn's ACL and, for a create of
		// type 1, the parent takes the txn's cversion if that is larger.
		t.putNode(txn.Path, existing.withACL(t.acls.share(txn.ACL), existing.aversion()))
		if txn.Type == proto.OpCreate && parent != nil {
			if cv := parentCversion(parent, txn.ParentCversion); cversionAfter(cv, parent.cversion()) {
				t.putNode(parentPath, parent.withChildCreated(cv, a.zxid))
			}
		}
		return nil, typ, proto.ErrNodeExists
	}
	if parent == nil {
		return nil, typ, proto.ErrNoNode
	}
	n := newNode(txn, t.acls.share(txn.ACL), a.session, a.zxid, a.time)
	t.putNode(txn.Path, n)
	t.quotaApplied(txn.Path, 1, int64(len(n.data)))
	// The parent's cversion and pzxid only move forward (a replayed
	// create of a node deleted within a fuzzy snapshot's range must not
	// set them back), as in ZooKeeper's DataTree.createNode.
	if cv := parentCversion(parent, txn.ParentCversion); cversionAfter(cv, parent.cversion()) {
		parent = parent.withChildCreated(cv, a.zxid)
		t.putNode(parentPath, parent)
	}
	a.events, _ = t.fire(true, txn.Path, proto.EventNodeCreated, a.zxid, n.acl(), nil, a.events)
	a.events, _ = t.fire(false, parentPath, proto.EventNodeChildrenChanged, a.zxid, parent.acl(), nil, a.events)
	if typ == proto.OpCreate {
		return &proto.CreateResponse{Path: txn.Path}, typ, proto.ErrOK
	}
	return &proto.Create2Response{Path: txn.Path, Stat: t.statOf(txn.Path, n)}, typ, proto.ErrOK
}

// delete removes a childless node and fires NodeDeleted (once per watcher
// across the data and child tables) and the parent's NodeChildrenChanged.
func (a *applier) delete(path string) proto.ErrCode {
	t := a.t
	n := t.node(path)
	if path == rootPath {
		return proto.ErrNoNode
	}
	parentPath, _ := splitPath(path)
	if n == nil {
		// Replayed over a fuzzy snapshot that lacks the node already:
		// ZooKeeper's DataTree.deleteNode still advances the parent's
		// pzxid.
		if parent := t.node(parentPath); parent != nil && a.zxid > parent.pzxid() {
			t.putNode(parentPath, parent.withChildDeleted(a.zxid))
		}
		return proto.ErrNoNode
	}
	if t.numChildren(path) > 0 {
		return proto.ErrNotEmpty
	}
	t.removeNode(path)
	t.quotaApplied(path, -1, -int64(len(n.data)))
	parent := t.node(parentPath)
	if parent != nil && a.zxid > parent.pzxid() {
		parent = parent.withChildDeleted(a.zxid)
		t.putNode(parentPath, parent)
	}
	var fired []WatcherID
	a.events, fired = t.fire(true, path, proto.EventNodeDeleted, a.zxid, n.acl(), nil, a.events)
	a.events, _ = t.fire(false, path, proto.EventNodeDeleted, a.zxid, n.acl(), fired, a.events)
	if parent != nil {
		a.events, _ = t.fire(false, parentPath, proto.EventNodeChildrenChanged, a.zxid, parent.acl(), nil, a.events)
	}
	return proto.ErrOK
}

// closeSession deletes the session's ephemerals: those the txn lists and any
// other the session owns here, in path order.
func (a *applier) closeSession(paths []string) {
	t := a.t
	set := map[string]struct{}{}
	for _, p := range paths {
		set[p] = struct{}{}
	}
	for p := range t.ephemerals[a.session] {
		set[p] = struct{}{}
	}
	for _, p := range sortedKeys(set) {
		if n := t.node(p); n != nil && n.kind == kindEphemeral && n.owner == a.session {
			a.delete(p)
		}
	}
}

// parentCversion is the cversion a create txn gives the parent: the txn's,
// or one more than the parent's when the txn says -1 (ZooKeeper's
// DataTree.createNode and setCversionPzxid).
func parentCversion(parent *node, txnCversion int32) int32 {
	if txnCversion == -1 {
		return parent.cversion() + 1
	}
	return txnCversion
}

// cversionAfter reports whether cversion a comes after b. ZooKeeper compares
// them as plain ints; the difference is taken modulo 2^32 here so that the
// count keeps going past int32 overflow (sequence numbers go negative, as in
// ZooKeeper's own formatting) while a replayed older value is still refused.
func cversionAfter(a, b int32) bool { return a-b > 0 }
