package quorum

import (
	"encoding/binary"
	"fmt"
	"io"
	"strconv"

	"github.com/zabkeeper/zabkeeper/proto"
)

// Leader/learner protocol on the quorum port (Leader.java constants,
// QuorumPacket in zookeeper.jute). Packets are jute records streamed back
// to back with no length prefix; a SNAP is followed on the same stream by
// the snapshot body (snapshot.go).

// PacketType is a QuorumPacket's type.
type PacketType int32

// Packet types (Leader.java).
const (
	Request           PacketType = 1  // learner → leader: forwarded client request
	Proposal          PacketType = 2  // leader → follower: txn to log
	Ack               PacketType = 3  // learner → leader: zxid logged
	Commit            PacketType = 4  // leader → follower: zxid committed
	Ping              PacketType = 5  // both: heartbeat; reply carries session touches
	Revalidate        PacketType = 6  // both: session revalidation request / reply
	Sync              PacketType = 7  // leader → learner: a forwarded sync is done
	Inform            PacketType = 8  // leader → observer: committed txn
	CommitAndActivate PacketType = 9  // leader → follower: commit a reconfig
	NewLeader         PacketType = 10 // leader → learner: end of sync
	FollowerInfo      PacketType = 11 // follower → leader: first packet
	UpToDate          PacketType = 12 // leader → learner: start serving
	Diff              PacketType = 13 // leader → learner: sync by txns
	Trunc             PacketType = 14 // leader → learner: truncate the log
	Snap              PacketType = 15 // leader → learner: snapshot follows
	ObserverInfo      PacketType = 16 // observer → leader: first packet
	LeaderInfo        PacketType = 17 // leader → learner: new epoch
	AckEpoch          PacketType = 18 // learner → leader: epoch accepted
	InformAndActivate PacketType = 19 // leader → observer: committed reconfig
)

var packetNames = [...]string{
	Request: "REQUEST", Proposal: "PROPOSAL", Ack: "ACK", Commit: "COMMIT", Ping: "PING",
	Revalidate: "REVALIDATE", Sync: "SYNC", Inform: "INFORM", CommitAndActivate: "COMMITANDACTIVATE",
	NewLeader: "NEWLEADER", FollowerInfo: "FOLLOWERINFO", UpToDate: "UPTODATE", Diff: "DIFF",
	Trunc: "TRUNC", Snap: "SNAP", ObserverInfo: "OBSERVERINFO", LeaderInfo: "LEADERINFO",
	AckEpoch: "ACKEPOCH", InformAndActivate: "INFORMANDACTIVATE",
}

// Known reports whether t is one of the types above.
func (t PacketType) Known() bool { return t >= Request && t <= InformAndActivate }

func (t PacketType) String() string {
	if t.Known() {
		return packetNames[t]
	}
	if n := t.zabkeeperName(); n != "" {
		return n
	}
	return "UNKNOWN(" + strconv.Itoa(int(t)) + ")"
}

// LearnerProtocol is the protocol version learners and leaders of 3.4+
// exchange in LearnerInfo and LEADERINFO (0x10000).
const LearnerProtocol int32 = 0x10000

// Limits bound what ReadPacket accepts. Zero fields take the defaults.
type Limits struct {
	// MaxData bounds the data buffer. Default DefaultMaxData, ZooKeeper's
	// own read limit (jute.maxbuffer + zookeeper.jute.maxbuffer.extrasize).
	MaxData int
	// MaxAuth bounds the number of authinfo Ids. Default 64.
	MaxAuth int
	// MaxAuthString bounds each authinfo scheme and id. Default 4096.
	MaxAuthString int
}

// DefaultMaxData is ZooKeeper's default limit on a jute buffer read from
// a peer: 0xfffff + 0xfffff bytes (BinaryInputArchive "Unreasonable
// length").
const DefaultMaxData = 0xfffff + 0xfffff

func (l Limits) withDefaults() Limits {
	if l.MaxData <= 0 {
		l.MaxData = DefaultMaxData
	}
	if l.MaxAuth <= 0 {
		l.MaxAuth = 64
	}
	if l.MaxAuthString <= 0 {
		l.MaxAuthString = 4096
	}
	return l
}

// Packet is a QuorumPacket {int type; long zxid; buffer data; vector<Id>
// authinfo}. Nil Data and nil Auth are written as null (-1), as ZooKeeper
// writes them; an empty non-nil slice as length 0.
type Packet struct {
	Type PacketType
	Zxid int64
	Data []byte
	Auth []proto.Id
	// Raw, when not nil, is the packet's whole encoding and the packet is
	// in raw form (ParseRaw, DecodeWholeRaw): Append writes Raw as it is,
	// Data aliases it and Auth is nil, the authinfo staying encoded in Raw
	// (AuthInfo decodes it, RawAuth returns its bytes). A packet passed on
	// unchanged, a learner's forwarded REQUEST, so crosses a server
	// without its authinfo decoded and the packet re-encoded. Only those
	// functions and Own set it; change no field of a raw packet.
	Raw []byte
}

func (p Packet) String() string {
	auth := len(p.Auth)
	if a := p.RawAuth(); len(a) >= 4 {
		auth = max(0, int(int32(binary.BigEndian.Uint32(a))))
	}
	return fmt.Sprintf("%s zxid=0x%x data=%d auth=%d", p.Type, p.Zxid, len(p.Data), auth)
}

// Append appends the packet's encoding to b.
func (p Packet) Append(b []byte) []byte {
	if p.Raw != nil {
		return append(b, p.Raw...)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(p.Type))
	b = binary.BigEndian.AppendUint64(b, uint64(p.Zxid))
	b = appendBuffer(b, p.Data)
	return appendAuth(b, p.Auth)
}

// Len is the length of the packet's encoding, to size a buffer for
// several packets.
func (p Packet) Len() int {
	if p.Raw != nil {
		return len(p.Raw)
	}
	n := 20 + len(p.Data)
	for _, id := range p.Auth {
		n += 8 + len(id.Scheme) + len(id.ID)
	}
	return n
}

// Encode returns the packet's encoding.
func (p Packet) Encode() []byte { return p.Append(make([]byte, 0, p.Len())) }

// WritePacket writes p to w, refusing a packet the peer would refuse for
// its size (data over DefaultMaxData).
func WritePacket(w io.Writer, p *Packet) error {
	if len(p.Data) > DefaultMaxData {
		return fmt.Errorf("%w: %s data of %d bytes exceeds limit %d", ErrTooLarge, p.Type, len(p.Data), DefaultMaxData)
	}
	_, err := w.Write(p.Encode())
	return err
}

// ReadPacket reads one QuorumPacket from r with the limits lim. io.EOF
// means the stream ended cleanly between packets; anything else that
// stops it is an error naming the field and the reason. The type is not
// checked here (a newer peer may send types we skip); use Packet.Type.Known.
func ReadPacket(r io.Reader, lim Limits) (Packet, error) {
	lim = lim.withDefaults()
	s := &reader{r: r}
	p := Packet{Type: PacketType(s.int32())}
	p.Zxid = s.int64()
	p.Data = s.buffer("data", lim.MaxData)
	if n := s.count("authinfo", lim.MaxAuth); n >= 0 && s.err == nil {
		p.Auth = make([]proto.Id, 0, n)
		for i := 0; i < n && s.err == nil; i++ {
			id := proto.Id{Scheme: s.str("authinfo scheme", lim.MaxAuthString)}
			id.ID = s.str("authinfo id", lim.MaxAuthString)
			p.Auth = append(p.Auth, id)
		}
	}
	if s.err != nil {
		if s.err == io.EOF {
			return Packet{}, io.EOF
		}
		if s.n < 4 {
			return Packet{}, fmt.Errorf("quorum: read packet: %w", s.err)
		}
		return Packet{}, fmt.Errorf("quorum: read %s packet: %w", p.Type, s.err)
	}
	return p, nil
}

// DecodePacket decodes one packet from the start of b and returns it with
// the number of bytes it took.
func DecodePacket(b []byte, lim Limits) (Packet, int, error) {
	if p, n, ok := decodePacketFast(b, lim.withDefaults()); ok {
		return p, n, nil
	}
	cr := &countReader{b: b}
	p, err := ReadPacket(cr, lim)
	if err == io.EOF {
		err = fmt.Errorf("%w: empty packet", ErrMalformed)
	}
	return p, cr.off, err
}

// DecodeWhole decodes the packet at the start of b if b holds all of it and
// it is well formed, returning it and the bytes it took, as ReadPacket
// would read it (Data and strings copied out of b). Otherwise ok is false
// and the caller reads the packet with ReadPacket, which waits for the
// rest or names the error: a reader with the bytes already buffered
// (bufio.Reader.Peek) decodes without ReadPacket's per-packet reader.
func DecodeWhole(b []byte, lim Limits) (p Packet, n int, ok bool) {
	return decodePacketFast(b, lim.withDefaults())
}

// DecodeWholeRaw is DecodeWhole keeping the packet in raw form (Packet.Raw):
// a copy of its bytes, with Data aliasing the copy, one allocation however
// many authinfo Ids it carries. For a packet passed on as it is (a
// forwarded REQUEST, whose bytes become the leader engine's payload).
func DecodeWholeRaw(b []byte, lim Limits) (p Packet, n int, ok bool) {
	l, ok := scanPacket(b, lim.withDefaults())
	if !ok {
		return Packet{}, 0, false
	}
	return l.raw(b).Own(), l.end, true
}

// ParseRaw checks the packet at the start of b as DecodePacket decodes it
// (the same limits, the same errors) and returns it in raw form aliasing b
// (Packet.Raw is b[:n]; nothing is copied or allocated) with the bytes it
// took. b must not change while the packet is in use; Own copies it.
func ParseRaw(b []byte, lim Limits) (Packet, int, error) {
	if l, ok := scanPacket(b, lim.withDefaults()); ok {
		return l.raw(b), l.end, nil
	}
	// The stream reader names the error (or, should it accept what the
	// scan did not, decodes the packet: correct, only copied).
	return DecodePacket(b, lim)
}

// Own returns a raw packet with its own copy of Raw (Data re-aliased into
// it); any other packet as it is.
func (p Packet) Own() Packet {
	if p.Raw == nil {
		return p
	}
	raw := make([]byte, len(p.Raw))
	copy(raw, p.Raw)
	if p.Data != nil {
		p.Data = raw[16 : 16+len(p.Data) : 16+len(p.Data)]
	}
	p.Raw = raw
	return p
}

// RawAuth returns the encoded authinfo vector of a raw packet (its count,
// then each Id's scheme and id), nil for a packet not in raw form: two
// packets with equal RawAuth carry the same Ids.
func (p *Packet) RawAuth() []byte {
	if p.Raw == nil {
		return nil
	}
	return p.Raw[16+len(p.Data):]
}

// AuthInfo returns the packet's authinfo Ids: Auth, or those its raw form
// encodes (decoded here, allocating as ReadPacket would: nil for a null
// vector, "" for a null string).
func (p *Packet) AuthInfo() []proto.Id {
	a := p.RawAuth()
	if a == nil {
		return p.Auth
	}
	// ParseRaw and DecodeWholeRaw checked every length against the limits.
	k := int32(binary.BigEndian.Uint32(a))
	if k < 0 {
		return nil
	}
	ids := make([]proto.Id, 0, k)
	off := 4
	for range k {
		var f [2]string
		for j := range f {
			n := int32(binary.BigEndian.Uint32(a[off:]))
			off += 4
			if n > 0 {
				f[j] = string(a[off : off+int(n)])
				off += int(n)
			}
		}
		ids = append(ids, proto.Id{Scheme: f[0], ID: f[1]})
	}
	return ids
}

// layout is where a well-formed packet's fields are in its encoding.
type layout struct {
	typ  PacketType
	zxid int64
	data int // data length, -1: null (the bytes start at 16)
	auth int // authinfo count, -1: null (the vector starts at 16 + max(data, 0))
	end  int // bytes the packet takes
}

// raw returns the packet of l in raw form aliasing b.
func (l layout) raw(b []byte) Packet {
	p := Packet{Type: l.typ, Zxid: l.zxid, Raw: b[:l.end:l.end]}
	if l.data >= 0 {
		p.Data = b[16 : 16+l.data : 16+l.data]
	}
	return p
}

// scanPacket checks that b starts with a well-formed packet within lim,
// without allocating: anything short, negative or over a limit reports
// !ok, and DecodePacket's stream path gives the error.
func scanPacket(b []byte, lim Limits) (layout, bool) {
	off := 0
	// length reads a jute length at off: -1 or 0..limit with that many
	// bytes after it.
	length := func(limit int) (int, bool) {
		if len(b)-off < 4 {
			return 0, false
		}
		n := int32(binary.BigEndian.Uint32(b[off:]))
		off += 4
		if n == -1 {
			return -1, true
		}
		if n < 0 || int64(n) > int64(limit) || int64(len(b)-off) < int64(n) {
			return 0, false
		}
		off += int(n)
		return int(n), true
	}
	if len(b) < 12 {
		return layout{}, false
	}
	l := layout{typ: PacketType(int32(binary.BigEndian.Uint32(b))), zxid: int64(binary.BigEndian.Uint64(b[4:]))}
	off = 12
	var ok bool
	if l.data, ok = length(lim.MaxData); !ok {
		return layout{}, false
	}
	// An authinfo count says nothing of the bytes after it: checked
	// against the limit only, as ReadPacket does.
	if len(b)-off < 4 {
		return layout{}, false
	}
	k := int32(binary.BigEndian.Uint32(b[off:]))
	off += 4
	if k < -1 || int64(k) > int64(lim.MaxAuth) {
		return layout{}, false
	}
	l.auth = int(k)
	for range 2 * max(k, 0) {
		if _, ok := length(lim.MaxAuthString); !ok {
			return layout{}, false
		}
	}
	l.end = off
	return l, true
}

// decodePacketFast decodes a well-formed packet straight from b, as
// ReadPacket would (Data and the strings copied out of b, null as nil and
// ""), without ReadPacket's stream machinery, which allocated a reader per
// packet. Anything short, negative or over a limit reports !ok, and
// DecodePacket's stream path gives the error.
func decodePacketFast(b []byte, lim Limits) (Packet, int, bool) {
	l, ok := scanPacket(b, lim)
	if !ok {
		return Packet{}, 0, false
	}
	r := l.raw(b)
	p := Packet{Type: l.typ, Zxid: l.zxid}
	if r.Data != nil {
		p.Data = make([]byte, len(r.Data))
		copy(p.Data, r.Data)
	}
	if l.auth >= 0 {
		p.Auth = r.AuthInfo()
	}
	return p, l.end, true
}

type countReader struct {
	b   []byte
	off int
}

func (c *countReader) Read(p []byte) (int, error) {
	if c.off >= len(c.b) {
		return 0, io.EOF
	}
	n := copy(p, c.b[c.off:])
	c.off += n
	return n, nil
}

func appendBuffer(b, data []byte) []byte {
	if data == nil {
		return binary.BigEndian.AppendUint32(b, ^uint32(0))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

// appendAuth appends a packet's authinfo vector: null (-1) for nil.
func appendAuth(b []byte, auth []proto.Id) []byte {
	if auth == nil {
		return binary.BigEndian.AppendUint32(b, ^uint32(0))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(auth)))
	for _, id := range auth {
		b = appendString(b, id.Scheme)
		b = appendString(b, id.ID)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}
