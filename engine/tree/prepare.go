package tree

import (
	"github.com/zabkeeper/zabkeeper/engine/bugs"

	"fmt"
	"slices"

	"github.com/zabkeeper/zabkeeper/proto"
)

// Prepare validates one write request against the tree plus every prepared
// but not yet applied txn, in ZooKeeper's check order, and returns the
// deterministic txn to propose: the change, or an error txn (Type OpError
// with the code). For multi it returns a multi txn, or a failed multi whose
// ops carry the per-op codes. hdr supplies Zxid, SessionID, Cxid and Time.
//
// Ops: create (1), create2 (15), createContainer (19), createTTL (21),
// delete (2), setData (5), setACL (7), multi (14), closeSession (-11, req
// nil) and deleteContainer (20, from the container/TTL reaper). Anything
// else is an ErrUnimplemented error txn. A successful Prepare is remembered
// until Apply of its zxid or AbandonPending. Session validity is the
// caller's to check.
func (t *Tree) Prepare(hdr Txn, caller Caller, op proto.OpCode, req proto.Record) *Txn {
	txn := &Txn{Zxid: hdr.Zxid, SessionID: hdr.SessionID, Cxid: hdr.Cxid, Time: hdr.Time}
	mark := len(t.pending.log)
	var err proto.ErrCode
	switch op {
	case proto.OpMulti:
		r, ok := req.(*proto.MultiRequest)
		if !ok {
			err = proto.ErrMarshallingError
			break
		}
		t.prepareMulti(txn, caller, r)
		if txn.digestedSize() > t.opts.maxTxnSize() {
			err = proto.ErrBadArguments
		}
	case proto.OpCloseSession:
		t.prepareCloseSession(txn, caller.SessionID)
	case proto.OpCheck:
		err = proto.ErrUnimplemented // only inside multi
	default:
		var body Txn
		err = t.prepareOp(&body, txn, caller, op, req)
		if err == proto.ErrOK {
			body.Zxid, body.SessionID, body.Cxid, body.Time = txn.Zxid, txn.SessionID, txn.Cxid, txn.Time
			*txn = body
			if txn.digestedSize() > t.opts.maxTxnSize() {
				// Bigger than the log, the peer links and the snapshot
				// are sized for (proto.TxnLimit).
				err = proto.ErrBadArguments
			}
		}
	}
	if err != proto.ErrOK {
		t.rollback(mark)
		return &Txn{Zxid: hdr.Zxid, SessionID: hdr.SessionID, Cxid: hdr.Cxid, Time: hdr.Time, Type: proto.OpError, Err: err}
	}
	for _, c := range t.pending.log[mark:] {
		c.prev = nil
	}
	return txn
}

// prepareMulti runs the ops in order against the pending state. On the
// first failure every change of the multi is rolled back and the txn
// becomes a failed multi: earlier ops 0, the failing op its code, later ops
// RuntimeInconsistency.
func (t *Tree) prepareMulti(txn *Txn, caller Caller, r *proto.MultiRequest) {
	mark := len(t.pending.log)
	txn.Type = proto.OpMulti
	if len(r.Ops) > 0 {
		txn.Ops = make([]Txn, len(r.Ops))
	}
	failed := -1
	var code proto.ErrCode
	for i, op := range r.Ops {
		switch op.Type {
		case proto.OpCreate, proto.OpCreate2, proto.OpCreateContainer, proto.OpCreateTTL,
			proto.OpDelete, proto.OpSetData, proto.OpCheck:
			code = t.prepareOp(&txn.Ops[i], txn, caller, op.Type, op.Req)
		default:
			code = proto.ErrUnimplemented
		}
		if code != proto.ErrOK {
			failed = i
			break
		}
	}
	if failed < 0 {
		return
	}
	t.rollback(mark)
	for i := range txn.Ops {
		var c proto.ErrCode
		switch {
		case i == failed:
			c = code
		case i > failed:
			c = proto.ErrRuntimeInconsistency
		}
		txn.Ops[i] = Txn{Type: proto.OpError, Err: c}
	}
}

// prepareOp prepares one non-multi op into body, recording its changes
// under hdr.Zxid.
func (t *Tree) prepareOp(body, hdr *Txn, caller Caller, op proto.OpCode, req proto.Record) proto.ErrCode {
	switch op {
	case proto.OpCreate, proto.OpCreate2, proto.OpCreateContainer:
		r, ok := req.(*proto.CreateRequest)
		if !ok {
			return proto.ErrMarshallingError
		}
		return t.prepareCreate(body, hdr, caller, op, r.Path, r.Data, r.ACL, r.Flags, -1)
	case proto.OpCreateTTL:
		r, ok := req.(*proto.CreateTTLRequest)
		if !ok {
			return proto.ErrMarshallingError
		}
		return t.prepareCreate(body, hdr, caller, op, r.Path, r.Data, r.ACL, r.Flags, r.TTL)
	case proto.OpDelete:
		r, ok := req.(*proto.DeleteRequest)
		if !ok {
			return proto.ErrMarshallingError
		}
		return t.prepareDelete(body, hdr, caller, r.Path, r.Version)
	case proto.OpDeleteContainer:
		r, ok := req.(*proto.DeleteContainerRequest)
		if !ok {
			return proto.ErrMarshallingError
		}
		return t.prepareDeleteContainer(body, hdr, r.Path)
	case proto.OpSetData:
		r, ok := req.(*proto.SetDataRequest)
		if !ok {
			return proto.ErrMarshallingError
		}
		return t.prepareSetData(body, hdr, caller, r.Path, r.Data, r.Version)
	case proto.OpSetACL:
		r, ok := req.(*proto.SetACLRequest)
		if !ok {
			return proto.ErrMarshallingError
		}
		return t.prepareSetACL(body, hdr, caller, r.Path, r.ACL, r.Version)
	case proto.OpCheck:
		r, ok := req.(*proto.CheckVersionRequest)
		if !ok {
			return proto.ErrMarshallingError
		}
		return t.prepareCheck(body, caller, r.Path, r.Version)
	}
	return proto.ErrUnimplemented
}

// prepareCreate checks, in order: flags and TTL, a '/' and no NUL, the ACL,
// the parent's existence, CREATE on the parent, the final path (after the
// sequence suffix), the node's absence, and an ephemeral parent.
func (t *Tree) prepareCreate(body, hdr *Txn, caller Caller, op proto.OpCode, path string, data []byte, acl []proto.ACL, mode int32, ttl int64) proto.ErrCode {
	if mode < proto.ModePersistent || mode > proto.ModePersistentSequentialWithTTL {
		return proto.ErrBadArguments
	}
	if (op == proto.OpCreateTTL || isTTLMode(mode)) && !t.opts.ExtendedTypes {
		return proto.ErrUnimplemented
	}
	if isTTLMode(mode) {
		if ttl < 1 || ttl > maxTTL {
			return proto.ErrBadArguments
		}
	} else if ttl >= 0 {
		return proto.ErrBadArguments
	}
	parentPath, ok := parentForWrite(path)
	if !ok {
		return proto.ErrBadArguments
	}
	fixed, code := fixupACL(caller.Auth, acl)
	if code != proto.ErrOK {
		return code
	}
	parent, childCount := t.lookup(parentPath)
	if parent == nil {
		return proto.ErrNoNode
	}
	if code := t.checkACL(caller.Auth, parent.acl(), proto.PermCreate); code != proto.ErrOK {
		return code
	}
	if isSequential(mode) {
		path += fmt.Sprintf("%0*d", sequenceWidth, parent.cversion())
	}
	if !validatePath(path) || isSpecialPath(path) {
		return proto.ErrBadArguments
	}
	if n, _ := t.lookup(path); n != nil {
		return proto.ErrNodeExists
	}
	if parent.kind == kindEphemeral {
		return proto.ErrNoChildrenForEphemerals
	}
	if code := t.checkQuota(path, 1, int64(len(data))); code != proto.ErrOK {
		return code
	}
	*body = Txn{Type: op, Path: path, Data: data, ACL: fixed, Mode: canonicalMode(op, mode), ParentCversion: parent.cversion() + 1}
	if isTTLMode(mode) {
		body.TTL = ttl
	}
	t.record(hdr.Zxid, parentPath, parent.withChildCreated(body.ParentCversion, hdr.Zxid), childCount+1)
	t.record(hdr.Zxid, path, newNode(body, metaOf(body.ACL), hdr.SessionID, hdr.Zxid, hdr.Time), 0)
	return proto.ErrOK
}

// prepareDelete checks, in order: a deletable path, the parent's existence,
// DELETE on the parent, the node's existence, the version, and children.
func (t *Tree) prepareDelete(body, hdr *Txn, caller Caller, path string, version int32) proto.ErrCode {
	parentPath, ok := parentForWrite(path)
	if !ok || isSpecialPath(path) {
		return proto.ErrBadArguments
	}
	parent, parentChildren := t.lookup(parentPath)
	if parent == nil {
		return proto.ErrNoNode
	}
	if code := t.checkACL(caller.Auth, parent.acl(), proto.PermDelete); code != proto.ErrOK {
		return code
	}
	n, children := t.lookup(path)
	if n == nil {
		return proto.ErrNoNode
	}
	if version != -1 && version != n.version {
		return proto.ErrBadVersion
	}
	if children > 0 {
		return proto.ErrNotEmpty
	}
	*body = Txn{Type: proto.OpDelete, Path: path}
	t.recordDelete(hdr.Zxid, parentPath, parent, parentChildren, path)
	return proto.ErrOK
}

func (t *Tree) recordDelete(zxid int64, parentPath string, parent *node, parentChildren int, path string) {
	t.record(zxid, parentPath, parent.withChildDeleted(zxid), parentChildren-1)
	t.record(zxid, path, nil, 0)
}

// prepareDeleteContainer deletes a container or TTL node on behalf of the
// reaper. It re-checks what made the node reapable, since the tree may have
// changed since Expired: childless (NotEmpty), a container or TTL node
// (BadVersion), and for TTL nodes still expired at the txn's time
// (BadVersion).
func (t *Tree) prepareDeleteContainer(body, hdr *Txn, path string) proto.ErrCode {
	parentPath, ok := parentForWrite(path)
	if !ok || isSpecialPath(path) {
		return proto.ErrBadArguments
	}
	n, children := t.lookup(path)
	if n == nil {
		return proto.ErrNoNode
	}
	if children > 0 {
		return proto.ErrNotEmpty
	}
	switch n.kind {
	case kindContainer:
	case kindTTL:
		if hdr.Time-n.mtime <= n.ttl() {
			return proto.ErrBadVersion
		}
	default:
		return proto.ErrBadVersion
	}
	parent, parentChildren := t.lookup(parentPath)
	if parent == nil {
		return proto.ErrNoNode
	}
	*body = Txn{Type: proto.OpDeleteContainer, Path: path}
	t.recordDelete(hdr.Zxid, parentPath, parent, parentChildren, path)
	return proto.ErrOK
}

// prepareSetData checks, in order: the path, existence, WRITE, the version.
func (t *Tree) prepareSetData(body, hdr *Txn, caller Caller, path string, data []byte, version int32) proto.ErrCode {
	if !validatePath(path) {
		return proto.ErrBadArguments
	}
	n, children := t.lookup(path)
	if n == nil {
		return proto.ErrNoNode
	}
	if code := t.checkACL(caller.Auth, n.acl(), proto.PermWrite); code != proto.ErrOK {
		return code
	}
	if version != -1 && version != n.version {
		return proto.ErrBadVersion
	}
	if code := t.checkQuota(path, 0, int64(len(data)-len(n.data))); code != proto.ErrOK {
		return code
	}
	*body = Txn{Type: proto.OpSetData, Path: path, Data: data, Version: nextVersion(n.version)}
	t.record(hdr.Zxid, path, n.withData(data, body.Version, hdr.Zxid, hdr.Time), children)
	return proto.ErrOK
}

// prepareSetACL checks, in order: the path, the ACL, existence, ADMIN, the
// aversion.
func (t *Tree) prepareSetACL(body, hdr *Txn, caller Caller, path string, acl []proto.ACL, version int32) proto.ErrCode {
	if !validatePath(path) {
		return proto.ErrBadArguments
	}
	fixed, code := fixupACL(caller.Auth, acl)
	if code != proto.ErrOK {
		return code
	}
	n, children := t.lookup(path)
	if n == nil {
		return proto.ErrNoNode
	}
	if code := t.checkACL(caller.Auth, n.acl(), proto.PermAdmin); code != proto.ErrOK {
		return code
	}
	if version != -1 && version != n.aversion() {
		return proto.ErrBadVersion
	}
	*body = Txn{Type: proto.OpSetACL, Path: path, ACL: fixed, Version: nextVersion(n.aversion())}
	t.record(hdr.Zxid, path, n.withACL(metaOf(fixed), body.Version), children)
	return proto.ErrOK
}

// prepareCheck checks, in order: the path, existence, READ, the version.
func (t *Tree) prepareCheck(body *Txn, caller Caller, path string, version int32) proto.ErrCode {
	if !validatePath(path) {
		return proto.ErrBadArguments
	}
	n, _ := t.lookup(path)
	if n == nil {
		return proto.ErrNoNode
	}
	if code := t.checkACL(caller.Auth, n.acl(), proto.PermRead); code != proto.ErrOK {
		return code
	}
	if version != -1 && version != n.version {
		return proto.ErrBadVersion
	}
	// ZooKeeper's checkAndIncVersion: the txn holds the version + 1.
	*body = Txn{Type: proto.OpCheck, Path: path, Version: n.version + 1}
	return proto.ErrOK
}

// prepareCloseSession lists the session's ephemerals as they will be once
// every prepared txn is applied and records their deletion.
func (t *Tree) prepareCloseSession(txn *Txn, session int64) {
	set := map[string]struct{}{}
	for p := range t.ephemerals[session] {
		set[p] = struct{}{}
	}
	for p, c := range t.pending.byPath {
		if bugs.Active(bugs.EphemeralSurvivesExpiry) {
			break // forgets creates still in flight
		}
		if c.n != nil && c.n.kind == kindEphemeral && c.n.owner == session {
			set[p] = struct{}{}
		} else {
			delete(set, p)
		}
	}
	paths := sortedKeys(set)
	if len(paths) == 0 {
		paths = nil // as it decodes
	}
	txn.Type = proto.OpCloseSession
	txn.Paths = paths
	for _, p := range paths {
		parentPath, _ := splitPath(p)
		parent, parentChildren := t.lookup(parentPath)
		if parent == nil {
			continue
		}
		t.recordDelete(txn.Zxid, parentPath, parent, parentChildren, p)
	}
}

// sortedKeys returns the keys of a string set in order.
func sortedKeys(set map[string]struct{}) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
