// Package zklink translates between engine/zab's Messages and Apache
// ZooKeeper's server-to-server packets (proto/quorum), so that zabkeeper
// speaks ZooKeeper's election and leader/learner protocol on the wire.
//
// It is pure: no I/O, goroutines or clocks, so the real transport
// (netstub/zktcp) and the simulator can route every hop through it.
//
// API:
//   - Election port: EncodeNotification and DecodeNotification map
//     zab.MsgNotification to a notification payload (frame it with
//     quorum.WriteFrame) carrying the ensemble's config string
//     (ConfigString). They are stateless.
//   - Quorum port: a Link is one leader/learner connection seen from one
//     end. NewLearnerLink is this server following or observing a leader,
//     NewLeaderLink this server leading one learner. Link.Encode turns a
//     Message the engine sends to the peer into the packets to write, in
//     order; Link.Decode turns a packet read from the peer into the
//     Messages to step, in order. A Link is not safe for concurrent use:
//     the caller serializes Encode and Decode (they share state).
//   - A SNAP's body is not a packet: after writing the SNAP packet Encode
//     returned, the caller writes Message.Snapshot (its bytes are
//     ZooKeeper's SNAP body); after reading a SNAP packet, the caller reads
//     the body (quorum.CopySnapshotBody) and sets Snapshot on the MsgSnap
//     Decode returned.
//
// What the per-connection state is for (docs/ZAB.md, "Packet by packet"):
//   - ZooKeeper's packets carry no epoch; the engine fences by
//     Message.Epoch. A link belongs to one leader and one epoch, the one in
//     LEADERINFO: decoded messages are stamped with it, and messages the
//     engine encodes for another epoch are dropped (nil packets, no error).
//   - The engine acknowledges cumulatively; a ZooKeeper leader needs one ACK
//     per proposal, committed or not (it checks their order). The learner
//     side remembers the PROPOSAL zxids it received and not yet acked, and
//     turns MsgAck(z) into one ACK per such zxid <= z, in order; the NEWLEADER ack (z = epoch<<32) is
//     ACK(z), followed by one ACK per proposal received before NEWLEADER.
//   - The engine commits cumulatively; a ZooKeeper follower exits on a
//     COMMIT that is not for its oldest pending proposal. The leader side
//     remembers the PROPOSAL zxids it sent and turns MsgCommit(z) into one
//     COMMIT per such zxid <= z, in order. MsgUpToDate(z) commits the same
//     way first: the engine's establishment commits the leader's whole log,
//     which ZooKeeper's learners only learn by COMMITs.
//   - FOLLOWERINFO/OBSERVERINFO carry acceptedEpoch<<32 and no last zxid:
//     they decode as MsgFollowerInfo{Epoch: acceptedEpoch, Zxid: 0}; the
//     engine takes the learner's last zxid from ACKEPOCH.
//   - MsgApp payloads are encoded quorum packets (REQUEST, PING with
//     touches and REVALIDATE from a learner; REVALIDATE replies and SYNC
//     from the leader) and go on the wire as they are. A PING from a
//     learner decodes to MsgPing and, when it carries touches, to MsgApp.
//   - Capabilities (caps.go): Link.Announce sets what this end announces in
//     a hello ZooKeeper ignores; a link has the capabilities both hellos
//     carry (Link.Caps), stamped as Message.Caps on MsgFollowerInfo and
//     MsgLeaderInfo. TIMEOUTNOW (a zabkeeper-only packet) and a moveSession
//     REQUEST are encoded only on links that have the capability.
//
// Errors: every error means the connection must close, except one
// wrapping ErrNotNegotiated (Encode of a message the link's capabilities
// forbid: dropped, logged by the caller as a bug). Decode errors wrap
// quorum.ErrMalformed or quorum.ErrVersion.
package zklink

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// Side tells which end of a leader/learner connection a Link is.
type Side int

// Sides.
const (
	// LearnerSide: this server follows or observes the peer.
	LearnerSide Side = iota
	// LeaderSide: this server leads the peer.
	LeaderSide
)

func (s Side) String() string {
	if s == LeaderSide {
		return "leader"
	}
	return "learner"
}

// Link is the translation state of one quorum-port connection.
type Link struct {
	side       Side
	self, peer int64
	config     []byte // NEWLEADER's data (leader side) without a book
	book       Book   // members' addresses (reconfig.go)
	// version is this server's active configuration version, when
	// hasVersion (SetConfigVersion): FOLLOWERINFO carries it (learner
	// side), and a learner whose own is newer is refused (leader side).
	version    int64
	hasVersion bool

	// epoch is the link's epoch from LEADERINFO; known tells it arrived
	// (learner side) or was sent (leader side).
	epoch int64
	known bool
	// first is false until the first packet was decoded (its type is
	// checked: LEADERINFO, or FOLLOWERINFO/OBSERVERINFO).
	first bool
	// pending are PROPOSAL zxids: received and not yet acked or committed
	// (learner side), or sent and not yet committed (leader side), in
	// order.
	pending []int64
	// beforeNewLeader is how many of pending (learner side) arrived before
	// NEWLEADER; the NEWLEADER ack covers them.
	beforeNewLeader int
	// observer is set on a learner link that sent OBSERVERINFO: observers
	// acknowledge NEWLEADER only, never proposals (ZooKeeper's
	// ObserverMaster refuses them: "Observers shouldn't send ACKS").
	observer bool
	// synced is set once NEWLEADER arrived (learner side) or its ACK did
	// (leader side): read timeouts go from initLimit to syncLimit.
	synced bool
	// syncTo is the zxid of the DIFF or TRUNC that started the sync
	// (learner side): the leader's committed history reaches it, so
	// UPTODATE commits the learner's log up to it.
	syncTo int64

	// own and nonce are what this end announces (Announce); peerHello
	// (if hasHello) what the peer's handshake packet carried; caps the
	// link's capabilities, own & the peer's (caps.go).
	own       zab.Caps
	nonce     int64
	peerHello quorum.Hello
	hasHello  bool
	caps      zab.Caps
}

// NewLearnerLink returns the state of this server's (self) connection to
// the leader it follows or observes.
func NewLearnerLink(self, leader int64) *Link {
	return &Link{side: LearnerSide, self: self, peer: leader}
}

// NewLeaderLink returns the state of the connection of a learner to this
// server, its leader. config is the ensemble's config string, sent in
// NEWLEADER (ConfigString).
func NewLeaderLink(self, learner int64, config []byte) *Link {
	return &Link{side: LeaderSide, self: self, peer: learner, config: config}
}

// Side returns which end this link is.
func (l *Link) Side() Side { return l.side }

// Peer returns the server at the other end.
func (l *Link) Peer() int64 { return l.peer }

// Epoch returns the link's epoch, and whether LEADERINFO fixed it yet.
func (l *Link) Epoch() (int64, bool) { return l.epoch, l.known }

// Synced reports whether the sync ended on this link: NEWLEADER received
// (learner side) or acknowledged (leader side). ZooKeeper's read timeout
// is initLimit·tickTime before, syncLimit·tickTime after.
func (l *Link) Synced() bool { return l.synced }

// Pending returns the proposal zxids the link remembers (see the package
// comment); for tests and diagnostics.
func (l *Link) Pending() []int64 { return append([]int64(nil), l.pending...) }

// ---- encode: engine → wire ----

// Encode returns the packets that carry m to the peer, in order. Nil
// packets and a nil error mean m is not for this link (another epoch).
func (l *Link) Encode(m zab.Message) ([]quorum.Packet, error) {
	return l.EncodeAppend(nil, m)
}

// EncodeAppend is Encode appending the packets to dst, for a caller that
// reuses one slice for every message (the simulator) instead of allocating
// one per message. dst's elements are left as they were.
func (l *Link) EncodeAppend(dst []quorum.Packet, m zab.Message) ([]quorum.Packet, error) {
	if l.side == LearnerSide {
		return l.encodeLearner(dst, m)
	}
	return l.encodeLeader(dst, m)
}

// stale reports a message of the engine for another epoch than the link's.
func (l *Link) stale(m zab.Message) bool { return !l.known || m.Epoch != l.epoch }

func (l *Link) encodeLearner(dst []quorum.Packet, m zab.Message) ([]quorum.Packet, error) {
	switch m.Type {
	case zab.MsgFollowerInfo:
		if m.Epoch < 0 || m.Epoch > math.MaxUint32 {
			return nil, fmt.Errorf("zklink: accepted epoch %d out of range", m.Epoch)
		}
		l.observer = m.Observer
		// ZooKeeper's Learner sends its active configuration's version
		// (the leader refuses a learner ahead of it).
		li := quorum.LearnerInfo{Sid: l.self, ProtocolVersion: quorum.LearnerProtocol, ConfigVersion: l.version}
		if h, ok := l.hello(); ok {
			return append(dst, quorum.NewLearnerInfoHello(m.Observer, m.Epoch, li, h)), nil
		}
		return append(dst, quorum.NewLearnerInfo(m.Observer, m.Epoch, li)), nil
	case zab.MsgAckEpoch:
		if !l.known {
			return dst, nil
		}
		if m.Epoch < -1 || m.Epoch > math.MaxInt32 {
			return nil, fmt.Errorf("zklink: ACKEPOCH epoch %d does not fit ZooKeeper's int", m.Epoch)
		}
		return append(dst, quorum.NewAckEpoch(m.Zxid, int32(m.Epoch))), nil
	case zab.MsgAck:
		if l.stale(m) {
			return dst, nil
		}
		return l.appendAcks(dst, m.Zxid), nil
	case zab.MsgPing:
		if l.stale(m) {
			return dst, nil
		}
		// ZooKeeper's leader reads the touches from the data without a
		// null check: an empty reply has empty data, never null.
		return append(dst, quorum.Packet{Type: quorum.Ping, Zxid: m.Zxid, Data: []byte{}}), nil
	case zab.MsgApp:
		if l.stale(m) {
			return dst, nil
		}
		p, err := appPacket(m.Payload, learnerApp)
		if err != nil {
			return nil, err
		}
		if err := l.checkMoveRequest(&p); err != nil {
			return nil, err
		}
		return append(dst, p), nil
	}
	return nil, fmt.Errorf("zklink: %v has no ZooKeeper packet from a learner", m.Type)
}

// appendAcks appends ZooKeeper's one ACK per proposal for a cumulative
// ack to dst (straight into the caller's packets: a slice of its own per
// ACK was an allocation per txn on every follower).
func (l *Link) appendAcks(dst []quorum.Packet, z int64) []quorum.Packet {
	if zab.Counter(z) == 0 {
		// NEWLEADER's ack: it also says every synced entry is durable, so
		// the proposals that came before NEWLEADER get theirs after it
		// (ZooKeeper 3.8.5+ learners send them the same way).
		dst = append(dst, quorum.NewAck(z))
		if l.observer {
			l.pending, l.beforeNewLeader = nil, 0
			return dst
		}
		for _, p := range l.pending[:l.beforeNewLeader] {
			dst = append(dst, quorum.NewAck(p))
		}
		l.pending = l.pending[l.beforeNewLeader:]
		l.beforeNewLeader = 0
		return dst
	}
	if l.observer {
		return dst
	}
	n := l.upTo(z)
	for _, p := range l.pending[:n] {
		dst = append(dst, quorum.NewAck(p))
	}
	l.pending = l.pending[n:]
	l.beforeNewLeader = max(0, l.beforeNewLeader-n)
	return dst
}

func (l *Link) encodeLeader(dst []quorum.Packet, m zab.Message) ([]quorum.Packet, error) {
	if m.Type == zab.MsgLeaderInfo {
		if m.Epoch < 0 || m.Epoch > math.MaxUint32 {
			return nil, fmt.Errorf("zklink: new epoch %d out of range", m.Epoch)
		}
		l.epoch, l.known = m.Epoch, true
		if h, ok := l.hello(); ok {
			return append(dst, quorum.NewLeaderInfoHello(m.Epoch, h)), nil
		}
		return append(dst, quorum.NewLeaderInfo(m.Epoch)), nil
	}
	if l.stale(m) {
		return dst, nil
	}
	switch m.Type {
	case zab.MsgDiff, zab.MsgTrunc, zab.MsgSnap:
		t := map[zab.MsgType]quorum.PacketType{zab.MsgDiff: quorum.Diff, zab.MsgTrunc: quorum.Trunc, zab.MsgSnap: quorum.Snap}[m.Type]
		if m.Type == zab.MsgSnap && m.Snapshot == nil {
			return nil, errors.New("zklink: SNAP without a snapshot")
		}
		p, err := quorum.NewSyncStart(t, m.Zxid)
		if err != nil {
			return nil, err
		}
		return append(dst, p), nil
	case zab.MsgProposal:
		l.pending = append(l.pending, m.Entry.Zxid)
		return append(dst, quorum.Packet{Type: quorum.Proposal, Zxid: m.Entry.Zxid, Data: m.Entry.Data}), nil
	case zab.MsgCommit:
		return l.appendCommits(dst, m.Zxid), nil
	case zab.MsgNewLeader:
		cfg, err := l.newLeaderConfig(m)
		if err != nil {
			return nil, err
		}
		return append(dst, quorum.NewNewLeader(zab.Epoch(m.Zxid), cfg)), nil
	case zab.MsgCommitAndActivate:
		// COMMITs for the proposals before the reconfig entry, then
		// ZooKeeper's COMMITANDACTIVATE for the entry itself: a ZooKeeper
		// follower takes the configuration from its oldest pending
		// proposal and exits if the zxid is not that one's. An entry not
		// sent on this link (the learner had it before: a new leader
		// activating an earlier epoch's reconfig) gets no packet; the
		// learner activates it where its commit point passes it (UPTODATE,
		// as a ZooKeeper learner does from NEWLEADER's config). Found by
		// the simulator's wire check (seed 149 with --reconfig).
		var out []quorum.Packet
		if m.Zxid > 0 {
			out = l.appendCommits(nil, m.Zxid-1)
		}
		if len(l.pending) > 0 && l.pending[0] == m.Zxid {
			l.pending = l.pending[1:]
			out = append(out, quorum.NewCommitAndActivate(m.Zxid, m.Vote.Leader))
		}
		return append(dst, out...), nil
	case zab.MsgInformAndActivate:
		l.drop(m.Entry.Zxid)
		return append(dst, quorum.NewInformAndActivate(m.Entry.Zxid, m.Vote.Leader, m.Entry.Data)), nil
	case zab.MsgUpToDate:
		return append(l.appendCommits(dst, m.Zxid), quorum.NewUpToDate()), nil
	case zab.MsgPing:
		return append(dst, quorum.NewPing(m.Zxid)), nil
	case zab.MsgInform:
		l.drop(m.Entry.Zxid)
		return append(dst, quorum.Packet{Type: quorum.Inform, Zxid: m.Entry.Zxid, Data: m.Entry.Data}), nil
	case zab.MsgApp:
		p, err := appPacket(m.Payload, leaderApp)
		if err != nil {
			return nil, err
		}
		return append(dst, p), nil
	case zab.MsgTimeoutNow:
		return l.encodeTimeoutNow(dst, m)
	}
	return nil, fmt.Errorf("zklink: %v has no ZooKeeper packet from a leader", m.Type)
}

// appendCommits appends one COMMIT per proposal sent on this link up to
// the cumulative commit z to dst, in order.
func (l *Link) appendCommits(dst []quorum.Packet, z int64) []quorum.Packet {
	n := l.upTo(z)
	for _, p := range l.pending[:n] {
		dst = append(dst, quorum.NewCommit(p))
	}
	l.pending = l.pending[n:]
	return dst
}

// upTo counts the pending zxids up to z, to size the packets they expand
// to at once.
func (l *Link) upTo(z int64) int {
	n := 0
	for n < len(l.pending) && l.pending[n] <= z {
		n++
	}
	return n
}

// drop forgets a pending zxid (committed by other means).
func (l *Link) drop(z int64) {
	for i, p := range l.pending {
		if p == z {
			l.pending = append(l.pending[:i], l.pending[i+1:]...)
			if l.side == LearnerSide && i < l.beforeNewLeader {
				l.beforeNewLeader--
			}
			return
		}
	}
}

// Packet types a learner's and a leader's MsgApp payloads may be.
var (
	learnerApp = []quorum.PacketType{quorum.Request, quorum.Ping, quorum.Revalidate}
	leaderApp  = []quorum.PacketType{quorum.Revalidate, quorum.Sync}
)

// appPacket checks that payload is exactly one packet of an allowed type
// with a well-formed body, and returns it in raw form (quorum.ParseRaw):
// the payload's bytes go on the wire as they are, neither copied nor
// re-encoded (the engine never changes a payload it sent). Its size is not
// judged here: the engine made it, and the transport refuses what the
// peer's read limit (jute.maxbuffer) would (a REQUEST of a big znode under
// a raised jute.maxbuffer is legitimate).
func appPacket(payload []byte, allowed []quorum.PacketType) (quorum.Packet, error) {
	p, n, err := quorum.ParseRaw(payload, quorum.Limits{MaxData: max(len(payload), quorum.DefaultMaxData)})
	if err != nil {
		return quorum.Packet{}, fmt.Errorf("zklink: MsgApp payload: %w", err)
	}
	if n != len(payload) {
		return quorum.Packet{}, fmt.Errorf("zklink: MsgApp payload: %w: %d bytes after the %s packet", quorum.ErrMalformed, len(payload)-n, p.Type)
	}
	if !slices.Contains(allowed, p.Type) {
		return quorum.Packet{}, fmt.Errorf("zklink: MsgApp payload: %w: %s packet where %v expected", quorum.ErrMalformed, p.Type, allowed)
	}
	if err := checkBody(&p); err != nil {
		return quorum.Packet{}, fmt.Errorf("zklink: MsgApp payload: %w", err)
	}
	if p.Type == quorum.Ping && p.Data == nil {
		// See encodeLearner's MsgPing: re-encoded with empty data.
		p = quorum.Packet{Type: p.Type, Zxid: p.Zxid, Data: []byte{}, Auth: p.AuthInfo()}
	}
	return p, nil
}

// checkBody decodes the data of the packet types that travel as MsgApp.
func checkBody(p *quorum.Packet) error {
	var err error
	switch p.Type {
	case quorum.Request:
		_, err = quorum.DecodeRequestHead(p)
	case quorum.Ping:
		_, err = quorum.DecodeTouches(p)
	case quorum.Sync:
	}
	return err
}

// ---- decode: wire → engine ----

// Decode returns the messages a packet from the peer carries, in order,
// From the peer and To this server. A SNAP decodes to a MsgSnap whose
// Snapshot the caller sets from the body that follows the packet.
func (l *Link) Decode(p quorum.Packet) ([]zab.Message, error) {
	return l.DecodeAppend(nil, p)
}

// DecodeAppend is Decode appending the messages to dst, for a caller that
// reuses one slice for every packet (the simulator) instead of allocating
// one per packet. dst's elements are left as they were. A packet in raw
// form (quorum.DecodeWholeRaw) the engine takes as a MsgApp payload is not
// copied: its bytes become the payload, and the caller must not reuse them.
func (l *Link) DecodeAppend(dst []zab.Message, p quorum.Packet) ([]zab.Message, error) {
	if !p.Type.Known() && p.Type != quorum.TimeoutNow {
		return nil, fmt.Errorf("zklink: %w: unknown packet type %d from %s %d", quorum.ErrMalformed, int32(p.Type), l.peerRole(), l.peer)
	}
	var (
		msgs []zab.Message
		err  error
	)
	if l.side == LearnerSide {
		msgs, err = l.decodeLearner(dst, p)
	} else {
		msgs, err = l.decodeLeader(dst, p)
	}
	if err != nil {
		return nil, fmt.Errorf("zklink: %s from %s %d: %w", p.Type, l.peerRole(), l.peer, err)
	}
	for i := len(dst); i < len(msgs); i++ {
		msgs[i].From, msgs[i].To = l.peer, l.self
	}
	return msgs, nil
}

func (l *Link) peerRole() string {
	if l.side == LearnerSide {
		return "leader"
	}
	return "learner"
}

func (l *Link) msg(t zab.MsgType, zxid int64) zab.Message {
	return zab.Message{Type: t, Epoch: l.epoch, Zxid: zxid}
}

func (l *Link) decodeLearner(dst []zab.Message, p quorum.Packet) ([]zab.Message, error) {
	if !l.first {
		if p.Type != quorum.LeaderInfo {
			return nil, fmt.Errorf("%w: first packet from the leader must be LEADERINFO", quorum.ErrMalformed)
		}
		l.first = true
	}
	switch p.Type {
	case quorum.LeaderInfo:
		if l.known {
			return nil, fmt.Errorf("%w: second LEADERINFO", quorum.ErrMalformed)
		}
		e, v, err := quorum.DecodeLeaderInfo(&p)
		if err != nil {
			return nil, err
		}
		if v < quorum.LearnerProtocol {
			return nil, fmt.Errorf("%w: leader protocol version %#x", quorum.ErrVersion, v)
		}
		l.epoch, l.known = e, true
		m := l.msg(zab.MsgLeaderInfo, 0)
		m.Caps = l.negotiate(&p)
		return append(dst, m), nil
	case quorum.Diff:
		l.syncTo = p.Zxid
		return append(dst, l.msg(zab.MsgDiff, p.Zxid)), nil
	case quorum.Trunc:
		l.syncTo = p.Zxid
		return append(dst, l.msg(zab.MsgTrunc, p.Zxid)), nil
	case quorum.Snap:
		return append(dst, l.msg(zab.MsgSnap, p.Zxid)), nil
	case quorum.Proposal:
		if p.Data == nil {
			return nil, fmt.Errorf("%w: PROPOSAL without a txn", quorum.ErrMalformed)
		}
		l.pending = append(l.pending, p.Zxid)
		m := l.msg(zab.MsgProposal, 0)
		m.Entry = zab.Entry{Zxid: p.Zxid, Data: p.Data}
		return append(dst, m), nil
	case quorum.Commit:
		// A committed proposal still gets its ACK: a ZooKeeper leader
		// tracks ACKs in order per learner (LearnerHandler's
		// SyncLimitCheck) and drops a learner whose oldest unacked
		// proposal is older than syncLimit ticks.
		return append(dst, l.msg(zab.MsgCommit, p.Zxid)), nil
	case quorum.NewLeader:
		if l.synced {
			return nil, fmt.Errorf("%w: second NEWLEADER", quorum.ErrMalformed)
		}
		// Only a link with a book translates configurations: without
		// one (a transport whose config string is static) NEWLEADER's
		// config says nothing the engine may compare (reconfig.go).
		var payload []byte
		if l.book != nil {
			var err error
			if payload, err = newLeaderPayload(p.Data); err != nil {
				return nil, err
			}
		}
		l.synced = true
		l.beforeNewLeader = len(l.pending)
		m := l.msg(zab.MsgNewLeader, p.Zxid)
		m.Payload = payload
		return append(dst, m), nil
	case quorum.UpToDate:
		// UPTODATE carries no zxid (-1). It says the leader's history
		// before its epoch is committed, and so is every txn the sync left
		// in the learner's log below the new epoch: those it had logged
		// under an earlier leader came with no COMMIT on this link (a
		// ZooKeeper learner applied them when it left that leader,
		// fastForwardDataBase). Found by the simulator's codec hop: a
		// DIFF-synced follower never applied its uncommitted tail.
		// Likewise up to the DIFF's or TRUNC's zxid, the point of the
		// leader's committed history the sync started from: a learner that
		// left and rejoined its leader within the epoch, holding proposals
		// the leader committed meanwhile, gets a DIFF to that point and no
		// COMMIT for them (ZooKeeper's learner fast-forwarded them on
		// leaving). Found by the simulator with server kinds (seed 600).
		return append(dst, l.msg(zab.MsgUpToDate, max(zab.MakeZxid(l.epoch, 0), l.syncTo))), nil
	case quorum.Ping:
		return append(dst, l.msg(zab.MsgPing, p.Zxid)), nil
	case quorum.Inform:
		if p.Data == nil {
			return nil, fmt.Errorf("%w: INFORM without a txn", quorum.ErrMalformed)
		}
		m := l.msg(zab.MsgInform, 0)
		m.Entry = zab.Entry{Zxid: p.Zxid, Data: p.Data}
		return append(dst, m), nil
	case quorum.CommitAndActivate:
		d, err := quorum.DecodeCommitAndActivate(&p)
		if err != nil {
			return nil, err
		}
		m := l.msg(zab.MsgCommitAndActivate, p.Zxid)
		m.Vote.Leader = d
		return append(dst, m), nil
	case quorum.InformAndActivate:
		d, txn, err := quorum.DecodeInformAndActivate(&p)
		if err != nil {
			return nil, err
		}
		m := l.msg(zab.MsgInformAndActivate, 0)
		m.Entry = zab.Entry{Zxid: p.Zxid, Data: txn}
		m.Vote.Leader = d
		return append(dst, m), nil
	case quorum.Revalidate:
		if _, _, err := quorum.DecodeRevalidateReply(&p); err != nil {
			return nil, err
		}
		return append(dst, l.app(p)), nil
	case quorum.Sync:
		return append(dst, l.app(p)), nil
	case quorum.TimeoutNow:
		return l.decodeTimeoutNow(dst, p)
	}
	return nil, fmt.Errorf("%w: a leader does not send %s", quorum.ErrMalformed, p.Type)
}

// app returns the MsgApp whose payload is p: a raw packet's bytes as they
// are (quorum.DecodeWholeRaw gave the packet its own copy), else p encoded.
func (l *Link) app(p quorum.Packet) zab.Message {
	m := l.msg(zab.MsgApp, 0)
	if p.Raw != nil {
		m.Payload = p.Raw
	} else {
		m.Payload = p.Encode()
	}
	return m
}

func (l *Link) decodeLeader(dst []zab.Message, p quorum.Packet) ([]zab.Message, error) {
	if !l.first {
		if p.Type != quorum.FollowerInfo && p.Type != quorum.ObserverInfo {
			return nil, fmt.Errorf("%w: first packet from a learner must be FOLLOWERINFO or OBSERVERINFO", quorum.ErrMalformed)
		}
		l.first = true
		li, err := quorum.DecodeLearnerInfo(&p)
		if err != nil {
			return nil, err
		}
		if li.ProtocolVersion < quorum.LearnerProtocol {
			return nil, fmt.Errorf("%w: learner protocol version %#x (pre-3.4)", quorum.ErrVersion, li.ProtocolVersion)
		}
		if li.Sid != l.peer {
			return nil, fmt.Errorf("%w: learner says it is server %d", quorum.ErrMalformed, li.Sid)
		}
		if err := l.checkLearnerConfig(li); err != nil {
			return nil, err
		}
		return append(dst, zab.Message{
			Type: zab.MsgFollowerInfo, Epoch: quorum.EpochOf(p.Zxid), Observer: p.Type == quorum.ObserverInfo,
			Caps: l.negotiate(&p),
		}), nil
	}
	switch p.Type {
	case quorum.AckEpoch:
		z, e, err := quorum.DecodeAckEpoch(&p)
		if err != nil {
			return nil, err
		}
		return append(dst, zab.Message{Type: zab.MsgAckEpoch, Epoch: int64(e), Zxid: z}), nil
	case quorum.Ack:
		if zab.Counter(p.Zxid) == 0 && l.known && p.Zxid == zab.MakeZxid(l.epoch, 0) {
			l.synced = true
		}
		return append(dst, l.msg(zab.MsgAck, p.Zxid)), nil
	case quorum.Ping:
		if _, err := quorum.DecodeTouches(&p); err != nil {
			return nil, err
		}
		out := append(dst, l.msg(zab.MsgPing, p.Zxid))
		if len(p.Data) > 0 {
			out = append(out, l.app(p))
		}
		return out, nil
	case quorum.Request:
		if _, err := quorum.DecodeRequestHead(&p); err != nil {
			return nil, err
		}
		return append(dst, l.app(p)), nil
	case quorum.Revalidate:
		if _, _, err := quorum.DecodeRevalidate(&p); err != nil {
			return nil, err
		}
		return append(dst, l.app(p)), nil
	}
	return nil, fmt.Errorf("%w: a learner does not send %s", quorum.ErrMalformed, p.Type)
}
