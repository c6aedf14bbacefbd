package server_test

// End-to-end tests through the go-zk client: every operation it exposes,
// Stat semantics, error codes, sequential names, ephemerals and sessions.

import (
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/server"
)

func TestOpsCreateModes(t *testing.T) {
	addr, _ := startServer(t, nil)
	c := connect(t, addr)
	acl := zk.WorldACL(zk.PermAll)

	mustCreate(t, c, "/modes", nil, 0)
	tests := []struct {
		name      string
		create    func() (string, error)
		want      string // exact returned name, or prefix when seq
		seq       bool
		ephemeral bool
	}{
		{"persistent", func() (string, error) { return c.Create("/modes/p", []byte("p"), zk.FlagPersistent, acl) }, "/modes/p", false, false},
		{"ephemeral", func() (string, error) { return c.Create("/modes/e", []byte("e"), zk.FlagEphemeral, acl) }, "/modes/e", false, true},
		{"sequential", func() (string, error) { return c.Create("/modes/s-", []byte("s"), zk.FlagSequence, acl) }, "/modes/s-", true, false},
		{"ephemeral-sequential", func() (string, error) {
			return c.Create("/modes/es-", []byte("es"), zk.FlagEphemeralSequential, acl)
		}, "/modes/es-", true, true},
		{"container", func() (string, error) { return c.CreateContainer("/modes/c", []byte("c"), zk.FlagContainer, acl) }, "/modes/c", false, false},
		{"ttl", func() (string, error) {
			return c.CreateTTL("/modes/t", []byte("t"), zk.FlagTTL, acl, time.Hour)
		}, "/modes/t", false, false},
		{"ttl-sequential", func() (string, error) {
			return c.CreateTTL("/modes/ts-", []byte("ts"), zk.FlagPersistentSequentialWithTTL, acl, time.Hour)
		}, "/modes/ts-", true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name, err := tc.create()
			require.NoError(t, err)
			if tc.seq {
				require.True(t, strings.HasPrefix(name, tc.want), "name %q", name)
				require.Len(t, name, len(tc.want)+10, "name %q has a %%010d suffix", name)
			} else {
				require.Equal(t, tc.want, name)
			}
			data, st, err := c.Get(name)
			require.NoError(t, err)
			require.NotEmpty(t, data)
			if tc.ephemeral {
				require.Equal(t, c.SessionID(), st.EphemeralOwner, "ephemeralOwner of an ephemeral")
			} else {
				require.Zero(t, st.EphemeralOwner, "ephemeralOwner of a non-ephemeral (containers and TTL nodes included)")
			}
		})
	}
	kids, _, err := c.Children("/modes")
	require.NoError(t, err)
	require.Len(t, kids, len(tests))
}

func TestOpsReadWrite(t *testing.T) {
	addr, _ := startServer(t, nil)
	c := connect(t, addr)

	// An empty server has /zookeeper only.
	kids, _, err := c.Children("/")
	require.NoError(t, err)
	require.Equal(t, []string{"zookeeper"}, kids)

	mustCreate(t, c, "/rw", []byte("v0"), 0)
	data, st, err := c.Get("/rw")
	require.NoError(t, err)
	require.Equal(t, []byte("v0"), data)
	require.EqualValues(t, 0, st.Version)

	st2, err := c.Set("/rw", []byte("v1"), 0)
	require.NoError(t, err)
	require.EqualValues(t, 1, st2.Version)
	st3, err := c.Set("/rw", []byte("v2"), -1)
	require.NoError(t, err, "version -1 matches any version")
	require.EqualValues(t, 2, st3.Version)
	data, _, err = c.Get("/rw")
	require.NoError(t, err)
	require.Equal(t, []byte("v2"), data)

	ok, st, err := c.Exists("/rw")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, *st3, *st)
	ok, _, err = c.Exists("/rw-missing")
	require.NoError(t, err)
	require.False(t, ok)

	// Null data reads back empty with dataLength 0.
	mustCreate(t, c, "/rw/empty", nil, 0)
	data, st, err = c.Get("/rw/empty")
	require.NoError(t, err)
	require.Empty(t, data)
	require.EqualValues(t, 0, st.DataLength)

	mustCreate(t, c, "/rw/b", nil, 0)
	mustCreate(t, c, "/rw/a", nil, 0)
	kids, st, err = c.Children("/rw")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"a", "b", "empty"}, kids)
	require.EqualValues(t, 3, st.NumChildren)

	p, err := c.Sync("/rw")
	require.NoError(t, err)
	require.Equal(t, "/rw", p)

	require.NoError(t, c.Delete("/rw/a", 0))
	require.NoError(t, c.Delete("/rw/b", -1))
	ok, _, err = c.Exists("/rw/a")
	require.NoError(t, err)
	require.False(t, ok)
}

func TestOpsACL(t *testing.T) {
	addr, _ := startServer(t, nil)
	c := connect(t, addr)

	mustCreate(t, c, "/acl", nil, 0)
	acl, st, err := c.GetACL("/acl")
	require.NoError(t, err)
	require.Equal(t, zk.WorldACL(zk.PermAll), acl)
	require.EqualValues(t, 0, st.Aversion)

	// /zookeeper is world:anyone READ... of the root ACL: "/" is world ALL.
	acl, _, err = c.GetACL("/")
	require.NoError(t, err)
	require.Equal(t, zk.WorldACL(zk.PermAll), acl)

	rwa := zk.WorldACL(zk.PermRead | zk.PermWrite | zk.PermAdmin)
	st, err = c.SetACL("/acl", rwa, 0)
	require.NoError(t, err)
	require.EqualValues(t, 1, st.Aversion)
	acl, st, err = c.GetACL("/acl")
	require.NoError(t, err)
	require.Equal(t, rwa, acl)
	require.EqualValues(t, 1, st.Aversion)
	require.EqualValues(t, 0, st.Version, "setACL leaves version alone")

	_, err = c.SetACL("/acl", zk.WorldACL(zk.PermAll), 0)
	require.ErrorIs(t, err, zk.ErrBadVersion, "setACL checks aversion")
	st, err = c.SetACL("/acl", zk.WorldACL(zk.PermRead|zk.PermWrite), 1)
	require.NoError(t, err)
	require.EqualValues(t, 2, st.Aversion)
	// No ADMIN permission any more (ADMIN is checked before the version).
	_, err = c.SetACL("/acl", zk.WorldACL(zk.PermAll), 2)
	require.ErrorIs(t, err, zk.ErrNoAuth, "setACL needs ADMIN")
	_, err = c.SetACL("/acl", zk.WorldACL(zk.PermAll), 7)
	require.ErrorIs(t, err, zk.ErrNoAuth, "ADMIN is checked before aversion")

	// Digest ids come back as stored when the caller has ADMIN.
	mustCreate(t, c, "/acl2", nil, 0)
	_, err = c.SetACL("/acl2", append(zk.DigestACL(zk.PermAll, "user", "password"), zk.WorldACL(zk.PermRead|zk.PermAdmin)...), -1)
	require.NoError(t, err)
	acl, _, err = c.GetACL("/acl2")
	require.NoError(t, err)
	require.Contains(t, acl, zk.ACL{Perms: zk.PermAll, Scheme: "digest", ID: "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY="})

	// getACL with READ but without ADMIN: digest ids are masked as user:x.
	mustCreate(t, c, "/acl3", nil, 0)
	_, err = c.SetACL("/acl3", append(zk.DigestACL(zk.PermAll, "user", "password"), zk.WorldACL(zk.PermRead)...), -1)
	require.NoError(t, err)
	acl, _, err = c.GetACL("/acl3")
	require.NoError(t, err)
	require.Equal(t, []zk.ACL{
		{Perms: zk.PermAll, Scheme: "digest", ID: "user:x"},
		{Perms: zk.PermRead, Scheme: "world", ID: "anyone"},
	}, acl)
	// Neither READ nor ADMIN: NoAuth.
	mustCreate(t, c, "/acl4", nil, 0)
	_, err = c.SetACL("/acl4", zk.DigestACL(zk.PermAll, "user", "password"), -1)
	require.NoError(t, err)
	_, _, err = c.GetACL("/acl4")
	require.ErrorIs(t, err, zk.ErrNoAuth)
}

func TestOpsAuth(t *testing.T) {
	addr, _ := startServer(t, nil)
	owner := connect(t, addr)
	require.NoError(t, owner.AddAuth("digest", []byte("user:password")))

	// CREATOR_ALL_ACL: the auth scheme expands to the caller's digest id.
	mustCreateACL := func(c *zk.Conn, path string, acl []zk.ACL) {
		t.Helper()
		_, err := c.Create(path, []byte("secret"), 0, acl)
		require.NoError(t, err, "create %s", path)
	}
	mustCreateACL(owner, "/auth", zk.AuthACL(zk.PermAll))
	acl, _, err := owner.GetACL("/auth")
	require.NoError(t, err)
	require.Equal(t, []zk.ACL{{Perms: zk.PermAll, Scheme: "digest", ID: "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY="}}, acl)
	mustCreateACL(owner, "/digest", zk.DigestACL(zk.PermAll, "user", "password"))

	anon := connect(t, addr)
	wrong := connect(t, addr)
	require.NoError(t, wrong.AddAuth("digest", []byte("user:wrong")), "addAuth digest never fails")
	right := connect(t, addr)
	require.NoError(t, right.AddAuth("digest", []byte("user:password")))
	super := connect(t, addr)
	require.NoError(t, super.AddAuth("digest", []byte("super:admin")))

	for _, path := range []string{"/auth", "/digest"} {
		for _, tc := range []struct {
			name string
			c    *zk.Conn
			want error
		}{
			{"anonymous", anon, zk.ErrNoAuth},
			{"wrong password", wrong, zk.ErrNoAuth},
			{"right password", right, nil},
			{"super", super, nil},
		} {
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				_, _, err := tc.c.Get(path)
				require.ErrorIs(t, err, tc.want, "getData")
				_, _, err = tc.c.Children(path)
				require.ErrorIs(t, err, tc.want, "getChildren")
				_, err = tc.c.Set(path, []byte("x"), -1)
				require.ErrorIs(t, err, tc.want, "setData")
				_, err = tc.c.Create(path+"/child", nil, 0, zk.WorldACL(zk.PermAll))
				require.ErrorIs(t, err, tc.want, "create child")
				if tc.want == nil {
					require.NoError(t, tc.c.Delete(path+"/child", -1))
				}
				// exists on an existing node needs READ too.
				_, _, err = tc.c.Exists(path)
				require.ErrorIs(t, err, tc.want, "exists")
				// sync needs no permission.
				_, err = tc.c.Sync(path)
				require.NoError(t, err)
			})
		}
	}

	// Deleting needs DELETE on the parent, not on the node.
	mustCreateACL(owner, "/locked", zk.DigestACL(zk.PermAll, "user", "password"))
	mustCreateACL(owner, "/locked/open", zk.WorldACL(zk.PermAll))
	require.ErrorIs(t, anon.Delete("/locked/open", -1), zk.ErrNoAuth)
	// Permission on the parent is checked before the child's existence.
	require.ErrorIs(t, anon.Delete("/locked/missing", -1), zk.ErrNoAuth, "DELETE on the parent before NoNode")
	_, err = anon.Create("/locked/open", nil, 0, zk.WorldACL(zk.PermAll))
	require.ErrorIs(t, err, zk.ErrNoAuth, "CREATE on the parent before NodeExists")
	require.NoError(t, super.Delete("/locked/open", -1))
	require.NoError(t, anon.Delete("/locked", -1), "the root's ACL lets anyone delete /locked")

	// ip ACLs: every connection carries ip:<client address>.
	for _, tc := range []struct {
		id   string
		want error
	}{
		{"127.0.0.1", nil},
		{"127.0.0.0/8", nil},
		{"10.0.0.0/8", zk.ErrNoAuth},
		{"192.168.1.1", zk.ErrNoAuth},
	} {
		path := "/ip-" + strings.NewReplacer("/", "_", ".", "_").Replace(tc.id)
		_, err := owner.Create(path, []byte("x"), 0, append([]zk.ACL{{Perms: zk.PermAll, Scheme: "ip", ID: tc.id}},
			zk.DigestACL(zk.PermAll, "user", "password")...))
		require.NoError(t, err, "create %s", path)
		_, _, err = anon.Get(path)
		require.ErrorIs(t, err, tc.want, "ip:%s", tc.id)
	}
}

func TestOpsMulti(t *testing.T) {
	addr, _ := startServer(t, nil)
	c := connect(t, addr)
	acl := zk.WorldACL(zk.PermAll)

	t.Run("success", func(t *testing.T) {
		res, err := c.Multi(
			&zk.CreateRequest{Path: "/m", Data: []byte("a"), Acl: acl},
			&zk.CreateRequest{Path: "/m/b", Data: []byte("b"), Acl: acl},
			&zk.SetDataRequest{Path: "/m", Data: []byte("a2"), Version: 0},
			&zk.CheckVersionRequest{Path: "/m", Version: 1},
			&zk.CreateRequest{Path: "/m/gone", Acl: acl},
			&zk.DeleteRequest{Path: "/m/gone", Version: 0},
		)
		require.NoError(t, err)
		require.Len(t, res, 6)
		require.Equal(t, "/m", res[0].String)
		require.Equal(t, "/m/b", res[1].String)
		require.NotNil(t, res[2].Stat)
		require.EqualValues(t, 1, res[2].Stat.Version)
		for i, r := range res {
			require.NoError(t, r.Error, "op %d", i)
		}
		data, st, err := c.Get("/m")
		require.NoError(t, err)
		require.Equal(t, []byte("a2"), data)
		// All ops share one zxid.
		_, stb, err := c.Get("/m/b")
		require.NoError(t, err)
		require.Equal(t, st.Czxid, stb.Czxid)
		require.Equal(t, st.Mzxid, st.Czxid, "create and set in one multi share the zxid")
		kids, _, err := c.Children("/m")
		require.NoError(t, err)
		require.Equal(t, []string{"b"}, kids)
	})

	t.Run("rollback", func(t *testing.T) {
		_, before, err := c.Exists("/m")
		require.NoError(t, err)
		_, _, wch, err := c.GetW("/m")
		require.NoError(t, err)
		res, err := c.Multi(
			&zk.CreateRequest{Path: "/m/x", Acl: acl},
			&zk.SetDataRequest{Path: "/m", Data: []byte("rolled back"), Version: -1},
			&zk.CreateRequest{Path: "/nope/y", Acl: acl}, // NoNode
			&zk.CreateRequest{Path: "/m/z", Acl: acl},
		)
		require.ErrorIs(t, err, zk.ErrNoNode, "Multi returns the first failing op's error")
		require.Len(t, res, 4, "per-op results (ReplyHeader.err must stay 0)")
		require.NoError(t, res[0].Error, "earlier ops get ErrorResult(0)")
		require.NoError(t, res[1].Error, "earlier ops get ErrorResult(0)")
		require.ErrorIs(t, res[2].Error, zk.ErrNoNode)
		require.Error(t, res[3].Error)
		require.Contains(t, res[3].Error.Error(), "-2", "later ops get RuntimeInconsistency (-2)")

		ok, _, err := c.Exists("/m/x")
		require.NoError(t, err)
		require.False(t, ok, "nothing of a failed multi is applied")
		ok, _, err = c.Exists("/m/z")
		require.NoError(t, err)
		require.False(t, ok)
		data, after, err := c.Get("/m")
		require.NoError(t, err)
		require.Equal(t, []byte("a2"), data)
		require.Equal(t, *before, *after)
		requireNoEvent(t, wch, "a failed multi fires no watch")

		// BadVersion in a check.
		res, err = c.Multi(
			&zk.CheckVersionRequest{Path: "/m", Version: 99},
			&zk.DeleteRequest{Path: "/m/b", Version: -1},
		)
		require.ErrorIs(t, err, zk.ErrBadVersion)
		require.Len(t, res, 2)
		require.ErrorIs(t, res[0].Error, zk.ErrBadVersion)
		ok, _, err = c.Exists("/m/b")
		require.NoError(t, err)
		require.True(t, ok)
	})
}

func TestOpsCloseRemovesEphemerals(t *testing.T) {
	addr, _ := startServer(t, nil)
	a := connect(t, addr)
	b := connect(t, addr)

	mustCreate(t, a, "/eph", nil, zk.FlagEphemeral)
	seq := mustCreate(t, a, "/ephseq-", nil, zk.FlagEphemeralSequential)
	mustCreate(t, a, "/persist", nil, 0)
	ok, _, wch, err := b.ExistsW("/eph")
	require.NoError(t, err)
	require.True(t, ok)

	a.Close()
	ev := recvEvent(t, wch, "NodeDeleted on close")
	require.Equal(t, zk.EventNodeDeleted, ev.Type)
	require.Equal(t, "/eph", ev.Path)
	for _, p := range []string{"/eph", seq} {
		ok, _, err := b.Exists(p)
		require.NoError(t, err)
		require.False(t, ok, "%s must be gone after Close", p)
	}
	ok, _, err = b.Exists("/persist")
	require.NoError(t, err)
	require.True(t, ok)
}

func TestStatSemantics(t *testing.T) {
	addr, _ := startServer(t, nil)
	c := connect(t, addr)
	before := time.Now().UnixMilli()

	mustCreate(t, c, "/st", []byte("abc"), 0)
	_, st, err := c.Get("/st")
	require.NoError(t, err)
	created := *st
	require.Positive(t, st.Czxid)
	require.Equal(t, st.Czxid, st.Mzxid, "create: mzxid = czxid")
	require.Equal(t, st.Czxid, st.Pzxid, "create: pzxid = czxid")
	require.Equal(t, st.Ctime, st.Mtime)
	require.GreaterOrEqual(t, st.Ctime, before-1000)
	require.LessOrEqual(t, st.Ctime, time.Now().UnixMilli()+1000)
	require.EqualValues(t, 0, st.Version)
	require.EqualValues(t, 0, st.Cversion)
	require.EqualValues(t, 0, st.Aversion)
	require.EqualValues(t, 0, st.EphemeralOwner)
	require.EqualValues(t, 3, st.DataLength)
	require.EqualValues(t, 0, st.NumChildren)

	// Children: cversion counts creates and deletes; pzxid follows them.
	mustCreate(t, c, "/st/c1", nil, 0)
	_, c1, err := c.Get("/st/c1")
	require.NoError(t, err)
	_, st, err = c.Get("/st")
	require.NoError(t, err)
	require.EqualValues(t, 1, st.Cversion)
	require.EqualValues(t, 1, st.NumChildren)
	require.Equal(t, c1.Czxid, st.Pzxid, "create child: parent pzxid = child czxid")
	require.Equal(t, created.Mzxid, st.Mzxid, "child create does not touch the parent's mzxid")
	require.Equal(t, created.Version, st.Version)

	eph := mustCreate(t, c, "/st/e", nil, zk.FlagEphemeral)
	_, est, err := c.Get(eph)
	require.NoError(t, err)
	require.Equal(t, c.SessionID(), est.EphemeralOwner)
	_, st, err = c.Get("/st")
	require.NoError(t, err)
	require.EqualValues(t, 2, st.Cversion)
	require.EqualValues(t, 2, st.NumChildren)
	require.Equal(t, est.Czxid, st.Pzxid)

	require.NoError(t, c.Delete("/st/c1", -1))
	_, st, err = c.Get("/st")
	require.NoError(t, err)
	require.EqualValues(t, 3, st.Cversion, "client cversion = creates + deletes")
	require.EqualValues(t, 1, st.NumChildren)
	require.Greater(t, st.Pzxid, est.Czxid, "delete child moves the parent's pzxid")
	deletePzxid := st.Pzxid
	// The next txn gets the next zxid, so pzxid was exactly the delete's zxid.
	mustCreate(t, c, "/marker", nil, 0)
	_, mk, err := c.Get("/marker")
	require.NoError(t, err)
	require.Equal(t, deletePzxid+1, mk.Czxid, "delete's zxid is pzxid")
	require.Equal(t, created.Mzxid, st.Mzxid)

	// setData: version, mzxid, mtime, dataLength; nothing else.
	time.Sleep(2 * time.Millisecond) // mtime must be able to differ from ctime
	st2, err := c.Set("/st", []byte("hello world"), 0)
	require.NoError(t, err)
	require.EqualValues(t, 1, st2.Version)
	require.Greater(t, st2.Mzxid, st.Mzxid)
	require.Equal(t, created.Czxid, st2.Czxid)
	require.Equal(t, created.Ctime, st2.Ctime)
	require.GreaterOrEqual(t, st2.Mtime, st2.Ctime)
	require.EqualValues(t, 11, st2.DataLength)
	require.Equal(t, st.Cversion, st2.Cversion)
	require.Equal(t, st.Pzxid, st2.Pzxid, "setData does not move pzxid")
	require.Equal(t, st.NumChildren, st2.NumChildren)

	// setACL: aversion only.
	st3, err := c.SetACL("/st", zk.WorldACL(zk.PermAll), 0)
	require.NoError(t, err)
	require.EqualValues(t, 1, st3.Aversion)
	require.Equal(t, st2.Version, st3.Version)
	require.Equal(t, st2.Mzxid, st3.Mzxid, "setACL does not change mzxid")
	require.Equal(t, st2.Mtime, st3.Mtime)
	require.Equal(t, st2.Cversion, st3.Cversion)
	require.Equal(t, st2.Pzxid, st3.Pzxid)

	// Set with empty data: dataLength 0.
	st4, err := c.Set("/st", nil, -1)
	require.NoError(t, err)
	require.EqualValues(t, 0, st4.DataLength)
	require.EqualValues(t, 2, st4.Version)

	// Exists and Children report the same Stat as Get.
	_, gst, err := c.Get("/st")
	require.NoError(t, err)
	_, xst, err := c.Exists("/st")
	require.NoError(t, err)
	_, cst, err := c.Children("/st")
	require.NoError(t, err)
	require.Equal(t, *gst, *xst)
	require.Equal(t, *gst, *cst)
}

func TestErrorCodes(t *testing.T) {
	addr, _ := startServer(t, nil)
	c := connect(t, addr)
	acl := zk.WorldACL(zk.PermAll)

	mustCreate(t, c, "/e", []byte("x"), 0)
	mustCreate(t, c, "/e/child", nil, 0)
	mustCreate(t, c, "/eph", nil, zk.FlagEphemeral)

	tests := []struct {
		name string
		op   func() error
		want error
	}{
		{"get missing", func() error { _, _, err := c.Get("/missing"); return err }, zk.ErrNoNode},
		{"set missing", func() error { _, err := c.Set("/missing", nil, -1); return err }, zk.ErrNoNode},
		{"delete missing", func() error { return c.Delete("/missing", -1) }, zk.ErrNoNode},
		{"delete missing parent", func() error { return c.Delete("/missing/x", -1) }, zk.ErrNoNode},
		{"children missing", func() error { _, _, err := c.Children("/missing"); return err }, zk.ErrNoNode},
		{"getACL missing", func() error { _, _, err := c.GetACL("/missing"); return err }, zk.ErrNoNode},
		{"setACL missing", func() error { _, err := c.SetACL("/missing", acl, -1); return err }, zk.ErrNoNode},
		{"create without parent", func() error { _, err := c.Create("/missing/x", nil, 0, acl); return err }, zk.ErrNoNode},
		{"create exists", func() error { _, err := c.Create("/e", nil, 0, acl); return err }, zk.ErrNodeExists},
		{"create ephemeral exists", func() error { _, err := c.Create("/e", nil, zk.FlagEphemeral, acl); return err }, zk.ErrNodeExists},
		{"set bad version", func() error { _, err := c.Set("/e", nil, 5); return err }, zk.ErrBadVersion},
		{"delete bad version", func() error { return c.Delete("/e/child", 5) }, zk.ErrBadVersion},
		{"setACL bad version", func() error { _, err := c.SetACL("/e", acl, 5); return err }, zk.ErrBadVersion},
		{"delete not empty", func() error { return c.Delete("/e", -1) }, zk.ErrNotEmpty},
		{"delete not empty right version", func() error { return c.Delete("/e", 0) }, zk.ErrNotEmpty},
		{"child of ephemeral", func() error { _, err := c.Create("/eph/x", nil, 0, acl); return err }, zk.ErrNoChildrenForEphemerals},
		{"seq child of ephemeral", func() error { _, err := c.Create("/eph/x", nil, zk.FlagSequence, acl); return err }, zk.ErrNoChildrenForEphemerals},
		{"empty ACL", func() error { _, err := c.Create("/noacl", nil, 0, []zk.ACL{}); return err }, zk.ErrInvalidACL},
		{"auth ACL without auth", func() error { _, err := c.Create("/noacl", nil, 0, zk.AuthACL(zk.PermAll)); return err }, zk.ErrInvalidACL},
		{"digest ACL malformed", func() error {
			_, err := c.Create("/noacl", nil, 0, []zk.ACL{{Perms: zk.PermAll, Scheme: "digest", ID: "nocolon"}})
			return err
		}, zk.ErrInvalidACL},
		{"unknown ACL scheme", func() error {
			_, err := c.Create("/noacl", nil, 0, []zk.ACL{{Perms: zk.PermAll, Scheme: "nosuchscheme", ID: "x"}})
			return err
		}, zk.ErrInvalidACL},
		{"setACL empty", func() error { _, err := c.SetACL("/e", []zk.ACL{}, -1); return err }, zk.ErrInvalidACL},
		{"create /zookeeper", func() error { _, err := c.Create("/zookeeper", nil, 0, acl); return err }, zk.ErrBadArguments},
		{"delete /zookeeper", func() error { return c.Delete("/zookeeper", -1) }, zk.ErrBadArguments},
		{"delete /zookeeper/quota", func() error { return c.Delete("/zookeeper/quota", -1) }, zk.ErrBadArguments},
		{"delete /zookeeper/config", func() error { return c.Delete("/zookeeper/config", -1) }, zk.ErrBadArguments},
		{"ttl zero", func() error { _, err := c.CreateTTL("/ttl0", nil, zk.FlagTTL, acl, 0); return err }, zk.ErrBadArguments},
		{"ttl too large", func() error {
			_, err := c.CreateTTL("/ttlbig", nil, zk.FlagTTL, acl, time.Duration(0x100_0000_0000)*time.Millisecond)
			return err
		}, zk.ErrBadArguments},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorIs(t, tc.op(), tc.want)
		})
	}
	// Nothing was created by the failed calls.
	for _, p := range []string{"/noacl", "/ttl0", "/ttlbig"} {
		ok, _, err := c.Exists(p)
		require.NoError(t, err)
		require.False(t, ok, p)
	}
	_, _, err := c.Get("/e/child")
	require.NoError(t, err)
}

func TestTTLDisabled(t *testing.T) {
	addr, _ := startServer(t, func(cfg *server.Config) { cfg.ExtendedTypes = false })
	c := connect(t, addr)
	_, err := c.CreateTTL("/ttl", nil, zk.FlagTTL, zk.WorldACL(zk.PermAll), time.Minute)
	require.Error(t, err)
	require.Contains(t, err.Error(), "-6", "createTTL without extended types is Unimplemented")
	requireHealthy(t, addr)
}

func TestSequentialNumbering(t *testing.T) {
	addr, _ := startServer(t, nil)
	c := connect(t, addr)
	mustCreate(t, c, "/q", nil, 0)
	mustCreate(t, c, "/r", nil, 0)

	for i := 0; i < 3; i++ {
		require.Equal(t, seqName("/q/n-", i), mustCreate(t, c, "/q/n-", nil, zk.FlagSequence))
	}
	// Deletes never lower the counter.
	require.NoError(t, c.Delete(seqName("/q/n-", 2), -1))
	require.NoError(t, c.Delete(seqName("/q/n-", 1), -1))
	require.Equal(t, seqName("/q/n-", 3), mustCreate(t, c, "/q/n-", nil, zk.FlagSequence))
	// Any child create bumps it, and the prefix does not matter.
	mustCreate(t, c, "/q/plain", nil, 0)
	require.Equal(t, seqName("/q/other-", 5), mustCreate(t, c, "/q/other-", nil, zk.FlagEphemeralSequential))
	// "/q/" is legal for sequential creates: the name is only the number.
	require.Equal(t, seqName("/q/", 6), mustCreate(t, c, "/q/", nil, zk.FlagSequence))

	// Independent per parent.
	require.Equal(t, seqName("/r/n-", 0), mustCreate(t, c, "/r/n-", nil, zk.FlagSequence))
	require.Equal(t, seqName("/r/n-", 1), mustCreate(t, c, "/r/n-", nil, zk.FlagEphemeralSequential))
	require.Equal(t, seqName("/q/n-", 7), mustCreate(t, c, "/q/n-", nil, zk.FlagSequence))
	// Root too.
	name := mustCreate(t, c, "/rootseq-", nil, zk.FlagSequence)
	require.True(t, strings.HasPrefix(name, "/rootseq-"))
	require.Len(t, name, len("/rootseq-")+10)

	// A failed sequential create (NodeExists cannot happen, but a failed one
	// for another reason) must not consume a number.
	_, err := c.Create("/q/bad-", nil, zk.FlagSequence, []zk.ACL{})
	require.ErrorIs(t, err, zk.ErrInvalidACL)
	require.Equal(t, seqName("/q/n-", 8), mustCreate(t, c, "/q/n-", nil, zk.FlagSequence))
}

// TestSessionExpiry lets a raw session (200 ms timeout) go silent: the server
// must expire it, delete its ephemerals, tell the watchers and close it.
func TestSessionExpiry(t *testing.T) {
	addr, _ := startServer(t, nil)
	obs := connect(t, addr)
	mustCreate(t, obs, "/exp", nil, 0)

	raw := newSession(t, addr, 200)
	require.EqualValues(t, 200, raw.timeout)
	var cr proto.CreateResponse
	h := raw.call(proto.OpCreate, &proto.CreateRequest{Path: "/exp/eph", ACL: proto.OpenACLUnsafe, Flags: proto.ModeEphemeral}, &cr)
	require.Equal(t, proto.ErrOK, h.Err)
	require.Equal(t, "/exp/eph", cr.Path)

	ok, st, dch, err := obs.ExistsW("/exp/eph")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, raw.sessionID, st.EphemeralOwner)
	_, _, cch, err := obs.ChildrenW("/exp")
	require.NoError(t, err)

	// Silence: the server must expire the session on its own.
	ev := recvEvent(t, dch, "NodeDeleted on expiry")
	require.Equal(t, zk.EventNodeDeleted, ev.Type)
	require.Equal(t, "/exp/eph", ev.Path)
	ev = recvEvent(t, cch, "NodeChildrenChanged on expiry")
	require.Equal(t, zk.EventNodeChildrenChanged, ev.Type)
	ok, _, err = obs.Exists("/exp/eph")
	require.NoError(t, err)
	require.False(t, ok)
	raw.expectClosed()

	// Reconnecting to the expired session: timeOut 0 and sessionId 0.
	again := dialRaw(t, addr)
	resp, _ := again.handshake(proto.ConnectRequest{TimeOut: 200, SessionID: raw.sessionID, Passwd: raw.passwd})
	require.Zero(t, resp.SessionID, "expired session")
	require.Zero(t, resp.TimeOut, "expired session")
	again.expectClosed()
	requireHealthy(t, addr)
}

// TestSessionExpiryGoZK cuts a go-zk client off for longer than its session
// timeout: its ephemeral goes, and on reconnect it learns it expired.
func TestSessionExpiryGoZK(t *testing.T) {
	addr, _ := startServer(t, nil)
	p := startProxy(t, addr)
	c, events := connectTimeout(t, p.addr(), 600*time.Millisecond)
	obs := connect(t, addr)
	mustCreate(t, c, "/gone", nil, zk.FlagEphemeral)
	ok, _, wch, err := obs.ExistsW("/gone")
	require.NoError(t, err)
	require.True(t, ok)

	p.cut()
	ev := recvEvent(t, wch, "NodeDeleted after the session expired")
	require.Equal(t, zk.EventNodeDeleted, ev.Type)
	p.restore()
	waitFor(t, "go-zk sees StateExpired", func() bool {
		for {
			select {
			case e := <-events:
				if e.State == zk.StateExpired {
					return true
				}
			default:
				return false
			}
		}
	})
	ok, _, err = obs.Exists("/gone")
	require.NoError(t, err)
	require.False(t, ok)
}

// TestReconnectSameSession cuts the network under a go-zk client for less
// than its session timeout: it must come back with the same session, its
// ephemeral intact, and its watches re-armed by setWatches.
func TestReconnectSameSession(t *testing.T) {
	addr, _ := startServer(t, nil)
	p := startProxy(t, addr)
	c, _ := connectTimeout(t, p.addr(), 8*time.Second)
	other := connect(t, addr)
	sid := c.SessionID()

	mustCreate(t, c, "/rc", []byte("0"), 0)
	mustCreate(t, c, "/rc/eph", nil, zk.FlagEphemeral)
	mustCreate(t, c, "/rc/later", []byte("0"), 0)
	_, _, dataCh, err := c.GetW("/rc") // changed during the cut
	require.NoError(t, err)
	ok, _, existCh, err := c.ExistsW("/rc/new") // created during the cut
	require.NoError(t, err)
	require.False(t, ok)
	_, _, laterCh, err := c.GetW("/rc/later") // changed after reconnect
	require.NoError(t, err)
	_, _, childCh, err := c.ChildrenW("/rc") // children change during the cut
	require.NoError(t, err)

	p.cut()
	waitFor(t, "go-zk notices the cut", func() bool { return c.State() != zk.StateHasSession })
	_, err = other.Set("/rc", []byte("during"), -1)
	require.NoError(t, err)
	mustCreate(t, other, "/rc/new", nil, 0)
	p.restore()
	waitFor(t, "go-zk reconnects", func() bool { return c.State() == zk.StateHasSession })
	require.Equal(t, sid, c.SessionID(), "same session after reconnect")

	ev := recvEvent(t, dataCh, "data watch re-armed")
	require.Equal(t, zk.EventNodeDataChanged, ev.Type)
	require.Equal(t, "/rc", ev.Path)
	ev = recvEvent(t, existCh, "exist watch re-armed")
	require.Equal(t, zk.EventNodeCreated, ev.Type)
	require.Equal(t, "/rc/new", ev.Path)
	ev = recvEvent(t, childCh, "child watch re-armed")
	require.Equal(t, zk.EventNodeChildrenChanged, ev.Type)
	require.Equal(t, "/rc", ev.Path)

	_, err = other.Set("/rc/later", []byte("after"), -1)
	require.NoError(t, err)
	ev = recvEvent(t, laterCh, "re-registered data watch fires after reconnect")
	require.Equal(t, zk.EventNodeDataChanged, ev.Type)
	require.Equal(t, "/rc/later", ev.Path)

	ok, st, err := other.Exists("/rc/eph")
	require.NoError(t, err)
	require.True(t, ok, "ephemeral survives a reconnect within the session timeout")
	require.Equal(t, sid, st.EphemeralOwner)
	// The session still works.
	_, err = c.Set("/rc", []byte("mine"), -1)
	require.NoError(t, err)
}
