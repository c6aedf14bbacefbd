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
	proto.OpDelete, proto.OpDeleteContainer, proto.OpSetData, proto.OpSetACL, proto.OpCheck, proto.OpError}

func genBody(t *rapid.T, typ proto.OpCode) Txn {
	x := Txn{Type: typ}
	switch typ {
	case proto.OpCreate, proto.OpCreate2, proto.OpCreateContainer, proto.OpCreateTTL:
		x.Path = rapid.String().Draw(t, "path")
		x.Data = genBytes().Draw(t, "data")
		x.ACL = genACL().Draw(t, "acl")
		x.Mode = rapid.Int32().Draw(t, "mode")
		x.TTL = rapid.Int64().Draw(t, "ttl")
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
	}
	return x
}

func genTxn() *rapid.Generator[*Txn] {
	return rapid.Custom(func(t *rapid.T) *Txn {
		all := append([]proto.OpCode{proto.OpMulti, proto.OpCreateSession, OpMoveSession, proto.OpCloseSession}, bodyTypes...)
		typ := rapid.SampledFrom(all).Draw(t, "type")
		x := Txn{}
		switch typ {
		case proto.OpMulti:
			x.Type = typ
			n := rapid.IntRange(0, 4).Draw(t, "ops")
			for range n {
				x.Ops = append(x.Ops, genBody(t, rapid.SampledFrom(bodyTypes).Draw(t, "optype")))
			}
		case proto.OpCreateSession:
			x.Type = typ
			x.TimeOut = rapid.Int32().Draw(t, "timeout")
			x.Data = genBytes().Draw(t, "passwd")
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
		require.Equal(t, x, back)
		require.Equal(t, b, back.Marshal())
		// Every strict prefix is an error, never a panic.
		cut := rapid.IntRange(0, len(b)-1).Draw(t, "cut")
		_, err = UnmarshalTxn(b[:cut])
		require.Error(t, err)
	})
}

func TestUnmarshalTxnRejects(t *testing.T) {
	nested := (&Txn{Type: proto.OpMulti, Ops: []Txn{{Type: proto.OpDelete, Path: "/a"}}}).Marshal()
	// Turn the op into a multi: type field of the op follows the header and the count.
	off := 4 + 8 + 8 + 4 + 8 + 4 + 4
	nested[off+3] = byte(proto.OpMulti)
	for name, b := range map[string][]byte{
		"empty":      nil,
		"bad format": append([]byte{0, 0, 0, 3}, (&Txn{Type: proto.OpDelete}).Marshal()[4:]...),
		"format 0":   append([]byte{0, 0, 0, 0}, (&Txn{Type: proto.OpDelete}).Marshal()[4:]...),
		"moveSession in format 1": append([]byte{0, 0, 0, 1},
			(&Txn{Type: OpMoveSession, TimeOut: 1, Owner: 2}).Marshal()[4:]...),
		"unknown type": (&Txn{Type: 99}).Marshal(),
		"trailing":     append((&Txn{Type: proto.OpDelete, Path: "/a"}).Marshal(), 0),
		"nested multi": nested,
	} {
		_, err := UnmarshalTxn(b)
		require.ErrorIs(t, err, ErrBadTxn, name)
	}
}

// TestUnmarshalTxnFormat1: logs written before format 2 still decode; their
// createSession has no owner (0, unknown) and re-encodes in format 2.
func TestUnmarshalTxnFormat1(t *testing.T) {
	v1 := []byte{
		0, 0, 0, 1, // format 1
		0, 0, 0, 0, 0, 0, 0, 7, // zxid
		0x11, 0, 0, 0, 0, 0, 0, 1, // session
		0xff, 0xff, 0xff, 0xff, // cxid -1
		0, 0, 0, 0, 0, 0, 0, 9, // time
		0xff, 0xff, 0xff, 0xf6, // createSession (-10)
		0, 0, 0x75, 0x30, // timeout 30000
		0, 0, 0, 2, 0xab, 0xcd, // password
	}
	x, err := UnmarshalTxn(v1)
	require.NoError(t, err)
	require.Equal(t, &Txn{Zxid: 7, SessionID: 0x1100000000000001, Cxid: -1, Time: 9, Type: proto.OpCreateSession,
		TimeOut: 30000, Data: []byte{0xab, 0xcd}}, x)
	b := x.Marshal()
	require.Equal(t, []byte{0, 0, 0, 2}, b[:4], "re-encoded in the current format")
	require.Equal(t, append(append([]byte{0, 0, 0, 2}, v1[4:]...), 0, 0, 0, 0, 0, 0, 0, 0), b, "format 2 appends the owner")

	mv := (&Txn{Zxid: 8, SessionID: 5, Cxid: -1, Type: OpMoveSession, TimeOut: 4000, Owner: 3}).Marshal()
	require.Equal(t, []byte{
		0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0,
		0xff, 0xff, 0xff, 0xf4, // moveSession (-12)
		0, 0, 0x0f, 0xa0, // timeout 4000
		0, 0, 0, 0, 0, 0, 0, 3, // owner
	}, mv)
}

func FuzzUnmarshalTxn(f *testing.F) {
	for _, x := range []*Txn{
		{Zxid: 1, SessionID: 2, Cxid: 3, Time: 4, Type: proto.OpCreate, Path: "/a", Data: []byte("d"), ACL: proto.OpenACLUnsafe, Mode: 3, ParentCversion: 1},
		{Type: proto.OpMulti, Ops: []Txn{{Type: proto.OpSetData, Path: "/a", Version: 2}, {Type: proto.OpCheck, Path: "/b"}, {Type: proto.OpError, Err: -2}}},
		{Type: proto.OpCloseSession, Paths: []string{"/e1", "/e2"}},
		{Type: proto.OpCreateSession, TimeOut: 30000, Data: make([]byte, 16), Owner: 2},
		{Type: OpMoveSession, SessionID: 9, TimeOut: 30000, Owner: 3},
		{Type: proto.OpSetACL, Path: "/x", ACL: proto.ReadACLUnsafe},
		{Type: proto.OpError, Err: proto.ErrNoNode},
	} {
		f.Add(x.Marshal())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := UnmarshalTxn(b)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to a canonical form that decodes to the
		// same txn, and applies without panicking.
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
		if _, err := load(out.Bytes(), Options{}); err != nil {
			t.Fatalf("reload: %v", err)
		}
	})
}
