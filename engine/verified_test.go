package engine

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/proto"
)

// submitVerified sends an oidc auth packet with the caller's verdict.
func (h *harness) submitVerified(c ConnID, xid int32, v *VerifiedAuth) {
	h.n.Submit(Request{Conn: c, Xid: xid, Op: proto.OpAuth,
		Body: &proto.AuthPacket{Scheme: SchemeOIDC, Auth: []byte("opaque")}, Time: h.now, Verified: v})
	h.collect()
}

func TestVerifiedIdentityHoldsUntilExpiryThenLapses(t *testing.T) {
	h := newHarness(t)
	h.connect(1, 1000)
	alice := proto.Id{Scheme: SchemeOIDC, ID: "system:serviceaccount:ns:alice"}
	h.submitVerified(1, 1, &VerifiedAuth{IDs: []proto.Id{alice}, ExpiresMs: h.now + 60_000})
	outs := h.take(1)
	require.Len(t, outs, 1)
	require.Equal(t, proto.ErrOK, outs[0].Header.Err)

	h.submit(1, 2, proto.OpCreate, &proto.CreateRequest{Path: "/a", ACL: []proto.ACL{{Perms: proto.PermAll, Id: alice}}})
	h.persistAll()
	outs = h.take(1)
	require.Len(t, outs, 1)
	require.Equal(t, proto.ErrOK, outs[0].Header.Err)
	h.submit(1, 3, proto.OpGetData, &proto.GetDataRequest{Path: "/a"})
	require.Equal(t, proto.ErrOK, h.take(1)[0].Header.Err, "the token's identity reads its own node")
	h.submit(1, 4, proto.OpWhoAmI, &proto.EmptyRecord{})
	who := h.take(1)[0].Body.(*proto.WhoAmIResponse)
	require.Contains(t, who.ClientInfo, proto.ClientInfo{AuthScheme: SchemeOIDC, User: alice.ID})

	// The token expires: later requests are judged without it.
	h.now += 60_000
	h.submit(1, 5, proto.OpGetData, &proto.GetDataRequest{Path: "/a"})
	require.Equal(t, proto.ErrNoAuth, h.take(1)[0].Header.Err, "a lapsed identity no longer counts")
	h.submit(1, 6, proto.OpWhoAmI, &proto.EmptyRecord{})
	who = h.take(1)[0].Body.(*proto.WhoAmIResponse)
	require.NotContains(t, who.ClientInfo, proto.ClientInfo{AuthScheme: SchemeOIDC, User: alice.ID})

	// A fresh token restores it.
	h.submitVerified(1, 7, &VerifiedAuth{IDs: []proto.Id{alice}, ExpiresMs: h.now + 60_000})
	require.Equal(t, proto.ErrOK, h.take(1)[0].Header.Err)
	h.submit(1, 8, proto.OpGetData, &proto.GetDataRequest{Path: "/a"})
	require.Equal(t, proto.ErrOK, h.take(1)[0].Header.Err)
}

func TestOIDCAuthWithoutVerdictFails(t *testing.T) {
	for name, v := range map[string]*VerifiedAuth{"no verdict": nil, "refused": {}} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.connect(1, 1000)
			h.submitVerified(1, 1, v)
			outs := h.take(1)
			require.Len(t, outs, 2)
			require.Equal(t, proto.ErrAuthFailed, outs[0].Header.Err)
			require.Equal(t, OutClose, outs[1].Kind)
		})
	}
}
