package tree

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/zabkeeper/zabkeeper/proto"
	"pgregory.net/rapid"
)

// mnode is the model's znode: only what the property test tracks, kept as
// plainly as possible.
type mnode struct {
	data      string
	version   int32
	creates   int32 // child creations ever
	owner     int64 // ephemeral session, 0 otherwise
	container bool
	czxid     int64
	mzxid     int64
	pzxid     int64
}

type model map[string]*mnode

func (m model) clone() model {
	c := model{}
	for p, n := range m {
		cp := *n
		c[p] = &cp
	}
	return c
}

func parentOf(p string) string {
	i := strings.LastIndex(p, "/")
	if i == 0 {
		return "/"
	}
	return p[:i]
}

func (m model) children(p string) []string {
	var out []string
	for q := range m {
		if q != "/" && parentOf(q) == p {
			out = append(out, q[strings.LastIndex(q, "/")+1:])
		}
	}
	slices.Sort(out)
	return out
}

// mop is one generated write.
type mop struct {
	op      proto.OpCode
	path    string
	mode    int32
	version int32
	data    string
}

// apply runs one op on the model at zxid and returns the code and, for
// creates, the created path.
func (m model) apply(o mop, session, zxid int64) (proto.ErrCode, string) {
	switch o.op {
	case proto.OpCreate, proto.OpCreate2:
		parent := m[parentOf(o.path)]
		if parent == nil {
			return proto.ErrNoNode, ""
		}
		p := o.path
		if o.mode == proto.ModePersistentSequential || o.mode == proto.ModeEphemeralSequential {
			p = fmt.Sprintf("%s%010d", p, parent.creates)
		}
		if m[p] != nil {
			return proto.ErrNodeExists, ""
		}
		if parent.owner != 0 {
			return proto.ErrNoChildrenForEphemerals, ""
		}
		n := &mnode{data: o.data, czxid: zxid, mzxid: zxid, pzxid: zxid, container: o.mode == proto.ModeContainer}
		if o.mode == proto.ModeEphemeral || o.mode == proto.ModeEphemeralSequential {
			n.owner = session
		}
		m[p] = n
		parent.creates++
		parent.pzxid = zxid
		return proto.ErrOK, p
	case proto.OpDelete:
		parent := m[parentOf(o.path)]
		n := m[o.path]
		switch {
		case parent == nil || n == nil:
			return proto.ErrNoNode, ""
		case o.version != -1 && o.version != n.version:
			return proto.ErrBadVersion, ""
		case len(m.children(o.path)) > 0:
			return proto.ErrNotEmpty, ""
		}
		delete(m, o.path)
		parent.pzxid = zxid
	case proto.OpSetData:
		n := m[o.path]
		switch {
		case n == nil:
			return proto.ErrNoNode, ""
		case o.version != -1 && o.version != n.version:
			return proto.ErrBadVersion, ""
		}
		n.data, n.version, n.mzxid = o.data, n.version+1, zxid
	case proto.OpCheck:
		n := m[o.path]
		switch {
		case n == nil:
			return proto.ErrNoNode, ""
		case o.version != -1 && o.version != n.version:
			return proto.ErrBadVersion, ""
		}
	}
	return proto.ErrOK, ""
}

func (o mop) request() proto.Record {
	switch o.op {
	case proto.OpCreate, proto.OpCreate2:
		return &proto.CreateRequest{Path: o.path, Data: []byte(o.data), ACL: proto.OpenACLUnsafe, Flags: o.mode}
	case proto.OpDelete:
		return &proto.DeleteRequest{Path: o.path, Version: o.version}
	case proto.OpSetData:
		return &proto.SetDataRequest{Path: o.path, Data: []byte(o.data), Version: o.version}
	case proto.OpCheck:
		return &proto.CheckVersionRequest{Path: o.path, Version: o.version}
	}
	return nil
}

var modelPaths = []string{"/a", "/b", "/a/a", "/a/b", "/b/a", "/a/a/a", "/a/b/c"}

func genMop(t *rapid.T, existing []string, withCheck bool) mop {
	ops := []proto.OpCode{proto.OpCreate, proto.OpCreate2, proto.OpDelete, proto.OpSetData}
	if withCheck {
		ops = append(ops, proto.OpCheck)
	}
	o := mop{op: rapid.SampledFrom(ops).Draw(t, "op")}
	if len(existing) > 0 && o.op != proto.OpCreate && o.op != proto.OpCreate2 && rapid.IntRange(0, 2).Draw(t, "pick") > 0 {
		o.path = rapid.SampledFrom(existing).Draw(t, "existing")
	} else {
		o.path = rapid.SampledFrom(modelPaths).Draw(t, "path")
	}
	o.mode = rapid.Int32Range(0, 4).Draw(t, "mode")
	o.version = rapid.Int32Range(-1, 2).Draw(t, "version")
	o.data = rapid.SampledFrom([]string{"", "x", "yy"}).Draw(t, "data")
	return o
}

// userPaths lists the model's paths outside the initial tree, sorted.
func (m model) userPaths() []string {
	var out []string
	for p := range m {
		if !isSpecialPath(p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func TestModelProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		h := newHarness(rt, Options{})
		m := model{"/": {}, "/zookeeper": {}, "/zookeeper/quota": {}, "/zookeeper/config": {}}
		var log [][]byte
		steps := rapid.IntRange(1, 40).Draw(rt, "steps")
		for range steps {
			// Prepare a batch, each against the model as of the txns before it.
			type expect struct {
				txn    *Txn
				digest uint64 // PendingDigest after its prepare
				codes  []proto.ErrCode
				paths  []string
			}
			var batch []expect
			for range rapid.IntRange(1, 4).Draw(rt, "batch") {
				session := rapid.Int64Range(1, 3).Draw(rt, "session")
				c := Caller{SessionID: session}
				kind := rapid.IntRange(0, 9).Draw(rt, "kind")
				switch {
				case kind == 0:
					txn := h.prepare(c, proto.OpCloseSession, nil)
					var gone []string
					for _, p := range m.userPaths() {
						if m[p].owner == session {
							gone = append(gone, p)
						}
					}
					require.Equal(rt, gone, txn.Paths)
					for _, p := range gone {
						delete(m, p)
						m[parentOf(p)].pzxid = txn.Zxid
					}
					batch = append(batch, expect{digest: h.tr.PendingDigest(), txn: txn})
				case kind <= 2:
					n := rapid.IntRange(1, 3).Draw(rt, "multi")
					var ops []proto.MultiOp
					trial := m.clone()
					var codes []proto.ErrCode
					var paths []string
					failed := false
					zxid := h.zxid + 1
					for range n {
						o := genMop(rt, m.userPaths(), true)
						ops = append(ops, proto.MultiOp{Type: o.op, Req: o.request()})
						if failed {
							codes = append(codes, proto.ErrRuntimeInconsistency)
							continue
						}
						code, p := trial.apply(o, session, zxid)
						codes = append(codes, code)
						paths = append(paths, p)
						if code != proto.ErrOK {
							failed = true
							for i := range codes[:len(codes)-1] {
								codes[i] = proto.ErrOK
							}
						}
					}
					if !failed {
						m = trial
					} else {
						paths = nil
					}
					txn := h.prepare(c, proto.OpMulti, &proto.MultiRequest{Ops: ops})
					batch = append(batch, expect{digest: h.tr.PendingDigest(), txn: txn, codes: codes, paths: paths})
				default:
					o := genMop(rt, m.userPaths(), false)
					zxid := h.zxid + 1
					code, p := m.apply(o, session, zxid)
					txn := h.prepare(c, o.op, o.request())
					batch = append(batch, expect{digest: h.tr.PendingDigest(), txn: txn, codes: []proto.ErrCode{code}, paths: []string{p}})
				}
			}
			for _, e := range batch {
				b := e.txn.Marshal()
				log = append(log, b)
				txn, err := UnmarshalTxn(b)
				require.NoError(rt, err)
				res := h.tr.Apply(txn)
				require.Equal(rt, e.digest, h.tr.Digest(), "the digest a txn carries (PendingDigest) is the tree's after it")
				switch {
				case txn.Type == proto.OpCloseSession:
					require.Equal(rt, proto.ErrOK, res.Err)
				case txn.Type == proto.OpMulti:
					require.Equal(rt, proto.ErrOK, res.Err)
					rs := res.Resp.(*proto.MultiResponse).Results
					require.Len(rt, rs, len(e.codes))
					for i, r := range rs {
						require.Equal(rt, e.codes[i], r.Err, "multi op %d", i)
						if e.paths != nil && e.paths[i] != "" {
							switch body := r.Resp.(type) {
							case *proto.CreateResponse:
								require.Equal(rt, e.paths[i], body.Path)
							case *proto.Create2Response:
								require.Equal(rt, e.paths[i], body.Path)
							}
						}
					}
				default:
					require.Equal(rt, e.codes[0], res.Err)
					switch body := res.Resp.(type) {
					case *proto.CreateResponse:
						require.Equal(rt, e.paths[0], body.Path)
					case *proto.Create2Response:
						require.Equal(rt, e.paths[0], body.Path)
					}
				}
			}
			require.Zero(rt, h.tr.PendingCount())
			requireModel(rt, h.tr, m)
		}
		// Snapshot → Load gives the same tree; replaying the log does too.
		var buf bytes.Buffer
		_, err := h.tr.Snapshot().Write(&buf, nil)
		require.NoError(rt, err)
		loaded, err := load(buf.Bytes(), Options{})
		require.NoError(rt, err)
		requireSameTrees(rt, h.tr, loaded)
		replay := New(Options{})
		for _, b := range log {
			txn, err := UnmarshalTxn(b)
			require.NoError(rt, err)
			replay.Apply(txn)
		}
		requireSameTrees(rt, h.tr, replay)
	})
}

// requireModel compares the whole tree with the model.
func requireModel(t *rapid.T, tr *Tree, m model) {
	require.Equal(t, len(m), tr.NodeCount())
	require.Equal(t, recomputeDigest(tr), tr.Digest())
	for p, n := range m {
		resp, err := tr.Read(Caller{}, 0, proto.OpGetData, &proto.GetDataRequest{Path: p})
		require.Equal(t, proto.ErrOK, err, p)
		got := resp.(*proto.GetDataResponse)
		require.Equal(t, n.data, string(got.Data), p)
		kids := m.children(p)
		numKids := int32(len(kids))
		want := proto.Stat{
			Czxid: n.czxid, Mzxid: n.mzxid, Pzxid: n.pzxid, Version: n.version,
			Cversion: 2*n.creates - numKids, EphemeralOwner: n.owner,
			DataLength: int32(len(n.data)), NumChildren: numKids,
		}
		if p == configPath {
			want.Aversion = -1 // as ZooKeeper starts it; nothing here sets ACLs
		}
		st := got.Stat
		st.Ctime, st.Mtime = 0, 0
		require.Equal(t, want, st, p)
		ch, err := tr.Read(Caller{}, 0, proto.OpGetChildren, &proto.GetChildrenRequest{Path: p})
		require.Equal(t, proto.ErrOK, err)
		if kids == nil {
			kids = []string{}
		}
		require.Equal(t, kids, ch.(*proto.GetChildrenResponse).Children, p)
	}
}
