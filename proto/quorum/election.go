package quorum

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
)

// Election port (QuorumCnxManager). The initiator of a connection sends one
// InitialMessage with no outer length; afterwards both sides exchange frames
// of an int32 length and a payload (only FLE notifications use them).

// Protocol versions of the initial message (QuorumCnxManager
// PROTOCOL_VERSION_V1/V2). Every 3.5+ server sends V1 unless
// multiAddress.enabled is true (3.6+), then V2; 3.5 knows only V1 and
// refuses any other negative value, which is why V1 stays the default. A
// first long >= 0 is a pre-3.5 server's bare sid.
const (
	ProtocolV1 int64 = -65536
	ProtocolV2 int64 = -65535
)

// ObserverSid is the sid an observer without an id announces
// (QuorumPeer.OBSERVER_ID = Long.MAX_VALUE); the receiver gives it a
// negative id of its own.
const ObserverSid int64 = 1<<63 - 1

// MaxAddrLen bounds the election address string of the initial message
// (QuorumCnxManager.maxBuffer): 1..2048 bytes.
const MaxAddrLen = 2048

// MaxFrame bounds an election frame (QuorumCnxManager.PACKETMAXSIZE): a
// length outside 1..512 KiB makes ZooKeeper drop the connection.
const MaxFrame = 512 << 10

// InitialMessage is what the initiator of an election connection sends.
type InitialMessage struct {
	// Protocol is ProtocolV1, ProtocolV2, or 0 for a pre-3.5 peer that sent
	// only its sid (decode only; Encode refuses it).
	Protocol int64
	// Sid is the initiator's server id.
	Sid int64
	// Addrs are the initiator's election addresses as host:port ([h]:p for
	// IPv6). V1 carries one; V2 joins several with '|'.
	Addrs []string
}

// Encode returns the message's bytes; send them in one write (ZooKeeper
// reads the address with a single read call).
func (m *InitialMessage) Encode() ([]byte, error) {
	if m.Protocol != ProtocolV1 && m.Protocol != ProtocolV2 {
		return nil, fmt.Errorf("%w: initial message protocol %d", ErrVersion, m.Protocol)
	}
	if len(m.Addrs) == 0 {
		return nil, fmt.Errorf("%w: initial message without an election address", ErrMalformed)
	}
	if m.Protocol == ProtocolV1 && len(m.Addrs) > 1 {
		return nil, fmt.Errorf("%w: protocol V1 carries one election address, got %d", ErrMalformed, len(m.Addrs))
	}
	for _, a := range m.Addrs {
		if err := checkAddr(a); err != nil {
			return nil, err
		}
	}
	addr := strings.Join(m.Addrs, "|")
	if len(addr) > MaxAddrLen {
		return nil, fmt.Errorf("%w: election address of %d bytes exceeds limit %d", ErrTooLarge, len(addr), MaxAddrLen)
	}
	b := make([]byte, 0, 20+len(addr))
	b = binary.BigEndian.AppendUint64(b, uint64(m.Protocol))
	b = binary.BigEndian.AppendUint64(b, uint64(m.Sid))
	b = binary.BigEndian.AppendUint32(b, uint32(len(addr)))
	return append(b, addr...), nil
}

// ReadInitialMessage reads the initial message of an accepted election
// connection, with InitialMessage.parse's checks: a known protocol version,
// an address length of 1..MaxAddrLen, every address host:port with a
// numeric port.
func ReadInitialMessage(r io.Reader) (InitialMessage, error) {
	s := &reader{r: r}
	v := s.int64()
	if s.err != nil {
		return InitialMessage{}, fmt.Errorf("quorum: read initial message: %w", s.err)
	}
	if v >= 0 {
		return InitialMessage{Protocol: 0, Sid: v}, nil
	}
	if v != ProtocolV1 && v != ProtocolV2 {
		return InitialMessage{}, fmt.Errorf("%w: initial message protocol %d", ErrVersion, v)
	}
	m := InitialMessage{Protocol: v, Sid: s.int64()}
	n := s.int32()
	if s.err != nil {
		return InitialMessage{}, fmt.Errorf("quorum: read initial message: %w", s.err)
	}
	if n <= 0 {
		return InitialMessage{}, fmt.Errorf("%w: initial message address length %d", ErrMalformed, n)
	}
	if n > MaxAddrLen {
		return InitialMessage{}, fmt.Errorf("%w: initial message address length %d exceeds limit %d", ErrTooLarge, n, MaxAddrLen)
	}
	addr := s.bytes(int(n))
	if s.err != nil {
		return InitialMessage{}, fmt.Errorf("quorum: read initial message address: %w", s.err)
	}
	for _, a := range strings.Split(string(addr), "|") {
		if err := checkAddr(a); err != nil {
			return InitialMessage{}, err
		}
		m.Addrs = append(m.Addrs, a)
	}
	return m, nil
}

// checkAddr accepts host:port and [ipv6]:port with a port in 0..65535.
func checkAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" {
		return fmt.Errorf("%w: badly formed election address %q", ErrMalformed, a)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%w: bad port number in election address %q", ErrMalformed, a)
	}
	return nil
}

// Survives reports whether an election connection from initiator to
// receiver is kept: only one initiated by the larger sid survives. A smaller
// initiator sends its initial message and closes; the receiver closes it and
// connects back. Equal sids are a misconfiguration (ZOOKEEPER-2164).
func Survives(initiatorSid, receiverSid int64) bool { return initiatorSid > receiverSid }

// WriteFrame writes an election frame: int32 length, then payload.
func WriteFrame(w io.Writer, payload []byte) error {
	if len(payload) == 0 || len(payload) > MaxFrame {
		return fmt.Errorf("%w: election frame of %d bytes outside 1..%d", ErrTooLarge, len(payload), MaxFrame)
	}
	b := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(payload)), uint32(len(payload)))
	_, err := w.Write(append(b, payload...))
	return err
}

// ReadFrame reads one election frame; a length outside 1..MaxFrame is an
// error (ZooKeeper: "Received packet with invalid packet").
func ReadFrame(r io.Reader) ([]byte, error) {
	s := &reader{r: r}
	n := s.int32()
	if s.err != nil {
		return nil, s.err
	}
	if n <= 0 {
		return nil, fmt.Errorf("%w: election frame length %d", ErrMalformed, n)
	}
	if n > MaxFrame {
		return nil, fmt.Errorf("%w: election frame length %d exceeds limit %d", ErrTooLarge, n, MaxFrame)
	}
	b := s.bytes(int(n))
	if s.err != nil {
		return nil, fmt.Errorf("quorum: read election frame: %w", s.err)
	}
	return b, nil
}

// ServerState is a peer's state in a notification (QuorumPeer.ServerState
// ordinal).
type ServerState int32

// Server states.
const (
	Looking   ServerState = 0
	Following ServerState = 1
	Leading   ServerState = 2
	Observing ServerState = 3
)

func (s ServerState) String() string {
	switch s {
	case Looking:
		return "LOOKING"
	case Following:
		return "FOLLOWING"
	case Leading:
		return "LEADING"
	case Observing:
		return "OBSERVING"
	}
	return "STATE(" + strconv.Itoa(int(s)) + ")"
}

// NotificationVersion is the notification format every 3.5+ server sends
// (FastLeaderElection.Notification.CURRENTVERSION): 44 bytes plus config.
const NotificationVersion int32 = 2

// Notification is a fast leader election message (FastLeaderElection
// buildMsg and the receiver's parsing).
type Notification struct {
	State ServerState
	// Leader is the proposed leader's sid.
	Leader int64
	// Zxid is the proposed leader's last logged zxid.
	Zxid int64
	// ElectionEpoch is the sender's round (logical clock).
	ElectionEpoch int64
	// PeerEpoch is the proposed leader's current epoch. In the 28-byte
	// format it is not sent and decodes as Zxid's epoch.
	PeerEpoch int64
	// Version is the format: 2 (3.5+, with Config), 1 (no config), 0 (the
	// 28- and 40-byte forms, which carry no version).
	Version int32
	// Config is the sender's QuorumVerifier string (server.N=... lines and
	// version=<hex>); only in version 2 and later.
	Config []byte
	// Short28 marks the 28-byte form (no peer epoch, no version).
	Short28 bool
}

// Encode returns the notification's payload (frame it with WriteFrame).
// Version 2 is what every 3.5-3.9 server sends: 44 bytes plus Config.
// Version 0 writes the older forms a 3.5+ receiver still reads: 40 bytes (a
// peer epoch, no version) or, with Short28, 28 bytes. Other versions are
// refused: no 3.5+ server sends them.
func (n *Notification) Encode() ([]byte, error) {
	if n.Version != 0 && n.Version != NotificationVersion {
		return nil, fmt.Errorf("%w: notification version %d (encode 0 or 2)", ErrVersion, n.Version)
	}
	if n.Version == 0 && len(n.Config) > 0 {
		return nil, fmt.Errorf("%w: a version 0 notification carries no config", ErrMalformed)
	}
	if n.Short28 && n.Version != 0 {
		return nil, fmt.Errorf("%w: the 28-byte notification has no version", ErrMalformed)
	}
	if 44+len(n.Config) > MaxFrame {
		return nil, fmt.Errorf("%w: notification config of %d bytes exceeds the frame limit %d", ErrTooLarge, len(n.Config), MaxFrame)
	}
	b := make([]byte, 0, 44+len(n.Config))
	b = binary.BigEndian.AppendUint32(b, uint32(n.State))
	b = binary.BigEndian.AppendUint64(b, uint64(n.Leader))
	b = binary.BigEndian.AppendUint64(b, uint64(n.Zxid))
	b = binary.BigEndian.AppendUint64(b, uint64(n.ElectionEpoch))
	if n.Short28 {
		return b, nil
	}
	b = binary.BigEndian.AppendUint64(b, uint64(n.PeerEpoch))
	if n.Version == 0 {
		// 40 bytes; the receiver reads no version from a 40-byte message
		// (3.4's senders wrote 1 here, ignored the same way).
		return binary.BigEndian.AppendUint32(b, 0), nil
	}
	b = binary.BigEndian.AppendUint32(b, uint32(n.Version))
	b = binary.BigEndian.AppendUint32(b, uint32(len(n.Config)))
	return append(b, n.Config...), nil
}

// DecodeNotification parses a notification payload as FastLeaderElection's
// receiver does: < 28 bytes is short; exactly 28 has no peer epoch (derived
// from the zxid); exactly 40 has a peer epoch and no version; otherwise a
// version follows, and a version > 1 is followed by the config length
// (0..payload size) and the config. Bytes after the record are ignored, as
// ZooKeeper does.
func DecodeNotification(b []byte) (Notification, error) {
	if len(b) > MaxFrame {
		return Notification{}, fmt.Errorf("%w: notification of %d bytes exceeds limit %d", ErrTooLarge, len(b), MaxFrame)
	}
	if len(b) < 28 {
		return Notification{}, fmt.Errorf("%w: short notification of %d bytes", ErrMalformed, len(b))
	}
	n := Notification{
		State:         ServerState(binary.BigEndian.Uint32(b[0:])),
		Leader:        int64(binary.BigEndian.Uint64(b[4:])),
		Zxid:          int64(binary.BigEndian.Uint64(b[12:])),
		ElectionEpoch: int64(binary.BigEndian.Uint64(b[20:])),
	}
	if len(b) == 28 {
		n.Short28 = true
		n.PeerEpoch = int64(uint64(n.Zxid) >> 32)
		return n, nil
	}
	if len(b) < 36 {
		return Notification{}, fmt.Errorf("%w: notification of %d bytes ends inside the peer epoch", ErrMalformed, len(b))
	}
	n.PeerEpoch = int64(binary.BigEndian.Uint64(b[28:]))
	if len(b) == 40 {
		return n, nil
	}
	if len(b) < 40 {
		return Notification{}, fmt.Errorf("%w: notification of %d bytes ends inside the version", ErrMalformed, len(b))
	}
	n.Version = int32(binary.BigEndian.Uint32(b[36:]))
	if n.Version <= 1 {
		return n, nil
	}
	if len(b) < 44 {
		return Notification{}, fmt.Errorf("%w: version %d notification of %d bytes ends inside the config length", ErrMalformed, n.Version, len(b))
	}
	cl := int32(binary.BigEndian.Uint32(b[40:]))
	if cl < 0 || int(cl) > len(b)-44 {
		return Notification{}, fmt.Errorf("%w: notification config length %d with %d bytes left", ErrMalformed, cl, len(b)-44)
	}
	n.Config = bytes.Clone(b[44 : 44+int(cl)])
	return n, nil
}
