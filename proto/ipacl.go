package proto

import (
	"net/netip"
	"strconv"
	"strings"
)

// The "ip" ACL scheme lives here rather than in engine/tree so the pure
// engine imports nothing from the net tree, not even the pure net/netip.

// ParseIPACL parses an ip ACL id, "addr" or "addr/bits", IPv4 or IPv6.
func ParseIPACL(id string) (netip.Prefix, bool) {
	addrText, bitsText, hasBits := strings.Cut(id, "/")
	addr, err := netip.ParseAddr(addrText)
	if err != nil || addr.Zone() != "" {
		return netip.Prefix{}, false
	}
	bits := addr.BitLen()
	if hasBits {
		b, err := strconv.Atoi(bitsText)
		if err != nil || b < 0 || b > addr.BitLen() {
			return netip.Prefix{}, false
		}
		bits = b
	}
	p, err := addr.Prefix(bits)
	return p, err == nil
}

// ValidIPACL reports whether id is a well-formed ip ACL id.
func ValidIPACL(id string) bool {
	_, ok := ParseIPACL(id)
	return ok
}

// IPACLMatches reports whether the client address have falls inside the
// ip ACL id acl.
func IPACLMatches(have, acl string) bool {
	p, ok := ParseIPACL(acl)
	if !ok {
		return false
	}
	addr, err := netip.ParseAddr(have)
	if err != nil {
		return false
	}
	return p.Contains(addr.WithZone(""))
}
