package tree

import (
	"maps"
	"slices"
)

// allNodes returns a view of every node of t by path.
func (t *Tree) allNodes() map[string]*node {
	out := make(map[string]*node, t.NodeCount())
	v := t.st.snapshot()
	v.each(func(p []byte, r *rec) {
		n := v.node(r)
		out[string(p)] = &n
	})
	return out
}

// paths returns the paths of the snapshot's nodes, in id order.
func (s *Snapshot) paths() []string {
	var out []string
	s.v.each(func(p []byte, _ *rec) { out = append(out, string(p)) })
	return out
}

// snapshotOf returns a snapshot of exactly nodes, which need not form a
// tree (for tests of what loading refuses).
func snapshotOf(nodes map[string]*node, zxid int64, digest uint64) *Snapshot {
	st := newStore()
	for _, p := range slices.Sorted(maps.Keys(nodes)) {
		st.create(p, nodes[p])
	}
	return &Snapshot{v: st.snapshot(), zxid: zxid, digest: digest}
}
