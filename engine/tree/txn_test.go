package tree

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/zabkeeper/zabkeeper/proto"
	"pgregory.net/rapid"
)

func genBytes() *rapid.Generator[[]byte] {
	return rapid.Custom(func(t *rapid.T) []byte {
		if rapid.Bool().Draw(t, "nil") {
			return nil
		}
		return rapid.SliceOfN(rapid.Byte(), 0, 16).Draw(t, "bytes")
	})
}

func genACL() *rapid.Generator[[]proto.ACL] {
	return rapid.Custom(func(t *rapid.T) []proto.ACL {
		acl := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) proto.ACL {
			return proto.ACL{Perms: rapid.Int32().Draw(t, "perms"), Id: proto.Id{
				Scheme: rapid.SampledFrom([]string{"world", "digest", "ip", ""}).Draw(t, "scheme"),
				ID:     rapid.String().Draw(t, "id"),
			}}
		}), 0, 3).Draw(t, "acl")
		if len(acl) == 0 {
			return nil
		}
		return acl
	})
}

var bodyTypes = []proto.OpCode{proto.OpCreate, proto.OpCreate2, proto.OpCreateContainer, proto.OpCreateTTL,
	proto.OpDelete, proto.OpDeleteContainer, proto.OpSetData, proto.OpCheck}

// genBody draws an op as Prepare makes it: a create's Mode is the kind of
// node (canonicalMode) and only a TTL node has a TTL.
func genBody(t *rapid.T, typ proto.OpCode) Txn {
	x := Txn{Type: typ}
	switch typ {
	case proto.OpCreate, proto.OpCreate2, proto.OpCreateContainer, proto.OpCreateTTL:
		x.Path = rapid.String().Draw(t, "path")
		x.Data = genBytes().Draw(t, "data")
		x.ACL = genACL().Draw(t, "acl")
		x.Mode = canonicalMode(typ, rapid.Int32Range(proto.ModePersistent, proto.ModePersistentSequentialWithTTL).Draw(t, "mode"))
		if x.Mode == proto.ModePersistentWithTTL {
			x.TTL = rapid.Int64().Draw(t, "ttl")
		}
		x.ParentCversion = rapid.Int32().Draw(t, "pcv")
	case proto.OpDelete, proto.OpDeleteContainer:
		x.Path = rapid.String().Draw(t, "path")
	case proto.OpSetData:
		x.Path = rapid.String().Draw(t, "path")
		x.Data = genBytes().Draw(t, "data")
		x.Version = rapid.Int32().Draw(t, "version")
	case proto.OpSetACL:
		x.Path = rapid.String().Draw(t, "path")
		x.ACL = genACL().Draw(t, "acl")
		x.Version = rapid.Int32().Draw(t, "version")
	case proto.OpCheck:
		x.Path = rapid.String().Draw(t, "path")
		x.Version = rapid.Int32().Draw(t, "version")
	case proto.OpError:
		x.Err = proto.ErrCode(rapid.Int32().Draw(t, "err"))
	case proto.OpSync:
		x.Path = rapid.String().Draw(t, "path")
	}
	return x
}

func genTxn() *rapid.Generator[*Txn] {
	return rapid.Custom(func(t *rapid.T) *Txn {
		all := append([]proto.OpCode{proto.OpMulti, proto.OpCreateSession, OpMoveSession, proto.OpCloseSession,
			proto.OpSetACL, proto.OpError, proto.OpSync}, bodyTypes...)
		typ := rapid.SampledFrom(all).Draw(t, "type")
		x := Txn{}
		switch typ {
		case proto.OpCheck:
			typ = proto.OpDelete // only inside multi
			x = genBody(t, typ)
		case proto.OpMulti:
			x.Type = typ
			n := rapid.IntRange(0, 4).Draw(t, "ops")
			if rapid.Bool().Draw(t, "failed") {
				fail := rapid.IntRange(0, n).Draw(t, "failing")
				for i := range n {
					code := proto.ErrOK
					switch {
					case i == fail:
						code = proto.ErrNoNode
					case i > fail:
						code = proto.ErrRuntimeInconsistency
					}
					x.Ops = append(x.Ops, Txn{Type: proto.OpError, Err: code})
				}
				break
			}
			for range n {
				x.Ops = append(x.Ops, genBody(t, rapid.SampledFrom(bodyTypes).Draw(t, "optype")))
			}
		case proto.OpCreateSession:
			x.Type = typ
			x.TimeOut = rapid.Int32().Draw(t, "timeout")
			x.Owner = rapid.Int64().Draw(t, "owner")
		case OpMoveSession:
			x.Type = typ
			x.TimeOut = rapid.Int32().Draw(t, "timeout")
			x.Owner = rapid.Int64().Draw(t, "owner")
		case proto.OpCloseSession:
			x.Type = typ
			x.Paths = rapid.SliceOfN(rapid.String(), 0, 3).Draw(t, "paths")
			if len(x.Paths) == 0 {
				x.Paths = nil
			}
		default:
			x = genBody(t, typ)
		}
		x.Zxid = rapid.Int64().Draw(t, "zxid")
		x.SessionID = rapid.Int64().Draw(t, "session")
		x.Cxid = rapid.Int32().Draw(t, "cxid")
		x.Time = rapid.Int64().Draw(t, "time")
		if rapid.Bool().Draw(t, "digest") {
			x.DigestVersion, x.Digest = DigestVersion, rapid.Uint64().Draw(t, "treeDigest")
		}
		return &x
	})
}

func TestTxnRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		x := genTxn().Draw(t, "txn")
		b := x.Marshal()
		require.Equal(t, len(b), x.Size(), "Size is the marshalled length")
		back, err := UnmarshalTxn(b)
		require.NoError(t, err)
		if x.DigestVersion == 0 && x.extFlags() != 0 {
			// An extension goes after a digest: a version 0 one.
			require.Equal(t, int32(0), back.DigestVersion)
		}
		require.Equal(t, x, back)
		require.Equal(t, b, back.Marshal())
		// A strict prefix is an error, never a panic, or it is itself a
		// whole txn: cut inside the record where an older form of it ends
		// (CreateTxnV0), at the end of the record (no digest), or at the end
		// of the digest (no extension). The tails are optional in
		// ZooKeeper's format, so only the log's length and checksum tell
		// such a cut from a txn written that way.
		cut := rapid.IntRange(0, len(b)-1).Draw(t, "cut")
		if y, err := UnmarshalTxn(b[:cut]); err == nil && y.DigestVersion != 0 {
			require.NotZero(t, x.extFlags(), "cut at %d of %d: only an extension may follow a digest", cut, len(b))
			require.Equal(t, b[:cut], y.Marshal(), "cut at %d of %d: the txn without its extension", cut, len(b))
		}
	})
}

func TestUnmarshalTxnRejects(t *testing.T) {
	nested := (&Txn{Type: proto.OpMulti, Ops: []Txn{{Type: proto.OpDelete, Path: "/a"}}}).Marshal()
	// Turn the op into a multi: the op's type follows the header and the count.
	nested[txnHeaderSize+4+3] = byte(proto.OpMulti)
	withDigest := func(x Txn) []byte { x.DigestVersion = DigestVersion; return x.Marshal() }
	for name, b := range map[string][]byte{
		"empty":          nil,
		"short header":   make([]byte, txnHeaderSize-1),
		"unknown type":   (&Txn{Type: 99}).Marshal(),
		"moveSession id": (&Txn{Type: OpMoveSession}).Marshal()[:txnHeaderSize-4],
		"trailing":       append(withDigest(Txn{Type: proto.OpDelete, Path: "/a"}), 0),
		"bad extension":  append(withDigest(Txn{Type: proto.OpDelete, Path: "/a"}), 0, 0, 0, 1),
		"nested multi":   nested,
		"check alone":    (&Txn{Type: proto.OpCheck, Path: "/a"}).Marshal(),
	} {
		_, err := UnmarshalTxn(b)
		require.ErrorIs(t, err, ErrBadTxn, name)
	}
}

// TestUnmarshalTxnZooKeeperForms decodes what ZooKeeper writes and we do
// not: a CreateTxnV0, a closeSession without a record, a failed multi whose
// leading ops keep their records.
func TestUnmarshalTxnZooKeeperForms(t *testing.T) {
	e := proto.NewEncoder(nil)
	hdr := func(typ proto.OpCode) {
		e.Reset()
		e.WriteLong(0x100)
		e.WriteInt(5)
		e.WriteLong(0x200000003)
		e.WriteLong(1700000000000)
		e.WriteInt(int32(typ))
	}
	hdr(proto.OpCreate)
	e.WriteString("/v0")
	e.WriteBuffer([]byte("x"))
	proto.WriteACLs(e, proto.OpenACLUnsafe)
	e.WriteBool(true)
	x, err := UnmarshalTxn(e.Bytes())
	require.NoError(t, err)
	require.Equal(t, &Txn{SessionID: 0x100, Cxid: 5, Zxid: 0x200000003, Time: 1700000000000, Type: proto.OpCreate,
		Path: "/v0", Data: []byte("x"), ACL: proto.OpenACLUnsafe, Mode: proto.ModeEphemeral, ParentCversion: -1}, x)
	tr := New(Options{})
	tr.Apply(x)
	require.Equal(t, int32(1), tr.node("/").cversion(), "a V0 create bumps the parent's cversion")

	hdr(proto.OpCloseSession)
	x, err = UnmarshalTxn(e.Bytes())
	require.NoError(t, err)
	require.Equal(t, proto.OpCloseSession, x.Type)
	require.Nil(t, x.Paths)

	hdr(proto.OpMulti)
	e.WriteInt(3)
	sub := proto.NewEncoder(nil)
	sub.WriteString("/a")
	e.WriteInt(int32(proto.OpDelete))
	e.WriteBuffer(sub.Bytes())
	for _, code := range []proto.ErrCode{proto.ErrNoNode, proto.ErrRuntimeInconsistency} {
		sub.Reset()
		sub.WriteInt(int32(code))
		e.WriteInt(int32(proto.OpError))
		e.WriteBuffer(sub.Bytes())
	}
	e.WriteInt(DigestVersion)
	e.WriteLong(42)
	x, err = UnmarshalTxn(e.Bytes())
	require.NoError(t, err)
	require.Equal(t, []Txn{{Type: proto.OpError}, {Type: proto.OpError, Err: proto.ErrNoNode},
		{Type: proto.OpError, Err: proto.ErrRuntimeInconsistency}}, x.Ops)
	require.Equal(t, uint64(42), x.Digest)
}

func FuzzUnmarshalTxn(f *testing.F) {
	for _, x := range goldenTxns() {
		f.Add(x.Marshal())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := UnmarshalTxn(b)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to a form that decodes to the same
		// txn, and applies without panicking.
		y, err := UnmarshalTxn(x.Marshal())
		require.NoError(t, err)
		require.Equal(t, len(x.Marshal()), x.Size())
		require.Equal(t, x, y)
		New(Options{ExtendedTypes: true}).Apply(x)
	})
}

func FuzzLoadSnapshot(f *testing.F) {
	h := populate(f)
	f.Add(snapBytes(f, h.tr.Snapshot()))
	f.Add(snapBytes(f, New(Options{}).Snapshot()))
	// A fuzzy snapshot's: "/acl" refers to an ACL the cache lacks.
	f.Add(dropACLEntry(f, snapBytes(f, h.tr.Snapshot()), true, 2, populateACL))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := load(b, Options{})
		if err != nil {
			return
		}
		if recomputeDigest(tr) != tr.Digest() {
			t.Fatalf("digest mismatch")
		}
		var out bytes.Buffer
		if _, err := tr.Snapshot().Write(&out, nil); err != nil {
			t.Fatal(err)
		}
		again, err := load(out.Bytes(), Options{})
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
		if again.UnresolvedACLs() != tr.UnresolvedACLs() {
			t.Fatalf("reload: %d nodes with an unresolved ACL, not %d", again.UnresolvedACLs(), tr.UnresolvedACLs())
		}
	})
}
