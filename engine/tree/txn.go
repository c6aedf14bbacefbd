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
//     kind of node: ModePersistent, ModeEphemeral, ModeContainer or
//     ModePersistentWithTTL; the sequence flag is spent in Path), TTL,
//     ParentCversion (the parent's internal cversion after the create; -1,
//     from a ZooKeeper 3.3 CreateTxnV0, means the parent's cversion + 1 on
//     apply). An ephemeral's owner is SessionID.
//   - delete (2), deleteContainer (20): Path.
//   - setData (5): Path, Data, Version (the new version).
//   - setACL (7): Path, ACL, Version (the new aversion).
//   - check (13, only inside multi): Path, Version (the node's version + 1,
//     as ZooKeeper writes it; apply checks nothing).
//   - multi (14): Ops. A failed multi has every op of Type error with its
//     code in Err (0 before the failing op, -2 after it).
//   - createSession (-10): TimeOut, Owner. The session password is not in
//     the txn: it is derived from the session id (SessionPassword in
//     package engine), as ZooKeeper does.
//   - moveSession (OpMoveSession): TimeOut (negotiated on the new
//     connection), Owner (the server the session moves to).
//   - closeSession (-11): Paths (the session's ephemerals, sorted).
//   - error (-1): Err.
//   - sync (9): Path. A no-op that commits through the quorum, so a
//     read after it is current (our sync is a quorum operation).
//
// The ops of a multi carry only Type and body; the header fields (Zxid,
// SessionID, Cxid, Time) are the multi's own and stay zero in the ops.
//
// Marshal writes a txn as Apache ZooKeeper writes it in its transaction log
// and proposals (see Marshal); Digest and DigestVersion are ZooKeeper's
// TxnDigest, the tree digest after the txn.
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

	// DigestVersion is the TxnDigest version (DigestVersion, as ZooKeeper's
	// DigestCalculator), or 0 when the txn carries no digest (ZooKeeper
	// writes none for a failed single op, nor with digests disabled).
	DigestVersion int32
	// Digest is the tree digest after the txn is applied.
	Digest uint64
}

// OpMoveSession is the type of the txn that names the owner of a live
// session after its client reconnected there with the session's id and
// password (another server, or the same learner revalidating it). It is
// ours, not a ZooKeeper opcode (ZooKeeper's leader keeps session owners in
// memory only, Leader.revalidateSession), and never comes from a client:
// the engine answers a request of this type Unimplemented. In the log it is
// a createSession of the live session (ZooKeeper re-registers the session
// with the new timeout, which is what the move does) with the move flag in
// the zabkeeper extension.
const OpMoveSession proto.OpCode = -12

// The encoding, ZooKeeper's (Util.marshallTxnEntry):
//
//	TxnHeader {long clientId; int cxid; long zxid; long time; int type}
//	the txn record of the type, in jute
//	TxnDigest {int version; long treeDigest}   (optional)
//	zabkeeper extension                         (optional, only after a TxnDigest)
//
// ZooKeeper's reader (SerializeUtils.deserializeTxn) reads the header, the
// record and, if bytes remain, the digest, and ignores whatever follows. The
// extension carries what ZooKeeper has no field for, so a log zabkeeper
// writes is read and applied by ZooKeeper the same way:
//
//	int magic (extMagic); int flags; then, by flag in this order:
//	extOwner:  long owner          (createSession, moveSession)
//	extMove:   nothing             (a createSession that is our moveSession)
//	extSync:   ustring path        (an error(0) txn that is our sync)
//	extType:   int type            (a create written under another type,
//	                                see zkCreateType)
//	extOpTypes: vector<int> types  (the same for every op of a multi)
const (
	txnHeaderSize = 8 + 4 + 8 + 8 + 4
	txnDigestSize = 4 + 8
	extMagic      = 0x7a6b7831 // "zkx1"

	extOwner   = 1 << 0
	extMove    = 1 << 1
	extSync    = 1 << 2
	extType    = 1 << 3
	extOpTypes = 1 << 4
	extKnown   = extOwner | extMove | extSync | extType | extOpTypes
)

// TxnHeaderSize is the size of ZooKeeper's TxnHeader, which every marshalled
// txn starts with; its zxid is at byte 12.
const TxnHeaderSize = txnHeaderSize

// zkCreateType is the type a create is written under: the one ZooKeeper
// decodes into the same kind of node. createContainer and createTTL have
// records of their own; create and create2 write CreateTxn, which knows
// only ephemeral or not.
func zkCreateType(op proto.OpCode, mode int32) proto.OpCode {
	switch createKind(op, mode) {
	case kindContainer:
		return proto.OpCreateContainer
	case kindTTL:
		return proto.OpCreateTTL
	}
	if op == proto.OpCreate || op == proto.OpCreate2 {
		return op
	}
	return proto.OpCreate
}

// canonicalMode is the Mode a decoded create carries: the kind of node.
func canonicalMode(op proto.OpCode, mode int32) int32 {
	switch createKind(op, mode) {
	case kindContainer:
		return proto.ModeContainer
	case kindTTL:
		return proto.ModePersistentWithTTL
	case kindEphemeral:
		return proto.ModeEphemeral
	}
	return proto.ModePersistent
}

func isCreate(op proto.OpCode) bool {
	return op == proto.OpCreate || op == proto.OpCreate2 || op == proto.OpCreateContainer || op == proto.OpCreateTTL
}

// wireType is the TxnHeader (or multi op) type t is written under.
func (t *Txn) wireType() proto.OpCode {
	switch {
	case t.Type == OpMoveSession:
		return proto.OpCreateSession
	case t.Type == proto.OpSync:
		return proto.OpError
	case isCreate(t.Type):
		return zkCreateType(t.Type, t.Mode)
	}
	return t.Type
}

// extFlags returns the extension flags t needs (0: no extension).
func (t *Txn) extFlags() int32 {
	var f int32
	switch t.Type {
	case proto.OpCreateSession:
		if t.Owner != 0 {
			f |= extOwner
		}
	case OpMoveSession:
		f |= extMove
		if t.Owner != 0 {
			f |= extOwner
		}
	case proto.OpSync:
		f |= extSync
	case proto.OpMulti:
		for i := range t.Ops {
			if t.Ops[i].wireType() != t.Ops[i].Type {
				f |= extOpTypes
				break
			}
		}
	default:
		if t.wireType() != t.Type {
			f |= extType
		}
	}
	return f
}

// Marshal encodes the txn as ZooKeeper writes it (see the layout above).
func (t *Txn) Marshal() []byte {
	e := proto.NewEncoder(make([]byte, 0, t.Size()))
	e.WriteLong(t.SessionID)
	e.WriteInt(t.Cxid)
	e.WriteLong(t.Zxid)
	e.WriteLong(t.Time)
	e.WriteInt(int32(t.wireType()))
	t.encodeRecord(e)
	flags := t.extFlags()
	if t.hasDigest() || flags != 0 {
		// An extension needs a digest before it. A txn made without one
		// gets version 0, which ZooKeeper skips ("Digest version not the
		// same") rather than compares.
		e.WriteInt(t.DigestVersion)
		e.WriteLong(int64(t.Digest))
	}
	if flags != 0 {
		e.WriteInt(extMagic)
		e.WriteInt(flags)
		if flags&extOwner != 0 {
			e.WriteLong(t.Owner)
		}
		if flags&extSync != 0 {
			e.WriteString(t.Path)
		}
		if flags&extType != 0 {
			e.WriteInt(int32(t.Type))
		}
		if flags&extOpTypes != 0 {
			e.WriteInt(int32(len(t.Ops)))
			for i := range t.Ops {
				e.WriteInt(int32(t.Ops[i].Type))
			}
		}
	}
	return e.Bytes()
}

// Size returns len(t.Marshal()) without encoding it.
func (t *Txn) Size() int {
	n := txnHeaderSize + t.recordSize()
	flags := t.extFlags()
	if t.hasDigest() || flags != 0 {
		n += txnDigestSize
	}
	if flags != 0 {
		n += 8
		if flags&extOwner != 0 {
			n += 8
		}
		if flags&extSync != 0 {
			n += 4 + len(t.Path)
		}
		if flags&extType != 0 {
			n += 4
		}
		if flags&extOpTypes != 0 {
			n += 4 + 4*len(t.Ops)
		}
	}
	return n
}

// hasDigest reports whether t carries a TxnDigest of its own.
func (t *Txn) hasDigest() bool { return t.DigestVersion != 0 || t.Digest != 0 }

// digestedSize is Size once the leader has stamped the digest on t.
func (t *Txn) digestedSize() int {
	n := t.Size()
	if !t.hasDigest() && t.extFlags() == 0 {
		n += txnDigestSize
	}
	return n
}

func aclsSize(acls []proto.ACL) int {
	n := 4
	for _, a := range acls {
		n += 4 + 4 + len(a.Id.Scheme) + 4 + len(a.Id.ID)
	}
	return n
}

func bufSize(b []byte) int { return 4 + len(b) }

// recordSize mirrors encodeRecord.
func (t *Txn) recordSize() int {
	switch t.Type {
	case proto.OpCreate, proto.OpCreate2, proto.OpCreateContainer, proto.OpCreateTTL:
		n := 4 + len(t.Path) + bufSize(t.Data) + aclsSize(t.ACL) + 4
		switch t.wireType() {
		case proto.OpCreateTTL:
			n += 8
		case proto.OpCreate, proto.OpCreate2:
			n++
		}
		return n
	case proto.OpDelete, proto.OpDeleteContainer:
		return 4 + len(t.Path)
	case proto.OpSetData, proto.OpReconfig:
		return 4 + len(t.Path) + bufSize(t.Data) + 4
	case proto.OpSetACL:
		return 4 + len(t.Path) + aclsSize(t.ACL) + 4
	case proto.OpCheck:
		return 4 + len(t.Path) + 4
	case proto.OpMulti:
		n := 4
		for i := range t.Ops {
			n += 4 + 4 + t.Ops[i].recordSize()
		}
		return n
	case proto.OpCreateSession, OpMoveSession:
		return 4
	case proto.OpCloseSession:
		n := 4
		for _, p := range t.Paths {
			n += 4 + len(p)
		}
		return n
	case proto.OpError, proto.OpSync:
		return 4
	}
	return 0
}

// encodeRecord writes the jute txn record of t's type.
func (t *Txn) encodeRecord(e *proto.Encoder) {
	switch t.Type {
	case proto.OpCreate, proto.OpCreate2, proto.OpCreateContainer, proto.OpCreateTTL:
		// CreateTxn {path; data; acl; boolean ephemeral; int parentCVersion},
		// CreateContainerTxn {path; data; acl; int parentCVersion},
		// CreateTTLTxn {path; data; acl; int parentCVersion; long ttl}.
		e.WriteString(t.Path)
		e.WriteBuffer(t.Data)
		proto.WriteACLs(e, t.ACL)
		switch t.wireType() {
		case proto.OpCreateContainer:
			e.WriteInt(t.ParentCversion)
		case proto.OpCreateTTL:
			e.WriteInt(t.ParentCversion)
			e.WriteLong(t.TTL)
		default:
			e.WriteBool(createKind(t.Type, t.Mode) == kindEphemeral)
			e.WriteInt(t.ParentCversion)
		}
	case proto.OpDelete, proto.OpDeleteContainer:
		e.WriteString(t.Path) // DeleteTxn
	case proto.OpSetData, proto.OpReconfig:
		e.WriteString(t.Path) // SetDataTxn
		e.WriteBuffer(t.Data)
		e.WriteInt(t.Version)
	case proto.OpSetACL:
		e.WriteString(t.Path) // SetACLTxn
		proto.WriteACLs(e, t.ACL)
		e.WriteInt(t.Version)
	case proto.OpCheck:
		e.WriteString(t.Path) // CheckVersionTxn
		e.WriteInt(t.Version)
	case proto.OpMulti:
		// MultiTxn {vector<Txn{int type; buffer data}>}: each op's record
		// in a buffer.
		e.WriteInt(int32(len(t.Ops)))
		for i := range t.Ops {
			op := &t.Ops[i]
			e.WriteInt(int32(op.wireType()))
			e.WriteInt(int32(op.recordSize()))
			op.encodeRecord(e)
		}
	case proto.OpCreateSession, OpMoveSession:
		e.WriteInt(t.TimeOut) // CreateSessionTxn
	case proto.OpCloseSession:
		e.WriteStrings(t.Paths) // CloseSessionTxn {vector<ustring> paths2Delete}
	case proto.OpError:
		e.WriteInt(int32(t.Err)) // ErrorTxn
	case proto.OpSync:
		e.WriteInt(0) // ErrorTxn{OK}: a no-op to ZooKeeper
	}
}

// ErrBadTxn is wrapped by every UnmarshalTxn error.
var ErrBadTxn = errors.New("tree: malformed txn")

// minOpSize is the smallest encoding of a multi op (a type, a buffer
// length and a 4-byte record), which bounds the op count by the input.
const minOpSize = 12

// UnmarshalTxn decodes a txn as ZooKeeper 3.5-3.9 or Marshal writes it:
// the TxnHeader, the record of its type (CreateTxnV0 too; a closeSession
// with no record), an optional TxnDigest and an optional zabkeeper
// extension. A failed multi comes back in our form (every op an error).
// It is bounded by the input (every length is checked before allocation)
// and never panics.
func UnmarshalTxn(b []byte) (*Txn, error) {
	d := proto.NewDecoder(b)
	t := &Txn{
		SessionID: d.ReadLong(),
		Cxid:      d.ReadInt(),
		Zxid:      d.ReadLong(),
		Time:      d.ReadLong(),
		Type:      proto.OpCode(d.ReadInt()),
	}
	if d.Err() != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrBadTxn, d.Err())
	}
	if err := t.decodeRecord(d, true); err != nil {
		return nil, err
	}
	if d.Err() != nil {
		return nil, fmt.Errorf("%w: %v record: %w", ErrBadTxn, t.Type, d.Err())
	}
	if d.Remaining() >= txnDigestSize {
		t.DigestVersion = d.ReadInt()
		t.Digest = uint64(d.ReadLong())
	}
	if d.Remaining() > 0 {
		if err := t.decodeExt(d); err != nil {
			return nil, err
		}
	}
	if t.Type == proto.OpMulti {
		normalizeFailedMulti(t.Ops)
	}
	return t, nil
}

// decodeExt reads the zabkeeper extension after the digest.
func (t *Txn) decodeExt(d *proto.Decoder) error {
	if d.ReadInt() != extMagic || d.Err() != nil {
		return fmt.Errorf("%w: %d bytes after the digest are not a zabkeeper extension", ErrBadTxn, d.Remaining()+4)
	}
	flags := d.ReadInt()
	if flags&^extKnown != 0 {
		return fmt.Errorf("%w: unknown extension flags %#x", ErrBadTxn, flags)
	}
	if flags&extOwner != 0 {
		if t.Type != proto.OpCreateSession {
			return fmt.Errorf("%w: owner extension on a %v txn", ErrBadTxn, t.Type)
		}
		t.Owner = d.ReadLong()
	}
	if flags&extMove != 0 {
		if t.Type != proto.OpCreateSession {
			return fmt.Errorf("%w: move extension on a %v txn", ErrBadTxn, t.Type)
		}
		t.Type = OpMoveSession
	}
	if flags&extSync != 0 {
		if t.Type != proto.OpError || t.Err != 0 {
			return fmt.Errorf("%w: sync extension on a %v txn", ErrBadTxn, t.Type)
		}
		t.Type, t.Err, t.Path = proto.OpSync, 0, d.ReadString()
	}
	if flags&extType != 0 {
		typ := proto.OpCode(d.ReadInt())
		if !isCreate(t.Type) || !isCreate(typ) || zkCreateType(typ, t.Mode) != t.Type {
			return fmt.Errorf("%w: type extension %v on a %v txn", ErrBadTxn, typ, t.Type)
		}
		t.Type = typ
	}
	if flags&extOpTypes != 0 {
		n := d.ReadVectorLen(4)
		if t.Type != proto.OpMulti || n != len(t.Ops) {
			return fmt.Errorf("%w: %d op types in the extension of a %v txn with %d ops", ErrBadTxn, n, t.Type, len(t.Ops))
		}
		for i := range t.Ops {
			typ := proto.OpCode(d.ReadInt())
			op := &t.Ops[i]
			if typ != op.Type && (!isCreate(op.Type) || !isCreate(typ) || zkCreateType(typ, op.Mode) != op.Type) {
				return fmt.Errorf("%w: op type extension %v on a %v op", ErrBadTxn, typ, op.Type)
			}
			op.Type = typ
		}
	}
	if d.Err() != nil {
		return fmt.Errorf("%w: extension: %w", ErrBadTxn, d.Err())
	}
	if d.Remaining() != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrBadTxn, d.Remaining())
	}
	return nil
}

// normalizeFailedMulti turns a failed multi as ZooKeeper writes it (the ops
// before the failing one keep their records) into ours, as ZooKeeper's
// DataTree.processTxn does before applying it: when any op is an error,
// every other op becomes error(0) before the first error and
// error(RuntimeInconsistency) after it.
func normalizeFailedMulti(ops []Txn) {
	first := -1
	for i := range ops {
		if ops[i].Type == proto.OpError {
			first = i
			break
		}
	}
	if first < 0 {
		return
	}
	for i := range ops {
		if ops[i].Type == proto.OpError {
			continue
		}
		code := proto.ErrOK
		if i > first {
			code = proto.ErrRuntimeInconsistency
		}
		ops[i] = Txn{Type: proto.OpError, Err: code}
	}
}

// decodeRecord reads the record of t.Type; top is false for a multi's op.
func (t *Txn) decodeRecord(d *proto.Decoder, top bool) error {
	switch t.Type {
	case proto.OpCreate, proto.OpCreate2, proto.OpCreateContainer, proto.OpCreateTTL:
		t.Path = d.ReadString()
		t.Data = d.ReadBuffer()
		t.ACL = proto.ReadACLs(d)
		switch t.Type {
		case proto.OpCreateContainer:
			t.ParentCversion = d.ReadInt()
			t.Mode = proto.ModeContainer
		case proto.OpCreateTTL:
			t.ParentCversion = d.ReadInt()
			t.TTL = d.ReadLong()
			t.Mode = proto.ModePersistentWithTTL
		default:
			eph := d.ReadBool()
			t.Mode = proto.ModePersistent
			if eph {
				t.Mode = proto.ModeEphemeral
			}
			if d.Remaining() < 4 && d.Err() == nil && t.Type == proto.OpCreate && top {
				// CreateTxnV0 (ZooKeeper 3.3): no parentCVersion.
				t.ParentCversion = -1
				break
			}
			t.ParentCversion = d.ReadInt()
		}
	case proto.OpDelete, proto.OpDeleteContainer:
		t.Path = d.ReadString()
	case proto.OpSetData, proto.OpReconfig:
		if t.Type == proto.OpReconfig && !top {
			return fmt.Errorf("%w: reconfig inside multi", ErrBadTxn)
		}
		t.Path = d.ReadString()
		t.Data = d.ReadBuffer()
		t.Version = d.ReadInt()
	case proto.OpSetACL:
		if !top {
			return fmt.Errorf("%w: setACL inside multi", ErrBadTxn)
		}
		t.Path = d.ReadString()
		t.ACL = proto.ReadACLs(d)
		t.Version = d.ReadInt()
	case proto.OpCheck:
		if top {
			return fmt.Errorf("%w: check outside multi", ErrBadTxn)
		}
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
			op := &t.Ops[i]
			op.Type = proto.OpCode(d.ReadInt())
			rec := d.ReadBuffer()
			if d.Err() != nil {
				break
			}
			sub := proto.NewDecoder(rec)
			if err := op.decodeRecord(sub, false); err != nil {
				return err
			}
			if sub.Err() != nil {
				return fmt.Errorf("%w: multi op %d (%v): %w", ErrBadTxn, i, op.Type, sub.Err())
			}
			if sub.Remaining() != 0 {
				return fmt.Errorf("%w: multi op %d (%v): %d trailing bytes", ErrBadTxn, i, op.Type, sub.Remaining())
			}
		}
	case proto.OpCreateSession:
		if !top {
			return fmt.Errorf("%w: createSession inside multi", ErrBadTxn)
		}
		t.TimeOut = d.ReadInt()
	case proto.OpCloseSession:
		if !top {
			return fmt.Errorf("%w: closeSession inside multi", ErrBadTxn)
		}
		if d.Remaining() == 0 {
			break // no CloseSessionTxn (zookeeper.closeSessionTxn.enabled=false, or before 3.6)
		}
		t.Paths = d.ReadStrings()
	default:
		return fmt.Errorf("%w: unsupported txn type %d", ErrBadTxn, int32(t.Type))
	}
	return nil
}
