package tree

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/zabkeeper/zabkeeper/proto"
)

func TestInitialTree(t *testing.T) {
	h := newHarness(t, Options{})
	require.Equal(t, []string{"zookeeper"}, h.children("/"))
	require.Equal(t, []string{"config", "quota"}, h.children("/zookeeper"))
	require.Equal(t, proto.Stat{Cversion: -1, NumChildren: 1}, h.stat("/"))
	// What Apache ZooKeeper 3.8 standalone answers for the system nodes:
	// empty data (length 0, not null), and an aversion of -1 on
	// /zookeeper/config.
	require.Equal(t, proto.Stat{Cversion: -2, NumChildren: 2}, h.stat("/zookeeper"))
	require.Equal(t, proto.Stat{}, h.stat("/zookeeper/quota"))
	require.Equal(t, proto.Stat{Aversion: -1}, h.stat("/zookeeper/config"))
	for _, p := range []string{"/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"} {
		resp, err := h.tr.Read(anyone, 0, proto.OpGetData, &proto.GetDataRequest{Path: p})
		require.Equal(t, proto.ErrOK, err, "getData %s", p)
		data := resp.(*proto.GetDataResponse).Data
		require.NotNil(t, data, "getData %s must return empty data, not null", p)
		require.Empty(t, data, "getData %s", p)
	}
	require.Equal(t, 4, h.tr.NodeCount())
	acl, err := h.tr.Read(anyone, 0, proto.OpGetACL, &proto.GetACLRequest{Path: "/zookeeper/config"})
	require.Equal(t, proto.ErrOK, err)
	require.Equal(t, proto.ReadACLUnsafe, acl.(*proto.GetACLResponse).ACL)
	for _, p := range []string{"/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"} {
		require.Equal(t, proto.ErrBadArguments, h.create(anyone, p, "", 0).Err, "create %s", p)
		require.Equal(t, proto.ErrBadArguments, h.do(anyone, proto.OpDelete, &proto.DeleteRequest{Path: p, Version: -1}).Err, "delete %s", p)
	}
	require.Equal(t, New(Options{}).Digest(), h.tr.Digest())
}

func TestCreateAndDeleteStat(t *testing.T) {
	h := newHarness(t, Options{})
	res := h.create(anyone, "/a", "hello", proto.ModePersistent)
	require.Equal(t, proto.ErrOK, res.Err)
	z := h.zxid
	got := res.Resp.(*proto.Create2Response)
	require.Equal(t, "/a", got.Path)
	require.Equal(t, proto.Stat{Czxid: z, Mzxid: z, Pzxid: z, Ctime: h.now, Mtime: h.now, DataLength: 5}, got.Stat)
	root := h.stat("/")
	require.Equal(t, int32(2), root.NumChildren)
	require.Equal(t, int32(0), root.Cversion) // internal 1, 2*1-2
	require.Equal(t, z, root.Pzxid)

	// create(1) answers with a CreateResponse.
	res = h.do(anyone, proto.OpCreate, &proto.CreateRequest{Path: "/a/b", ACL: proto.OpenACLUnsafe})
	require.Equal(t, &proto.CreateResponse{Path: "/a/b"}, res.Resp)
	a := h.stat("/a")
	require.Equal(t, proto.Stat{Czxid: z, Mzxid: z, Pzxid: h.zxid, Ctime: got.Stat.Ctime, Mtime: got.Stat.Mtime,
		Cversion: 1, NumChildren: 1, DataLength: 5}, a)
	require.Equal(t, int32(0), h.stat("/a/b").DataLength) // null data

	res = h.do(anyone, proto.OpDelete, &proto.DeleteRequest{Path: "/a/b", Version: 0})
	require.Equal(t, proto.ErrOK, res.Err)
	require.Nil(t, res.Resp)
	a = h.stat("/a")
	require.Equal(t, int32(2), a.Cversion) // creates + deletes
	require.Equal(t, int32(0), a.NumChildren)
	require.Equal(t, h.zxid, a.Pzxid)
	require.Equal(t, z, a.Mzxid)

	// Ephemeral owner shows; containers and TTL nodes show 0.
	h2 := newHarness(t, Options{ExtendedTypes: true})
	e := h2.do(Caller{SessionID: 77}, proto.OpCreate2, &proto.CreateRequest{Path: "/e", ACL: proto.OpenACLUnsafe, Flags: proto.ModeEphemeral})
	require.Equal(t, int64(77), e.Resp.(*proto.Create2Response).Stat.EphemeralOwner)
	c := h2.do(Caller{SessionID: 77}, proto.OpCreateContainer, &proto.CreateRequest{Path: "/c", ACL: proto.OpenACLUnsafe, Flags: proto.ModeContainer})
	require.Equal(t, int64(0), c.Resp.(*proto.Create2Response).Stat.EphemeralOwner)
	ttl := h2.do(Caller{SessionID: 77}, proto.OpCreateTTL, &proto.CreateTTLRequest{Path: "/t", ACL: proto.OpenACLUnsafe, Flags: proto.ModePersistentWithTTL, TTL: 100})
	require.Equal(t, int64(0), ttl.Resp.(*proto.Create2Response).Stat.EphemeralOwner)
}

func TestCreateCheckOrder(t *testing.T) {
	open := proto.OpenACLUnsafe
	digestOnly := []proto.ACL{{Perms: proto.PermAll, Id: proto.Id{Scheme: "digest", ID: DigestID("u", "p")}}}
	readOnly := proto.ReadACLUnsafe
	type tc struct {
		name  string
		op    proto.OpCode
		path  string
		acl   []proto.ACL
		mode  int32
		ttl   int64
		ext   bool
		auth  []proto.Id
		want  proto.ErrCode
		wantP string
	}
	cases := []tc{
		{name: "ok", path: "/p/x", acl: open, wantP: "/p/x"},
		{name: "bad flags", path: "/p/x", acl: open, mode: 7, want: proto.ErrBadArguments},
		{name: "negative flags", path: "/p/x", acl: open, mode: -1, want: proto.ErrBadArguments},
		{name: "bad flags before ttl", op: proto.OpCreateTTL, path: "/p/x", acl: open, mode: 9, want: proto.ErrBadArguments},
		{name: "createTTL without extended", op: proto.OpCreateTTL, path: "/p/x", acl: open, mode: 5, ttl: 10, want: proto.ErrUnimplemented},
		{name: "ttl mode without extended", path: "/p/x", acl: open, mode: 5, want: proto.ErrUnimplemented},
		{name: "ttl mode via create", path: "/p/x", acl: open, mode: 5, ext: true, want: proto.ErrBadArguments},
		{name: "ttl zero", op: proto.OpCreateTTL, path: "/p/x", acl: open, mode: 5, ttl: 0, ext: true, want: proto.ErrBadArguments},
		{name: "ttl max", op: proto.OpCreateTTL, path: "/p/x", acl: open, mode: 6, ttl: 0xFF_FFFF_FFFF, ext: true, wantP: "/p/x0000000001"},
		{name: "ttl beyond max", op: proto.OpCreateTTL, path: "/p/x", acl: open, mode: 5, ttl: 0xFF_FFFF_FFFF + 1, ext: true, want: proto.ErrBadArguments},
		{name: "ttl with persistent mode", op: proto.OpCreateTTL, path: "/p/x", acl: open, mode: 0, ttl: 5, ext: true, want: proto.ErrBadArguments},
		{name: "ttl before path", op: proto.OpCreateTTL, path: "x", acl: nil, mode: 5, ttl: 0, ext: true, want: proto.ErrBadArguments},
		{name: "no slash", path: "x", acl: open, want: proto.ErrBadArguments},
		{name: "empty", path: "", acl: open, want: proto.ErrBadArguments},
		{name: "nul", path: "/p/x\x00", acl: nil, want: proto.ErrBadArguments},
		{name: "slash before acl", path: "x", acl: nil, want: proto.ErrBadArguments},
		{name: "empty acl", path: "/p/x", acl: nil, want: proto.ErrInvalidACL},
		{name: "acl before parent", path: "/nope/x", acl: nil, want: proto.ErrInvalidACL},
		{name: "auth without ids", path: "/p/x", acl: proto.CreatorAllACL, auth: []proto.Id{{Scheme: "ip", ID: "127.0.0.1"}}, want: proto.ErrInvalidACL},
		{name: "bad digest", path: "/p/x", acl: []proto.ACL{{Perms: 31, Id: proto.Id{Scheme: "digest", ID: "nocolon"}}}, want: proto.ErrInvalidACL},
		{name: "bad ip", path: "/p/x", acl: []proto.ACL{{Perms: 31, Id: proto.Id{Scheme: "ip", ID: "10.0.0.1/33"}}}, want: proto.ErrInvalidACL},
		{name: "world not anyone", path: "/p/x", acl: []proto.ACL{{Perms: 31, Id: proto.Id{Scheme: "world", ID: "me"}}}, want: proto.ErrInvalidACL},
		{name: "unknown scheme", path: "/p/x", acl: []proto.ACL{{Perms: 31, Id: proto.Id{Scheme: "kerberos", ID: "x"}}}, want: proto.ErrInvalidACL},
		{name: "no parent", path: "/nope/x", acl: open, want: proto.ErrNoNode},
		{name: "no leading slash is a missing parent", path: "p/x", acl: open, want: proto.ErrNoNode},
		{name: "double slash is a missing parent", path: "/p//x", acl: open, want: proto.ErrNoNode},
		{name: "parent before path", path: "/nope/x/", acl: open, want: proto.ErrNoNode},
		{name: "no create perm", path: "/ro/x", acl: open, want: proto.ErrNoAuth},
		{name: "noauth before bad path", path: "/ro/", acl: open, want: proto.ErrNoAuth},
		{name: "trailing slash", path: "/p/", acl: open, want: proto.ErrBadArguments},
		{name: "trailing slash sequential", path: "/p/", acl: open, mode: 2, wantP: "/p/0000000001"},
		{name: "dot", path: "/p/.", acl: open, want: proto.ErrBadArguments},
		{name: "dotdot", path: "/p/..", acl: open, want: proto.ErrBadArguments},
		{name: "dots fine", path: "/p/...", acl: open, wantP: "/p/..."},
		{name: "dot prefix fine", path: "/p/.x", acl: open, wantP: "/p/.x"},
		{name: "control char", path: "/p/a\x01", acl: open, want: proto.ErrBadArguments},
		{name: "c1 char", path: "/p/a\u0085", acl: open, want: proto.ErrBadArguments},
		{name: "private use", path: "/p/a\ue000", acl: open, want: proto.ErrBadArguments},
		{name: "specials", path: "/p/a\ufff5", acl: open, want: proto.ErrBadArguments},
		{name: "astral", path: "/p/a\U0001F600", acl: open, want: proto.ErrBadArguments},
		{name: "invalid utf8", path: "/p/a\xff", acl: open, want: proto.ErrBadArguments},
		{name: "latin fine", path: "/p/é", acl: open, wantP: "/p/é"},
		{name: "exists", path: "/p/e", acl: open, want: proto.ErrNodeExists},
		{name: "bad path before exists", path: "/p/e/", acl: open, want: proto.ErrBadArguments},
		{name: "ephemeral parent", path: "/p/e/x", acl: open, want: proto.ErrNoChildrenForEphemerals},
		{name: "exists before ephemeral parent", path: "/p/e/f", acl: open, want: proto.ErrNoChildrenForEphemerals},
		{name: "digest parent no auth", path: "/d/x", acl: open, want: proto.ErrNoAuth},
		{name: "digest parent with auth", path: "/d/x", acl: open, auth: []proto.Id{{Scheme: "digest", ID: DigestID("u", "p")}}, wantP: "/d/x"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, Options{ExtendedTypes: c.ext})
			h.mustCreate("/p", 0)
			h.mustCreate("/p/e", proto.ModeEphemeral)
			require.Equal(t, proto.ErrOK, h.do(anyone, proto.OpCreate, &proto.CreateRequest{Path: "/ro", ACL: readOnly}).Err)
			require.Equal(t, proto.ErrOK, h.do(anyone, proto.OpCreate, &proto.CreateRequest{Path: "/d", ACL: digestOnly}).Err)
			caller := Caller{SessionID: 5, Auth: c.auth}
			op := c.op
			if op == 0 {
				op = proto.OpCreate2
			}
			var req proto.Record = &proto.CreateRequest{Path: c.path, ACL: c.acl, Flags: c.mode}
			if op == proto.OpCreateTTL {
				req = &proto.CreateTTLRequest{Path: c.path, ACL: c.acl, Flags: c.mode, TTL: c.ttl}
			}
			before := h.tr.Digest()
			res := h.do(caller, op, req)
			require.Equal(t, c.want, res.Err)
			if c.want != proto.ErrOK {
				require.Nil(t, res.Resp)
				require.Equal(t, before, h.tr.Digest())
				return
			}
			require.Equal(t, c.wantP, res.Resp.(*proto.Create2Response).Path)
			require.True(t, h.exists(c.wantP))
		})
	}
}

func TestSequentialNames(t *testing.T) {
	h := newHarness(t, Options{})
	h.mustCreate("/q", 0)
	require.Equal(t, "/q/n0000000000", h.mustCreate("/q/n", proto.ModePersistentSequential).Path)
	require.Equal(t, "/q/n0000000001", h.mustCreate("/q/n", proto.ModeEphemeralSequential).Path)
	h.mustCreate("/q/plain", 0)
	require.Equal(t, proto.ErrOK, h.do(anyone, proto.OpDelete, &proto.DeleteRequest{Path: "/q/plain", Version: -1}).Err)
	require.Equal(t, "/q/0000000003", h.mustCreate("/q/", proto.ModePersistentSequential).Path)
	require.Equal(t, []string{"0000000003", "n0000000000", "n0000000001"}, h.children("/q"))

	// Signed int32 overflow of the parent's internal cversion.
	h.zxid++
	res := h.tr.Apply(&Txn{Zxid: h.zxid, Type: proto.OpCreate, Path: "/q/big", ACL: proto.OpenACLUnsafe, ParentCversion: math.MaxInt32})
	require.Equal(t, proto.ErrOK, res.Err)
	require.Equal(t, "/q/s2147483647", h.mustCreate("/q/s", proto.ModePersistentSequential).Path)
	require.Equal(t, "/q/s-2147483648", h.mustCreate("/q/s", proto.ModePersistentSequential).Path)
	require.Equal(t, "/q/s-2147483647", h.mustCreate("/q/s", proto.ModePersistentSequential).Path)
}

func TestDeleteCheckOrder(t *testing.T) {
	cases := []struct {
		name    string
		path    string
		version int32
		auth    []proto.Id
		want    proto.ErrCode
	}{
		{"ok", "/p/leaf", -1, nil, proto.ErrOK},
		{"ok version", "/p/leaf", 0, nil, proto.ErrOK},
		{"empty", "", -1, nil, proto.ErrBadArguments},
		{"no slash", "p", -1, nil, proto.ErrBadArguments},
		{"nul", "/p/\x00", -1, nil, proto.ErrBadArguments},
		{"special", "/zookeeper/quota", -1, nil, proto.ErrBadArguments},
		{"no parent", "/nope/x", -1, nil, proto.ErrNoNode},
		{"no delete perm", "/locked/x", -1, nil, proto.ErrNoAuth},
		{"noauth before missing node", "/locked/missing", -1, nil, proto.ErrNoAuth},
		{"super bypasses", "/locked/x", -1, []proto.Id{{Scheme: "digest", ID: DigestID("super", "admin")}}, proto.ErrOK},
		{"no node", "/p/missing", -1, nil, proto.ErrNoNode},
		{"bad version", "/p/leaf", 3, nil, proto.ErrBadVersion},
		{"bad version before not empty", "/p/inner", 3, nil, proto.ErrBadVersion},
		{"not empty", "/p/inner", -1, nil, proto.ErrNotEmpty},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, Options{SuperDigest: DigestID("super", "admin")})
			h.mustCreate("/p", 0)
			h.mustCreate("/p/leaf", 0)
			h.mustCreate("/p/inner", 0)
			h.mustCreate("/p/inner/c", 0)
			h.mustCreate("/locked", 0)
			h.mustCreate("/locked/x", 0)
			noDelete := []proto.ACL{{Perms: proto.PermAll &^ proto.PermDelete, Id: proto.WorldAnyone}}
			require.Equal(t, proto.ErrOK, h.do(anyone, proto.OpSetACL, &proto.SetACLRequest{Path: "/locked", ACL: noDelete, Version: -1}).Err)
			res := h.do(Caller{Auth: c.auth}, proto.OpDelete, &proto.DeleteRequest{Path: c.path, Version: c.version})
			require.Equal(t, c.want, res.Err)
			if c.want == proto.ErrOK {
				require.False(t, h.exists(c.path))
			}
		})
	}
}

func TestSetDataAndVersions(t *testing.T) {
	h := newHarness(t, Options{})
	h.mustCreate("/a", 0)
	res := h.do(anyone, proto.OpSetData, &proto.SetDataRequest{Path: "/a", Data: []byte("xyz"), Version: 0})
	require.Equal(t, proto.ErrOK, res.Err)
	st := res.Resp.(*proto.SetDataResponse).Stat
	require.Equal(t, int32(1), st.Version)
	require.Equal(t, h.zxid, st.Mzxid)
	require.Equal(t, h.now, st.Mtime)
	require.Equal(t, int32(3), st.DataLength)
	require.NotEqual(t, st.Czxid, st.Mzxid)
	require.Equal(t, proto.ErrBadVersion, h.do(anyone, proto.OpSetData, &proto.SetDataRequest{Path: "/a", Version: 0}).Err)
	require.Equal(t, proto.ErrNoNode, h.do(anyone, proto.OpSetData, &proto.SetDataRequest{Path: "/b", Version: -1}).Err)
	require.Equal(t, proto.ErrBadArguments, h.do(anyone, proto.OpSetData, &proto.SetDataRequest{Path: "/a/", Version: -1}).Err)
	require.Equal(t, proto.ErrOK, h.do(anyone, proto.OpSetACL, &proto.SetACLRequest{Path: "/a", ACL: proto.ReadACLUnsafe, Version: 0}).Err)
	require.Equal(t, proto.ErrNoAuth, h.do(anyone, proto.OpSetData, &proto.SetDataRequest{Path: "/a", Version: 99}).Err, "NoAuth before BadVersion")

	// Version wrap: MaxInt32 → MinInt32, and -2 → 0 skipping -1.
	for _, c := range []struct{ from, to int32 }{{math.MaxInt32, math.MinInt32}, {-2, 0}, {5, 6}} {
		h.mustCreate(fmt.Sprintf("/w%d", c.to), 0)
		p := fmt.Sprintf("/w%d", c.to)
		h.zxid++
		require.Equal(t, proto.ErrOK, h.tr.Apply(&Txn{Zxid: h.zxid, Type: proto.OpSetData, Path: p, Version: c.from}).Err)
		res := h.do(anyone, proto.OpSetData, &proto.SetDataRequest{Path: p, Version: c.from})
		require.Equal(t, proto.ErrOK, res.Err)
		require.Equal(t, c.to, res.Resp.(*proto.SetDataResponse).Stat.Version)
	}
}

func TestEphemeralsAndCloseSession(t *testing.T) {
	h := newHarness(t, Options{})
	s1, s2 := Caller{SessionID: 11}, Caller{SessionID: 22}
	h.mustCreate("/p", 0)
	require.Equal(t, proto.ErrOK, h.create(s1, "/p/e1", "", proto.ModeEphemeral).Err)
	require.Equal(t, proto.ErrOK, h.create(s1, "/p/e2", "", proto.ModeEphemeralSequential).Err)
	require.Equal(t, proto.ErrOK, h.create(s2, "/p/f", "", proto.ModeEphemeral).Err)
	require.Equal(t, []string{"/p/e1", "/p/e20000000001"}, h.tr.Ephemerals(11))
	require.Equal(t, 3, h.tr.EphemeralCount())
	resp, err := h.tr.Read(s1, 0, proto.OpGetEphemerals, &proto.GetEphemeralsRequest{PrefixPath: "/p/e2"})
	require.Equal(t, proto.ErrOK, err)
	require.Equal(t, []string{"/p/e20000000001"}, resp.(*proto.GetEphemeralsResponse).Ephemerals)
	resp, _ = h.tr.Read(s2, 0, proto.OpGetEphemerals, &proto.GetEphemeralsRequest{PrefixPath: "/"})
	require.Equal(t, []string{"/p/f"}, resp.(*proto.GetEphemeralsResponse).Ephemerals)

	_, err = h.tr.Read(s2, 9, proto.OpGetData, &proto.GetDataRequest{Path: "/p/e1", Watch: true})
	require.Equal(t, proto.ErrOK, err)
	_, err = h.tr.Read(s2, 9, proto.OpGetChildren, &proto.GetChildrenRequest{Path: "/p", Watch: true})
	require.Equal(t, proto.ErrOK, err)

	txn := h.prepare(s1, proto.OpCloseSession, nil)
	require.Equal(t, proto.OpCloseSession, txn.Type)
	require.Equal(t, []string{"/p/e1", "/p/e20000000001"}, txn.Paths)
	res := h.tr.Apply(txn)
	require.Equal(t, proto.ErrOK, res.Err)
	require.Equal(t, []Event{
		ev(9, proto.EventNodeDeleted, "/p/e1", txn.Zxid),
		ev(9, proto.EventNodeChildrenChanged, "/p", txn.Zxid),
	}, res.Events)
	require.Equal(t, []string{"f"}, h.children("/p"))
	require.Empty(t, h.tr.Ephemerals(11))
	require.Equal(t, 1, h.tr.EphemeralCount())
	require.Equal(t, int32(3+2), h.stat("/p").Cversion) // 3 creates, 2 deletes
}

func TestCloseSessionSeesPendingCreates(t *testing.T) {
	h := newHarness(t, Options{})
	s := Caller{SessionID: 3}
	t1 := h.prepare(s, proto.OpCreate, &proto.CreateRequest{Path: "/e", ACL: proto.OpenACLUnsafe, Flags: proto.ModeEphemeral})
	t2 := h.prepare(s, proto.OpCloseSession, nil)
	require.Equal(t, []string{"/e"}, t2.Paths)
	h.tr.Apply(t1)
	h.tr.Apply(t2)
	require.False(t, h.exists("/e"))
	require.Zero(t, h.tr.PendingCount())
}

func TestContainersAndTTL(t *testing.T) {
	h := newHarness(t, Options{ExtendedTypes: true})
	res := h.do(anyone, proto.OpCreateContainer, &proto.CreateRequest{Path: "/c", ACL: proto.OpenACLUnsafe, Flags: proto.ModeContainer})
	require.Equal(t, proto.ErrOK, res.Err)
	require.Empty(t, h.tr.Expired(h.now, 10), "never-used containers stay")
	h.mustCreate("/c/x", 0)
	require.Empty(t, h.tr.Expired(h.now, 10), "containers with children stay")
	require.Equal(t, proto.ErrOK, h.do(anyone, proto.OpDelete, &proto.DeleteRequest{Path: "/c/x", Version: -1}).Err)
	require.Equal(t, []string{"/c"}, h.tr.Expired(h.now, 10))

	res = h.do(anyone, proto.OpCreateTTL, &proto.CreateTTLRequest{Path: "/t", ACL: proto.OpenACLUnsafe, Flags: proto.ModePersistentWithTTL, TTL: 100})
	require.Equal(t, proto.ErrOK, res.Err)
	mtime := res.Resp.(*proto.Create2Response).Stat.Mtime
	require.Equal(t, []string{"/c"}, h.tr.Expired(mtime+100, 10))
	require.Equal(t, []string{"/c", "/t"}, h.tr.Expired(mtime+101, 10))
	require.Equal(t, []string{"/c"}, h.tr.Expired(mtime+101, 1))

	// A TTL node touched since the reaper looked is not deleted.
	h.now = mtime + 50
	require.Equal(t, proto.ErrOK, h.do(anyone, proto.OpSetData, &proto.SetDataRequest{Path: "/t", Version: -1}).Err)
	txn := h.tr.Prepare(Txn{Zxid: h.zxid + 1, Time: mtime + 101}, Caller{}, proto.OpDeleteContainer, &proto.DeleteContainerRequest{Path: "/t"})
	require.Equal(t, proto.OpError, txn.Type)
	require.Equal(t, proto.ErrBadVersion, txn.Err)

	_, err := h.tr.Read(Caller{}, 4, proto.OpExists, &proto.ExistsRequest{Path: "/c", Watch: true})
	require.Equal(t, proto.ErrOK, err)
	txn = h.prepare(Caller{}, proto.OpDeleteContainer, &proto.DeleteContainerRequest{Path: "/c"})
	require.Equal(t, proto.OpDeleteContainer, txn.Type)
	res = h.tr.Apply(txn)
	require.Equal(t, proto.ErrOK, res.Err)
	require.Equal(t, []Event{ev(4, proto.EventNodeDeleted, "/c", txn.Zxid)}, res.Events)

	// Only containers and TTL nodes may be reaped.
	h.mustCreate("/plain", 0)
	require.Equal(t, proto.ErrBadVersion, h.do(anyone, proto.OpDeleteContainer, &proto.DeleteContainerRequest{Path: "/plain"}).Err)
	h.mustCreate("/c2", proto.ModeContainer)
	h.mustCreate("/c2/x", 0)
	require.Equal(t, proto.ErrNotEmpty, h.do(anyone, proto.OpDeleteContainer, &proto.DeleteContainerRequest{Path: "/c2"}).Err)
	require.Equal(t, proto.ErrNoNode, h.do(anyone, proto.OpDeleteContainer, &proto.DeleteContainerRequest{Path: "/gone"}).Err)
}

func TestOutstandingChanges(t *testing.T) {
	h := newHarness(t, Options{})
	c := Caller{SessionID: 1}
	t1 := h.prepare(c, proto.OpCreate, &proto.CreateRequest{Path: "/a", ACL: proto.OpenACLUnsafe})
	t2 := h.prepare(c, proto.OpCreate, &proto.CreateRequest{Path: "/a/b", ACL: proto.OpenACLUnsafe})
	t3 := h.prepare(c, proto.OpCreate, &proto.CreateRequest{Path: "/a", ACL: proto.OpenACLUnsafe})
	t4 := h.prepare(c, proto.OpDelete, &proto.DeleteRequest{Path: "/a", Version: -1})
	t5 := h.prepare(c, proto.OpSetData, &proto.SetDataRequest{Path: "/a/b", Version: 0})
	t6 := h.prepare(c, proto.OpSetData, &proto.SetDataRequest{Path: "/a/b", Version: 0})
	t7 := h.prepare(c, proto.OpCreate2, &proto.CreateRequest{Path: "/a/s", ACL: proto.OpenACLUnsafe, Flags: proto.ModePersistentSequential})
	require.Equal(t, proto.OpCreate, t2.Type)
	require.Equal(t, proto.ErrNodeExists, t3.Err)
	require.Equal(t, proto.ErrNotEmpty, t4.Err)
	require.Equal(t, proto.OpSetData, t5.Type)
	require.Equal(t, proto.ErrBadVersion, t6.Err)
	require.Equal(t, "/a/s0000000001", t7.Path)
	for _, txn := range []*Txn{t1, t2, t3, t4, t5, t6, t7} {
		h.tr.Apply(txn)
	}
	require.Zero(t, h.tr.PendingCount())
	require.Equal(t, []string{"b", "s0000000001"}, h.children("/a"))

	// A new leader forgets what it prepared.
	h.prepare(c, proto.OpCreate, &proto.CreateRequest{Path: "/x", ACL: proto.OpenACLUnsafe})
	h.tr.AbandonPending()
	require.Zero(t, h.tr.PendingCount())
	require.Equal(t, proto.OpCreate, h.prepare(c, proto.OpCreate, &proto.CreateRequest{Path: "/x", ACL: proto.OpenACLUnsafe}).Type)
}

func TestUnknownOps(t *testing.T) {
	h := newHarness(t, Options{})
	for _, op := range []proto.OpCode{proto.OpCheck, proto.OpGetData, proto.OpSync, 0, 99} {
		txn := h.prepare(anyone, op, &proto.CheckVersionRequest{Path: "/"})
		require.Equal(t, proto.OpError, txn.Type, "op %v", op)
	}
	require.Equal(t, proto.ErrMarshallingError, h.prepare(anyone, proto.OpCreate, &proto.DeleteRequest{}).Err)
	_, err := h.tr.Read(anyone, 0, proto.OpGetData, &proto.ExistsRequest{Path: "/"})
	require.Equal(t, proto.ErrUnimplemented, err)
}

func TestCloseSessionIgnoresReplacedEphemeral(t *testing.T) {
	h := newHarness(t, Options{})
	require.Equal(t, proto.ErrOK, h.create(Caller{SessionID: 2}, "/a", "", proto.ModeEphemeral).Err)
	t1 := h.prepare(Caller{SessionID: 1}, proto.OpDelete, &proto.DeleteRequest{Path: "/a", Version: -1})
	t2 := h.prepare(Caller{SessionID: 1}, proto.OpCreate, &proto.CreateRequest{Path: "/a", ACL: proto.OpenACLUnsafe})
	t3 := h.prepare(Caller{SessionID: 2}, proto.OpCloseSession, nil)
	require.Nil(t, t3.Paths, "the pending persistent /a is not session 2's")
	for _, txn := range []*Txn{t1, t2, t3} {
		require.Equal(t, proto.ErrOK, h.tr.Apply(txn).Err)
	}
	require.True(t, h.exists("/a"))
}
