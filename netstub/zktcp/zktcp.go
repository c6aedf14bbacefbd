// Package zktcp is a netstub.Transport that speaks Apache ZooKeeper's own
// server-to-server protocol on ZooKeeper's two ports, so zabkeeper servers
// and ZooKeeper 3.5-3.9 servers form one ensemble.
//
// Election port (election.go, ZooKeeper's QuorumCnxManager): one TCP
// connection per pair of servers, and only one initiated by the larger id
// survives: a smaller server that wants to talk sends its initial message
// and closes, and the larger one connects back. Notifications travel in
// length-prefixed frames (quorum.ReadFrame/WriteFrame), newest first: a
// queued notification not yet written is replaced by a newer one, and a new
// connection starts with the last one sent, as ZooKeeper's SendWorker does.
// So a voter's looking notification can be replaced by the FOLLOWING answer
// it gives a moment later: the engine counts that answer in the round, as
// ZooKeeper's checkLeader does (engine/zab's leaderConfirmed). A server
// outside the peer set (about to join, or removed) is served as ZooKeeper
// serves any id: its connection is kept when its id is larger, and when
// smaller this side connects back once to the election address of its
// initial message; its notifications reach the engine, which answers
// them, and its link ends with its connection (elPeer).
//
// Quorum port (quorum.go, ZooKeeper's Learner and LearnerHandler): the
// learner dials its leader when its engine starts following or observing it
// (the engine's MsgFollowerInfo opens the connection), and one connection
// carries both directions: QuorumPackets back to back, a SNAP followed
// inline by its body. The leader accepts learner connections, from any
// id as ZooKeeper's LearnerHandler does (one outside every configuration
// syncs without a vote), while it is Looking or Leading (SetRole tells the role; a learner that connects just
// before the leader's own election ends is not refused), never while it
// follows. The table of these connections, with those rules, is a
// zklink.Conns, the one the simulator (sim/wire.go) keeps too; each
// connection translates through its netstub/zklink Link.
// Read timeouts are ZooKeeper's: initLimit·tickTime until the sync ends
// (NEWLEADER on a learner, its ACK on the leader), syncLimit·tickTime
// after.
//
// zabkeeper's extras (Config.Caps; docs/ZAB.md, "One protocol"): each end
// announces its capabilities and this instance's nonce in a hello
// ZooKeeper ignores, and a link carries what both announced, logged once
// per link with the peer's kind. On a link with zab.CapStreamSnap the SNAP
// body follows in SNAPCHUNK packets (netstub.StreamSnapshot's payloads),
// with PINGs (and TIMEOUTNOWs) queued meanwhile written between them, so
// a large snapshot no longer has to fit one read timeout; elsewhere the
// body is raw, as ZooKeeper's. A learner's hello nonce is checked by the
// leader with netstub's duplicate-id rule: a restarted learner replaces
// its old connection, two live processes with one id are refused and
// logged. The engine's messages a link's capabilities forbid (TIMEOUTNOW,
// a moveSession REQUEST) are dropped and logged as a bug.
//
// Links that break deliver MsgLinkDown from the peer: a quorum link always
// (unless this side closed it because the role changed, or a newer link
// with the peer replaced it; a link that replaces one whose MsgLinkDown is
// on its way delivers nothing before it), an election link
// only while this server is Looking, since the engine reads LinkDown as
// "that server is gone" and a server that follows a live leader must not
// leave it because an idle election socket broke. A packet or frame that
// does not decode closes only its link, logged with the peer and the reason
// (too large, malformed, version, reconfig).
package zktcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/netstub"
	"github.com/zabkeeper/zabkeeper/netstub/zklink"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// Peer is another server of the ensemble.
type Peer struct {
	// QuorumAddr is its host:quorumPort (learners dial it when it leads).
	QuorumAddr string
	// ElectionAddr is its host:electionPort.
	ElectionAddr string
}

// Config configures a Transport.
type Config struct {
	// ID is this server's id (myid).
	ID int64
	// ElectionListener and QuorumListener are the two ports, already
	// bound. Close closes them.
	ElectionListener, QuorumListener net.Listener
	// ElectionAddr is this server's election address as server.N says
	// (host:port), sent in the initial message of every election
	// connection it opens; "" means the election listener's address.
	ElectionAddr string
	// Peers are the other servers by id. Other ids may connect too, as
	// ZooKeeper lets them: a server about to join (or a removed one)
	// exchanges notifications while connected and syncs as a learner
	// without a vote; the engine decides what it counts.
	Peers map[int64]Peer
	// Config is the ensemble's config string (zklink.ConfigString), sent
	// in notifications and NEWLEADER when Book is nil.
	Config []byte
	// Book, when set, gives the members' addresses (zklink.Book, safe for
	// concurrent use): notifications then carry the engine's active
	// configuration as ZooKeeper's string (and, to a peer known to be
	// zabkeeper, the pending one after it), a leader's NEWLEADER its
	// last-seen one, and a learner's engine gets the leader's from
	// NEWLEADER (zklink, reconfig.go), as ZooKeeper's servers do once a
	// reconfig changed the configuration. Nil: the static Config
	// everywhere (a server without reconfig).
	Book zklink.Book
	// LearnConfig, when set, is given the config string of a received
	// notification from a configured peer whose version is newer than any
	// this transport has seen (its active one, SetConfigVersion, or an
	// earlier notification's)
	// and returns the other members' addresses in it, which the transport
	// adds to its peers (AddPeers) before the notification reaches the
	// engine. ZooKeeper's FastLeaderElection adopts a newer configuration
	// from a notification the same way: a server restarted from an older
	// dynamic file can then reach the members that joined while it was
	// away, and accept their election connections. The caller records the
	// addresses in Book too, so its notifications can print the
	// configuration. Called from the transport's goroutines.
	LearnConfig func(config []byte) (map[int64]Peer, error)
	// TickTime, InitLimit and SyncLimit set the read timeouts (zoo.cfg).
	TickTime             time.Duration
	InitLimit, SyncLimit int
	// MaxPacket bounds a quorum packet's data (jute.maxbuffer plus
	// ZooKeeper's extra); 0 means quorum.DefaultMaxData.
	MaxPacket int
	// SpoolDir receives SNAP bodies; "" means the system's temporary
	// directory. MaxSnapshot bounds one (0: netstub.DefaultMaxSnapshot).
	SpoolDir    string
	MaxSnapshot int64
	// Logger receives connection events; nil discards them.
	Logger *slog.Logger
	// Resolver looks peer host names up again on every dial (nil:
	// net.DefaultResolver).
	Resolver netstub.Resolver
	// TLS, if set, wraps both ports in mutual TLS (sslQuorum).
	TLS *netstub.PeerTLS
	// Caps are the zabkeeper extensions this server announces on every
	// quorum-port link, in a hello ZooKeeper ignores (zklink, caps.go); a
	// link has those its peer announced too. Zero: no hello, exactly a
	// ZooKeeper server's packets.
	Caps zab.Caps
}

// Tunables.
const (
	recvBuffer   = 4096
	dialTimeout  = 5 * time.Second // zookeeper.cnxTimeout
	writeTimeout = 10 * time.Second
	bufSize      = 64 << 10
)

// Transport is the peer transport over ZooKeeper's two ports. All methods
// are safe for concurrent use.
type Transport struct {
	cfg    Config
	id     int64
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	recv   chan zab.Message
	done   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once

	mu     sync.Mutex
	closed bool
	peers  map[int64]Peer
	// activeConfig is the active configuration's version
	// (SetConfigVersion); newestConfig the newest seen, the active one or
	// a notification's (LearnConfig).
	activeConfig, newestConfig int64
	el                         map[int64]*elPeer
	// zk is the quorum-port connection table and its rules, the one the
	// simulator keeps too; ql holds the running link of each of its
	// connections, no more and no less.
	zk    *zklink.Conns
	ql    map[*zklink.Conn]*qLink
	conns map[net.Conn]struct{}
	// downing holds, by peer, the MsgLinkDown of a quorum link on its way
	// to the engine (closed once delivered); a link with that peer opened
	// meanwhile delivers nothing before it (qLink.deliver).
	downing map[int64]chan struct{}
	// nonce is this instance's, sent in every hello; dup applies the
	// duplicate-id rule to the nonces of learners' hellos (quorum.go).
	nonce uint64
	dup   netstub.DupIDs
	// native records, by peer id, whether the last quorum link's
	// handshake with it carried a hello (a zabkeeper peer): notifications
	// to it carry the pending configuration too.
	native map[int64]bool

	// batchMu serializes SendBatch, whose buffers batch are.
	batchMu sync.Mutex
	batch   sendBuffers

	tlsFail tlsFailures // TLS handshake failures with peers dialed, logged once

	// testHook, when set (tests), is called at the points hookEvent names.
	testHook atomic.Pointer[func(hookEvent, int64)]
}

// hookEvent names a point of a quorum link's life a test can hold.
type hookEvent int

const (
	hookEnded     hookEvent = iota // a link ended, not closed by this side
	hookLinkDown                   // its MsgLinkDown is about to go to the engine
	hookEndedDone                  // ended is done with it
	hookWaitPrev                   // a link waits for an older one's MsgLinkDown to go first
	// hookStrangerDropped: the election link of a server outside the
	// peer set was dropped (called with t.mu held).
	hookStrangerDropped
)

func (t *Transport) hook(ev hookEvent, peer int64) {
	if f := t.testHook.Load(); f != nil {
		(*f)(ev, peer)
	}
}

var _ netstub.Transport = (*Transport)(nil)

// New starts listening on both ports and connecting to the peers'
// election ports as notifications are sent.
func New(cfg Config) (*Transport, error) {
	if cfg.ElectionListener == nil || cfg.QuorumListener == nil {
		return nil, errors.New("zktcp: both listeners are required")
	}
	if cfg.TickTime <= 0 || cfg.InitLimit <= 0 || cfg.SyncLimit <= 0 {
		return nil, fmt.Errorf("zktcp: tickTime %v, initLimit %d, syncLimit %d must be positive", cfg.TickTime, cfg.InitLimit, cfg.SyncLimit)
	}
	if cfg.ElectionAddr == "" {
		cfg.ElectionAddr = cfg.ElectionListener.Addr().String()
	}
	if cfg.SpoolDir == "" {
		cfg.SpoolDir = os.TempDir()
	}
	if cfg.MaxSnapshot <= 0 {
		cfg.MaxSnapshot = netstub.DefaultMaxSnapshot
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Transport{
		cfg: cfg, id: cfg.ID, log: log.With("id", cfg.ID), ctx: ctx, cancel: cancel,
		recv: make(chan zab.Message, recvBuffer), done: make(chan struct{}),
		el: map[int64]*elPeer{}, zk: zklink.NewConns(cfg.ID, cfg.Config), ql: map[*zklink.Conn]*qLink{},
		conns: map[net.Conn]struct{}{}, nonce: netstub.NewNonce(), native: map[int64]bool{},
		downing: map[int64]chan struct{}{},
	}
	t.zk.Announce(cfg.Caps, int64(t.nonce))
	if cfg.Book != nil {
		t.zk.SetBook(cfg.Book)
	}
	t.wg.Add(2)
	go t.acceptLoop(cfg.ElectionListener, t.serveElection)
	go t.acceptLoop(cfg.QuorumListener, t.serveLearner)
	t.SetPeers(cfg.Peers)
	return t, nil
}

// ElectionAddr and QuorumAddr return the listeners' addresses.
func (t *Transport) ElectionAddr() net.Addr { return t.cfg.ElectionListener.Addr() }

// QuorumAddr returns the quorum listener's address.
func (t *Transport) QuorumAddr() net.Addr { return t.cfg.QuorumListener.Addr() }

// SetPeers replaces the peer set (tests bind every server to port 0 first,
// then tell each where the others are). A peer no longer listed loses its
// links. Peers learned from notifications (LearnConfig) are forgotten too,
// so the next notification carrying a configuration newer than the active
// one is learned again. The election link of a server outside the old
// peer set (elPeer) stays while it is connected; listed, it becomes a
// peer's.
func (t *Transport) SetPeers(peers map[int64]Peer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.newestConfig = t.activeConfig
	old := t.peers
	t.peers = map[int64]Peer{}
	for id, p := range peers {
		if id != t.id {
			t.peers[id] = p
		}
	}
	for id, p := range t.el {
		_, listed := t.peers[id]
		_, was := old[id]
		if !listed && was {
			delete(t.el, id)
			p.stop()
		}
	}
	for id := range t.peers {
		if !t.startElPeerLocked(id) {
			signal(t.el[id].wake)
		}
	}
}

// startElPeerLocked starts the election link of peer id unless it has one;
// it reports whether it started one. t.mu is held.
func (t *Transport) startElPeerLocked(id int64) bool {
	if t.el[id] != nil {
		return false
	}
	p := newElPeer(id)
	t.el[id] = p
	t.wg.Add(1)
	go t.runElection(p)
	return true
}

// AddPeers adds peers to the peer set, or gives known ones a new address;
// unlike SetPeers it drops none. An election link to a peer whose address
// changed redials with the new one when it next connects.
func (t *Transport) AddPeers(peers map[int64]Peer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	for id, p := range peers {
		if id == t.id {
			continue
		}
		t.peers[id] = p
		t.startElPeerLocked(id)
	}
}

// learnConfig hands the config string of a notification whose version is
// newer than any seen to Config.LearnConfig and adds the peers it names.
func (t *Transport) learnConfig(m zab.Message, frame []byte) {
	if t.cfg.LearnConfig == nil || len(m.Payload) == 0 {
		return
	}
	active, _, err := zab.DecodeConfigs(m.Payload)
	if err != nil {
		return
	}
	t.mu.Lock()
	// Only a configured peer teaches addresses: a server outside the peer
	// set may connect (a joiner), but not reroute this server's links.
	_, known := t.peers[m.From]
	newer := known && active.Version > t.newestConfig
	if newer {
		t.newestConfig = active.Version
	}
	t.mu.Unlock()
	if !newer {
		return
	}
	n, err := quorum.DecodeNotification(frame)
	if err != nil {
		return // DecodeNotification read it a moment ago
	}
	peers, err := t.cfg.LearnConfig(n.Config)
	if err != nil {
		t.log.Warn("a notification's newer configuration names no addresses to reach its members", "from", m.From,
			"version", fmt.Sprintf("%x", active.Version), "err", err)
		return
	}
	t.AddPeers(peers)
}

// encodeNotification encodes m for the election port: with a Book, its
// configurations rendered with it (zklink.EncodeNotificationTo; the
// pending one too when extended, the peer being zabkeeper); when the book
// lacks a member's address, the static Config with a warning rather than
// no notification (a vote that does not go out can keep an election from
// ending).
func (t *Transport) encodeNotification(m zab.Message, extended bool) ([]byte, error) {
	b, err := zklink.EncodeNotificationTo(m, t.cfg.Book, t.cfg.Config, extended)
	if err == nil {
		return b, nil
	}
	t.log.Warn("notification sent with the startup configuration", "to", m.To, "err", err)
	return zklink.EncodeNotification(m, t.cfg.Config)
}

// SetRole tells the transport what the engine does (zab's Status after a
// Ready whose RoleChanged is set): a learner link to anyone but leader
// closes, and learners' links close once this server no longer leads or
// looks. Links closed here deliver no MsgLinkDown: the engine has moved on.
func (t *Transport) SetRole(role zab.Role, leader int64) {
	t.mu.Lock()
	prev := t.zk.Role()
	var closing []*qLink
	for _, c := range t.zk.SetRole(role, leader) {
		closing = append(closing, t.forgetLocked(c))
	}
	t.mu.Unlock()
	if prev != role {
		t.log.Debug("peer role", "role", role, "leader", leader)
	}
	for _, l := range closing {
		l.closeAfterFlush()
	}
}

// Send queues m for m.To with From set to this server; it never blocks.
// Notifications go on the election link, everything else on the quorum
// link with m.To (a MsgFollowerInfo opens a new one to the leader).
// Messages for a peer without such a link are dropped.
func (t *Transport) Send(m zab.Message) { t.SendBatch([]zab.Message{m}) }

// SendBatch sends msgs as Send would one after the other, and never
// blocks. The quorum packets of the batch that go to one link go out
// together, in order, in one write when its writer is idle (qLink's
// sendBatch), instead of one write(2) each: a leader's Ready carries a
// PROPOSAL or COMMIT per txn for every follower. Every message of the
// batch is routed under one hold of t.mu, so all those to one peer take
// the same link. A MsgFollowerInfo, which opens a new link, sends what the
// batch holds before it first, so a message after it goes on the new
// link, as with Send. It keeps no reference to msgs' array once it
// returns: the packets are encoded from copies of the messages, so the
// caller may reuse the array.
func (t *Transport) SendBatch(msgs []zab.Message) {
	// One batch at a time, in buffers kept for the next one (the
	// server's loop sends one per Ready).
	t.batchMu.Lock()
	defer t.batchMu.Unlock()
	b := &t.batch
	defer b.reset()
	for len(msgs) > 0 {
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return
		}
		i := 0
	route:
		for ; i < len(msgs); i++ {
			m := &msgs[i]
			switch m.Type {
			case zab.MsgNotification:
				if p := t.el[m.To]; p != nil {
					b.notes = append(b.notes, note{p, t.native[m.To], i})
				}
				continue
			case zab.MsgLinkDown:
				continue
			case zab.MsgFollowerInfo:
				break route
			}
			l := t.ql[t.zk.Route(m.To)] // nil without a connection
			if l == nil {
				t.log.Debug("dropping message: no quorum link", "to", m.To, "type", m.Type)
				continue
			}
			g := 0
			for g < len(b.links) && b.links[g].l != l {
				g++
			}
			if g == len(b.links) {
				if g < cap(b.links) {
					b.links = b.links[:g+1]
					b.links[g].l = l
				} else {
					b.links = append(b.links, linkBatch{l: l})
				}
			}
			b.links[g].idx = append(b.links[g].idx, i)
		}
		t.mu.Unlock()
		for _, n := range b.notes {
			m := msgs[n.i]
			m.From = t.id
			enc, err := t.encodeNotification(m, n.native)
			if err != nil {
				t.log.Error("dropping notification", "to", m.To, "err", err)
				continue
			}
			n.p.queue(enc)
		}
		for _, g := range b.links {
			g.l.sendBatch(t.id, msgs, g.idx)
		}
		b.reset()
		if i == len(msgs) {
			return
		}
		m := msgs[i]
		m.From = t.id
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return
		}
		t.startLearnerLocked(m) // unlocks
		msgs = msgs[i+1:]
	}
}

// sendBuffers are SendBatch's, kept for the next batch.
type sendBuffers struct {
	notes []note      // notifications, by index in the batch
	links []linkBatch // quorum links in order of first use, few
}

// note is a notification of a batch for an election link.
type note struct {
	p      *elPeer
	native bool
	i      int
}

// linkBatch is the messages of one batch for one quorum link, by index.
type linkBatch struct {
	l   *qLink
	idx []int
}

// reset empties the buffers, keeping their index slices, and forgets the
// links.
func (b *sendBuffers) reset() {
	clear(b.notes)
	b.notes = b.notes[:0]
	for i := range b.links {
		b.links[i].l = nil
		b.links[i].idx = b.links[i].idx[:0]
	}
	b.links = b.links[:0]
}

// SetConfigVersion tells the transport the version of this server's
// active configuration (zab's Status.ConfigVersion), after every change: a
// learner's FOLLOWERINFO carries it, and a learner whose FOLLOWERINFO
// carries a newer one is refused, as ZooKeeper's LearnerHandler does
// (zklink.ErrConfigAhead). Never called, a learner sends 0 and a leader
// refuses none.
func (t *Transport) SetConfigVersion(v int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.zk.SetConfigVersion(v)
	t.activeConfig = v
	t.newestConfig = max(t.newestConfig, v)
}

// forgetStrangerKindLocked forgets what peer's handshake said of its kind
// when peer is outside the peer set and has no link left: a server that
// synced without being added leaves nothing behind. t.mu is held.
func (t *Transport) forgetStrangerKindLocked(peer int64) {
	if _, known := t.peers[peer]; !known && t.el[peer] == nil && t.zk.Route(peer) == nil {
		delete(t.native, peer)
	}
}

// notePeerKind records whether peer's quorum-port handshake carried a
// hello (zabkeeper) or not (ZooKeeper).
func (t *Transport) notePeerKind(peer int64, native bool) {
	t.mu.Lock()
	t.native[peer] = native
	t.mu.Unlock()
}

// PeerCaps returns the capabilities of the quorum-port link to peer (what
// both hellos carry; zero for a ZooKeeper peer or before its handshake
// packet arrived); ok is false without a link.
func (t *Transport) PeerCaps(peer int64) (caps zab.Caps, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.ql[t.zk.Route(peer)]
	if l == nil {
		return 0, false
	}
	return l.caps(), true
}

// DuplicateIDs returns, sorted, the server ids that two live processes use
// as far as this server's ports tell: learners whose hellos carry two
// nonces taking turns (netstub's duplicate-id rule), and this server's own
// id while another process connects claiming it (claimedOwnID). Each case
// was logged at Error.
func (t *Transport) DuplicateIDs() []int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dup.Duplicates(t.id, time.Now())
}

// Recv returns the channel of messages from peers, MsgLinkDown included;
// Close closes it.
func (t *Transport) Recv() <-chan zab.Message { return t.recv }

// Close closes both listeners and every link, waits for every goroutine,
// then closes Recv. It is idempotent.
func (t *Transport) Close() error {
	t.once.Do(func() {
		t.mu.Lock()
		t.closed = true
		els := t.el
		links := []*qLink{}
		for _, c := range t.zk.All() {
			links = append(links, t.ql[c])
		}
		conns := make([]net.Conn, 0, len(t.conns))
		for c := range t.conns {
			conns = append(conns, c)
		}
		t.mu.Unlock()
		close(t.done)
		t.cancel()
		_ = t.cfg.ElectionListener.Close()
		_ = t.cfg.QuorumListener.Close()
		for _, p := range els {
			p.stop()
		}
		for _, l := range links {
			l.close(true)
		}
		for _, c := range conns {
			_ = c.Close()
		}
		t.wg.Wait()
		close(t.recv)
	})
	return nil
}

// deliver hands m to Recv, blocking while it is full; false once closing.
func (t *Transport) deliver(m zab.Message) bool {
	select {
	case t.recv <- m:
		return true
	case <-t.done:
		return false
	}
}

func (t *Transport) stopping() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// track remembers an accepted or dialed connection for Close; false (and
// c closed) when closing.
func (t *Transport) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		_ = c.Close()
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *Transport) untrack(c net.Conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

func (t *Transport) acceptLoop(ln net.Listener, serve func(net.Conn)) {
	defer t.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if t.stopping() {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			t.log.Error("accept failed", "addr", ln.Addr().String(), "err", err)
			select {
			case <-time.After(netstub.BackoffMin):
				continue
			case <-t.done:
				return
			}
		}
		if !t.track(c) {
			return
		}
		if err := netstub.TuneAccepted(c); err != nil {
			t.log.Debug("accepted connection keeps the kernel's retransmission limit", "remote", c.RemoteAddr().String(), "err", err)
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			defer t.untrack(c)
			defer c.Close()
			serve(c)
		}()
	}
}

// accept runs the TLS side of an accepted connection, if configured.
func (t *Transport) accept(c net.Conn) (net.Conn, func(int64) error, error) {
	if t.cfg.TLS == nil {
		return c, func(int64) error { return nil }, nil
	}
	stream, tc, err := t.cfg.TLS.AcceptTLS(t.ctx, c)
	if err != nil {
		return nil, nil, withTLSReason(err)
	}
	verify := func(peer int64) error {
		if tc == nil || t.cfg.TLS.VerifyPeer == nil {
			return nil
		}
		if err := t.cfg.TLS.VerifyPeer(peer, c.RemoteAddr(), tc.ConnectionState()); err != nil {
			return fmt.Errorf("TLS certificate does not match peer %d: %w", peer, err)
		}
		return nil
	}
	return stream, verify, nil
}

// dial connects to peer at addr, TLS included.
func (t *Transport) dial(peer int64, addr string) (net.Conn, error) {
	c, host, err := netstub.DialPeer(t.ctx, t.cfg.Resolver, addr, dialTimeout)
	if err != nil {
		return nil, err
	}
	if t.cfg.TLS != nil {
		if c, err = t.dialTLS(c, peer, host); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// reason names why a link closed, for the log line.
func reason(err error) string {
	switch {
	case errors.Is(err, zklink.ErrConfigAhead):
		return "reconfig"
	case errors.Is(err, quorum.ErrTooLarge):
		return "too large"
	case errors.Is(err, quorum.ErrVersion):
		return "unsupported version"
	case errors.Is(err, quorum.ErrMalformed):
		return "malformed"
	case errors.Is(err, io.EOF):
		return "closed by peer"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "read timeout"
	}
	return "connection error"
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// claimedOwnID records a connection from another process that says it is
// this server (a copied myid), on either port, logging the episode's
// first at Error; the connection is then closed. nonce is its hello's, 0
// without one (a ZooKeeper server, or the election port).
func (t *Transport) claimedOwnID(port, remote string, nonce uint64) {
	t.mu.Lock()
	first := t.dup.ClaimOwn(t.id, nonce, remote, time.Now())
	t.mu.Unlock()
	if first {
		t.log.Error(fmt.Sprintf("two servers are running with id %d (this one and the one at %s): fix myid", t.id, remote),
			"port", port, "remote", remote, "nonce", netstub.FormatNonce(nonce), "own_nonce", netstub.FormatNonce(t.nonce))
	}
}
