package zklink

import (
	"errors"
	"fmt"
	"strings"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// Per-link capabilities (docs/ZAB.md, "Per-link capabilities, no ensemble
// mode"). Each end announces its own capabilities and its transport's nonce
// in a hello after ZooKeeper's fields of its first packet (FOLLOWERINFO or
// OBSERVERINFO from the learner, LEADERINFO from the leader); a link has
// the capabilities both announced. A Link that announces none sends no
// hello and behaves exactly as a ZooKeeper server; a peer whose first
// packet carries no well-formed hello is a ZooKeeper server. The
// intersection is stamped as Message.Caps on the MsgFollowerInfo or
// MsgLeaderInfo the handshake packet decodes to.
//
// What the capabilities gate here: TIMEOUTNOW (zab.CapTransfer) and a
// REQUEST of op -12, moveSession (zab.CapMoveRequest), are encoded only on
// a link that has them; the engine must never send them elsewhere, and
// Encode drops such a message with an error wrapping ErrNotNegotiated for
// the caller to log as a bug. zab.CapStreamSnap is the transport's: it
// frames the SNAP body in chunks (netstub/zktcp).

// ErrNotNegotiated wraps the error of Encode for a message the link's
// capabilities do not allow (an engine bug): the message is dropped, the
// link stays up.
var ErrNotNegotiated = errors.New("zklink: capability not negotiated on this link")

// opMoveSession is the op of a learner's REQUEST that moves a session to
// it (engine/tree.OpMoveSession); ZooKeeper's leader does not know it.
const opMoveSession proto.OpCode = -12

// Announce sets what this end announces in its hello: its capabilities
// and its transport's nonce. Call it before the link's first packet; zero
// caps (the default) send no hello, as a ZooKeeper server.
func (l *Link) Announce(caps zab.Caps, nonce int64) {
	l.own, l.nonce = caps, nonce
}

// Caps returns the link's capabilities: those both hellos carry, zero
// until the peer's handshake packet was decoded (and for a ZooKeeper
// peer).
func (l *Link) Caps() zab.Caps { return l.caps }

// PeerHello returns the hello the peer's handshake packet carried; ok is
// false before it arrived and for a ZooKeeper peer.
func (l *Link) PeerHello() (h quorum.Hello, ok bool) { return l.peerHello, l.hasHello }

// PeerKind names the peer for a log line, once its handshake packet was
// decoded: "zabkeeper" or "ZooKeeper".
func (l *Link) PeerKind() string {
	if l.hasHello {
		return "zabkeeper"
	}
	return "ZooKeeper"
}

// hello returns this end's hello, and whether it sends one.
func (l *Link) hello() (quorum.Hello, bool) {
	return quorum.Hello{Version: quorum.HelloVersion, Caps: uint64(l.own), Nonce: l.nonce}, l.own != 0
}

// negotiate records the peer's hello from its handshake packet p and
// returns the link's capabilities.
func (l *Link) negotiate(p *quorum.Packet) zab.Caps {
	l.peerHello, l.hasHello = quorum.PacketHello(p)
	if l.hasHello {
		l.caps = l.own & zab.Caps(l.peerHello.Caps)
	}
	return l.caps
}

// encodeTimeoutNow is the leader's TIMEOUTNOW, on a link with
// CapTransfer only.
func (l *Link) encodeTimeoutNow(dst []quorum.Packet, m zab.Message) ([]quorum.Packet, error) {
	if l.caps&zab.CapTransfer == 0 {
		return nil, fmt.Errorf("%w: TIMEOUTNOW to %s %d (link caps %s)", ErrNotNegotiated, l.PeerKind(), l.peer, CapsString(l.caps))
	}
	return append(dst, quorum.NewTimeoutNow(m.Zxid, m.Vote.Leader, m.Vote.PeerEpoch)), nil
}

// decodeTimeoutNow is a follower's TIMEOUTNOW, refused on a link without
// CapTransfer (the leader would not have sent it).
func (l *Link) decodeTimeoutNow(dst []zab.Message, p quorum.Packet) ([]zab.Message, error) {
	if l.caps&zab.CapTransfer == 0 {
		return nil, fmt.Errorf("%w: TIMEOUTNOW on a link without the transfer capability", quorum.ErrMalformed)
	}
	z, successor, peerEpoch, err := quorum.DecodeTimeoutNow(&p)
	if err != nil {
		return nil, err
	}
	m := l.msg(zab.MsgTimeoutNow, z)
	m.Vote = zab.Vote{Leader: successor, Zxid: z, PeerEpoch: peerEpoch}
	return append(dst, m), nil
}

// checkMoveRequest refuses a REQUEST of op -12 on a link to a leader
// without CapMoveRequest: a ZooKeeper leader makes no txn of it and never
// answers (PrepRequestProcessor, "unknown type").
func (l *Link) checkMoveRequest(p *quorum.Packet) error {
	if p.Type != quorum.Request || l.caps&zab.CapMoveRequest != 0 {
		return nil
	}
	f, err := quorum.DecodeRequestHead(p)
	if err != nil || f.Op != opMoveSession {
		return nil // appPacket judges the body
	}
	return fmt.Errorf("%w: moveSession REQUEST to %s leader %d (link caps %s)", ErrNotNegotiated, l.PeerKind(), l.peer, CapsString(l.caps))
}

// CapsString names the capabilities in c, for log lines: "none" or the
// names joined by '|', unknown bits in hex.
func CapsString(c zab.Caps) string {
	if c == 0 {
		return "none"
	}
	var names []string
	for _, n := range []struct {
		c    zab.Caps
		name string
	}{{zab.CapTransfer, "transfer"}, {zab.CapStreamSnap, "stream-snap"}, {zab.CapMoveRequest, "move-request"}} {
		if c&n.c != 0 {
			names = append(names, n.name)
			c &^= n.c
		}
	}
	if c != 0 {
		names = append(names, fmt.Sprintf("%#x", uint64(c)))
	}
	return strings.Join(names, "|")
}

// Describe says what the peer is and what the link carries, for the one
// log line per link a transport writes once the handshake packet was
// decoded.
func (l *Link) Describe() string {
	if !l.hasHello {
		return "Apache ZooKeeper (no hello): ZooKeeper's protocol only"
	}
	return fmt.Sprintf("zabkeeper (announces %s; link caps %s)", CapsString(zab.Caps(l.peerHello.Caps)), CapsString(l.caps))
}
