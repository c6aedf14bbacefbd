package tree

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/zabkeeper/zabkeeper/proto"
)

func TestDigestVectors(t *testing.T) {
	require.Equal(t, "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY=", DigestID("user", "password"))
	require.Equal(t, "super:xQJmxLMiHGwaqBvst5y6rkB6HQs=", DigestID("super", "admin"))
	id, err := ValidateAuth("digest", []byte("user:password"))
	require.Equal(t, proto.ErrOK, err)
	require.Equal(t, proto.Id{Scheme: "digest", ID: "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY="}, id)
	for _, scheme := range []string{"ip", "world", "super", "sasl", ""} {
		_, err := ValidateAuth(scheme, []byte("a:b"))
		require.Equal(t, proto.ErrAuthFailed, err, scheme)
	}
}

func TestValidIDs(t *testing.T) {
	for id, ok := range map[string]bool{"u:h": true, ":h": true, "u:h:": true, "u:": false, "u::": false, "u": false, "": false, "a:b:c": false} {
		require.Equal(t, ok, validDigestID(id), "%q", id)
	}
}

func TestACLEnforcement(t *testing.T) {
	super := DigestID("super", "admin")
	h := newHarness(t, Options{SuperDigest: super})
	alice := Caller{SessionID: 1, Auth: []proto.Id{{Scheme: "ip", ID: "10.0.0.9"}, {Scheme: "digest", ID: DigestID("alice", "pw")}}}
	bob := Caller{SessionID: 2, Auth: []proto.Id{{Scheme: "ip", ID: "192.168.1.1"}, {Scheme: "digest", ID: DigestID("bob", "pw")}}}
	root := Caller{SessionID: 3, Auth: []proto.Id{{Scheme: "digest", ID: super}}}
	lan := Caller{SessionID: 4, Auth: []proto.Id{{Scheme: "ip", ID: "10.0.0.200"}}}

	// auth expands to alice's non-ip ids; duplicates go.
	acl := []proto.ACL{
		{Perms: proto.PermAll, Id: proto.Id{Scheme: "auth", ID: ""}},
		{Perms: proto.PermRead, Id: proto.Id{Scheme: "ip", ID: "10.0.0.0/24"}},
		{Perms: proto.PermRead, Id: proto.Id{Scheme: "ip", ID: "10.0.0.0/24"}},
	}
	res := h.do(alice, proto.OpCreate, &proto.CreateRequest{Path: "/a", Data: []byte("d"), ACL: acl})
	require.Equal(t, proto.ErrOK, res.Err)
	want := []proto.ACL{
		{Perms: proto.PermAll, Id: proto.Id{Scheme: "digest", ID: DigestID("alice", "pw")}},
		{Perms: proto.PermRead, Id: proto.Id{Scheme: "ip", ID: "10.0.0.0/24"}},
	}
	got, err := h.tr.Read(alice, 0, proto.OpGetACL, &proto.GetACLRequest{Path: "/a"})
	require.Equal(t, proto.ErrOK, err)
	require.Equal(t, want, got.(*proto.GetACLResponse).ACL)

	// READ without ADMIN sees masked digests.
	got, err = h.tr.Read(lan, 0, proto.OpGetACL, &proto.GetACLRequest{Path: "/a"})
	require.Equal(t, proto.ErrOK, err)
	require.Equal(t, "alice:x", got.(*proto.GetACLResponse).ACL[0].Id.ID)
	_, err = h.tr.Read(bob, 0, proto.OpGetACL, &proto.GetACLRequest{Path: "/a"})
	require.Equal(t, proto.ErrNoAuth, err)

	reads := []struct {
		op  proto.OpCode
		req proto.Record
	}{
		{proto.OpGetData, &proto.GetDataRequest{Path: "/a"}},
		{proto.OpExists, &proto.ExistsRequest{Path: "/a"}},
		{proto.OpGetChildren, &proto.GetChildrenRequest{Path: "/a"}},
		{proto.OpGetChildren2, &proto.GetChildren2Request{Path: "/a"}},
		{proto.OpGetAllChildrenNumber, &proto.GetAllChildrenNumberRequest{Path: "/a"}},
	}
	for _, r := range reads {
		_, err := h.tr.Read(bob, 0, r.op, r.req)
		require.Equal(t, proto.ErrNoAuth, err, "bob %v", r.op)
		_, err = h.tr.Read(lan, 0, r.op, r.req)
		require.Equal(t, proto.ErrOK, err, "lan %v", r.op)
		_, err = h.tr.Read(root, 0, r.op, r.req)
		require.Equal(t, proto.ErrOK, err, "super %v", r.op)
	}
	// Absent nodes: exists is NoNode for everyone.
	_, err = h.tr.Read(bob, 0, proto.OpExists, &proto.ExistsRequest{Path: "/zz"})
	require.Equal(t, proto.ErrNoNode, err)

	require.Equal(t, proto.ErrNoAuth, h.do(bob, proto.OpSetData, &proto.SetDataRequest{Path: "/a", Version: -1}).Err)
	require.Equal(t, proto.ErrNoAuth, h.do(lan, proto.OpSetData, &proto.SetDataRequest{Path: "/a", Version: -1}).Err)
	require.Equal(t, proto.ErrOK, h.do(alice, proto.OpSetData, &proto.SetDataRequest{Path: "/a", Version: -1}).Err)
	require.Equal(t, proto.ErrNoAuth, h.do(bob, proto.OpCreate, &proto.CreateRequest{Path: "/a/b", ACL: proto.OpenACLUnsafe}).Err)
	require.Equal(t, proto.ErrOK, h.do(root, proto.OpCreate, &proto.CreateRequest{Path: "/a/b", ACL: proto.OpenACLUnsafe}).Err)

	// setACL: path, ACL, existence, ADMIN, aversion; aversion alone moves.
	require.Equal(t, proto.ErrBadArguments, h.do(bob, proto.OpSetACL, &proto.SetACLRequest{Path: "/a/", ACL: nil, Version: -1}).Err)
	require.Equal(t, proto.ErrInvalidACL, h.do(bob, proto.OpSetACL, &proto.SetACLRequest{Path: "/nope", ACL: nil, Version: -1}).Err)
	require.Equal(t, proto.ErrNoNode, h.do(bob, proto.OpSetACL, &proto.SetACLRequest{Path: "/nope", ACL: proto.OpenACLUnsafe, Version: -1}).Err)
	require.Equal(t, proto.ErrNoAuth, h.do(bob, proto.OpSetACL, &proto.SetACLRequest{Path: "/a", ACL: proto.OpenACLUnsafe, Version: 9}).Err)
	require.Equal(t, proto.ErrBadVersion, h.do(alice, proto.OpSetACL, &proto.SetACLRequest{Path: "/a", ACL: proto.OpenACLUnsafe, Version: 9}).Err)
	ex, err := h.tr.Read(alice, 0, proto.OpExists, &proto.ExistsRequest{Path: "/a"})
	require.Equal(t, proto.ErrOK, err)
	before := ex.(*proto.ExistsResponse).Stat
	res = h.do(alice, proto.OpSetACL, &proto.SetACLRequest{Path: "/a", ACL: proto.OpenACLUnsafe, Version: 0})
	require.Equal(t, proto.ErrOK, res.Err)
	after := res.Resp.(*proto.SetACLResponse).Stat
	require.Equal(t, int32(1), after.Aversion)
	after.Aversion = before.Aversion
	require.Equal(t, before, after)
	_, err = h.tr.Read(bob, 0, proto.OpGetData, &proto.GetDataRequest{Path: "/a"})
	require.Equal(t, proto.ErrOK, err)

	// An empty stored ACL allows everything (only reachable through a txn).
	h.zxid++
	require.Equal(t, proto.ErrOK, h.tr.Apply(&Txn{Zxid: h.zxid, Type: proto.OpCreate, Path: "/empty", ParentCversion: 99}).Err)
	_, err = h.tr.Read(bob, 0, proto.OpGetData, &proto.GetDataRequest{Path: "/empty"})
	require.Equal(t, proto.ErrOK, err)
}
