package tree

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/zabkeeper/zabkeeper/proto"
	"pgregory.net/rapid"
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
	for _, p := range slices.SortedFunc(maps.Keys(nodes), pathOrder) {
		st.create(p, nodes[p])
	}
	v := st.snapshot()
	v.order = v.ids()
	return &Snapshot{v: v, zxid: zxid, digest: digest}
}

// TestStoreModel checks the store against a map under random creates,
// updates (new data, the same data, a new meta) and removes, with data of
// every size class the arena treats apart (nil, empty, small, a chunk of
// its own). After every operation: each path finds its data, meta and
// fields; the counts, the arena's live bytes and the meta references add
// up; and no chunk but the one being filled is mostly dead (compaction
// keeps the arena within twice the live data).
func TestStoreModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		st := newStore()
		type mn struct {
			data []byte
			meta *nodeMeta
			mz   int64
		}
		model := map[string]mn{}
		metas := []*nodeMeta{nil, metaOf(proto.OpenACLUnsafe), metaOf(proto.ReadACLUnsafe)}
		for i := range rapid.IntRange(1, 200).Draw(rt, "ops") {
			p := fmt.Sprintf("/n%d", rapid.IntRange(0, 40).Draw(rt, "path"))
			var data []byte
			switch rapid.IntRange(0, 9).Draw(rt, "size") {
			case 0:
			case 1:
				data = []byte{}
			case 2:
				data = bytes.Repeat([]byte{byte(i)}, chunkSize/8+1+i)
			default:
				data = bytes.Repeat([]byte{byte(i)}, rapid.IntRange(1, 40_000).Draw(rt, "len"))
			}
			n := &node{data: data, meta: metas[rapid.IntRange(0, 2).Draw(rt, "meta")], mzxid: int64(i)}
			id := st.find(p)
			_, exists := model[p]
			require.Equal(rt, exists, id >= 0, "find %s", p)
			switch op := rapid.IntRange(0, 3).Draw(rt, "op"); {
			case !exists:
				st.create(p, n)
				model[p] = mn{data, n.meta, n.mzxid}
			case op == 0:
				st.remove(id, p)
				delete(model, p)
			case op == 1: // the node as stored, its data unchanged
				var v node
				st.view(id, &v)
				v.mzxid = int64(i)
				st.update(id, p, &v)
				m := model[p]
				m.mz = v.mzxid
				model[p] = m
			default:
				st.update(id, p, n)
				model[p] = mn{data, n.meta, n.mzxid}
			}
			require.Equal(rt, len(model), st.count)
			require.Equal(rt, len(model), st.index.n)
			require.LessOrEqual(rt, st.index.n*5, len(st.index.slots)*4, "the index is at most 4/5 full")
			refs := map[*nodeMeta]int32{}
			for q, m := range model {
				id := st.find(q)
				require.GreaterOrEqual(rt, id, int32(0), "find %s", q)
				var v node
				st.view(id, &v)
				require.Equal(rt, m.data, v.data, "data of %s", q)
				require.Equal(rt, m.data == nil, v.data == nil, "nil data of %s", q)
				require.Same(rt, m.meta, v.meta, "meta of %s", q)
				require.Equal(rt, m.mz, v.mzxid, "mzxid of %s", q)
				require.Equal(rt, q, string(st.path(id)))
				if m.meta != nil {
					refs[m.meta]++
				}
			}
			for m, k := range refs {
				require.Equal(rt, k, st.metaRefs[m.idx], "references to a meta")
			}
			live := make([]int, len(st.chunks))
			for q := range model {
				r := st.rec(st.find(q))
				size := recordSize(st.chunks, r.chunk, r.off)
				live[r.chunk] += size
			}
			require.Equal(rt, live, st.live)
			for c := range st.chunks {
				if st.chunks[c] != nil && c != st.cur {
					require.Greater(rt, st.live[c]*2, st.used[c], "chunk %d is mostly dead", c)
				}
			}
		}
	})
}

// TestArenaStaysBounded overwrites one node's data for many times the
// arena's chunk size: the chunks compacted are dropped and their indexes
// reused, so the chunk list stays short.
func TestArenaStaysBounded(t *testing.T) {
	st := newStore()
	id := st.create("/a", &node{})
	data := make([]byte, 1000)
	for i := range 20_000 { // 20 MB
		data[0] = byte(i)
		st.update(id, "/a", &node{data: bytes.Clone(data)})
	}
	require.LessOrEqual(t, len(st.chunks), 16)
	var v node
	st.view(id, &v)
	require.Equal(t, data, v.data)
}

// TestPathIndexShrinks fills a store and empties it again: the index gives
// its slots back and every remaining path is still found.
func TestPathIndexShrinks(t *testing.T) {
	st := newStore()
	for i := range 5000 {
		st.create(fmt.Sprintf("/n%d", i), &node{})
	}
	full := len(st.index.slots)
	for i := range 4990 {
		p := fmt.Sprintf("/n%d", i)
		st.remove(st.find(p), p)
	}
	require.Less(t, len(st.index.slots), full/16)
	for i := 4990; i < 5000; i++ {
		require.GreaterOrEqual(t, st.find(fmt.Sprintf("/n%d", i)), int32(0))
	}
	require.Equal(t, int32(-1), st.find("/n0"))
}

// TestPathIndexRemoveKeepsProbeChains removes entries from an index whose
// hashes all collide, so every removal shifts the rest of the chain.
func TestPathIndexRemoveKeepsProbeChains(t *testing.T) {
	var x pathIndex
	for id := range int32(50) {
		x.insert(7, id)
	}
	for id := int32(0); id < 50; id += 3 {
		x.remove(id, 7)
	}
	for id := range int32(50) {
		found := false
		for _, v := range x.slots {
			found = found || v == uint64(7)<<32|uint64(id+1)
		}
		require.Equal(t, id%3 != 0, found, "id %d", id)
	}
}

// each calls f with every live node's path and rec, in id order.
func (v *storeView) each(f func(path []byte, r *rec)) {
	for p, pg := range v.pages {
		for i := range pg {
			if r := &pg[i]; r.live() {
				f(v.path(int32(p<<pageBits|i)), r)
			}
		}
	}
}

// ids returns the ids of the live nodes, in id order.
func (v *storeView) ids() []int32 {
	out := make([]int32, 0, v.count)
	for p, pg := range v.pages {
		for i := range pg {
			if pg[i].live() {
				out = append(out, int32(p<<pageBits|i))
			}
		}
	}
	return out
}

// TestStoreNestedModel checks the store's paths spelled from names and
// parents against a map: random creates (a node whose parent is missing is
// stored with its whole path), updates with data of every size class (so
// chunks are compacted under nested records) and removes of childless
// nodes. After every operation each path finds its node and spells back,
// and no other spelling of it (a doubled or missing slash, another
// parent) finds anything.
func TestStoreNestedModel(t *testing.T) {
	names := []string{"a", "b", "ab"}
	var paths []string
	for _, x := range names {
		paths = append(paths, "/"+x)
		for _, y := range names {
			paths = append(paths, "/"+x+"/"+y)
			for _, z := range names {
				paths = append(paths, "/"+x+"/"+y+"/"+z)
			}
		}
	}
	paths = append(paths, "/")
	rapid.Check(t, func(rt *rapid.T) {
		st := newStore()
		model := map[string][]byte{}
		hasKids := func(p string) bool {
			for q := range model {
				if q != p && strings.HasPrefix(q, strings.TrimSuffix(p, "/")+"/") {
					return true
				}
			}
			return false
		}
		for i := range rapid.IntRange(1, 300).Draw(rt, "ops") {
			p := rapid.SampledFrom(paths).Draw(rt, "path")
			var data []byte
			switch rapid.IntRange(0, 4).Draw(rt, "size") {
			case 0:
			case 1:
				data = bytes.Repeat([]byte{byte(i)}, chunkSize/8+1+i)
			default:
				data = bytes.Repeat([]byte{byte(i)}, rapid.IntRange(1, 30_000).Draw(rt, "len"))
			}
			id := st.find(p)
			_, exists := model[p]
			require.Equal(rt, exists, id >= 0, "find %s", p)
			n := &node{data: data, czxid: int64(i) << 32, mzxid: int64(i)<<32 + 7, ctime: 1 << 40, mtime: -5,
				version: int32(i) - 3, owner: int64(i) * 1e15, kind: kind(i % int(kindLimit))}
			switch {
			case !exists:
				st.create(p, n)
				model[p] = data
			case rapid.Bool().Draw(rt, "remove") && !hasKids(p):
				st.remove(id, p)
				delete(model, p)
			default:
				st.update(id, p, n)
				model[p] = data
			}
			for q, d := range model {
				id := st.find(q)
				require.GreaterOrEqual(rt, id, int32(0), "find %s", q)
				require.Equal(rt, q, string(st.path(id)))
				var v node
				st.view(id, &v)
				require.Equal(rt, d, v.data, "data of %s", q)
				if q == rootPath {
					continue
				}
				for _, other := range []string{"/" + q, strings.Replace(q, "/", "//", 1), q + "/", q[1:]} {
					require.Equal(rt, int32(-1), st.find(other), "find %s", other)
				}
				_, name := splitPath(q)
				first := strings.SplitN(q[1:], "/", 2)[0]
				for _, r := range names {
					if r != name {
						require.False(rt, isPath(&st, id, strings.TrimSuffix(q, name)+r), "%s is not %s", q, r)
					}
					if r != first && q != "/"+first {
						require.False(rt, isPath(&st, id, "/"+r+q[1+len(first):]), "%s's parent is not /%s", q, r)
					}
				}
				require.False(rt, isPath(&st, id, "/x"+q), "%s is not under /x", q)
			}
		}
	})
}

// TestRecordFields stores Stat fields of every size and sign and reads
// them back.
func TestRecordFields(t *testing.T) {
	st := newStore()
	values := []int64{0, 1, -1, 127, 128, 1 << 32, -1 << 40, 1<<55 + 3, 1<<62 - 1, -1 << 63, 1<<63 - 1}
	for _, a := range values {
		for _, b := range values {
			n := node{czxid: a, mzxid: b, ctime: b, mtime: a, version: int32(a), owner: b, kind: kindEphemeral}
			if a&1 == 0 {
				n.data = []byte{}
			}
			p := fmt.Sprintf("/n%d-%d", a, b)
			id := st.create(p, &n)
			var v node
			st.view(id, &v)
			require.Equal(t, n, v, "%s", p)
			require.Equal(t, p, string(st.path(id)))
		}
	}
}
