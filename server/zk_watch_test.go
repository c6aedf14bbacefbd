package server_test

// Watch semantics: one-shot data, exist and child watches through go-zk,
// exact event sequences through the raw client, ordering against replies,
// persistent and persistent-recursive watches, ACL filtering.

import (
	"testing"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/proto"
)

func TestWatchDataFiresOnce(t *testing.T) {
	addr, _ := startServer(t, nil)
	c := connect(t, addr)
	mustCreate(t, c, "/w", []byte("0"), 0)

	_, _, ch, err := c.GetW("/w")
	require.NoError(t, err)
	_, err = c.Set("/w", []byte("1"), -1)
	require.NoError(t, err)
	ev := recvEvent(t, ch, "NodeDataChanged")
	require.Equal(t, zk.Event{Type: zk.EventNodeDataChanged, State: zk.StateSyncConnected, Path: "/w"}, ev)

	// The server must send it once: check on the wire.
	raw := newSession(t, addr, 10000)
	var gd proto.GetDataResponse
	require.Equal(t, proto.ErrOK, raw.call(proto.OpGetData, &proto.GetDataRequest{Path: "/w", Watch: true}, &gd).Err)
	for i := 0; i < 3; i++ {
		var sd proto.SetDataResponse
		require.Equal(t, proto.ErrOK, raw.call(proto.OpSetData, &proto.SetDataRequest{Path: "/w", Data: []byte{byte(i)}, Version: -1}, &sd).Err)
	}
	require.Equal(t, proto.ErrOK, raw.ping().Err)
	require.Equal(t, []proto.WatcherEvent{{Type: proto.EventNodeDataChanged, State: proto.StateSyncConnected, Path: "/w"}},
		raw.takeEvents(), "a data watch fires once")
}

func TestWatchExistOnAbsentNode(t *testing.T) {
	addr, _ := startServer(t, nil)
	c := connect(t, addr)
	w := connect(t, addr)

	ok, _, ch, err := w.ExistsW("/later")
	require.NoError(t, err)
	require.False(t, ok)
	mustCreate(t, c, "/later", nil, 0)
	ev := recvEvent(t, ch, "NodeCreated")
	require.Equal(t, zk.EventNodeCreated, ev.Type)
	require.Equal(t, "/later", ev.Path)

	// exists on an existing node sets a data watch: NodeDataChanged, then NodeDeleted.
	ok, _, ch, err = w.ExistsW("/later")
	require.NoError(t, err)
	require.True(t, ok)
	_, err = c.Set("/later", []byte("x"), -1)
	require.NoError(t, err)
	ev = recvEvent(t, ch, "NodeDataChanged via exists watch")
	require.Equal(t, zk.EventNodeDataChanged, ev.Type)
	ok, _, ch, err = w.ExistsW("/later")
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, c.Delete("/later", -1))
	ev = recvEvent(t, ch, "NodeDeleted via exists watch")
	require.Equal(t, zk.EventNodeDeleted, ev.Type)

	// getData on an absent node sets no watch: a later create is not reported.
	raw := newSession(t, addr, 10000)
	h := raw.call(proto.OpGetData, &proto.GetDataRequest{Path: "/absent", Watch: true}, nil)
	require.Equal(t, proto.ErrNoNode, h.Err)
	h = raw.call(proto.OpGetChildren, &proto.GetChildrenRequest{Path: "/absent", Watch: true}, nil)
	require.Equal(t, proto.ErrNoNode, h.Err)
	var cr proto.CreateResponse
	require.Equal(t, proto.ErrOK, raw.call(proto.OpCreate, &proto.CreateRequest{Path: "/absent", ACL: proto.OpenACLUnsafe}, &cr).Err)
	require.Empty(t, raw.takeEvents(), "getData/getChildren on a missing node must not leave a watch")
}

func TestWatchChildren(t *testing.T) {
	addr, _ := startServer(t, nil)
	c := connect(t, addr)
	w := connect(t, addr)
	mustCreate(t, c, "/kids", nil, 0)

	_, _, ch, err := w.ChildrenW("/kids")
	require.NoError(t, err)
	_, err = c.Set("/kids", []byte("data change is not a child change"), -1)
	require.NoError(t, err)
	mustCreate(t, c, "/kids/a", nil, 0)
	ev := recvEvent(t, ch, "NodeChildrenChanged on create")
	require.Equal(t, zk.Event{Type: zk.EventNodeChildrenChanged, State: zk.StateSyncConnected, Path: "/kids"}, ev)

	_, _, ch, err = w.ChildrenW("/kids")
	require.NoError(t, err)
	_, err = c.Set("/kids/a", []byte("grandchild data is no child change"), -1)
	require.NoError(t, err)
	require.NoError(t, c.Delete("/kids/a", -1))
	ev = recvEvent(t, ch, "NodeChildrenChanged on delete")
	require.Equal(t, zk.EventNodeChildrenChanged, ev.Type)
	require.Equal(t, "/kids", ev.Path)
}

func TestWatchDeleteFiresDataAndChildWatches(t *testing.T) {
	addr, _ := startServer(t, nil)
	c := connect(t, addr)
	w := connect(t, addr)
	mustCreate(t, c, "/d", nil, 0)
	mustCreate(t, c, "/d/x", nil, 0)

	_, _, dch, err := w.GetW("/d/x")
	require.NoError(t, err)
	_, _, cch, err := w.ChildrenW("/d/x")
	require.NoError(t, err)
	_, _, pch, err := w.ChildrenW("/d")
	require.NoError(t, err)
	require.NoError(t, c.Delete("/d/x", -1))
	for _, tc := range []struct {
		name string
		ch   <-chan zk.Event
		want zk.Event
	}{
		{"data watch", dch, zk.Event{Type: zk.EventNodeDeleted, State: zk.StateSyncConnected, Path: "/d/x"}},
		{"child watch", cch, zk.Event{Type: zk.EventNodeDeleted, State: zk.StateSyncConnected, Path: "/d/x"}},
		{"parent child watch", pch, zk.Event{Type: zk.EventNodeChildrenChanged, State: zk.StateSyncConnected, Path: "/d"}},
	} {
		require.Equal(t, tc.want, recvEvent(t, tc.ch, tc.name), tc.name)
	}

	// On the wire: one NodeDeleted per watcher even with data and child
	// watches, then the parent's NodeChildrenChanged; setACL and sync fire nothing.
	raw := newSession(t, addr, 10000)
	mustCreate(t, c, "/d/y", nil, 0)
	require.Equal(t, proto.ErrOK, raw.call(proto.OpGetData, &proto.GetDataRequest{Path: "/d/y", Watch: true}, &proto.GetDataResponse{}).Err)
	require.Equal(t, proto.ErrOK, raw.call(proto.OpExists, &proto.ExistsRequest{Path: "/d/y", Watch: true}, &proto.ExistsResponse{}).Err)
	require.Equal(t, proto.ErrOK, raw.call(proto.OpGetChildren2, &proto.GetChildren2Request{Path: "/d/y", Watch: true}, &proto.GetChildren2Response{}).Err)
	require.Equal(t, proto.ErrOK, raw.call(proto.OpGetChildren, &proto.GetChildrenRequest{Path: "/d", Watch: true}, &proto.GetChildrenResponse{}).Err)
	require.Equal(t, proto.ErrOK, raw.call(proto.OpSetACL, &proto.SetACLRequest{Path: "/d/y", ACL: proto.OpenACLUnsafe, Version: -1}, &proto.SetACLResponse{}).Err)
	require.Equal(t, proto.ErrOK, raw.call(proto.OpSync, &proto.SyncRequest{Path: "/d/y"}, &proto.SyncResponse{}).Err)
	require.Empty(t, raw.takeEvents(), "setACL and sync fire no watch")
	require.Equal(t, proto.ErrOK, raw.call(proto.OpDelete, &proto.DeleteRequest{Path: "/d/y", Version: -1}, nil).Err)
	require.Equal(t, []proto.WatcherEvent{
		{Type: proto.EventNodeDeleted, State: proto.StateSyncConnected, Path: "/d/y"},
		{Type: proto.EventNodeChildrenChanged, State: proto.StateSyncConnected, Path: "/d"},
	}, raw.takeEvents(), "events precede the delete's reply, one per watcher")
}

// TestWatchOrdering checks that a watch event reaches its connection before
// the reply of the write that triggered it and before any later read reply.
func TestWatchOrdering(t *testing.T) {
	addr, _ := startServer(t, nil)
	c := connect(t, addr)
	other := connect(t, addr)
	mustCreate(t, c, "/o", []byte("0"), 0)

	t.Run("own write", func(t *testing.T) {
		for i := 0; i < 20; i++ {
			_, _, ch, err := c.GetW("/o")
			require.NoError(t, err)
			_, err = c.Set("/o", []byte{byte(i)}, -1)
			require.NoError(t, err)
			select {
			case ev := <-ch:
				require.Equal(t, zk.EventNodeDataChanged, ev.Type)
			default:
				t.Fatalf("iteration %d: the Set reply arrived before its watch event", i)
			}
		}
	})
	t.Run("later read", func(t *testing.T) {
		for i := 0; i < 20; i++ {
			_, _, ch, err := c.GetW("/o")
			require.NoError(t, err)
			want := []byte{'o', byte(i)}
			_, err = other.Set("/o", want, -1)
			require.NoError(t, err)
			// The write has committed; our read must not overtake its event.
			data, _, err := c.Get("/o")
			require.NoError(t, err)
			require.Equal(t, want, data)
			select {
			case ev := <-ch:
				require.Equal(t, zk.EventNodeDataChanged, ev.Type)
			default:
				t.Fatalf("iteration %d: a later read's reply arrived before the watch event", i)
			}
		}
	})
	t.Run("raw zxid order", func(t *testing.T) {
		raw := newSession(t, addr, 10000)
		for _, p := range []string{"/o1", "/o2", "/o3"} {
			require.Equal(t, proto.ErrNoNode, raw.call(proto.OpExists, &proto.ExistsRequest{Path: p, Watch: true}, nil).Err)
		}
		_, err := other.Multi(
			&zk.CreateRequest{Path: "/o3", Acl: zk.WorldACL(zk.PermAll)},
			&zk.CreateRequest{Path: "/o1", Acl: zk.WorldACL(zk.PermAll)},
		)
		require.NoError(t, err)
		mustCreate(t, other, "/o2", nil, 0)
		got := []proto.WatcherEvent{raw.nextEvent(), raw.nextEvent(), raw.nextEvent()}
		require.Equal(t, []proto.WatcherEvent{
			{Type: proto.EventNodeCreated, State: proto.StateSyncConnected, Path: "/o3"},
			{Type: proto.EventNodeCreated, State: proto.StateSyncConnected, Path: "/o1"},
			{Type: proto.EventNodeCreated, State: proto.StateSyncConnected, Path: "/o2"},
		}, got, "events in zxid order, multi ops in op order")
	})
}

// addWatch registers a persistent (recursive) watch through the raw client.
func addWatch(t *testing.T, raw *rawClient, path string, mode int32) {
	t.Helper()
	var er proto.ErrorResponse
	h := raw.call(proto.OpAddWatch, &proto.AddWatchRequest{Path: path, Mode: mode}, &er)
	require.Equal(t, proto.ErrOK, h.Err, "addWatch %s mode %d", path, mode)
	require.Equal(t, proto.ErrOK, er.Err)
}

// drainEvents reads exactly n notifications, then pings to make sure no
// further one was already queued before the ping's reply.
func drainEvents(t *testing.T, raw *rawClient, n int) []proto.WatcherEvent {
	t.Helper()
	var got []proto.WatcherEvent
	for len(got) < n {
		got = append(got, raw.nextEvent())
	}
	require.Equal(t, proto.ErrOK, raw.ping().Err)
	got = append(got, raw.takeEvents()...)
	return got
}

func ev(typ int32, path string) proto.WatcherEvent {
	return proto.WatcherEvent{Type: typ, State: proto.StateSyncConnected, Path: path}
}

func TestWatchPersistent(t *testing.T) {
	addr, _ := startServer(t, nil)
	c := connect(t, addr)
	raw := newSession(t, addr, 10000)
	addWatch(t, raw, "/p", proto.AddWatchPersistent) // on a node that does not exist yet

	mustCreate(t, c, "/p", nil, 0)
	_, err := c.Set("/p", []byte("1"), -1)
	require.NoError(t, err)
	_, err = c.Set("/p", []byte("2"), -1) // fires again: never removed
	require.NoError(t, err)
	mustCreate(t, c, "/p/c", nil, 0)
	_, err = c.Set("/p/c", []byte("not watched"), -1)
	require.NoError(t, err)
	mustCreate(t, c, "/p/c/g", nil, 0) // grandchild: not watched
	require.NoError(t, c.Delete("/p/c/g", -1))
	require.NoError(t, c.Delete("/p/c", -1))
	require.NoError(t, c.Delete("/p", -1))
	mustCreate(t, c, "/p", nil, 0) // still armed after NodeDeleted

	require.Equal(t, []proto.WatcherEvent{
		ev(proto.EventNodeCreated, "/p"),
		ev(proto.EventNodeDataChanged, "/p"),
		ev(proto.EventNodeDataChanged, "/p"),
		ev(proto.EventNodeChildrenChanged, "/p"),
		ev(proto.EventNodeChildrenChanged, "/p"),
		ev(proto.EventNodeDeleted, "/p"),
		ev(proto.EventNodeCreated, "/p"),
	}, drainEvents(t, raw, 7))

	// checkWatches / removeWatches for the persistent watch.
	require.Equal(t, proto.ErrOK, raw.call(proto.OpCheckWatches, &proto.CheckWatchesRequest{Path: "/p", Type: proto.WatcherPersistent}, nil).Err)
	require.Equal(t, proto.ErrOK, raw.call(proto.OpRemoveWatches, &proto.RemoveWatchesRequest{Path: "/p", Type: proto.WatcherPersistent}, nil).Err)
	require.Equal(t, proto.ErrNoWatcher, raw.call(proto.OpCheckWatches, &proto.CheckWatchesRequest{Path: "/p", Type: proto.WatcherPersistent}, nil).Err)
	_, err = c.Set("/p", []byte("after removal"), -1)
	require.NoError(t, err)
	require.Equal(t, proto.ErrOK, raw.ping().Err)
	require.Empty(t, raw.takeEvents(), "removed persistent watch must not fire")
}

func TestWatchPersistentRecursive(t *testing.T) {
	addr, _ := startServer(t, nil)
	c := connect(t, addr)
	raw := newSession(t, addr, 10000)
	mustCreate(t, c, "/r", nil, 0)
	addWatch(t, raw, "/r", proto.AddWatchPersistentRecursive)

	mustCreate(t, c, "/r/a", nil, 0)
	mustCreate(t, c, "/r/a/b", nil, 0)
	_, err := c.Set("/r/a/b", []byte("x"), -1)
	require.NoError(t, err)
	_, err = c.Set("/r", []byte("y"), -1)
	require.NoError(t, err)
	mustCreate(t, c, "/rx", nil, 0) // a sibling with a common prefix is not a descendant
	_, err = c.Set("/rx", []byte("z"), -1)
	require.NoError(t, err)
	eph := mustCreate(t, c, "/r/a/e-", nil, zk.FlagEphemeralSequential)
	require.NoError(t, c.Delete("/r/a/b", -1))
	require.NoError(t, c.Delete(eph, -1))

	require.Equal(t, []proto.WatcherEvent{
		ev(proto.EventNodeCreated, "/r/a"),
		ev(proto.EventNodeCreated, "/r/a/b"),
		ev(proto.EventNodeDataChanged, "/r/a/b"),
		ev(proto.EventNodeDataChanged, "/r"),
		ev(proto.EventNodeCreated, eph),
		ev(proto.EventNodeDeleted, "/r/a/b"),
		ev(proto.EventNodeDeleted, eph),
	}, drainEvents(t, raw, 7), "recursive: every descendant, never NodeChildrenChanged")

	// A one-shot watch on the same path coexists: both fire, the recursive stays.
	require.Equal(t, proto.ErrOK, raw.call(proto.OpGetChildren, &proto.GetChildrenRequest{Path: "/r/a", Watch: true}, nil).Err)
	mustCreate(t, c, "/r/a/c", nil, 0)
	got := drainEvents(t, raw, 2)
	require.ElementsMatch(t, []proto.WatcherEvent{
		ev(proto.EventNodeCreated, "/r/a/c"),
		ev(proto.EventNodeChildrenChanged, "/r/a"),
	}, got)
	mustCreate(t, c, "/r/a/d", nil, 0)
	require.Equal(t, []proto.WatcherEvent{ev(proto.EventNodeCreated, "/r/a/d")}, drainEvents(t, raw, 1))
}

// TestWatchACLFiltering: an event is dropped unless the watcher may READ the
// node (CVE-2024-23944).
func TestWatchACLFiltering(t *testing.T) {
	addr, _ := startServer(t, nil)
	owner := connect(t, addr)
	require.NoError(t, owner.AddAuth("digest", []byte("user:password")))
	mustCreate(t, owner, "/f", nil, 0)
	raw := newSession(t, addr, 10000) // anonymous
	addWatch(t, raw, "/f", proto.AddWatchPersistentRecursive)

	_, err := owner.Create("/f/secret", []byte("s"), 0, zk.DigestACL(zk.PermAll, "user", "password"))
	require.NoError(t, err)
	_, err = owner.Set("/f/secret", []byte("t"), -1)
	require.NoError(t, err)
	mustCreate(t, owner, "/f/open", nil, 0)
	require.Equal(t, []proto.WatcherEvent{ev(proto.EventNodeCreated, "/f/open")}, drainEvents(t, raw, 1),
		"events on a node the watcher cannot read are dropped")
}
