package zklink

import (
	"slices"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// Conns is one server's table of quorum-port connections with ZooKeeper's
// rules (netstub/zktcp's package doc): a learner's FOLLOWERINFO or
// OBSERVERINFO opens a new connection to its leader and closes the one it
// had; a leader accepts a learner's connection while Looking or Leading,
// replacing that learner's previous one; a role change closes the learner
// connection to anyone but the new leader, and every learner's connection
// once this server no longer leads. Connections closed by these rules are
// closed quietly (this side moved on: no MsgLinkDown for it).
//
// It is pure, like Link, so the real transport (zktcp) and the simulator
// keep their connections in the same table with the same rules. Each Conn has an ID unique in its table, for the
// caller's bookkeeping. Not safe for concurrent use.
type Conns struct {
	self   int64
	config []byte
	role   zab.Role
	leader int64
	seq    uint64

	learner *Conn
	leading []*Conn // by peer id

	// caps and nonce are what every new Link announces (Announce).
	caps  zab.Caps
	nonce int64
	book  Book
	// version is the active configuration's (SetConfigVersion).
	version    int64
	hasVersion bool
}

// Conn is one connection of a Conns table.
type Conn struct {
	ID   uint64
	Link *Link
}

// Peer returns the server at the other end.
func (c *Conn) Peer() int64 { return c.Link.Peer() }

// NewConns returns the empty table of server self; config is the
// ensemble's config string (ConfigString) leader links send in NEWLEADER.
func NewConns(self int64, config []byte) *Conns {
	return &Conns{self: self, config: config}
}

// Announce sets the capabilities and the nonce that every connection
// opened from now on announces in its hello (Link.Announce); zero caps,
// the default, send none, as a ZooKeeper server.
func (t *Conns) Announce(caps zab.Caps, nonce int64) { t.caps, t.nonce = caps, nonce }

// Caps returns the capabilities of the connection to peer (Link.Caps:
// what both hellos carry); ok is false without a connection.
func (t *Conns) Caps(peer int64) (caps zab.Caps, ok bool) {
	if c := t.Route(peer); c != nil {
		return c.Link.Caps(), true
	}
	return 0, false
}

// link returns a new Link with this table's announcement.
func (t *Conns) link(l *Link) *Link {
	l.Announce(t.caps, t.nonce)
	l.book = t.book
	if t.hasVersion {
		l.SetConfigVersion(t.version)
	}
	return l
}

func (t *Conns) next(l *Link) *Conn {
	t.seq++
	return &Conn{ID: t.seq, Link: l}
}

// Dial opens the learner connection to leader that the engine's
// MsgFollowerInfo starts (the caller then encodes it on the new Link).
// old is the learner connection it replaces, closed quietly, or nil.
func (t *Conns) Dial(leader int64) (c, old *Conn) {
	old = t.learner
	t.learner = t.next(t.link(NewLearnerLink(t.self, leader)))
	return t.learner, old
}

// Accepting reports whether a learner's new connection is accepted: while
// Looking (a learner that connects just before this server's election ends
// is not refused) or Leading.
func (t *Conns) Accepting() bool { return Accepts(t.role) }

// Accepts reports whether a server in role accepts a learner's new
// connection: while Looking or Leading.
func Accepts(role zab.Role) bool { return role == zab.Looking || role == zab.Leading }

// KeepsLearner reports whether a server's learner connection to peer
// survives the engine's new role: only while following or observing that
// leader.
func KeepsLearner(role zab.Role, leader, peer int64) bool {
	return (role == zab.Following || role == zab.Observing) && leader == peer
}

// ClosesLeading reports whether going from prev to role closes every
// learner's connection: this server stopped leading, or follows or
// observes.
func ClosesLeading(prev, role zab.Role) bool {
	return (prev == zab.Leading && role != zab.Leading) || role == zab.Following || role == zab.Observing
}

// Role returns the role SetRole last recorded (Looking at first).
func (t *Conns) Role() zab.Role { return t.role }

// Accept registers a learner's new connection, or returns nil when not
// Accepting. old is that learner's previous connection, closed quietly (the
// learner started over), or nil.
func (t *Conns) Accept(learner int64) (c, old *Conn) {
	if !t.Accepting() {
		return nil, nil
	}
	return t.add(t.next(t.link(NewLeaderLink(t.self, learner, t.config))))
}

// AcceptFirst is Accept for a transport that has read the learner's first
// packet (FOLLOWERINFO or OBSERVERINFO) before it registers the
// connection: it decodes first on the new connection's Link and registers
// the connection only if that succeeds, so a learner whose first packet is
// refused (version, reconfig) does not replace its previous connection.
// msgs are what first decodes to; c is nil, and the table unchanged, when
// first does not decode (err) or the table is not Accepting.
func (t *Conns) AcceptFirst(learner int64, first quorum.Packet) (c, old *Conn, msgs []zab.Message, err error) {
	l := t.link(NewLeaderLink(t.self, learner, t.config))
	if msgs, err = l.Decode(first); err != nil {
		return nil, nil, nil, err
	}
	if !t.Accepting() {
		return nil, nil, nil, nil
	}
	c, old = t.add(t.next(l))
	return c, old, msgs, nil
}

// add registers the learner connection c, replacing that learner's
// previous one (returned).
func (t *Conns) add(c *Conn) (*Conn, *Conn) {
	var old *Conn
	learner := c.Peer()
	i, found := slices.BinarySearchFunc(t.leading, learner, func(x *Conn, id int64) int { return cmpID(x.Peer(), id) })
	if found {
		old = t.leading[i]
		t.leading[i] = c
	} else {
		t.leading = slices.Insert(t.leading, i, c)
	}
	return c, old
}

// Route returns the connection a message to peer goes on: the learner
// connection if peer is its leader, else peer's learner connection; nil
// when there is none (the message is dropped).
func (t *Conns) Route(peer int64) *Conn {
	if t.learner != nil && t.learner.Peer() == peer {
		return t.learner
	}
	if i, found := slices.BinarySearchFunc(t.leading, peer, func(x *Conn, id int64) int { return cmpID(x.Peer(), id) }); found {
		return t.leading[i]
	}
	return nil
}

// SetRole records the engine's role after a Ready (zab.Status Role and
// Leader) and returns the connections that closes, quietly: the learner
// connection unless it goes to leader while Following or Observing, and
// every learner's connection once this server stops leading or starts
// following. Order: the learner connection, then by peer id.
func (t *Conns) SetRole(role zab.Role, leader int64) []*Conn {
	prev := t.role
	t.role, t.leader = role, leader
	var closing []*Conn
	if l := t.learner; l != nil && !KeepsLearner(role, leader, l.Peer()) {
		t.learner = nil
		closing = append(closing, l)
	}
	if ClosesLeading(prev, role) {
		closing = append(closing, t.leading...)
		t.leading = nil
	}
	return closing
}

// Has reports whether c is still one of the table's open connections.
func (t *Conns) Has(c *Conn) bool {
	return c != nil && (t.learner == c || slices.Contains(t.leading, c))
}

// Drop forgets c, which failed (its end delivers MsgLinkDown); a
// connection the table no longer holds is left alone.
func (t *Conns) Drop(c *Conn) {
	if t.learner == c {
		t.learner = nil
		return
	}
	if i := slices.Index(t.leading, c); i >= 0 {
		t.leading = slices.Delete(t.leading, i, i+1)
	}
}

// All returns the open connections: the learner connection, then by peer
// id.
func (t *Conns) All() []*Conn { return t.AppendAll(nil) }

// AppendAll appends the open connections to dst in All's order.
func (t *Conns) AppendAll(dst []*Conn) []*Conn {
	if t.learner != nil {
		dst = append(dst, t.learner)
	}
	return append(dst, t.leading...)
}

func cmpID(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
