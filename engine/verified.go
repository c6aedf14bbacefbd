package engine

import (
	"fmt"
	"slices"

	"github.com/zabkeeper/zabkeeper/proto"
)

// SchemeOIDC is the auth scheme of a JSON Web Token from an OpenID Connect
// issuer (a Kubernetes projected service-account token, a cloud workload
// identity token). The engine never sees or checks the token: the caller
// verifies it outside the pure core (signature, issuer, audience, expiry)
// and hands the result over in Request.Verified.
const SchemeOIDC = "oidc"

// VerifiedAuth is the outcome of verifying an auth packet outside the
// engine, attached by the caller to the OpAuth request that carried it.
type VerifiedAuth struct {
	// IDs are the identities the token proves (oidc:<identity>,
	// oidc:<group>..., and super:<identity> for a configured super
	// identity). Empty means the token was refused: the client gets
	// AuthFailed and the connection closes, as for any failed auth.
	IDs []proto.Id
	// ExpiresMs is the token's expiry in the caller's wall clock (ms, the
	// clock of Request.Time). Requests stamped at or after it are judged
	// without IDs until the client sends a fresh token; 0 never lapses.
	ExpiresMs int64
}

// lapsingID is an identity that holds until a time of the caller's clock.
type lapsingID struct {
	id        proto.Id
	expiresMs int64 // 0: never
}

// verifiedAuth handles an auth packet whose scheme is verified outside the
// engine. It reports false for schemes it does not own.
func (n *Node) verifiedAuth(c *conn, q *queued, ap *proto.AuthPacket) bool {
	if ap.Scheme != SchemeOIDC {
		return false
	}
	v := q.req.Verified
	if v == nil || len(v.IDs) == 0 {
		q.err, q.closeAfter, q.closeWhy = proto.ErrAuthFailed, true, fmt.Sprintf("auth scheme %q failed", ap.Scheme)
		return true
	}
	for _, id := range v.IDs {
		i := slices.IndexFunc(c.lapsing, func(l lapsingID) bool { return l.id == id })
		switch {
		case i < 0:
			c.lapsing = append(c.lapsing, lapsingID{id: id, expiresMs: v.ExpiresMs})
		case v.ExpiresMs == 0 || (c.lapsing[i].expiresMs != 0 && v.ExpiresMs > c.lapsing[i].expiresMs):
			// A fresh token extends the identity it proves.
			c.lapsing[i].expiresMs = v.ExpiresMs
		}
	}
	return true
}

// authIDs returns the identities a connection's requests are judged with
// now: its permanent ids, then those verified outside the engine whose
// token has not expired by the Node's clock (the latest input stamp).
func (n *Node) authIDs(c *conn) []proto.Id {
	if len(c.lapsing) == 0 {
		// Shared, not copied: c.auth only grows by append and its
		// elements never change; the capped capacity keeps a caller's
		// append out of c.auth's spare capacity.
		return c.auth[:len(c.auth):len(c.auth)]
	}
	ids := slices.Clone(c.auth)
	for _, l := range c.lapsing {
		if l.expiresMs != 0 && n.now >= l.expiresMs {
			continue
		}
		if !slices.Contains(ids, l.id) {
			ids = append(ids, l.id)
		}
	}
	return ids
}

// ConnInfo returns, for the caller's audit log, the session of connection
// id (0 before its handshake completes), the client address it connected
// from, and the identities its requests would be judged with now; false for
// a connection the Node does not know.
func (n *Node) ConnInfo(id ConnID) (session int64, ip string, ids []proto.Id, ok bool) {
	c := n.conns[id]
	if c == nil {
		return 0, "", nil, false
	}
	return c.session, c.ip, n.authIDs(c), true
}
