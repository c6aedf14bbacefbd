package netstub

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/zabkeeper/zabkeeper/engine/zab"
)

// WireVersion is the version byte that opens every encoded zab.Message.
const WireVersion = 1

// Layout of an encoded message, all integers big-endian:
//
//	version   u8   WireVersion
//	type      u8   zab.MsgType, MsgNotification..MsgApp, MsgTimeoutNow,
//	               MsgCommitAndActivate or MsgInformAndActivate
//	flags     u8   bit 0: Observer; bit 1: the snapshot is not inline but
//	               streamed in the frames that follow (TCP); others zero
//	from, to, epoch, zxid                      4 × i64
//	vote: leader, zxid, peerEpoch, round       4 × i64
//	vote state u8  zab.Role
//	entry zxid i64
//	entry data, snapshot, payload              3 × (u32 length + bytes)
const (
	fixedLen    = 3 + 8*4 + 8*4 + 1 + 8
	flagObs     = 1 << 0
	flagStream  = 1 << 1
	maxWireType = zab.MsgApp
)

// ErrMalformed is wrapped by every error DecodeMessage returns.
var ErrMalformed = errors.New("netstub: malformed message")

// AppendMessage appends the wire encoding of m to dst and returns the
// extended slice. Every field is encoded; DecodeMessage reverses it, except
// that empty byte slices come back nil and a snapshot comes back as
// zab.SnapshotBytes. It encodes any Type, but DecodeMessage refuses
// MsgLinkDown and unknown types. A snapshot is encoded inline, serialized
// into memory if it is not SnapshotBytes (the TCP transport streams
// snapshots instead); it panics if that serialization fails.
func AppendMessage(dst []byte, m zab.Message) []byte {
	return appendMessage(dst, m, false)
}

// appendMessage is AppendMessage; with streamed set the snapshot is left
// out and flagged as following in chunks.
func appendMessage(dst []byte, m zab.Message, streamed bool) []byte {
	var flags byte
	if m.Observer {
		flags |= flagObs
	}
	var snap []byte
	if streamed {
		flags |= flagStream
	} else {
		snap = inlineSnapshot(m.Snapshot)
	}
	dst = append(dst, WireVersion, byte(m.Type), flags)
	for _, v := range [...]int64{
		m.From, m.To, m.Epoch, m.Zxid,
		m.Vote.Leader, m.Vote.Zxid, m.Vote.PeerEpoch, m.Vote.Round,
	} {
		dst = binary.BigEndian.AppendUint64(dst, uint64(v))
	}
	dst = append(dst, byte(m.Vote.State))
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.Entry.Zxid))
	for _, b := range [...][]byte{m.Entry.Data, snap, m.Payload} {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(b)))
		dst = append(dst, b...)
	}
	return dst
}

// EncodedLen returns len(AppendMessage(nil, m)).
func EncodedLen(m zab.Message) int {
	return fixedLen + 12 + len(m.Entry.Data) + len(inlineSnapshot(m.Snapshot)) + len(m.Payload)
}

func inlineSnapshot(d zab.SnapshotData) []byte {
	b, err := zab.ReadSnapshot(d)
	if err != nil {
		panic(fmt.Sprintf("netstub: serialize snapshot: %v", err))
	}
	return b
}

// DecodeMessage decodes one message that fills b exactly. The byte slices
// of the result are copies, so the caller may reuse b. maxSnapshot bounds
// len(Snapshot); a value ≤ 0 leaves only the bound len(b). It never panics
// and never allocates more than len(b) bytes; every error wraps
// ErrMalformed.
func DecodeMessage(b []byte, maxSnapshot int) (zab.Message, error) {
	m, streamed, err := decodeMessage(b, maxSnapshot, false)
	if err == nil && streamed {
		return zab.Message{}, fmt.Errorf("%w: streamed snapshot outside a stream", ErrMalformed)
	}
	return m, err
}

// decodeMessage is DecodeMessage; with alias set the byte slices of the
// result point into b instead of being copied (the caller hands b over).
// streamed reports a MsgSnap whose snapshot follows in chunk frames.
func decodeMessage(b []byte, maxSnapshot int, alias bool) (m zab.Message, streamed bool, err error) {
	m, err = decodeFields(b, maxSnapshot, alias)
	if err != nil {
		return zab.Message{}, false, err
	}
	streamed = b[2]&flagStream != 0
	if streamed && (m.Type != zab.MsgSnap || m.Snapshot != nil) {
		return zab.Message{}, false, fmt.Errorf("%w: stream flag on a %v or with an inline snapshot", ErrMalformed, m.Type)
	}
	if m.Type == zab.MsgFollowerInfo || m.Type == zab.MsgLeaderInfo {
		// This codec links two zabkeeper servers only: every extension.
		m.Caps = zab.AllCaps
	}
	return m, streamed, nil
}

func decodeFields(b []byte, maxSnapshot int, alias bool) (zab.Message, error) {
	var m zab.Message
	if len(b) < fixedLen {
		return zab.Message{}, fmt.Errorf("%w: %d bytes, need at least %d", ErrMalformed, len(b), fixedLen)
	}
	if b[0] != WireVersion {
		return zab.Message{}, fmt.Errorf("%w: version %d", ErrMalformed, b[0])
	}
	m.Type = zab.MsgType(b[1])
	if (m.Type < zab.MsgNotification || m.Type > maxWireType) && m.Type != zab.MsgTimeoutNow &&
		m.Type != zab.MsgCommitAndActivate && m.Type != zab.MsgInformAndActivate {
		return zab.Message{}, fmt.Errorf("%w: type %d", ErrMalformed, b[1])
	}
	if b[2]&^(flagObs|flagStream) != 0 {
		return zab.Message{}, fmt.Errorf("%w: flags %#x", ErrMalformed, b[2])
	}
	m.Observer = b[2]&flagObs != 0
	r := b[3:]
	i64 := func() int64 {
		v := int64(binary.BigEndian.Uint64(r))
		r = r[8:]
		return v
	}
	m.From, m.To, m.Epoch, m.Zxid = i64(), i64(), i64(), i64()
	m.Vote.Leader, m.Vote.Zxid, m.Vote.PeerEpoch, m.Vote.Round = i64(), i64(), i64(), i64()
	state := zab.Role(r[0])
	if state > zab.Observing {
		return zab.Message{}, fmt.Errorf("%w: vote state %d", ErrMalformed, r[0])
	}
	m.Vote.State = state
	r = r[1:]
	m.Entry.Zxid = i64()

	blob := func(what string, limit int) ([]byte, error) {
		if len(r) < 4 {
			return nil, fmt.Errorf("%w: truncated %s length", ErrMalformed, what)
		}
		n := binary.BigEndian.Uint32(r)
		r = r[4:]
		if uint64(n) > uint64(len(r)) {
			return nil, fmt.Errorf("%w: %s of %d bytes, %d left", ErrMalformed, what, n, len(r))
		}
		if limit > 0 && uint64(n) > uint64(limit) {
			return nil, fmt.Errorf("%w: %s of %d bytes exceeds %d", ErrMalformed, what, n, limit)
		}
		var out []byte
		if n > 0 {
			if alias {
				out = r[:n:n]
			} else {
				out = append([]byte(nil), r[:n]...)
			}
		}
		r = r[n:]
		return out, nil
	}
	var err error
	if m.Entry.Data, err = blob("entry data", 0); err != nil {
		return zab.Message{}, err
	}
	snap, err := blob("snapshot", maxSnapshot)
	if err != nil {
		return zab.Message{}, err
	}
	if snap != nil {
		m.Snapshot = zab.SnapshotBytes(snap)
	}
	if m.Payload, err = blob("payload", 0); err != nil {
		return zab.Message{}, err
	}
	if len(r) != 0 {
		return zab.Message{}, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(r))
	}
	return m, nil
}
