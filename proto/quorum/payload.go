package quorum

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/zabkeeper/zabkeeper/proto"
)

// Each packet type's payload. Constructors build the packet as ZooKeeper
// 3.5-3.9 send it (zxid and data); decoders check the type and the data's
// shape and return the fields.

func wantType(p *Packet, types ...PacketType) error {
	for _, t := range types {
		if p.Type == t {
			return nil
		}
	}
	// A copy in the error: types itself does not escape, so a caller's
	// variadic slice stays on its stack.
	return fmt.Errorf("%w: %s packet where %v expected", ErrMalformed, p.Type, slices.Clone(types))
}

// MakeZxid builds a zxid from an epoch and a counter
// (ZxidUtils.makeZxid).
func MakeZxid(epoch, counter int64) int64 { return epoch<<32 | counter&0xffffffff }

// EpochOf returns a zxid's epoch (its high 32 bits).
func EpochOf(zxid int64) int64 { return int64(uint64(zxid) >> 32) }

// LearnerInfo is the data of FOLLOWERINFO and OBSERVERINFO {long serverid;
// int protocolVersion; long configVersion}.
type LearnerInfo struct {
	Sid             int64
	ProtocolVersion int32
	ConfigVersion   int64
}

// NewLearnerInfo returns the first packet of a learner: FOLLOWERINFO (or
// OBSERVERINFO when observer) with zxid = acceptedEpoch<<32.
func NewLearnerInfo(observer bool, acceptedEpoch int64, li LearnerInfo) Packet {
	t := FollowerInfo
	if observer {
		t = ObserverInfo
	}
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 20), uint64(li.Sid))
	b = binary.BigEndian.AppendUint32(b, uint32(li.ProtocolVersion))
	b = binary.BigEndian.AppendUint64(b, uint64(li.ConfigVersion))
	return Packet{Type: t, Zxid: MakeZxid(acceptedEpoch, 0), Data: b}
}

// DecodeLearnerInfo reads FOLLOWERINFO/OBSERVERINFO as LearnerHandler does:
// 20 bytes from 3.5+; 8 (sid only) or 12 (no config version) from older
// learners, whose missing fields read as 0 and -1. Null data (a learner
// with no sid at all) and other short forms are refused.
func DecodeLearnerInfo(p *Packet) (LearnerInfo, error) {
	if err := wantType(p, FollowerInfo, ObserverInfo); err != nil {
		return LearnerInfo{}, err
	}
	d := p.Data
	if len(d) < 8 {
		return LearnerInfo{}, fmt.Errorf("%w: %s data of %d bytes (LearnerInfo needs 8, 12 or 20)", ErrMalformed, p.Type, len(d))
	}
	li := LearnerInfo{Sid: int64(binary.BigEndian.Uint64(d)), ConfigVersion: -1}
	if len(d) >= 12 {
		li.ProtocolVersion = int32(binary.BigEndian.Uint32(d[8:]))
	}
	if len(d) >= 20 {
		li.ConfigVersion = int64(binary.BigEndian.Uint64(d[12:]))
	}
	return li, nil
}

// NewLeaderInfo returns LEADERINFO: zxid = newEpoch<<32, data = the
// protocol version (0x10000).
func NewLeaderInfo(newEpoch int64) Packet {
	return Packet{Type: LeaderInfo, Zxid: MakeZxid(newEpoch, 0), Data: binary.BigEndian.AppendUint32(nil, uint32(LearnerProtocol))}
}

// DecodeLeaderInfo returns the new epoch and the leader's protocol version.
func DecodeLeaderInfo(p *Packet) (newEpoch int64, version int32, err error) {
	if err := wantType(p, LeaderInfo); err != nil {
		return 0, 0, err
	}
	if len(p.Data) < 4 {
		return 0, 0, fmt.Errorf("%w: LEADERINFO data of %d bytes (needs 4)", ErrMalformed, len(p.Data))
	}
	return EpochOf(p.Zxid), int32(binary.BigEndian.Uint32(p.Data)), nil
}

// NewAckEpoch returns ACKEPOCH: zxid = the learner's last logged zxid,
// data = its currentEpoch, or -1 when it had already accepted the
// leader's epoch (then the ack does not count).
func NewAckEpoch(lastZxid int64, currentEpoch int32) Packet {
	return Packet{Type: AckEpoch, Zxid: lastZxid, Data: binary.BigEndian.AppendUint32(nil, uint32(currentEpoch))}
}

// DecodeAckEpoch returns the learner's last zxid and current epoch (-1:
// not an ack).
func DecodeAckEpoch(p *Packet) (lastZxid int64, currentEpoch int32, err error) {
	if err := wantType(p, AckEpoch); err != nil {
		return 0, 0, err
	}
	if len(p.Data) < 4 {
		return 0, 0, fmt.Errorf("%w: ACKEPOCH data of %d bytes (needs 4)", ErrMalformed, len(p.Data))
	}
	return p.Zxid, int32(binary.BigEndian.Uint32(p.Data)), nil
}

// NewSyncStart returns DIFF, TRUNC or SNAP with its zxid (DIFF: the
// leader's zxid the diff leads to; TRUNC: truncate to; SNAP: the leader's
// lastProcessedZxid, the snapshot body follows on the stream).
func NewSyncStart(t PacketType, zxid int64) (Packet, error) {
	if t != Diff && t != Trunc && t != Snap {
		return Packet{}, fmt.Errorf("%w: %s is not a sync start", ErrMalformed, t)
	}
	return Packet{Type: t, Zxid: zxid}, nil
}

// NewNewLeader returns NEWLEADER: zxid = epoch<<32, data = the leader's
// last-seen config string.
func NewNewLeader(epoch int64, config []byte) Packet {
	return Packet{Type: NewLeader, Zxid: MakeZxid(epoch, 0), Data: config}
}

// NewUpToDate returns UPTODATE (zxid -1, no data).
func NewUpToDate() Packet { return Packet{Type: UpToDate, Zxid: -1} }

// NewProposal returns PROPOSAL (or INFORM with the same bytes) for a txn:
// data = the txn as the log stores it (TxnHeader, record, optional
// TxnDigest).
func NewProposal(t PacketType, zxid int64, txn []byte) (Packet, error) {
	if t != Proposal && t != Inform {
		return Packet{}, fmt.Errorf("%w: %s is not PROPOSAL or INFORM", ErrMalformed, t)
	}
	return Packet{Type: t, Zxid: zxid, Data: txn}, nil
}

// NewAck returns ACK for zxid (no data).
func NewAck(zxid int64) Packet { return Packet{Type: Ack, Zxid: zxid} }

// NewCommit returns COMMIT for zxid (no data).
func NewCommit(zxid int64) Packet { return Packet{Type: Commit, Zxid: zxid} }

// NewCommitAndActivate returns COMMITANDACTIVATE: data = the designated
// leader's sid of the committed reconfig.
func NewCommitAndActivate(zxid, leader int64) Packet {
	return Packet{Type: CommitAndActivate, Zxid: zxid, Data: binary.BigEndian.AppendUint64(nil, uint64(leader))}
}

// DecodeCommitAndActivate returns the designated leader sid.
func DecodeCommitAndActivate(p *Packet) (leader int64, err error) {
	if err := wantType(p, CommitAndActivate); err != nil {
		return 0, err
	}
	if len(p.Data) < 8 {
		return 0, fmt.Errorf("%w: COMMITANDACTIVATE data of %d bytes (needs 8)", ErrMalformed, len(p.Data))
	}
	return int64(binary.BigEndian.Uint64(p.Data)), nil
}

// NewInformAndActivate returns INFORMANDACTIVATE: data = the designated
// leader's sid, then the txn bytes.
func NewInformAndActivate(zxid, leader int64, txn []byte) Packet {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(txn)), uint64(leader))
	return Packet{Type: InformAndActivate, Zxid: zxid, Data: append(b, txn...)}
}

// DecodeInformAndActivate returns the designated leader sid and the txn
// bytes.
func DecodeInformAndActivate(p *Packet) (leader int64, txn []byte, err error) {
	if err := wantType(p, InformAndActivate); err != nil {
		return 0, nil, err
	}
	if len(p.Data) < 8 {
		return 0, nil, fmt.Errorf("%w: INFORMANDACTIVATE data of %d bytes (needs 8 + txn)", ErrMalformed, len(p.Data))
	}
	return int64(binary.BigEndian.Uint64(p.Data)), p.Data[8:], nil
}

// Touch is one session a learner saw alive since its last PING reply.
type Touch struct {
	Session int64
	Timeout int32 // ms
}

// NewPing returns the leader's PING: zxid = its last proposed zxid.
func NewPing(lastProposed int64) Packet { return Packet{Type: Ping, Zxid: lastProposed} }

// NewPingReply returns a learner's reply to ping: same zxid and authinfo,
// data = (int64 session, int32 timeout) per touched session, no count.
func NewPingReply(ping *Packet, touches []Touch) Packet {
	b := make([]byte, 0, 12*len(touches))
	for _, t := range touches {
		b = binary.BigEndian.AppendUint64(b, uint64(t.Session))
		b = binary.BigEndian.AppendUint32(b, uint32(t.Timeout))
	}
	return Packet{Type: Ping, Zxid: ping.Zxid, Data: b, Auth: ping.Auth}
}

// DecodeTouches returns a PING reply's session touches; null or empty data
// (the leader's own PING) has none. A length that is not a multiple of 12
// is refused, as the leader's reader fails on it.
func DecodeTouches(p *Packet) ([]Touch, error) {
	if err := wantType(p, Ping); err != nil {
		return nil, err
	}
	if len(p.Data)%12 != 0 {
		return nil, fmt.Errorf("%w: PING data of %d bytes is not a list of 12-byte session touches", ErrMalformed, len(p.Data))
	}
	out := make([]Touch, 0, len(p.Data)/12)
	for b := p.Data; len(b) > 0; b = b[12:] {
		out = append(out, Touch{Session: int64(binary.BigEndian.Uint64(b)), Timeout: int32(binary.BigEndian.Uint32(b[8:]))})
	}
	return out, nil
}

// NewRevalidate returns a learner's REVALIDATE request: zxid -1, data =
// session id and the timeout the client asked for.
func NewRevalidate(session int64, timeout int32) Packet {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 12), uint64(session))
	return Packet{Type: Revalidate, Zxid: -1, Data: binary.BigEndian.AppendUint32(b, uint32(timeout))}
}

// DecodeRevalidate returns a REVALIDATE request's session and timeout.
func DecodeRevalidate(p *Packet) (session int64, timeout int32, err error) {
	if err := wantType(p, Revalidate); err != nil {
		return 0, 0, err
	}
	if len(p.Data) < 12 {
		return 0, 0, fmt.Errorf("%w: REVALIDATE request data of %d bytes (needs 12)", ErrMalformed, len(p.Data))
	}
	return int64(binary.BigEndian.Uint64(p.Data)), int32(binary.BigEndian.Uint32(p.Data[8:])), nil
}

// NewRevalidateReply returns the leader's REVALIDATE reply: zxid -1 as
// in the request, data = session id and a one-byte validity.
func NewRevalidateReply(zxid, session int64, valid bool) Packet {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 9), uint64(session))
	v := byte(0)
	if valid {
		v = 1
	}
	return Packet{Type: Revalidate, Zxid: zxid, Data: append(b, v)}
}

// DecodeRevalidateReply returns the reply's session and validity (any
// non-zero byte is true, as DataInputStream.readBoolean reads it).
func DecodeRevalidateReply(p *Packet) (session int64, valid bool, err error) {
	if err := wantType(p, Revalidate); err != nil {
		return 0, false, err
	}
	if len(p.Data) < 9 {
		return 0, false, fmt.Errorf("%w: REVALIDATE reply data of %d bytes (needs 9)", ErrMalformed, len(p.Data))
	}
	return int64(binary.BigEndian.Uint64(p.Data)), p.Data[8] != 0, nil
}

// Forwarded is a client request a learner forwards to the leader in
// REQUEST.
type Forwarded struct {
	Session int64
	Cxid    int32
	// Op is the client opcode (create 1, delete 2, setData 5, setACL 7,
	// sync 9, multi 14, create2 15, reconfig 16, createContainer 19,
	// deleteContainer 20, createTTL 21, createSession -10, closeSession
	// -11).
	Op proto.OpCode
	// Body is the request record after the client's RequestHeader (e.g.
	// CreateRequest); createSession: int32 timeout; closeSession: empty.
	Body []byte
	// Auth are the client's authenticated Ids; the leader checks ACLs
	// with them.
	Auth []proto.Id
}

// NewRequest returns REQUEST: zxid -1, data = session, cxid, op, body;
// authinfo = the client's Ids.
func NewRequest(f Forwarded) Packet {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 16+len(f.Body)), uint64(f.Session))
	b = binary.BigEndian.AppendUint32(b, uint32(f.Cxid))
	b = binary.BigEndian.AppendUint32(b, uint32(f.Op))
	return Packet{Type: Request, Zxid: -1, Data: append(b, f.Body...), Auth: f.Auth}
}

// AppendRequest appends the encoding of f's REQUEST packet (NewRequest) to
// b, building no Packet on the way: a learner forwarding a write encodes it
// into one exactly sized buffer.
func AppendRequest(b []byte, f Forwarded) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(Request))
	b = binary.BigEndian.AppendUint64(b, ^uint64(0)) // zxid -1
	b = binary.BigEndian.AppendUint32(b, uint32(16+len(f.Body)))
	b = binary.BigEndian.AppendUint64(b, uint64(f.Session))
	b = binary.BigEndian.AppendUint32(b, uint32(f.Cxid))
	b = binary.BigEndian.AppendUint32(b, uint32(f.Op))
	b = append(b, f.Body...)
	return appendAuth(b, f.Auth)
}

// RequestLen is the length of AppendRequest's encoding of f.
func RequestLen(f Forwarded) int {
	n := 36 + len(f.Body) // type, zxid, data length, session, cxid, op; authinfo count
	for _, id := range f.Auth {
		n += 8 + len(id.Scheme) + len(id.ID)
	}
	return n
}

// DecodeRequest returns a forwarded request. Body aliases p.Data; Auth is
// p.AuthInfo() (decoded from a raw packet).
func DecodeRequest(p *Packet) (Forwarded, error) {
	f, err := DecodeRequestHead(p)
	if err != nil {
		return Forwarded{}, err
	}
	f.Auth = p.AuthInfo()
	return f, nil
}

// DecodeRequestHead is DecodeRequest without the authinfo (Auth nil), so
// it allocates nothing: for a caller that checks or routes a REQUEST, or
// takes its Ids from the raw form (Packet.RawAuth).
func DecodeRequestHead(p *Packet) (Forwarded, error) {
	if err := wantType(p, Request); err != nil {
		return Forwarded{}, err
	}
	if len(p.Data) < 16 {
		return Forwarded{}, fmt.Errorf("%w: REQUEST data of %d bytes (needs 16 + request)", ErrMalformed, len(p.Data))
	}
	return Forwarded{
		Session: int64(binary.BigEndian.Uint64(p.Data)),
		Cxid:    int32(binary.BigEndian.Uint32(p.Data[8:])),
		Op:      proto.OpCode(int32(binary.BigEndian.Uint32(p.Data[12:]))),
		Body:    p.Data[16:],
	}, nil
}

// NewSync returns the leader's SYNC answer to a learner's forwarded sync
// (zxid 0, no data); the learner pairs SYNCs with its pending syncs FIFO.
func NewSync() Packet { return Packet{Type: Sync} }
