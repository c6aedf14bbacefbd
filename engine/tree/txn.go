package tree

import (
	"errors"
	"fmt"

	"github.com/zabkeeper/zabkeeper/proto"
)

// Txn is a deterministic, serializable transaction: what the leader proposes
// and every replica applies. Which body fields are used depends on Type:
//
//   - create (1), create2 (15), createContainer (19), createTTL (21): Path
//     (final, sequence suffix included), Data, ACL (fixed up), Mode (the
//     request's create flags), TTL, ParentCversion (the parent's internal
//     cversion after the create). An ephemeral's owner is SessionID.
//   - delete (2), deleteContainer (20): Path.
//   - setData (5): Path, Data, Version (the new version).
//   - setACL (7): Path, ACL, Version (the new aversion).
//   - check (13, only inside multi): Path, Version (the expected version).
//   - multi (14): Ops. A failed multi has every op of Type error with its
//     code in Err (0 before the failing op, -2 after it).
//   - createSession (-10): TimeOut, Data (the session password), Owner.
//   - moveSession (OpMoveSession): TimeOut (negotiated on the new
//     connection), Owner (the server the session moves to).
//   - closeSession (-11): Paths (the session's ephemerals, sorted).
//   - error (-1): Err.
//   - sync (9): Path. A no-op that commits through the quorum, so a
//     read after it is current (our sync is a quorum operation).
//
// The ops of a multi carry only Type and body; the header fields (Zxid,
// SessionID, Cxid, Time) are the multi's own and stay zero in the ops.
type Txn struct {
	Zxid      int64
	SessionID int64
	Cxid      int32
	Time      int64 // ms, stamped by the leader
	Type      proto.OpCode

	Path           string
	Data           []byte
	ACL            []proto.ACL
	Mode           int32
	TTL            int64
	ParentCversion int32
	Version        int32
	TimeOut        int32
	Err            proto.ErrCode
	Paths          []string
	Ops            []Txn
	// Owner is the id of the server whose client connection holds the
	// session (createSession, moveSession); 0 means unknown.
	Owner int64
}

// OpMoveSession is the type of the txn that names the owner of a live
// session after its client reconnected there with the session's id and
// password (another server, or the same learner revalidating it). It is
// ours, not a ZooKeeper opcode (ZooKeeper's leader keeps session owners in
// memory only, Leader.revalidateSession), and never comes from a client:
// the engine answers a request of this type Unimplemented.
const OpMoveSession proto.OpCode = -12

// txnFormat is the version leading every marshalled txn. Format 2 added
// Owner to createSession and the moveSession type; format 1 txns (older
// logs) still decode, their createSession with Owner 0.
const (
	txnFormat   = 2
	txnFormatV1 = 1
)

// Marshal encodes the txn with jute primitives.
func (t *Txn) Marshal() []byte {
	e := proto.NewEncoder(make([]byte, 0, 64+len(t.Path)+len(t.Data)))
	e.WriteInt(txnFormat)
	e.WriteLong(t.Zxid)
	e.WriteLong(t.SessionID)
	e.WriteInt(t.Cxid)
	e.WriteLong(t.Time)
	t.encodeBody(e)
	return e.Bytes()
}

// txnHeaderSize is the encoded format, zxid, session, cxid and time.
const txnHeaderSize = 4 + 8 + 8 + 4 + 8

// Size returns len(t.Marshal()) without encoding it.
func (t *Txn) Size() int { return txnHeaderSize + t.bodySize() }

func aclsSize(acls []proto.ACL) int {
	n := 4
	for _, a := range acls {
		n += 4 + 4 + len(a.Id.Scheme) + 4 + len(a.Id.ID)
	}
	return n
}

// bodySize mirrors encodeBody.
func (t *Txn) bodySize() int {
	n := 4
	switch t.Type {
	case proto.OpCreate, proto.OpCreate2, proto.OpCreateContainer, proto.OpCreateTTL:
		n += 4 + len(t.Path) + 4 + len(t.Data) + aclsSize(t.ACL) + 4 + 8 + 4
	case proto.OpDelete, proto.OpDeleteContainer, proto.OpSync:
		n += 4 + len(t.Path)
	case proto.OpSetData:
		n += 4 + len(t.Path) + 4 + len(t.Data) + 4
	case proto.OpSetACL:
		n += 4 + len(t.Path) + aclsSize(t.ACL) + 4
	case proto.OpCheck:
		n += 4 + len(t.Path) + 4
	case proto.OpMulti:
		n += 4
		for i := range t.Ops {
			n += t.Ops[i].bodySize()
		}
	case proto.OpCreateSession:
		n += 4 + 4 + len(t.Data) + 8
	case OpMoveSession:
		n += 4 + 8
	case proto.OpCloseSession:
		n += 4
		for _, p := range t.Paths {
			n += 4 + len(p)
		}
	case proto.OpError:
		n += 4
	}
	return n
}

func (t *Txn) encodeBody(e *proto.Encoder) {
	e.WriteInt(int32(t.Type))
	switch t.Type {
	case proto.OpCreate, proto.OpCreate2, proto.OpCreateContainer, proto.OpCreateTTL:
		e.WriteString(t.Path)
		e.WriteBuffer(t.Data)
		proto.WriteACLs(e, t.ACL)
		e.WriteInt(t.Mode)
		e.WriteLong(t.TTL)
		e.WriteInt(t.ParentCversion)
	case proto.OpDelete, proto.OpDeleteContainer, proto.OpSync:
		e.WriteString(t.Path)
	case proto.OpSetData:
		e.WriteString(t.Path)
		e.WriteBuffer(t.Data)
		e.WriteInt(t.Version)
	case proto.OpSetACL:
		e.WriteString(t.Path)
		proto.WriteACLs(e, t.ACL)
		e.WriteInt(t.Version)
	case proto.OpCheck:
		e.WriteString(t.Path)
		e.WriteInt(t.Version)
	case proto.OpMulti:
		e.WriteInt(int32(len(t.Ops)))
		for i := range t.Ops {
			t.Ops[i].encodeBody(e)
		}
	case proto.OpCreateSession:
		e.WriteInt(t.TimeOut)
		e.WriteBuffer(t.Data)
		e.WriteLong(t.Owner)
	case OpMoveSession:
		e.WriteInt(t.TimeOut)
		e.WriteLong(t.Owner)
	case proto.OpCloseSession:
		e.WriteStrings(t.Paths)
	case proto.OpError:
		e.WriteInt(int32(t.Err))
	}
}

// ErrBadTxn is wrapped by every UnmarshalTxn error.
var ErrBadTxn = errors.New("tree: malformed txn")

// minOpSize is the smallest encoding of a multi op (a bare type and one
// int), which bounds the op count by the input length.
const minOpSize = 8

// UnmarshalTxn decodes a txn written by Marshal. It is bounded by the input
// (every length is checked before allocation) and never panics.
func UnmarshalTxn(b []byte) (*Txn, error) {
	d := proto.NewDecoder(b)
	format := d.ReadInt()
	if d.Err() == nil && format != txnFormat && format != txnFormatV1 {
		return nil, fmt.Errorf("%w: format %d", ErrBadTxn, format)
	}
	t := &Txn{
		Zxid:      d.ReadLong(),
		SessionID: d.ReadLong(),
		Cxid:      d.ReadInt(),
		Time:      d.ReadLong(),
	}
	if err := t.decodeBody(d, format, true); err != nil {
		return nil, err
	}
	if d.Err() != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadTxn, d.Err())
	}
	if d.Remaining() != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadTxn, d.Remaining())
	}
	return t, nil
}

func (t *Txn) decodeBody(d *proto.Decoder, format int32, top bool) error {
	t.Type = proto.OpCode(d.ReadInt())
	switch t.Type {
	case proto.OpCreate, proto.OpCreate2, proto.OpCreateContainer, proto.OpCreateTTL:
		t.Path = d.ReadString()
		t.Data = d.ReadBuffer()
		t.ACL = proto.ReadACLs(d)
		t.Mode = d.ReadInt()
		t.TTL = d.ReadLong()
		t.ParentCversion = d.ReadInt()
	case proto.OpDelete, proto.OpDeleteContainer:
		t.Path = d.ReadString()
	case proto.OpSetData:
		t.Path = d.ReadString()
		t.Data = d.ReadBuffer()
		t.Version = d.ReadInt()
	case proto.OpSetACL:
		t.Path = d.ReadString()
		t.ACL = proto.ReadACLs(d)
		t.Version = d.ReadInt()
	case proto.OpCheck:
		t.Path = d.ReadString()
		t.Version = d.ReadInt()
	case proto.OpError:
		t.Err = proto.ErrCode(d.ReadInt())
	case proto.OpMulti:
		if !top {
			return fmt.Errorf("%w: nested multi", ErrBadTxn)
		}
		n := d.ReadVectorLen(minOpSize)
		if d.Err() != nil {
			break
		}
		if n > 0 {
			t.Ops = make([]Txn, n)
		}
		for i := range t.Ops {
			if err := t.Ops[i].decodeBody(d, format, false); err != nil {
				return err
			}
			if d.Err() != nil {
				break
			}
		}
	case proto.OpCreateSession:
		if !top {
			return fmt.Errorf("%w: createSession inside multi", ErrBadTxn)
		}
		t.TimeOut = d.ReadInt()
		t.Data = d.ReadBuffer()
		if format != txnFormatV1 {
			t.Owner = d.ReadLong()
		}
	case OpMoveSession:
		if !top || format == txnFormatV1 {
			return fmt.Errorf("%w: moveSession inside multi or in format %d", ErrBadTxn, format)
		}
		t.TimeOut = d.ReadInt()
		t.Owner = d.ReadLong()
	case proto.OpSync:
		if !top {
			return fmt.Errorf("%w: sync inside multi", ErrBadTxn)
		}
		t.Path = d.ReadString()
	case proto.OpCloseSession:
		if !top {
			return fmt.Errorf("%w: closeSession inside multi", ErrBadTxn)
		}
		t.Paths = d.ReadStrings()
	default:
		if d.Err() == nil {
			return fmt.Errorf("%w: type %v", ErrBadTxn, t.Type)
		}
	}
	return nil
}
