package tree

import "slices"

// Expired returns the paths the reaper should delete at time now (ms),
// sorted, at most max (no limit when max <= 0): containers without children
// that once had one (internal cversion > 0), and TTL nodes without children
// whose now - mtime exceeds their TTL.
func (t *Tree) Expired(now int64, max int) []string {
	var out []string
	for p := range t.reapable {
		n := t.node(p)
		if n == nil || t.numChildren(p) > 0 {
			continue
		}
		switch n.kind {
		case kindContainer:
			if n.cversion() > 0 {
				out = append(out, p)
			}
		case kindTTL:
			if now-n.mtime > n.ttl() {
				out = append(out, p)
			}
		}
	}
	slices.Sort(out)
	if max > 0 && len(out) > max {
		out = out[:max]
	}
	return out
}

// Ephemerals returns the paths of the session's ephemerals, sorted.
func (t *Tree) Ephemerals(session int64) []string {
	return sortedKeys(t.ephemerals[session])
}
