package sim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/netstub/zklink"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// The codec hop: every message a replica sends crosses the simulated
// network as the bytes netstub/zktcp writes, and is decoded at the receiver
// by the code zktcp reads with, with the same per-connection state
// (TESTING.md, "The codec hop"), whatever the servers' kinds (kinds.go):
// notifications through zklink.EncodeNotification and quorum.WriteFrame,
// read back with quorum.ReadFrame and zklink.DecodeNotification;
// leader/learner messages through a zklink.Link pair per simulated
// connection, kept by a zklink.Conns table per server (the rules zktcp
// keeps), whose links announce what the server's kind does: packets as
// bytes (quorum.Packet.Append, quorum.DecodePacket with the real limits),
// a SNAP's body after its packet, read back through
// quorum.CopySnapshotBody. The body goes raw on every link: zktcp cuts it
// into SNAPCHUNK packets on a CapStreamSnap link, which the simulator does
// not model (the bytes arrive at once here, nothing could go between).
//
// The network carries the bytes in a carrier message (msgWire). A
// connection's end that closes tells the other end with msgFin, after the
// bytes already on their way (TCP's FIN); the end that sees it steps
// MsgLinkDown unless it closed first. A codec error is a violation (both
// ends are ours: what one writes the other must read) and closes the
// connection as zktcp does: both ends see MsgLinkDown.
const (
	// msgWire carries Payload, the bytes, on connection Zxid (0: the
	// election link).
	msgWire zab.MsgType = 200 + iota
	// msgFin tells the end of connection Zxid that the other end closed
	// it (or, From itself, that its own end failed).
	msgFin
)

// qconn is one simulated leader/learner connection.
type qconn struct {
	id              uint64
	learner, leader int64
	// ends are the learner's and the leader's table entries (the leader's
	// is nil until the first packet arrives and is accepted), gens the
	// incarnations they belong to.
	ends [2]*zklink.Conn
	gens [2]uint64
	// native are the kinds of the ends' incarnations: a link has every
	// capability if both are native, none otherwise (checkReceived).
	native [2]bool
	// closed tells which ends closed (0 learner, 1 leader): a closed end
	// neither writes nor reads; the other reads what was written before
	// the fin.
	closed [2]bool
	// ZooKeeper's own checks on the packet streams (checkPacket): the
	// PROPOSALs the leader wrote and the learner has not acked yet, and
	// the PROPOSALs the learner read and has not seen committed.
	unacked, uncommitted []int64
	observer             bool
}

// end returns which end of c server id is: 0 learner, 1 leader.
func (c *qconn) end(id int64) int {
	if id == c.leader {
		return 1
	}
	return 0
}

func (c *qconn) peerOf(id int64) int64 {
	if id == c.leader {
		return c.learner
	}
	return c.leader
}

// maxSnapshot is the transports' default bound on a SNAP body (zoo.cfg
// leaves it unset).
const maxSnapshot = 64 << 30

// wireLimits are the real transports' read limits.
var (
	wireLimits = quorum.Limits{MaxData: quorum.DefaultMaxData}
	snapLimits = quorum.SnapLimits{MaxBytes: maxSnapshot, MaxField: quorum.DefaultMaxData}
)

// simConfigString is the ensemble's config string, as the servers would
// print it from server.N lines.
func (sm *Sim) simConfigString() []byte {
	ms := make([]zklink.Member, 0, len(sm.ids))
	for _, id := range sm.ids {
		ms = append(ms, zklink.Member{ID: id, Host: fmt.Sprintf("10.0.0.%d", id), QuorumPort: 2888, ElectionPort: 3888, Observer: sm.server(id).observer})
	}
	return zklink.ConfigString(ms, 0)
}

// book gives each server's addresses, as simConfigString prints them, for
// the config strings of reconfigured ensembles (zklink.Book).
func (sm *Sim) book(id int64) (zklink.Member, bool) {
	if id <= 0 || id > int64(len(sm.ids)) {
		return zklink.Member{}, false
	}
	for int64(len(sm.hosts)) < id { // formatted once per id: every notification asks
		sm.hosts = append(sm.hosts, fmt.Sprintf("10.0.0.%d", len(sm.hosts)+1))
	}
	return zklink.Member{ID: id, Host: sm.hosts[id-1], QuorumPort: 2888, ElectionPort: 3888}, true
}

// sendPeer puts m, from s, on the simulated network as its transport's bytes.
func (sm *Sim) sendPeer(s *server, m zab.Message) {
	switch m.Type {
	case zab.MsgNotification:
		// A notification carries the sender's configurations as
		// ZooKeeper's config string; the pending one only between two
		// native servers (zklink's trailer), as a ZooKeeper peer must see
		// ZooKeeper's bytes.
		payload, err := zklink.EncodeNotificationTo(m, sm.book, sm.zkConfig, s.native && sm.server(m.To).native)
		var buf frameCapture
		if err == nil {
			err = quorum.WriteFrame(&buf, payload)
		}
		if err != nil {
			sm.violation("codec: n%d cannot encode %s for n%d: %v", s.id, describeMsg(m), m.To, err)
			return
		}
		sm.net.Send(zab.Message{Type: msgWire, From: m.From, To: m.To, Payload: buf.b}, sm.now)
		return
	case zab.MsgFollowerInfo:
		c, old := s.zk.Dial(m.To)
		if old != nil {
			sm.closeQuiet(s, old)
		}
		sm.qconnSeq++
		qc := &qconn{id: sm.qconnSeq, learner: s.id, leader: m.To, observer: m.Observer}
		qc.ends[0], qc.gens[0], qc.native[0] = c, s.gen, s.native
		sm.qconns[qc.id] = qc
		s.qc[c] = qc
		sm.tracef(s.id, "n%d wire: conn %d to leader n%d opens", s.id, qc.id, m.To)
	}
	c := s.zk.Route(m.To)
	if c == nil {
		sm.report.Counters["wire-no-conn"]++
		sm.tracef(s.id, "n%d wire: no connection to n%d, %s dropped", s.id, m.To, describeMsg(m))
		return
	}
	qc := s.qc[c]
	if qc.closed[qc.end(s.id)] {
		return
	}
	pkts, err := c.Link.EncodeAppend(sm.encoded[:0], m)
	sm.encoded = pkts[:0] // reused: the packets are written to b below
	if errors.Is(err, zklink.ErrNotNegotiated) {
		// zktcp drops it, logs it as a bug and keeps the link.
		sm.violation("caps: n%d (%s) sent n%d %s: %v", s.id, kindName(s.native), m.To, describeMsg(m), err)
		return
	}
	if err != nil {
		sm.violation("codec: n%d cannot encode %s for n%d on conn %d: %v", s.id, describeMsg(m), m.To, qc.id, err)
		sm.failConn(s, qc)
		return
	}
	if len(pkts) == 0 {
		return
	}
	if sm.opts.wireFault != nil {
		pkts = sm.opts.wireFault(s.id, m.To, pkts)
	}
	size := 0
	for i := range pkts {
		size += pkts[i].Len()
	}
	b := sm.takePayload(size)
	for i := range pkts {
		p := &pkts[i]
		if p.Type == quorum.Proposal && qc.end(s.id) == 1 {
			qc.unacked = append(qc.unacked, p.Zxid)
		}
		b = p.Append(b)
		if p.Type == quorum.Snap && m.Snapshot != nil {
			buf := bytes.NewBuffer(b)
			if _, err := m.Snapshot.WriteTo(buf); err != nil {
				sm.violation("n%d: SNAP body for n%d: %v", s.id, m.To, err)
				return
			}
			b = buf.Bytes()
		}
	}
	sm.sendConn(qc, zab.Message{Type: msgWire, From: m.From, To: m.To, Zxid: int64(qc.id), Payload: b})
}

// frameCapture is the io.Writer sendPeer frames a notification into: it
// keeps the slice WriteFrame writes, which WriteFrame built for the call,
// instead of copying it into a bytes.Buffer grown for it.
type frameCapture struct{ b []byte }

func (c *frameCapture) Write(p []byte) (int, error) {
	if c.b == nil {
		c.b = p
	} else {
		c.b = append(c.b, p...)
	}
	return len(p), nil
}

// sendConn puts bytes or a fin of qc on the network. TCP loses nothing
// inside a connection: where the network drops it (a cut link), the
// connection breaks instead and both ends see it (their writes or reads
// time out).
func (sm *Sim) sendConn(qc *qconn, m zab.Message) {
	if sm.net.Send(m, sm.now) {
		return
	}
	qc.closed = [2]bool{true, true}
	sm.tracef(m.From, "n%d wire: conn %d with n%d breaks: the link is cut", m.From, qc.id, m.To)
	for _, f := range []zab.Message{{Type: msgFin, From: m.To, To: m.From, Zxid: int64(qc.id)}, {Type: msgFin, From: m.From, To: m.To, Zxid: int64(qc.id)}} {
		sm.schedule(&event{at: sm.now, kind: evPeer, msg: &f})
	}
}

// setRole tells s's connection table the engine's role after a Send, as
// the server does (server/peers.go notePeerRole).
func (sm *Sim) setRole(s *server) {
	if !s.up {
		return
	}
	role, leader := s.r.Role()
	for _, c := range s.zk.SetRole(role, leader) {
		sm.closeQuiet(s, c)
	}
}

// learnerHolder is a replica that tells which learners its leader holds
// (engine.Node.HasLearner).
type learnerHolder interface{ HasLearner(id int64) bool }

// closeDroppedLearners closes the leader's end of every learner connection
// whose learner the leader dropped (it went silent past syncLimit, or
// initLimit before it synced): zktcp's read deadline closes such a link, as
// ZooKeeper's LearnerHandler ends on its socket timeout, so the learner
// hears the break, after the bytes in flight, instead of following on
// (a stalled follower that resumed went on serving from a leader that no
// longer counted it: seed 303 with --reconfig).
func (sm *Sim) closeDroppedLearners(s *server) {
	h, ok := s.r.(learnerHolder)
	if !ok {
		return
	}
	if role, _ := s.r.Role(); role != zab.Leading {
		return // setRole closed the leader's connections
	}
	// A scan into a reused slice first: closing is rare, and closeQuiet
	// changes s.zk.
	all := s.zk.AppendAll(sm.connScratch[:0])
	sm.connScratch = all[:0]
	var drop []*zklink.Conn
	for _, c := range all {
		qc := s.qc[c]
		if qc == nil || qc.end(s.id) != 1 || h.HasLearner(qc.learner) {
			continue
		}
		drop = append(drop, c)
	}
	clear(all)
	for _, c := range drop {
		qc := s.qc[c]
		sm.tracef(s.id, "n%d wire: dropped learner n%d, its conn %d closes", s.id, qc.learner, qc.id)
		sm.report.Counters["wire-dropped-learners"]++
		sm.closeQuiet(s, c)
	}
}

// closeQuiet closes s's end of c because s moved on (already out of its
// table): the other end sees it after the bytes in flight.
func (sm *Sim) closeQuiet(s *server, c *zklink.Conn) {
	qc := s.qc[c]
	delete(s.qc, c)
	s.zk.Drop(c)
	if qc == nil || qc.closed[qc.end(s.id)] {
		return
	}
	sm.tracef(s.id, "n%d wire: closes conn %d with n%d", s.id, qc.id, c.Peer())
	qc.closed[qc.end(s.id)] = true
	sm.sendConn(qc, zab.Message{Type: msgFin, From: s.id, To: c.Peer(), Zxid: int64(qc.id)})
}

// failConn ends qc after a codec error at s: both ends see MsgLinkDown,
// s's own as soon as it reads again (a fin from itself).
func (sm *Sim) failConn(s *server, qc *qconn) {
	if qc.closed == [2]bool{true, true} {
		return
	}
	peer := qc.peerOf(s.id)
	qc.closed = [2]bool{true, true}
	sm.sendConn(qc, zab.Message{Type: msgFin, From: s.id, To: peer, Zxid: int64(qc.id)})
	f := zab.Message{Type: msgFin, From: peer, To: s.id, Zxid: int64(qc.id)}
	sm.schedule(&event{at: sm.now, kind: evPeer, msg: &f})
}

// wireLinkDown handles a MsgLinkDown of the network (a
// cut or a crash between s and from): every connection s has with from is
// gone, and the MsgLinkDown is what the engine hears of it. Without such a
// connection only the election link broke, which zktcp reports to a
// Looking engine only (a server that follows a live leader must not leave
// it because an idle election socket broke): it reports whether the
// engine hears it.
func (sm *Sim) wireLinkDown(s *server, from int64) bool {
	had := false
	for _, c := range s.zk.All() {
		if c.Peer() == from {
			had = true
			qc := s.qc[c]
			delete(s.qc, c)
			s.zk.Drop(c)
			if qc != nil {
				qc.closed = [2]bool{true, true}
			}
		}
	}
	role, _ := s.r.Role()
	return had || role == zab.Looking
}

// receive decodes a carrier that reached s (up, not stalled) and steps
// what it carries.
func (sm *Sim) receive(s *server, m zab.Message) {
	if m.Type == msgFin {
		sm.receiveFin(s, m)
		return
	}
	if m.Zxid == 0 {
		var dm zab.Message
		var err error
		if payload, ok := wholeFrame(m.Payload); ok {
			dm, err = zklink.DecodeNotification(m.From, m.To, payload)
		} else {
			r := bytes.NewReader(m.Payload)
			payload, err = quorum.ReadFrame(r)
			if err == nil {
				if r.Len() != 0 {
					err = fmt.Errorf("%d bytes after the frame", r.Len())
				} else {
					dm, err = zklink.DecodeNotification(m.From, m.To, payload)
				}
			}
		}
		if err != nil {
			sm.violation("codec: n%d cannot decode %d bytes from n%d: %v", s.id, len(m.Payload), m.From, err)
			sm.step(s, zab.Message{Type: zab.MsgLinkDown, From: m.From, To: s.id})
			return
		}
		sm.step(s, dm)
		return
	}
	sm.receiveConn(s, m)
	sm.givePayload(m.Payload)
}

// wholeFrame returns the payload of b when b is exactly one well-formed
// election frame, without copying it as quorum.ReadFrame does (b is not
// reused: only connection bytes go back to the payloads list); anything
// else goes through ReadFrame and its errors.
func wholeFrame(b []byte) ([]byte, bool) {
	if len(b) < 4 {
		return nil, false
	}
	n := int64(binary.BigEndian.Uint32(b))
	if n <= 0 || n > quorum.MaxFrame || n != int64(len(b)-4) {
		return nil, false
	}
	return b[4:], true
}

// receiveConn decodes and steps the bytes m carries on a connection.
func (sm *Sim) receiveConn(s *server, m zab.Message) {
	qc := sm.qconns[uint64(m.Zxid)]
	if qc == nil {
		return
	}
	e := qc.end(s.id)
	if qc.closed[e] {
		return
	}
	c := qc.ends[e]
	if c == nil {
		// The learner's first bytes: the leader accepts or refuses.
		if c, old := s.zk.Accept(qc.learner); c != nil {
			if old != nil {
				sm.closeQuiet(s, old)
			}
			qc.ends[1], qc.gens[1], qc.native[1] = c, s.gen, s.native
			s.qc[c] = qc
			sm.tracef(s.id, "n%d wire: accepts conn %d from n%d", s.id, qc.id, qc.learner)
		} else {
			sm.tracef(s.id, "n%d wire: refuses conn %d from n%d: not leading", s.id, qc.id, qc.learner)
			qc.closed[1] = true
			sm.sendConn(qc, zab.Message{Type: msgFin, From: s.id, To: qc.learner, Zxid: int64(qc.id)})
			return
		}
		c = qc.ends[1]
	}
	if qc.gens[e] != s.gen || !s.zk.Has(c) {
		return
	}
	b := m.Payload
	for len(b) > 0 {
		p, n, err := quorum.DecodePacket(b, wireLimits)
		if err != nil {
			sm.codecError(s, qc, err)
			return
		}
		b = b[n:]
		sm.checkPacket(s, qc, e, p)
		msgs, err := c.Link.DecodeAppend(sm.takeDecoded(), p)
		if err != nil {
			sm.codecError(s, qc, err)
			return
		}
		if p.Type == quorum.Snap {
			r := bytes.NewReader(b)
			var body bytes.Buffer
			if _, err := quorum.CopySnapshotBody(&body, r, snapLimits); err != nil {
				sm.codecError(s, qc, err)
				return
			}
			b = b[len(b)-r.Len():]
			sm.report.Counters["wire-snap-bodies"]++
			if len(msgs) == 1 {
				msgs[0].Snapshot = zab.SnapshotBytes(body.Bytes())
			}
		}
		for _, dm := range msgs {
			sm.checkReceived(s, qc, e, dm)
			sm.step(s, dm)
			// Stepping may have closed the connection (a role change) or
			// stopped the server: the rest of the bytes are lost.
			if !s.up || qc.closed[e] || !s.zk.Has(c) || sm.now < s.pausedTill {
				return
			}
		}
		sm.giveDecoded(msgs)
	}
}

func (sm *Sim) codecError(s *server, qc *qconn, err error) {
	sm.violation("codec: n%d cannot decode what n%d wrote on conn %d: %v", s.id, qc.peerOf(s.id), qc.id, err)
	sm.failConn(s, qc)
}

// receiveFin: the other end of a connection closed it; s's end, if still
// open, sees MsgLinkDown.
func (sm *Sim) receiveFin(s *server, m zab.Message) {
	qc := sm.qconns[uint64(m.Zxid)]
	if qc == nil {
		return
	}
	e := qc.end(s.id)
	c := qc.ends[e]
	if c == nil || qc.gens[e] != s.gen || !s.zk.Has(c) {
		return
	}
	delete(s.qc, c)
	s.zk.Drop(c)
	qc.closed[e] = true
	sm.tracef(s.id, "n%d wire: conn %d with n%d closed", s.id, qc.id, c.Peer())
	sm.step(s, zab.Message{Type: zab.MsgLinkDown, From: c.Peer(), To: s.id})
}

// checkPacket applies ZooKeeper's own checks to a packet read on qc: a
// ZooKeeper follower exits on a COMMIT that is not for its oldest pending
// PROPOSAL, and a ZooKeeper leader drops a follower whose ACKs skip a
// proposal. zklink's expansions must keep both.
func (sm *Sim) checkPacket(s *server, qc *qconn, e int, p quorum.Packet) {
	switch {
	case e == 0 && p.Type == quorum.Proposal:
		qc.uncommitted = append(qc.uncommitted, p.Zxid)
	case e == 0 && (p.Type == quorum.Commit || p.Type == quorum.CommitAndActivate):
		// COMMITANDACTIVATE too: ZooKeeper's follower takes the reconfig
		// from its oldest pending txn and commits it the same way.
		if len(qc.uncommitted) == 0 || qc.uncommitted[0] != p.Zxid {
			next := "none"
			if len(qc.uncommitted) > 0 {
				next = fmt.Sprintf("0x%x", qc.uncommitted[0])
			}
			sm.violation("wire: n%d read %s 0x%x from n%d on conn %d, its oldest pending PROPOSAL is %s (a ZooKeeper follower exits)", s.id, p.Type, p.Zxid, qc.leader, qc.id, next)
			return
		}
		qc.uncommitted = qc.uncommitted[1:]
	case e == 1 && p.Type == quorum.Ack && zab.Counter(p.Zxid) != 0 && !qc.observer:
		if len(qc.unacked) == 0 || qc.unacked[0] != p.Zxid {
			next := "none"
			if len(qc.unacked) > 0 {
				next = fmt.Sprintf("0x%x", qc.unacked[0])
			}
			sm.violation("wire: n%d read ACK 0x%x from n%d on conn %d before ACK for %s (a ZooKeeper leader drops the follower)", s.id, p.Zxid, qc.learner, qc.id, next)
			return
		}
		qc.unacked = qc.unacked[1:]
	}
}
