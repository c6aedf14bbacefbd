package tree

import (
	"slices"
	"strings"

	"github.com/zabkeeper/zabkeeper/proto"
)

// Read serves a read or watch-management request from the applied tree:
// exists (3), getData (4), getACL (6), getChildren (8), getChildren2 (12),
// getAllChildrenNumber (104), getEphemerals (103, of caller.SessionID),
// multiRead (22), checkWatches (17), removeWatches (18) and addWatch (106).
// It registers watches for w when the request asks: exists sets a data watch
// even on an absent node, getData and getChildren only when the node exists.
// It returns the response body or an error code. w's authentication is
// remembered as caller.Auth for filtering its events.
func (t *Tree) Read(caller Caller, w WatcherID, op proto.OpCode, req proto.Record) (proto.Record, proto.ErrCode) {
	if _, ok := t.watches.byWatcher[w]; ok {
		t.watches.setAuth(w, caller.Auth)
	}
	switch r := req.(type) {
	case *proto.ExistsRequest:
		if op == proto.OpExists {
			return t.exists(caller, w, r.Path, r.Watch)
		}
	case *proto.GetDataRequest:
		if op == proto.OpGetData {
			return t.getData(caller, w, r.Path, r.Watch)
		}
	case *proto.GetACLRequest:
		if op == proto.OpGetACL {
			return t.getACL(caller, r.Path)
		}
	case *proto.GetChildrenRequest:
		if op == proto.OpGetChildren {
			children, _, err := t.getChildren(caller, w, r.Path, r.Watch)
			if err != proto.ErrOK {
				return nil, err
			}
			return &proto.GetChildrenResponse{Children: children}, proto.ErrOK
		}
	case *proto.GetChildren2Request:
		if op == proto.OpGetChildren2 {
			children, stat, err := t.getChildren(caller, w, r.Path, r.Watch)
			if err != proto.ErrOK {
				return nil, err
			}
			return &proto.GetChildren2Response{Children: children, Stat: stat}, proto.ErrOK
		}
	case *proto.GetAllChildrenNumberRequest:
		if op == proto.OpGetAllChildrenNumber {
			return t.getAllChildrenNumber(caller, r.Path)
		}
	case *proto.GetEphemeralsRequest:
		if op == proto.OpGetEphemerals {
			return t.getEphemerals(caller.SessionID, r.PrefixPath), proto.ErrOK
		}
	case *proto.MultiRequest:
		if op == proto.OpMultiRead {
			return t.multiRead(caller, w, r)
		}
	case *proto.CheckWatchesRequest:
		if op == proto.OpCheckWatches {
			return nil, t.checkWatches(w, r.Path, r.Type, false)
		}
	case *proto.RemoveWatchesRequest:
		if op == proto.OpRemoveWatches {
			return nil, t.checkWatches(w, r.Path, r.Type, true)
		}
	case *proto.AddWatchRequest:
		if op == proto.OpAddWatch {
			return t.addWatch(caller, w, r.Path, r.Mode)
		}
	}
	return nil, proto.ErrUnimplemented
}

func (t *Tree) exists(caller Caller, w WatcherID, path string, watch bool) (proto.Record, proto.ErrCode) {
	if strings.IndexByte(path, 0) >= 0 {
		return nil, proto.ErrBadArguments
	}
	var n node
	id := t.get(path, &n)
	if id >= 0 {
		if err := t.checkACL(caller.Auth, n.acl(), proto.PermRead); err != proto.ErrOK {
			return nil, err
		}
	}
	if watch {
		t.watch(caller, w, true, path, watchStandard)
	}
	if id < 0 {
		return nil, proto.ErrNoNode
	}
	return &proto.ExistsResponse{Stat: t.statByID(id, &n)}, proto.ErrOK
}

// readable fills n with the node at path if it exists and caller may READ
// it, and returns its id.
func (t *Tree) readable(caller Caller, path string, n *node) (int32, proto.ErrCode) {
	id := t.get(path, n)
	if id < 0 {
		return -1, proto.ErrNoNode
	}
	if err := t.checkACL(caller.Auth, n.acl(), proto.PermRead); err != proto.ErrOK {
		return -1, err
	}
	return id, proto.ErrOK
}

func (t *Tree) getData(caller Caller, w WatcherID, path string, watch bool) (*proto.GetDataResponse, proto.ErrCode) {
	var n node
	id, err := t.readable(caller, path, &n)
	if err != proto.ErrOK {
		return nil, err
	}
	if watch {
		t.watch(caller, w, true, path, watchStandard)
	}
	return &proto.GetDataResponse{Data: n.data, Stat: t.statByID(id, &n)}, proto.ErrOK
}

func (t *Tree) getACL(caller Caller, path string) (proto.Record, proto.ErrCode) {
	var n node
	id := t.get(path, &n)
	if id < 0 {
		return nil, proto.ErrNoNode
	}
	if err := t.checkACL(caller.Auth, n.acl(), proto.PermRead|proto.PermAdmin); err != proto.ErrOK {
		return nil, err
	}
	acl := n.acl()
	if t.checkACL(caller.Auth, n.acl(), proto.PermAdmin) != proto.ErrOK {
		acl = maskDigests(acl)
	} else {
		acl = append([]proto.ACL(nil), acl...)
	}
	return &proto.GetACLResponse{ACL: acl, Stat: t.statByID(id, &n)}, proto.ErrOK
}

func (t *Tree) getChildren(caller Caller, w WatcherID, path string, watch bool) ([]string, proto.Stat, proto.ErrCode) {
	var n node
	id, err := t.readable(caller, path, &n)
	if err != proto.ErrOK {
		return nil, proto.Stat{}, err
	}
	if watch {
		t.watch(caller, w, false, path, watchStandard)
	}
	return t.kids[id].names(&t.st), t.statByID(id, &n), proto.ErrOK
}

func (t *Tree) getAllChildrenNumber(caller Caller, path string) (proto.Record, proto.ErrCode) {
	var n node
	id, err := t.readable(caller, path, &n)
	if err != proto.ErrOK {
		return nil, err
	}
	total := 0
	stack := []int32{id}
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for c := range t.kids[id].all() {
			total++
			stack = append(stack, c)
		}
	}
	return &proto.GetAllChildrenNumberResponse{TotalNumber: int32(total)}, proto.ErrOK
}

// getEphemerals lists the session's ephemerals whose path starts with
// prefix (all of them for "", blank or "/"), sorted.
func (t *Tree) getEphemerals(session int64, prefix string) *proto.GetEphemeralsResponse {
	trimmed := strings.TrimSpace(prefix)
	all := trimmed == "" || trimmed == rootPath
	out := []string{}
	for _, p := range t.Ephemerals(session) {
		if all || strings.HasPrefix(p, prefix) {
			out = append(out, p)
		}
	}
	return &proto.GetEphemeralsResponse{Ephemerals: out}
}

// multiRead runs getChildren and getData ops independently; a failed op
// yields an error result and the others go on.
func (t *Tree) multiRead(caller Caller, w WatcherID, r *proto.MultiRequest) (proto.Record, proto.ErrCode) {
	resp := &proto.MultiResponse{Results: make([]proto.MultiResult, 0, len(r.Ops))}
	for _, op := range r.Ops {
		var res proto.MultiResult
		switch q := op.Req.(type) {
		case *proto.GetChildrenRequest:
			children, _, err := t.getChildren(caller, w, q.Path, q.Watch)
			if err != proto.ErrOK {
				res = errorResult(err)
			} else {
				res = proto.MultiResult{Type: proto.OpGetChildren, Resp: &proto.GetChildrenResponse{Children: children}}
			}
		case *proto.GetDataRequest:
			body, err := t.getData(caller, w, q.Path, q.Watch)
			if err != proto.ErrOK {
				res = errorResult(err)
			} else {
				res = proto.MultiResult{Type: proto.OpGetData, Resp: body}
			}
		default:
			return nil, proto.ErrMarshallingError
		}
		resp.Results = append(resp.Results, res)
	}
	return resp, proto.ErrOK
}

// watch registers a watch of mode for w on path in the data or child table.
func (t *Tree) watch(caller Caller, w WatcherID, data bool, path string, mode watchMode) {
	r := &t.watches
	if data {
		r.add(r.data, path, w, mode)
	} else {
		r.add(r.child, path, w, mode)
	}
	r.setAuth(w, caller.Auth)
}

// addWatch registers a persistent (mode 0) or persistent-recursive (mode 1)
// watch; no ACL is checked.
func (t *Tree) addWatch(caller Caller, w WatcherID, path string, mode int32) (proto.Record, proto.ErrCode) {
	switch mode {
	case proto.AddWatchPersistent:
		t.watch(caller, w, true, path, watchPersistent)
		t.watch(caller, w, false, path, watchPersistent)
	case proto.AddWatchPersistentRecursive:
		t.watch(caller, w, true, path, watchRecursive)
	default:
		return nil, proto.ErrBadArguments
	}
	return &proto.ErrorResponse{Err: proto.ErrOK}, proto.ErrOK
}

// checkWatches answers checkWatches (remove false) and removeWatches
// (remove true) for watcher type typ: ErrNoWatcher when nothing matches.
func (t *Tree) checkWatches(w WatcherID, path string, typ int32, remove bool) proto.ErrCode {
	r := &t.watches
	found := false
	switch typ {
	case proto.WatcherChildren:
		found = r.has(r.child, path, w, watchStandard)
		if remove && found {
			r.remove(r.child, path, w, watchStandard)
		}
	case proto.WatcherData:
		found = r.has(r.data, path, w, watchStandard)
		if remove && found {
			r.remove(r.data, path, w, watchStandard)
		}
	case proto.WatcherPersistent:
		if remove {
			c := r.remove(r.child, path, w, watchPersistent)
			d := r.remove(r.data, path, w, watchPersistent)
			found = c || d
		} else {
			found = r.has(r.data, path, w, watchPersistent)
		}
	case proto.WatcherPersistentRecursive:
		found = r.has(r.data, path, w, watchRecursive)
		if remove && found {
			r.remove(r.data, path, w, watchRecursive)
		}
	case proto.WatcherAny:
		if remove {
			c := r.remove(r.child, path, w, 0)
			d := r.remove(r.data, path, w, 0)
			found = c || d
		} else {
			found = r.has(r.child, path, w, 0) || r.has(r.data, path, w, 0)
		}
	default:
		return proto.ErrBadArguments
	}
	if !found {
		return proto.ErrNoWatcher
	}
	return proto.ErrOK
}

// SetWatches re-arms a reconnecting client's watches (setWatches 101 with a
// *proto.SetWatches, setWatches2 105 with a *proto.SetWatches2) and returns
// the events to deliver at once, relative to the client's last zxid: a data
// watch fires NodeDeleted if the node is gone or NodeDataChanged if mzxid is
// newer, else is registered; an exist watch fires NodeCreated if the node
// exists, else is registered; a child watch fires NodeDeleted if the node is
// gone or NodeChildrenChanged if pzxid is newer, else is registered;
// persistent and recursive watches are registered. Events fired here carry
// Zxid -1 and are filtered by READ on the node like any other.
func (t *Tree) SetWatches(caller Caller, w WatcherID, req proto.Record) []Event {
	var rel int64
	var data, exist, child, persistent, recursive []string
	switch r := req.(type) {
	case *proto.SetWatches:
		rel, data, exist, child = r.RelativeZxid, r.DataWatches, r.ExistWatches, r.ChildWatches
	case *proto.SetWatches2:
		rel, data, exist, child = r.RelativeZxid, r.DataWatches, r.ExistWatches, r.ChildWatches
		persistent, recursive = r.PersistentWatches, r.PersistentRecursiveWatches
	default:
		return nil
	}
	var out []Event
	emit := func(p string, typ int32, acl []proto.ACL) {
		if acl != nil && t.checkACL(caller.Auth, acl, proto.PermRead) != proto.ErrOK {
			return
		}
		out = append(out, Event{Watcher: w, Event: proto.WatcherEvent{Type: typ, State: proto.StateSyncConnected, Path: p}, Zxid: -1})
	}
	for _, p := range data {
		switch n := t.node(p); {
		case n == nil:
			emit(p, proto.EventNodeDeleted, nil)
		case n.mzxid > rel:
			emit(p, proto.EventNodeDataChanged, n.acl())
		default:
			t.watch(caller, w, true, p, watchStandard)
		}
	}
	for _, p := range exist {
		if n := t.node(p); n != nil {
			emit(p, proto.EventNodeCreated, n.acl())
		} else {
			t.watch(caller, w, true, p, watchStandard)
		}
	}
	for _, p := range child {
		switch n := t.node(p); {
		case n == nil:
			emit(p, proto.EventNodeDeleted, nil)
		case n.pzxid() > rel:
			emit(p, proto.EventNodeChildrenChanged, n.acl())
		default:
			t.watch(caller, w, false, p, watchStandard)
		}
	}
	for _, p := range persistent {
		t.watch(caller, w, true, p, watchPersistent)
		t.watch(caller, w, false, p, watchPersistent)
	}
	for _, p := range recursive {
		t.watch(caller, w, true, p, watchRecursive)
	}
	return out
}

// ReadNoWatch serves the reads that change nothing: exists, getData,
// getChildren and getChildren2 without a watch, and getACL. ok is false for
// any other request, and when w watches something under an authentication
// other than caller.Auth (Read would record the new one). It neither
// registers a watch nor touches any state, so callers may run it
// concurrently with other ReadNoWatch calls (never with anything that
// changes the tree).
func (t *Tree) ReadNoWatch(caller Caller, w WatcherID, op proto.OpCode, req proto.Record) (resp proto.Record, code proto.ErrCode, ok bool) {
	if _, watching := t.watches.byWatcher[w]; watching && !slices.Equal(t.watches.auth[w], caller.Auth) {
		return nil, 0, false
	}
	switch r := req.(type) {
	case *proto.ExistsRequest:
		if op == proto.OpExists && !r.Watch {
			resp, code = t.exists(caller, w, r.Path, false)
			return resp, code, true
		}
	case *proto.GetDataRequest:
		if op == proto.OpGetData && !r.Watch {
			data, code := t.getData(caller, w, r.Path, false)
			if code != proto.ErrOK {
				return nil, code, true
			}
			return data, code, true
		}
	case *proto.GetChildrenRequest:
		if op == proto.OpGetChildren && !r.Watch {
			children, _, code := t.getChildren(caller, w, r.Path, false)
			if code != proto.ErrOK {
				return nil, code, true
			}
			return &proto.GetChildrenResponse{Children: children}, code, true
		}
	case *proto.GetChildren2Request:
		if op == proto.OpGetChildren2 && !r.Watch {
			children, stat, code := t.getChildren(caller, w, r.Path, false)
			if code != proto.ErrOK {
				return nil, code, true
			}
			return &proto.GetChildren2Response{Children: children, Stat: stat}, code, true
		}
	case *proto.GetACLRequest:
		if op == proto.OpGetACL {
			resp, code = t.getACL(caller, r.Path)
			return resp, code, true
		}
	}
	return nil, 0, false
}
