package quorum

import (
	"encoding/binary"
	"fmt"
)

// zabkeeper's extensions of the quorum port (docs/ZAB.md, "One protocol:
// zabkeeper's extras over ZooKeeper's wire"). Each end of a leader/learner
// connection announces itself in a hello placed where ZooKeeper stops
// reading: after LearnerInfo's 20 bytes in FOLLOWERINFO/OBSERVERINFO
// (LearnerHandler.run reads 8+4+8 bytes) and after LEADERINFO's int32
// (Learner.registerWithLeader reads one getInt). A ZooKeeper peer ignores
// it; a ZooKeeper peer is recognised by its absence. The packet types a
// hello makes possible (TimeoutNow, SnapChunk) are sent only to a peer
// whose hello announced the matching capability.

// Hello is one end's announcement.
type Hello struct {
	// Version is the hello's layout version: HelloVersion when encoded
	// by this code. A later version may append fields after Nonce.
	Version int32
	// Caps are the capability flags the sender handles (zab.Caps bits).
	Caps uint64
	// Nonce identifies the sending transport instance: a restarted
	// process never reuses one (netstub/dupdetect.go's rule).
	Nonce int64
}

// Hello layout: int32 magic, int32 version, int64 caps, int64 nonce.
const (
	// HelloMagic opens a hello: "zkh1" (not the txn extension's "zkx1").
	HelloMagic uint32 = 0x7a6b6831
	// HelloVersion is the layout this code writes.
	HelloVersion int32 = 1
	// HelloLen is the length of a version-1 hello.
	HelloLen = 24

	// learnerInfoLen and leaderInfoLen are the bytes of ZooKeeper's own
	// fields in the two handshake packets; a hello follows them.
	learnerInfoLen = 20
	leaderInfoLen  = 4
)

// Append appends the hello's encoding to b (Version 0 is written as
// HelloVersion).
func (h Hello) Append(b []byte) []byte {
	v := h.Version
	if v == 0 {
		v = HelloVersion
	}
	b = binary.BigEndian.AppendUint32(b, HelloMagic)
	b = binary.BigEndian.AppendUint32(b, uint32(v))
	b = binary.BigEndian.AppendUint64(b, h.Caps)
	return binary.BigEndian.AppendUint64(b, uint64(h.Nonce))
}

// DecodeHello reads a hello from b, the bytes after a handshake packet's
// ZooKeeper fields. ok is false for anything that is not a well-formed
// hello (empty, short, another magic, version below 1): that is a ZooKeeper
// peer, or one whose bytes we cannot read, never an error (a future
// ZooKeeper may append fields of its own). Bytes after the version-1
// fields are left for later versions and ignored.
func DecodeHello(b []byte) (h Hello, ok bool) {
	if len(b) < HelloLen || binary.BigEndian.Uint32(b) != HelloMagic {
		return Hello{}, false
	}
	h.Version = int32(binary.BigEndian.Uint32(b[4:]))
	if h.Version < 1 {
		return Hello{}, false
	}
	h.Caps = binary.BigEndian.Uint64(b[8:])
	h.Nonce = int64(binary.BigEndian.Uint64(b[16:]))
	return h, true
}

// PacketHello returns the hello a FOLLOWERINFO, OBSERVERINFO or LEADERINFO
// carries after ZooKeeper's fields; ok is false when it carries none (or
// for any other packet type).
func PacketHello(p *Packet) (h Hello, ok bool) {
	switch p.Type {
	case FollowerInfo, ObserverInfo:
		if len(p.Data) > learnerInfoLen {
			return DecodeHello(p.Data[learnerInfoLen:])
		}
	case LeaderInfo:
		if len(p.Data) > leaderInfoLen {
			return DecodeHello(p.Data[leaderInfoLen:])
		}
	}
	return Hello{}, false
}

// NewLearnerInfoHello is NewLearnerInfo with h after LearnerInfo's 20
// bytes.
func NewLearnerInfoHello(observer bool, acceptedEpoch int64, li LearnerInfo, h Hello) Packet {
	p := NewLearnerInfo(observer, acceptedEpoch, li)
	p.Data = h.Append(p.Data)
	return p
}

// NewLeaderInfoHello is NewLeaderInfo with h after the protocol version.
func NewLeaderInfoHello(newEpoch int64, h Hello) Packet {
	p := NewLeaderInfo(newEpoch)
	p.Data = h.Append(p.Data)
	return p
}

// Packet types of zabkeeper's own, far from ZooKeeper's 1-19 so that no
// future ZooKeeper type collides: "zk" in the high half. ZooKeeper never
// receives them (a learner sends neither; a leader sends them only on a
// link whose hellos carry the capability), and Known reports false for
// them.
const (
	// TimeoutNow (leader → follower, capability transfer): start an
	// election at once, the leader is handing over. zxid = the leader's
	// last zxid; data = int64 successor sid, int64 successor's peer epoch.
	TimeoutNow PacketType = 0x7a6b0001
	// SnapChunk (leader → learner, capability stream-snap): one piece of a
	// SNAP body streamed after the SNAP packet, with other packets between
	// pieces. zxid = the SNAP's; data = the piece, in netstub's snapshot
	// stream format (a chunk or the end).
	SnapChunk PacketType = 0x7a6b0002
)

// Zabkeeper reports whether t is one of zabkeeper's own packet types.
func (t PacketType) Zabkeeper() bool { return t == TimeoutNow || t == SnapChunk }

func (t PacketType) zabkeeperName() string {
	switch t {
	case TimeoutNow:
		return "TIMEOUTNOW"
	case SnapChunk:
		return "SNAPCHUNK"
	}
	return ""
}

// NewTimeoutNow returns TIMEOUTNOW: the departing leader's last zxid and
// the successor it votes for, with that server's peer epoch.
func NewTimeoutNow(lastZxid, successor, peerEpoch int64) Packet {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 16), uint64(successor))
	return Packet{Type: TimeoutNow, Zxid: lastZxid, Data: binary.BigEndian.AppendUint64(b, uint64(peerEpoch))}
}

// DecodeTimeoutNow returns TIMEOUTNOW's fields. Only zabkeeper sends it,
// so its data is exactly 16 bytes.
func DecodeTimeoutNow(p *Packet) (lastZxid, successor, peerEpoch int64, err error) {
	if err := wantType(p, TimeoutNow); err != nil {
		return 0, 0, 0, err
	}
	if len(p.Data) != 16 {
		return 0, 0, 0, fmt.Errorf("%w: TIMEOUTNOW data of %d bytes (needs 16)", ErrMalformed, len(p.Data))
	}
	return p.Zxid, int64(binary.BigEndian.Uint64(p.Data)), int64(binary.BigEndian.Uint64(p.Data[8:])), nil
}
