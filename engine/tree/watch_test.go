package tree

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/zabkeeper/zabkeeper/proto"
)

func (h *harness) read(w WatcherID, op proto.OpCode, req proto.Record) proto.ErrCode {
	_, err := h.tr.Read(anyone, w, op, req)
	return err
}

func TestOneShotWatches(t *testing.T) {
	h := newHarness(t, Options{})
	// exists sets a watch on an absent node; getData/getChildren do not.
	require.Equal(t, proto.ErrNoNode, h.read(1, proto.OpExists, &proto.ExistsRequest{Path: "/a", Watch: true}))
	require.Equal(t, proto.ErrNoNode, h.read(2, proto.OpGetData, &proto.GetDataRequest{Path: "/a", Watch: true}))
	require.Equal(t, proto.ErrNoNode, h.read(2, proto.OpGetChildren, &proto.GetChildrenRequest{Path: "/a", Watch: true}))
	require.Equal(t, proto.ErrOK, h.read(3, proto.OpGetChildren2, &proto.GetChildren2Request{Path: "/", Watch: true}))
	require.Equal(t, 2, h.tr.WatchCount())

	res := h.create(anyone, "/a", "", 0)
	z := h.zxid
	require.Equal(t, []Event{ev(1, proto.EventNodeCreated, "/a", z), ev(3, proto.EventNodeChildrenChanged, "/", z)}, res.Events)
	require.Zero(t, h.tr.WatchCount())
	require.Empty(t, h.create(anyone, "/b", "", 0).Events, "one-shot")

	// setData fires data watches only.
	require.Equal(t, proto.ErrOK, h.read(1, proto.OpGetData, &proto.GetDataRequest{Path: "/a", Watch: true}))
	require.Equal(t, proto.ErrOK, h.read(2, proto.OpExists, &proto.ExistsRequest{Path: "/a", Watch: true}))
	require.Equal(t, proto.ErrOK, h.read(3, proto.OpGetChildren, &proto.GetChildrenRequest{Path: "/a", Watch: true}))
	res = h.do(anyone, proto.OpSetData, &proto.SetDataRequest{Path: "/a", Version: -1})
	require.Equal(t, []Event{ev(1, proto.EventNodeDataChanged, "/a", h.zxid), ev(2, proto.EventNodeDataChanged, "/a", h.zxid)}, res.Events)
	require.Empty(t, h.do(anyone, proto.OpSetACL, &proto.SetACLRequest{Path: "/a", ACL: proto.OpenACLUnsafe, Version: -1}).Events)

	// delete: NodeDeleted once per watcher across both tables, then the parent.
	require.Equal(t, proto.ErrOK, h.read(3, proto.OpGetData, &proto.GetDataRequest{Path: "/a", Watch: true}))
	require.Equal(t, proto.ErrOK, h.read(4, proto.OpGetChildren, &proto.GetChildrenRequest{Path: "/", Watch: true}))
	res = h.do(anyone, proto.OpDelete, &proto.DeleteRequest{Path: "/a", Version: -1})
	require.Equal(t, []Event{ev(3, proto.EventNodeDeleted, "/a", h.zxid), ev(4, proto.EventNodeChildrenChanged, "/", h.zxid)}, res.Events)
	require.Zero(t, h.tr.WatchCount())
	require.Empty(t, h.tr.WatchesByWatcher())
}

func TestPersistentWatches(t *testing.T) {
	h := newHarness(t, Options{})
	h.mustCreate("/p", 0)
	_, err := h.tr.Read(anyone, 1, proto.OpAddWatch, &proto.AddWatchRequest{Path: "/p", Mode: proto.AddWatchPersistent})
	require.Equal(t, proto.ErrOK, err)
	resp, err := h.tr.Read(anyone, 2, proto.OpAddWatch, &proto.AddWatchRequest{Path: "/p", Mode: proto.AddWatchPersistentRecursive})
	require.Equal(t, proto.ErrOK, err)
	require.Equal(t, &proto.ErrorResponse{}, resp)
	require.Equal(t, proto.ErrBadArguments, h.read(2, proto.OpAddWatch, &proto.AddWatchRequest{Path: "/p", Mode: 7}))
	require.Equal(t, 3, h.tr.WatchCount())

	res := h.create(anyone, "/p/c", "", 0)
	require.Equal(t, []Event{ev(2, proto.EventNodeCreated, "/p/c", h.zxid), ev(1, proto.EventNodeChildrenChanged, "/p", h.zxid)}, res.Events)
	res = h.create(anyone, "/p/c/d", "", 0)
	require.Equal(t, []Event{ev(2, proto.EventNodeCreated, "/p/c/d", h.zxid)}, res.Events)
	res = h.do(anyone, proto.OpSetData, &proto.SetDataRequest{Path: "/p", Version: -1})
	require.Equal(t, []Event{ev(1, proto.EventNodeDataChanged, "/p", h.zxid), ev(2, proto.EventNodeDataChanged, "/p", h.zxid)}, res.Events)
	// A one-shot watch beside a persistent one fires once and goes; the persistent one stays.
	require.Equal(t, proto.ErrOK, h.read(1, proto.OpGetData, &proto.GetDataRequest{Path: "/p", Watch: true}))
	res = h.do(anyone, proto.OpSetData, &proto.SetDataRequest{Path: "/p", Version: -1})
	require.Len(t, res.Events, 2)
	require.Equal(t, 3, h.tr.WatchCount())

	res = h.do(anyone, proto.OpDelete, &proto.DeleteRequest{Path: "/p/c/d", Version: -1})
	require.Equal(t, []Event{ev(2, proto.EventNodeDeleted, "/p/c/d", h.zxid)}, res.Events)
	h.do(anyone, proto.OpDelete, &proto.DeleteRequest{Path: "/p/c", Version: -1})
	res = h.do(anyone, proto.OpDelete, &proto.DeleteRequest{Path: "/p", Version: -1})
	require.Equal(t, []Event{ev(1, proto.EventNodeDeleted, "/p", h.zxid), ev(2, proto.EventNodeDeleted, "/p", h.zxid)}, res.Events)
	// Persistent watches survive the node.
	res = h.create(anyone, "/p", "", 0)
	require.Equal(t, []Event{ev(1, proto.EventNodeCreated, "/p", h.zxid), ev(2, proto.EventNodeCreated, "/p", h.zxid)}, res.Events)

	// A recursive watch on / sees everything but child events.
	require.Equal(t, proto.ErrOK, h.read(3, proto.OpAddWatch, &proto.AddWatchRequest{Path: "/", Mode: proto.AddWatchPersistentRecursive}))
	res = h.create(anyone, "/z", "", 0)
	require.Equal(t, []Event{ev(3, proto.EventNodeCreated, "/z", h.zxid)}, res.Events)
}

func TestRemoveAndCheckWatches(t *testing.T) {
	h := newHarness(t, Options{})
	h.mustCreate("/a", 0)
	check := func(w WatcherID, typ int32) proto.ErrCode {
		return h.read(w, proto.OpCheckWatches, &proto.CheckWatchesRequest{Path: "/a", Type: typ})
	}
	remove := func(w WatcherID, typ int32) proto.ErrCode {
		return h.read(w, proto.OpRemoveWatches, &proto.RemoveWatchesRequest{Path: "/a", Type: typ})
	}
	require.Equal(t, proto.ErrNoWatcher, check(1, proto.WatcherAny))
	require.Equal(t, proto.ErrNoWatcher, remove(1, proto.WatcherAny))
	require.Equal(t, proto.ErrOK, h.read(1, proto.OpGetData, &proto.GetDataRequest{Path: "/a", Watch: true}))
	require.Equal(t, proto.ErrOK, h.read(1, proto.OpGetChildren, &proto.GetChildrenRequest{Path: "/a", Watch: true}))
	require.Equal(t, proto.ErrOK, check(1, proto.WatcherData))
	require.Equal(t, proto.ErrOK, check(1, proto.WatcherChildren))
	require.Equal(t, proto.ErrNoWatcher, check(1, proto.WatcherPersistent))
	require.Equal(t, proto.ErrNoWatcher, check(2, proto.WatcherData))
	require.Equal(t, proto.ErrOK, remove(1, proto.WatcherData))
	require.Equal(t, proto.ErrNoWatcher, remove(1, proto.WatcherData))
	require.Equal(t, proto.ErrOK, check(1, proto.WatcherAny))
	require.Equal(t, proto.ErrOK, remove(1, proto.WatcherAny))
	require.Equal(t, proto.ErrNoWatcher, check(1, proto.WatcherAny))
	require.Equal(t, proto.ErrBadArguments, check(1, 42))

	require.Equal(t, proto.ErrOK, h.read(1, proto.OpAddWatch, &proto.AddWatchRequest{Path: "/a", Mode: proto.AddWatchPersistent}))
	require.Equal(t, proto.ErrOK, h.read(1, proto.OpAddWatch, &proto.AddWatchRequest{Path: "/a", Mode: proto.AddWatchPersistentRecursive}))
	require.Equal(t, proto.ErrNoWatcher, check(1, proto.WatcherData))
	require.Equal(t, proto.ErrOK, check(1, proto.WatcherPersistent))
	require.Equal(t, proto.ErrOK, remove(1, proto.WatcherPersistent))
	require.Equal(t, proto.ErrNoWatcher, check(1, proto.WatcherPersistent))
	require.Equal(t, proto.ErrOK, check(1, proto.WatcherPersistentRecursive))
	require.Equal(t, 1, h.tr.WatchCount())
	require.Equal(t, proto.ErrOK, remove(1, proto.WatcherPersistentRecursive))
	require.Zero(t, h.tr.WatchCount())
	require.Empty(t, h.create(anyone, "/a/b", "", 0).Events)

	// RemoveWatcher drops everything of one watcher only.
	require.Equal(t, proto.ErrOK, h.read(1, proto.OpAddWatch, &proto.AddWatchRequest{Path: "/", Mode: proto.AddWatchPersistentRecursive}))
	require.Equal(t, proto.ErrOK, h.read(1, proto.OpGetData, &proto.GetDataRequest{Path: "/a", Watch: true}))
	require.Equal(t, proto.ErrOK, h.read(2, proto.OpGetData, &proto.GetDataRequest{Path: "/a", Watch: true}))
	require.Equal(t, map[WatcherID][]string{1: {"/", "/a"}, 2: {"/a"}}, h.tr.WatchesByWatcher())
	h.tr.RemoveWatcher(1)
	require.Equal(t, map[WatcherID][]string{2: {"/a"}}, h.tr.WatchesByWatcher())
	require.Zero(t, h.tr.watches.recursive)
}

func TestWatchACLFiltering(t *testing.T) {
	h := newHarness(t, Options{})
	secret := []proto.ACL{{Perms: proto.PermAll, Id: proto.Id{Scheme: "digest", ID: DigestID("u", "p")}}}
	owner := Caller{SessionID: 1, Auth: []proto.Id{{Scheme: "digest", ID: DigestID("u", "p")}}}
	// Watcher 1 is unauthenticated; watcher 2 is the owner.
	_, err := h.tr.Read(Caller{}, 1, proto.OpAddWatch, &proto.AddWatchRequest{Path: "/", Mode: proto.AddWatchPersistentRecursive})
	require.Equal(t, proto.ErrOK, err)
	_, err = h.tr.Read(owner, 2, proto.OpAddWatch, &proto.AddWatchRequest{Path: "/", Mode: proto.AddWatchPersistentRecursive})
	require.Equal(t, proto.ErrOK, err)
	res := h.do(owner, proto.OpCreate, &proto.CreateRequest{Path: "/s", ACL: secret})
	require.Equal(t, []Event{ev(2, proto.EventNodeCreated, "/s", h.zxid)}, res.Events)
	// Child events need READ on the parent.
	_, err = h.tr.Read(owner, 2, proto.OpGetChildren, &proto.GetChildrenRequest{Path: "/s", Watch: true})
	require.Equal(t, proto.ErrOK, err)
	_, err = h.tr.Read(Caller{}, 1, proto.OpAddWatch, &proto.AddWatchRequest{Path: "/s", Mode: proto.AddWatchPersistent})
	require.Equal(t, proto.ErrOK, err)
	res = h.do(owner, proto.OpCreate, &proto.CreateRequest{Path: "/s/open", ACL: proto.OpenACLUnsafe})
	require.Equal(t, []Event{
		ev(1, proto.EventNodeCreated, "/s/open", h.zxid),
		ev(2, proto.EventNodeCreated, "/s/open", h.zxid),
		ev(2, proto.EventNodeChildrenChanged, "/s", h.zxid),
	}, res.Events)
	// The latest authentication counts: watcher 1 authenticates.
	_, err = h.tr.Read(owner, 1, proto.OpExists, &proto.ExistsRequest{Path: "/"})
	require.Equal(t, proto.ErrOK, err)
	res = h.do(owner, proto.OpSetData, &proto.SetDataRequest{Path: "/s", Version: -1})
	require.Equal(t, []Event{ev(1, proto.EventNodeDataChanged, "/s", h.zxid), ev(2, proto.EventNodeDataChanged, "/s", h.zxid)}, res.Events)
}

func TestSetWatches(t *testing.T) {
	h := newHarness(t, Options{})
	h.mustCreate("/old", 0)
	h.mustCreate("/kids", 0)
	rel := h.zxid
	h.mustCreate("/new", 0)
	h.mustCreate("/kids/k", 0)
	h.do(anyone, proto.OpSetData, &proto.SetDataRequest{Path: "/new", Version: -1})
	evs := h.tr.SetWatches(anyone, 7, &proto.SetWatches2{
		RelativeZxid:               rel,
		DataWatches:                []string{"/old", "/new", "/gone"},
		ExistWatches:               []string{"/new", "/absent"},
		ChildWatches:               []string{"/old", "/kids", "/gone"},
		PersistentWatches:          []string{"/p"},
		PersistentRecursiveWatches: []string{"/r"},
	})
	require.Equal(t, []Event{
		ev(7, proto.EventNodeDataChanged, "/new", -1),
		ev(7, proto.EventNodeDeleted, "/gone", -1),
		ev(7, proto.EventNodeCreated, "/new", -1),
		ev(7, proto.EventNodeChildrenChanged, "/kids", -1),
		ev(7, proto.EventNodeDeleted, "/gone", -1),
	}, evs)
	require.Equal(t, map[WatcherID][]string{7: {"/absent", "/old", "/p", "/r"}}, h.tr.WatchesByWatcher())
	require.Equal(t, 6, h.tr.WatchCount()) // /old data+child, /absent, /p in both tables, /r
	require.Empty(t, h.tr.SetWatches(anyone, 8, &proto.SetWatches{RelativeZxid: h.zxid, DataWatches: []string{"/old"}}))
	require.Nil(t, h.tr.SetWatches(anyone, 8, &proto.ExistsRequest{}))
}

// A one-shot watch that is its watcher's last still delivers to a node only
// its authentication may read: consuming the watch must not forget the
// authentication before the event is checked against the ACL.
func TestOneShotWatchOnProtectedNode(t *testing.T) {
	h := newHarness(t, Options{})
	secret := []proto.ACL{{Perms: proto.PermAll, Id: proto.Id{Scheme: "digest", ID: DigestID("u", "p")}}}
	owner := Caller{SessionID: 1, Auth: []proto.Id{{Scheme: "digest", ID: DigestID("u", "p")}}}
	h.do(owner, proto.OpCreate, &proto.CreateRequest{Path: "/s", ACL: secret})
	for _, w := range []WatcherID{3, 2} {
		_, err := h.tr.Read(owner, w, proto.OpGetData, &proto.GetDataRequest{Path: "/s", Watch: true})
		require.Equal(t, proto.ErrOK, err)
	}
	_, err := h.tr.Read(owner, 4, proto.OpExists, &proto.ExistsRequest{Path: "/s", Watch: true})
	require.Equal(t, proto.ErrOK, err)
	_, err = h.tr.Read(owner, 4, proto.OpGetChildren, &proto.GetChildrenRequest{Path: "/s", Watch: true})
	require.Equal(t, proto.ErrOK, err)
	res := h.do(owner, proto.OpSetData, &proto.SetDataRequest{Path: "/s", Version: -1})
	require.Equal(t, []Event{
		ev(2, proto.EventNodeDataChanged, "/s", h.zxid),
		ev(3, proto.EventNodeDataChanged, "/s", h.zxid),
		ev(4, proto.EventNodeDataChanged, "/s", h.zxid),
	}, res.Events)
	// Watcher 4 still holds its child watch; 2 and 3 hold nothing.
	require.Equal(t, map[WatcherID][]string{4: {"/s"}}, h.tr.WatchesByWatcher())
	res = h.do(owner, proto.OpCreate, &proto.CreateRequest{Path: "/s/c", ACL: proto.OpenACLUnsafe})
	require.Equal(t, []Event{ev(4, proto.EventNodeChildrenChanged, "/s", h.zxid)}, res.Events)
}
