package tree

import (
	"crypto/sha1"
	"encoding/base64"
	"slices"
	"strings"

	"github.com/zabkeeper/zabkeeper/proto"
)

// Authentication schemes.
const (
	schemeWorld  = "world"
	schemeAuth   = "auth"
	schemeDigest = "digest"
	schemeIP     = "ip"
	schemeX509   = "x509"
	schemeSuper  = "super"
	anyoneID     = "anyone"
)

// schemeOIDC ids name a verified token's identity or one of its groups
// (engine.SchemeOIDC; verified by the caller, never here).
const schemeOIDC = "oidc"

// DigestID returns the digest-scheme id of a user and password:
// "user:" + base64(sha1("user:password")).
func DigestID(user, password string) string {
	return digestOf(user + ":" + password)
}

// digestOf turns the "user:password" text of an auth packet into its id, as
// ZooKeeper's DigestAuthenticationProvider.generateDigest does: the user is
// the text before the first ':', the hash covers the whole text.
func digestOf(userPassword string) string {
	user, _, _ := strings.Cut(userPassword, ":")
	sum := sha1.Sum([]byte(userPassword))
	return user + ":" + base64.StdEncoding.EncodeToString(sum[:])
}

// ValidateAuth turns an auth(100) packet into the id to add to the
// connection. Only the digest scheme can be added (it never fails: a wrong
// password just shows as NoAuth later); any other scheme, ip and world
// included, is ErrAuthFailed.
func ValidateAuth(scheme string, auth []byte) (proto.Id, proto.ErrCode) {
	if scheme != schemeDigest {
		return proto.Id{}, proto.ErrAuthFailed
	}
	return proto.Id{Scheme: schemeDigest, ID: digestOf(string(auth))}, proto.ErrOK
}

// isSuper reports whether ids hold the super user.
func (t *Tree) isSuper(ids []proto.Id) bool {
	for _, id := range ids {
		if id.Scheme == schemeSuper {
			return true
		}
		if t.opts.SuperDigest != "" && id.Scheme == schemeDigest && id.ID == t.opts.SuperDigest {
			return true
		}
	}
	return false
}

// checkACL returns ErrOK when ids may exercise perm on a node with acl: an
// empty ACL allows everything, super bypasses, and otherwise an entry with a
// perm bit in common must match world:anyone or one of ids.
func (t *Tree) checkACL(ids []proto.Id, acl []proto.ACL, perm int32) proto.ErrCode {
	if len(acl) == 0 || t.isSuper(ids) {
		return proto.ErrOK
	}
	for _, a := range acl {
		if a.Perms&perm == 0 {
			continue
		}
		if a.Id.Scheme == schemeWorld && a.Id.ID == anyoneID {
			return proto.ErrOK
		}
		for _, id := range ids {
			if id.Scheme == a.Id.Scheme && idMatches(id.Scheme, id.ID, a.Id.ID) {
				return proto.ErrOK
			}
		}
	}
	return proto.ErrNoAuth
}

// idMatches reports whether an authenticated id matches an ACL id of the
// same scheme.
func idMatches(scheme, have, acl string) bool {
	switch scheme {
	case schemeDigest, schemeX509, schemeOIDC:
		return have == acl
	case schemeIP:
		return proto.IPACLMatches(have, acl)
	}
	return false
}

// validDigestID reports whether id has exactly two ':'-separated parts as
// Java's String.split counts them (trailing empty parts dropped).
func validDigestID(id string) bool {
	parts := strings.Split(id, ":")
	for len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	return len(parts) == 2
}

// fixupACL validates a requested ACL and expands the auth scheme into the
// caller's authenticated (non-ip) ids, as ZooKeeper's fixupACL: duplicates
// are dropped first; an empty list, an unknown scheme, a malformed id, or
// auth without any authenticated id is ErrInvalidACL.
func fixupACL(ids []proto.Id, acl []proto.ACL) ([]proto.ACL, proto.ErrCode) {
	if len(acl) == 0 {
		return nil, proto.ErrInvalidACL
	}
	out := make([]proto.ACL, 0, len(acl))
	for i, a := range acl {
		if slices.Contains(acl[:i], a) {
			continue // a duplicate of an earlier entry: dropped first
		}
		switch a.Id.Scheme {
		case schemeWorld:
			if a.Id.ID != anyoneID {
				return nil, proto.ErrInvalidACL
			}
			out = append(out, a)
		case schemeAuth:
			found := false
			for _, id := range ids {
				if id.Scheme == schemeIP || id.Scheme == schemeWorld || id.Scheme == schemeSuper {
					continue
				}
				found = true
				out = append(out, proto.ACL{Perms: a.Perms, Id: id})
			}
			if !found {
				return nil, proto.ErrInvalidACL
			}
		case schemeDigest:
			if !validDigestID(a.Id.ID) {
				return nil, proto.ErrInvalidACL
			}
			out = append(out, a)
		case schemeIP:
			if !proto.ValidIPACL(a.Id.ID) {
				return nil, proto.ErrInvalidACL
			}
			out = append(out, a)
		case schemeX509:
			out = append(out, a)
		case schemeOIDC:
			if a.Id.ID == "" {
				return nil, proto.ErrInvalidACL
			}
			out = append(out, a)
		default:
			return nil, proto.ErrInvalidACL
		}
	}
	return out, proto.ErrOK
}

// maskDigests returns acl with every digest id's hash replaced by "x", as
// getACL shows it to callers without ADMIN.
func maskDigests(acl []proto.ACL) []proto.ACL {
	out := make([]proto.ACL, len(acl))
	for i, a := range acl {
		if a.Id.Scheme == schemeDigest {
			user, _, _ := strings.Cut(a.Id.ID, ":")
			a.Id.ID = user + ":x"
		}
		out[i] = a
	}
	return out
}
