package zktcp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/zabkeeper/zabkeeper/engine/zab"
	"github.com/zabkeeper/zabkeeper/internal/nbwrite"
	"github.com/zabkeeper/zabkeeper/internal/procs"
	"github.com/zabkeeper/zabkeeper/internal/rawread"
	"github.com/zabkeeper/zabkeeper/netstub"
	"github.com/zabkeeper/zabkeeper/netstub/zklink"
	"github.com/zabkeeper/zabkeeper/proto/quorum"
)

// qItem is one packet to write; a SNAP carries the snapshot whose bytes
// follow it on the stream.
type qItem struct {
	p    quorum.Packet
	snap zab.SnapshotData
	// raw, when set, is the unwritten rest of a packet the sender began
	// writing itself (trySend); it goes out as it is, before the rest.
	raw []byte
}

// qLink runs one leader/learner connection of the table (t.zk) on the
// quorum port.
type qLink struct {
	t    *Transport
	zc   *zklink.Conn // its entry in t.zk
	peer int64
	wake chan struct{}
	done chan struct{} // closed by close

	mu     sync.Mutex
	link   *zklink.Link
	out    []qItem
	conn   net.Conn
	closed bool
	quiet  bool // closed by this side: no MsgLinkDown
	// draining: this side moved on, but what is queued still goes out
	// before the link closes (closeAfterFlush).
	draining bool
	// idle: the writer goroutine has nothing queued or buffered and waits
	// for a wake-up. Then a sender may write a packet on the socket
	// itself (trySend), under mu, which keeps the writer out meanwhile.
	idle bool
	// raw is the plain TCP socket of the link (nil over TLS or before it
	// runs), for trySend's non-blocking write.
	raw syscall.RawConn
	// nbw is trySend's writer on raw, kept so a write allocates nothing
	// (nbwrite.Write builds a writer and its closure per call). Under mu.
	nbw nbwrite.Writer
	// direct counts trySendLocked's writes, directPackets the packets
	// they carried, partial the writes the socket took only part of
	// (tests).
	direct, directPackets, partial int
	// pkts and scratch are sendBatch's and trySendLocked's buffers, kept
	// for the next batch.
	pkts    []quorum.Packet
	scratch []byte

	// replaced: a newer connection with the peer took this one's place
	// in t.zk (addLocked); its end is then no news to the engine, which
	// may already hold what the newer one brought. Guarded by t.mu.
	replaced bool
	// after, when set, is closed once the MsgLinkDown of an older link
	// with the same peer is delivered: this link delivers nothing before
	// (deliver). Set under t.mu before the link runs; used by the link's
	// own goroutine only.
	after chan struct{}
}

// addLocked starts the qLink of c, a connection t.zk just opened, and
// returns the qLink of old, the one c replaces (nil if none), which t.zk
// no longer holds. t.mu is held.
func (t *Transport) addLocked(c, old *zklink.Conn) (l, prev *qLink) {
	l = &qLink{t: t, zc: c, peer: c.Peer(), link: c.Link, wake: make(chan struct{}, 1), done: make(chan struct{})}
	l.after = t.downing[l.peer]
	t.ql[c] = l
	if old != nil {
		prev = t.forgetLocked(old)
		if prev != nil {
			prev.replaced = true
		}
	}
	return l, prev
}

// deliver passes m to the engine once the MsgLinkDown of the link this
// one follows, if one is on its way, went first: a learner's new
// FOLLOWERINFO must not reach the leader's engine before the end of the
// link it replaces, which would make the engine forget it. false: the
// transport is closing.
func (l *qLink) deliver(m zab.Message) bool {
	if l.after != nil {
		l.t.hook(hookWaitPrev, l.peer)
		select {
		case <-l.after:
		case <-l.t.done:
			return false
		}
		l.after = nil
	}
	return l.t.deliver(m)
}

// forgetLocked returns the qLink of c, which t.zk no longer holds, and
// forgets it. t.mu is held.
func (t *Transport) forgetLocked(c *zklink.Conn) *qLink {
	l := t.ql[c]
	delete(t.ql, c)
	return l
}

// send encodes m through the link's translator and queues the packets.
func (l *qLink) send(m zab.Message) { l.sendBatch(m.From, []zab.Message{m}, []int{0}) }

// sendBatch encodes the messages of msgs at the indices idx, in order and
// with From set to from, through the link's translator and sends the
// packets: those the writer can take from the sender go out
// back to back in one direct write (trySendLocked), the rest are queued
// behind them. A message the link's capabilities forbid is dropped; one
// that cannot be encoded closes the link once the packets before it went.
func (l *qLink) sendBatch(from int64, msgs []zab.Message, idx []int) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	pkts := l.pkts[:0]
	var snaps map[int]zab.SnapshotData // by index in pkts, for SNAP packets
	var bad error
	var badType zab.MsgType
	for _, i := range idx {
		m := msgs[i]
		m.From = from
		n := len(pkts)
		var err error
		pkts, err = l.link.EncodeAppend(pkts, m)
		if errors.Is(err, zklink.ErrNotNegotiated) {
			pkts = pkts[:n]
			l.t.log.Error("bug: the engine sent what this link's capabilities forbid; dropped", "peer", l.peer, "type", m.Type, "err", err)
			continue
		}
		if err != nil {
			pkts = pkts[:n]
			bad, badType = err, m.Type
			break
		}
		for j := n; j < len(pkts); j++ {
			if pkts[j].Type == quorum.Snap {
				if snaps == nil {
					snaps = map[int]zab.SnapshotData{}
				}
				snaps[j] = m.Snapshot
			}
		}
	}
	queued := l.pushLocked(pkts, snaps)
	clear(pkts) // no packet data kept alive by the scratch slice
	if cap(pkts) <= maxScratchPackets {
		l.pkts = pkts[:0]
	}
	l.mu.Unlock()
	if queued {
		signal(l.wake)
	}
	if bad != nil {
		l.t.log.Error("closing quorum link: cannot encode", "peer", l.peer, "type", badType, "err", bad)
		l.close(false)
	}
}

// pushLocked sends pkts in order: the leading ones the sender may write
// itself in one direct write (trySendLocked), the rest queued for the
// writer, SNAPs with their snapshot from snaps (by index in pkts). It
// reports whether anything was queued (the writer must be woken). l.mu is
// held.
func (l *qLink) pushLocked(pkts []quorum.Packet, snaps map[int]zab.SnapshotData) (queued bool) {
	sent := l.trySendLocked(pkts)
	for j := sent; j < len(pkts); j++ {
		l.out = append(l.out, qItem{p: pkts[j], snap: snaps[j]})
	}
	return sent < len(pkts)
}

// Scratch bounds: a link keeps its batch buffers for the next batch up to
// these sizes.
const (
	maxScratchPackets = 1024
	maxScratchBytes   = 256 << 10
)

// trySendLocked writes the leading packets of pkts on the socket from the
// sender's goroutine (the server's event loop) when the link's writer is
// idle: PROPOSALs, ACKs or COMMITs then reach the peer without waking the
// writer goroutine, one goroutine hand-off less on every hop of a write's
// quorum round, and all those of one batch in one write(2). It takes
// packets up to the first it must leave to the writer (a SNAP, whose body
// follows, or one over the limit, which the writer refuses with its
// error) and returns how many it took; the caller queues the rest behind.
// The write never blocks: what the socket does not take at once (its send
// buffer is full) is queued for the writer ahead of anything else, as is
// everything after an error, which the writer then meets and ends the link
// on. 0: nothing was touched (the writer is busy, TLS). l.mu is held.
func (l *qLink) trySendLocked(pkts []quorum.Packet) int {
	if len(pkts) == 0 || !l.idle || l.raw == nil || l.closed || l.draining || len(l.out) > 0 {
		return 0
	}
	limit := l.t.cfg.MaxPacket
	if limit <= 0 {
		limit = quorum.DefaultMaxData
	}
	k, size := 0, 0
	for k < len(pkts) && pkts[k].Type != quorum.Snap && len(pkts[k].Data) <= limit {
		size += pkts[k].Len()
		k++
	}
	if k == 0 {
		return 0
	}
	buf := l.scratch[:0]
	if cap(buf) < size {
		buf = make([]byte, 0, size)
	}
	for i := range k {
		buf = pkts[i].Append(buf)
	}
	n, err := l.nbw.Write(l.raw, buf)
	l.direct++
	l.directPackets += k
	if n == len(buf) && err == nil {
		if cap(buf) <= maxScratchBytes {
			l.scratch = buf[:0]
		}
		return k
	}
	l.partial++
	// The rest's first packet, for the writer's log line.
	first, off := 0, 0
	for first < k-1 && off+pkts[first].Len() <= n {
		off += pkts[first].Len()
		first++
	}
	if err != nil {
		// Let the writer meet it: it logs the failure and ends the link.
		l.t.log.Debug("quorum link: direct write failed; the writer retries", "peer", l.peer, "packet", pkts[first].Type, "err", err)
	}
	l.scratch = nil // buf's rest is queued
	l.out = append(l.out, qItem{p: quorum.Packet{Type: pkts[first].Type, Zxid: pkts[first].Zxid}, raw: buf[n:]})
	l.idle = false
	signal(l.wake)
	return k
}

// close ends the link; quiet (this side moved on) suppresses MsgLinkDown.
func (l *qLink) close(quiet bool) {
	l.mu.Lock()
	if !l.closed {
		l.closed, l.quiet = true, quiet
		close(l.done)
	}
	c := l.conn
	l.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

// closeAfterFlush ends the link quietly once the packets already queued
// are written: a leader that steps down (a reconfig removed it, or it
// handed over) has just queued the COMMITANDACTIVATE or TIMEOUTNOW its
// learners act on, which closing at once would drop. The write deadline
// bounds the wait for a peer that does not read.
func (l *qLink) closeAfterFlush() {
	l.mu.Lock()
	if l.closed || l.conn == nil {
		l.mu.Unlock()
		l.close(true)
		return
	}
	l.draining = true
	l.mu.Unlock()
	signal(l.wake)
}

// drained reports whether the link is draining (closeAfterFlush).
func (l *qLink) drained() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.draining
}

// attach records the connection; false (c closed) if the link closed.
func (l *qLink) attach(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		_ = c.Close()
		return false
	}
	l.conn = c
	return true
}

// caps returns the link's capabilities (zero until the peer's handshake
// packet arrived).
func (l *qLink) caps() zab.Caps {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.link.Caps()
}

// urgent tells the packets that may overtake a streamed SNAP body, as
// zabkeeper's former one-port transport let heartbeats overtake its stream.
func urgent(t quorum.PacketType) bool { return t == quorum.Ping || t == quorum.TimeoutNow }

// popUrgent pops the first urgent packet queued, if any.
func (l *qLink) popUrgent() (qItem, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, it := range l.out {
		if it.raw == nil && urgent(it.p.Type) {
			l.out = slices.Delete(l.out, i, i+1)
			return it, true
		}
	}
	return qItem{}, false
}

func (l *qLink) pop() (qItem, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.out) == 0 {
		return qItem{}, false
	}
	it := l.out[0]
	l.out[0] = qItem{}
	l.out = l.out[1:]
	l.idle = false
	return it, true
}

// rest waits for a wake-up unless something is queued: the writer is idle
// meanwhile, so a sender may write on the socket itself (trySendLocked).
// false: the link is done.
func (l *qLink) rest() bool {
	l.mu.Lock()
	if len(l.out) > 0 {
		l.mu.Unlock()
		return true
	}
	l.idle = true
	l.mu.Unlock()
	select {
	case <-l.wake:
	case <-l.done:
		l.mu.Lock()
		l.idle = false
		l.mu.Unlock()
		return false
	}
	l.mu.Lock()
	l.idle = false
	l.mu.Unlock()
	return true
}

// setRaw records the link's plain TCP socket for trySendLocked; nil (TLS,
// or the link ended) turns the direct writes off.
func (l *qLink) setRaw(c net.Conn) {
	var raw syscall.RawConn
	if c != nil {
		raw = nbwrite.Raw(c)
	}
	l.mu.Lock()
	l.raw = raw
	l.mu.Unlock()
}

// readTimeout is ZooKeeper's: initLimit ticks until the sync ended,
// syncLimit ticks after.
func (l *qLink) readTimeout() time.Duration {
	l.mu.Lock()
	synced := l.link.Synced()
	l.mu.Unlock()
	cfg := l.t.cfg
	if synced {
		return time.Duration(cfg.SyncLimit) * cfg.TickTime
	}
	return time.Duration(cfg.InitLimit) * cfg.TickTime
}

// ended logs why the link ended and tells the engine, unless this side
// closed it.
func (l *qLink) ended(err error) {
	l.close(false)
	l.mu.Lock()
	quiet := l.quiet
	l.mu.Unlock()
	if quiet || l.t.stopping() {
		return
	}
	// The end is news only while no newer link with the peer replaced
	// this one; then a link that replaces it later delivers nothing
	// before this MsgLinkDown (downing, deliver). Both are decided under
	// t.mu, so the engine hears the old link's end before anything of
	// the new one, or not at all.
	t := l.t
	t.hook(hookEnded, l.peer)
	defer t.hook(hookEndedDone, l.peer)
	t.mu.Lock()
	if l.replaced {
		t.mu.Unlock()
		t.log.Debug("quorum link down after a newer one replaced it", "peer", l.peer, "side", l.link.Side(), "err", err)
		return
	}
	sent := make(chan struct{})
	t.downing[l.peer] = sent
	t.mu.Unlock()
	t.log.Warn("quorum link down", "peer", l.peer, "side", l.link.Side(), "reason", reason(err), "err", err)
	t.hook(hookLinkDown, l.peer)
	l.deliver(zab.Message{Type: zab.MsgLinkDown, From: l.peer, To: t.id})
	// A failed link is not ours to retry: the engine goes back to
	// election (learner) or forgets the learner (leader).
	t.mu.Lock()
	if t.zk.Has(l.zc) {
		t.zk.Drop(l.zc)
		t.forgetLocked(l.zc)
	}
	if t.downing[l.peer] == sent {
		delete(t.downing, l.peer)
	}
	t.forgetStrangerKindLocked(l.peer)
	t.mu.Unlock()
	close(sent)
}

// ---- learner side ----

// startLearnerLocked opens a new link to the leader m.To, replacing any
// learner link, and queues m (FOLLOWERINFO/OBSERVERINFO) on it. t.mu is
// held on entry and released.
func (t *Transport) startLearnerLocked(m zab.Message) {
	l, old := t.addLocked(t.zk.Dial(m.To))
	addr := t.peers[m.To].QuorumAddr
	t.wg.Add(1)
	t.mu.Unlock()
	if old != nil {
		old.close(true)
	}
	l.send(m)
	go t.runLearner(l, addr)
}

// runLearner dials the leader (retrying for initLimit·tickTime, as
// ZooKeeper's Learner.connectToLeader), then runs the link.
func (t *Transport) runLearner(l *qLink, addr string) {
	defer t.wg.Done()
	deadline := time.Now().Add(time.Duration(t.cfg.InitLimit) * t.cfg.TickTime)
	var backoff netstub.Backoff
	var c net.Conn
	for {
		var err error
		if c, err = t.dial(l.peer, addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			l.ended(fmt.Errorf("connect to leader at %s: %w", addr, err))
			return
		}
		t.log.Debug("connect to leader failed", "peer", l.peer, "addr", addr, "err", err)
		timer := time.NewTimer(backoff.Next())
		select {
		case <-timer.C:
		case <-l.done:
			timer.Stop()
			l.ended(errClosedEarly) // tells the engine unless this side moved on
			return
		}
	}
	if !t.track(c) {
		return
	}
	defer t.untrack(c)
	if !l.attach(c) {
		l.ended(errClosedEarly)
		return
	}
	t.log.Info("quorum link to leader up", "peer", l.peer, "addr", addr)
	t.runLink(l, c, bufio.NewReaderSize(rawread.New(c), bufSize))
}

// errClosedEarly ends a learner link that closed before it connected (an
// engine message it could not encode).
var errClosedEarly = errors.New("link closed before it connected")

// ---- leader side ----

// awaitLeading waits, up to initLimit·tickTime, until this server accepts
// learners, and returns its role then. A learner that counted the votes
// before this server did dials it a moment before it leads; ZooKeeper's
// leader opens its quorum port only then, so the learner's connect is
// refused and retried within initLimit. Here the port is always open, so
// holding the connection for that window is the same contract; closing it
// at once would look to the learner like a leader that failed.
func (t *Transport) awaitLeading() (zab.Role, bool) {
	deadline := time.Now().Add(time.Duration(t.cfg.InitLimit) * t.cfg.TickTime)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		t.mu.Lock()
		role := t.zk.Role()
		t.mu.Unlock()
		if zklink.Accepts(role) {
			return role, true
		}
		if time.Now().After(deadline) {
			return role, false
		}
		select {
		case <-tick.C:
		case <-t.done:
			return role, false
		}
	}
}

// serveLearner handles a connection to the quorum port: a learner that
// sends FOLLOWERINFO or OBSERVERINFO first.
func (t *Transport) serveLearner(c net.Conn) {
	remote := c.RemoteAddr().String()
	if role, ok := t.awaitLeading(); !ok {
		t.log.Info("refused learner connection: not leading", "remote", remote, "role", role)
		return
	}
	stream, verify, err := t.accept(c)
	if err != nil {
		t.log.Warn("refused learner connection", "remote", remote, "err", err)
		return
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Duration(t.cfg.InitLimit) * t.cfg.TickTime))
	// Raw reads (plain TCP): no entersyscall, which wakes sysmon.
	br := bufio.NewReaderSize(rawread.New(stream), bufSize)
	first, err := quorum.ReadPacket(br, t.limits())
	if err == nil && first.Type != quorum.FollowerInfo && first.Type != quorum.ObserverInfo {
		err = fmt.Errorf("%w: first packet %s is not FOLLOWERINFO or OBSERVERINFO", quorum.ErrMalformed, first.Type)
	}
	var li quorum.LearnerInfo
	if err == nil {
		li, err = quorum.DecodeLearnerInfo(&first)
	}
	if err != nil {
		t.log.Warn("closing learner connection", "remote", remote, "reason", reason(err), "err", err)
		return
	}
	if li.Sid == t.id {
		var nonce uint64
		if h, ok := quorum.PacketHello(&first); ok {
			nonce = uint64(h.Nonce)
		}
		t.claimedOwnID("quorum", remote, nonce)
		return
	}
	// A learner outside the peer set (a server about to join, a removed
	// one) is accepted too, as ZooKeeper's LearnerHandler accepts any
	// sid: it syncs as a non-voting follower, so the reconfig that adds
	// it finds it synced, and the engine never counts its acks.
	t.mu.Lock()
	_, known := t.peers[li.Sid]
	t.mu.Unlock()
	if !known {
		t.log.Info("learner connection from a server not in the config: it syncs without a vote", "peer", li.Sid, "remote", remote)
	}
	if err := verify(li.Sid); err != nil {
		t.log.Warn("refused learner connection", "peer", li.Sid, "remote", remote, "err", err)
		return
	}
	if !t.admitNonce(li.Sid, &first, remote) {
		return
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	zc, zold, msgs, err := t.zk.AcceptFirst(li.Sid, first)
	if err != nil || zc == nil {
		t.mu.Unlock()
		if err != nil {
			t.log.Warn("closing learner connection", "peer", li.Sid, "remote", remote, "reason", reason(err), "err", err)
		}
		return
	}
	l, old := t.addLocked(zc, zold)
	t.mu.Unlock()
	if old != nil {
		old.close(true) // the learner started over
	}
	if !l.attach(stream) {
		return
	}
	l.mu.Lock()
	desc, caps := l.link.Describe(), l.link.Caps()
	_, native := l.link.PeerHello()
	l.mu.Unlock()
	t.notePeerKind(li.Sid, native)
	t.log.Info("learner connected: "+desc, "peer", li.Sid, "remote", remote, "observer", first.Type == quorum.ObserverInfo, "caps", zklink.CapsString(caps))
	for _, m := range msgs {
		if !l.deliver(m) {
			return
		}
	}
	t.runLink(l, stream, br)
}

// ---- both sides ----

func (t *Transport) limits() quorum.Limits { return quorum.Limits{MaxData: t.cfg.MaxPacket} }

// writePacket writes p, refusing data over MaxPacket, the read limit of
// every server of the ensemble (jute.maxbuffer plus ZooKeeper's extra, as
// zoo.cfg sets it for all): a proposal of a big znode under a raised
// jute.maxbuffer goes out, one the peer would refuse does not.
func (t *Transport) writePacket(w io.Writer, p *quorum.Packet) error {
	limit := t.cfg.MaxPacket
	if limit <= 0 {
		limit = quorum.DefaultMaxData
	}
	if len(p.Data) > limit {
		return fmt.Errorf("%w: %s data of %d bytes exceeds limit %d", quorum.ErrTooLarge, p.Type, len(p.Data), limit)
	}
	if p.Raw != nil {
		_, err := w.Write(p.Raw) // its encoding, as it is
		return err
	}
	_, err := w.Write(p.Encode())
	return err
}

// runLink writes l's queue on c and delivers what c brings, until either
// side ends; then it reports the end (ended).
func (t *Transport) runLink(l *qLink, c net.Conn, br *bufio.Reader) {
	var writer sync.WaitGroup
	writer.Add(1)
	go func() {
		defer writer.Done()
		if err := t.writeLink(l, c); err != nil {
			_ = c.Close()
		}
	}()
	err := t.readLink(l, c, br)
	_ = c.Close()
	l.close(false) // stops the writer; keeps quiet if already set
	writer.Wait()
	l.setRaw(nil)
	l.ended(err)
}

func (t *Transport) writeLink(l *qLink, c net.Conn) error {
	bw := bufio.NewWriterSize(c, bufSize)
	l.setRaw(c)
	for {
		it, ok := l.pop()
		if !ok {
			if bw.Buffered() > 0 {
				_ = c.SetWriteDeadline(time.Now().Add(writeTimeout))
				if err := bw.Flush(); err != nil {
					return err
				}
				continue
			}
			if l.drained() {
				l.close(true)
				return nil
			}
			if !l.rest() {
				return nil
			}
			continue
		}
		_ = c.SetWriteDeadline(time.Now().Add(writeTimeout + time.Duration((len(it.p.Data)+len(it.raw))>>20)*time.Second))
		if it.raw != nil {
			if _, err := bw.Write(it.raw); err != nil {
				t.log.Warn("quorum link write failed", "peer", l.peer, "packet", it.p.Type, "err", err)
				return err
			}
			continue
		}
		if err := t.writePacket(bw, &it.p); err != nil {
			t.log.Warn("quorum link write failed", "peer", l.peer, "packet", it.p.Type, "err", err)
			return err
		}
		if it.snap != nil {
			// Serializing a large tree is CPU the event loop's P would
			// otherwise share (internal/procs).
			giveBack := procs.Lend()
			err := t.writeSnapBody(l, c, bw, it)
			giveBack()
			if err != nil {
				return err
			}
		}
	}
}

// writeSnapBody sends the body of the SNAP it carries: streamed in chunks
// to a peer that takes them, else as ZooKeeper's unframed body.
func (t *Transport) writeSnapBody(l *qLink, c net.Conn, bw *bufio.Writer, it qItem) error {
	if l.caps()&zab.CapStreamSnap != 0 {
		if err := t.streamSnap(l, c, bw, it); err != nil {
			t.log.Warn("quorum link: streaming SNAP failed", "peer", l.peer, "zxid", fmt.Sprintf("0x%x", it.p.Zxid), "err", err)
			return err
		}
		return nil
	}
	// No framing around the body: the learner reads it within its
	// initLimit·tickTime timeout, ZooKeeper's own limit.
	_ = c.SetWriteDeadline(time.Now().Add(time.Duration(t.cfg.InitLimit) * t.cfg.TickTime))
	n, err := it.snap.WriteTo(bw)
	if err != nil {
		t.log.Warn("quorum link: SNAP body write failed", "peer", l.peer, "zxid", fmt.Sprintf("0x%x", it.p.Zxid), "err", err)
		return err
	}
	t.log.Info("sent SNAP", "peer", l.peer, "zxid", fmt.Sprintf("0x%x", it.p.Zxid), "bytes", n, "streamed", false)
	return nil
}

func (t *Transport) readLink(l *qLink, c net.Conn, br *bufio.Reader) error {
	lim := t.limits()
	var dl readDeadline
	var msgs []zab.Message // reused: deliver sends copies
	for {
		dl.extend(c, l.readTimeout())
		p, err := readPacket(br, lim)
		if err != nil {
			return err
		}
		l.mu.Lock()
		msgs, err = l.link.DecodeAppend(msgs[:0], p)
		desc, native := "", false
		if p.Type == quorum.LeaderInfo && err == nil {
			desc = l.link.Describe()
			_, native = l.link.PeerHello()
		}
		streamed := l.link.Caps()&zab.CapStreamSnap != 0
		l.mu.Unlock()
		if err != nil {
			return err
		}
		if desc != "" {
			t.notePeerKind(l.peer, native)
			t.log.Info("quorum link: the leader is "+desc, "peer", l.peer, "caps", zklink.CapsString(msgs[0].Caps))
		}
		if p.Type == quorum.Snap && len(msgs) == 1 {
			dl = readDeadline{} // the body's reads set their own
			if streamed {
				if msgs[0], err = t.receiveStreamedSnap(l, c, br, msgs[0]); err != nil {
					return err
				}
			} else {
				snap, err := t.spoolSnapshot(l.peer, p.Zxid, br)
				if err != nil {
					return err
				}
				msgs[0].Snapshot = snap
			}
		}
		for _, m := range msgs {
			if !l.deliver(m) {
				if s, ok := m.Snapshot.(*netstub.SpooledSnapshot); ok {
					_ = s.Close()
				}
				return errors.New("closing")
			}
		}
		clear(msgs) // the delivered messages' data is the engine's now
	}
}

// readDeadline sets a link's read deadline at most once per
// deadlineSlack of the timeout instead of once per packet (each set
// re-arms a runtime timer under the poller's lock: about 1% of a leader's
// CPU at a packet per txn from each follower). The deadline is set
// timeout plus up to a sixteenth of it after the last read, never less
// than timeout, so a silent peer is dropped at most that much later.
type readDeadline struct {
	at      time.Time     // the deadline set, zero: none yet
	timeout time.Duration // the timeout it was set for
}

// deadlineSlack is the share of the timeout a deadline may run over.
const deadlineSlack = 16

func (d *readDeadline) extend(c net.Conn, timeout time.Duration) {
	now := time.Now()
	if timeout == d.timeout && !d.at.IsZero() && d.at.Sub(now) >= timeout {
		return
	}
	d.at, d.timeout = now.Add(timeout+timeout/deadlineSlack), timeout
	_ = c.SetReadDeadline(d.at)
}

// errReader returns its error.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// readPacket reads one packet from br as quorum.ReadPacket does, decoding
// it straight from br's buffer when all of it is there (the common case:
// one read brings a burst of proposals or acks), which saves
// ReadPacket's reader per packet.
func readPacket(br *bufio.Reader, lim quorum.Limits) (quorum.Packet, error) {
	if br.Buffered() == 0 {
		if _, err := br.Peek(1); err != nil { // waits for the next bytes
			// Peek took the error from br: ReadPacket words it as if
			// it had met it.
			return quorum.ReadPacket(errReader{err}, lim)
		}
	}
	if b, _ := br.Peek(br.Buffered()); len(b) > 0 {
		decode := quorum.DecodeWhole
		if len(b) >= 4 && quorum.PacketType(binary.BigEndian.Uint32(b)) == quorum.Request {
			// A learner's forwarded REQUEST is passed to the engine as
			// its bytes (zklink's MsgApp payload): one copy of them
			// instead of its data, authinfo and strings decoded and the
			// packet encoded again.
			decode = quorum.DecodeWholeRaw
		}
		if p, n, ok := decode(b, lim); ok {
			_, _ = br.Discard(n)
			return p, nil
		}
	}
	return quorum.ReadPacket(br, lim)
}

// spoolSnapshot copies the SNAP body that follows on br to a file of the
// spool directory, checking its structure as it goes.
func (t *Transport) spoolSnapshot(peer, zxid int64, br *bufio.Reader) (*netstub.SpooledSnapshot, error) {
	f, err := os.CreateTemp(t.cfg.SpoolDir, fmt.Sprintf("snap-from-%d-*.spool", peer))
	if err != nil {
		return nil, fmt.Errorf("spool SNAP 0x%x: %w", zxid, err)
	}
	name := f.Name()
	w := bufio.NewWriterSize(f, 256<<10)
	sum, err := quorum.CopySnapshotBody(w, br, quorum.SnapLimits{MaxBytes: t.cfg.MaxSnapshot, MaxField: t.cfg.MaxPacket})
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(name)
		return nil, fmt.Errorf("SNAP 0x%x body: %w", zxid, err)
	}
	t.log.Info("received SNAP", "peer", peer, "zxid", fmt.Sprintf("0x%x", zxid), "bytes", sum.Bytes, "nodes", sum.Nodes, "sessions", len(sum.Sessions))
	return netstub.NewSpooledSnapshot(name, sum.Bytes), nil
}

// ---- zabkeeper's extras ----

// streamSnap writes the SNAP it and its body in SNAPCHUNK packets (the
// payloads of netstub.StreamSnapshot), writing the urgent packets queued
// meanwhile between chunks: the learner's engine keeps hearing the
// leader's PINGs however long the transfer takes.
func (t *Transport) streamSnap(l *qLink, c net.Conn, bw *bufio.Writer, it qItem) error {
	chunks := 0
	emit := func(payload []byte) error {
		chunks++
		p := quorum.Packet{Type: quorum.SnapChunk, Zxid: it.p.Zxid, Data: payload}
		_ = c.SetWriteDeadline(time.Now().Add(writeTimeout))
		return t.writePacket(bw, &p)
	}
	between := func() error {
		wrote := false
		for {
			u, ok := l.popUrgent()
			if !ok {
				break
			}
			_ = c.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := t.writePacket(bw, &u.p); err != nil {
				return err
			}
			wrote = true
		}
		if wrote {
			return bw.Flush() // the heartbeats go now, not a chunk later
		}
		return nil
	}
	n, err := netstub.StreamSnapshot(it.snap, emit, between)
	if err != nil {
		return fmt.Errorf("SNAP 0x%x: %w", it.p.Zxid, err)
	}
	t.log.Info("sent SNAP", "peer", l.peer, "zxid", fmt.Sprintf("0x%x", it.p.Zxid), "bytes", n, "streamed", true, "chunks", chunks-1)
	return nil
}

// receiveStreamedSnap spools the body of the SNAP hdr from the SNAPCHUNK
// packets that follow on br, delivering the PINGs and TIMEOUTNOWs between
// them (any other packet there is malformed), checks its structure as
// spoolSnapshot does, and returns hdr with the snapshot.
func (t *Transport) receiveStreamedSnap(l *qLink, c net.Conn, br *bufio.Reader, hdr zab.Message) (zab.Message, error) {
	spool := netstub.NewSnapshotSpool(t.cfg.SpoolDir, t.cfg.MaxSnapshot)
	if err := spool.Begin(hdr); err != nil {
		return zab.Message{}, err
	}
	defer spool.Abort() // a no-op once the snapshot is whole
	lim := t.limits()
	chunks, between := 0, 0
	for {
		_ = c.SetReadDeadline(time.Now().Add(l.readTimeout()))
		p, err := quorum.ReadPacket(br, lim)
		if err != nil {
			return zab.Message{}, fmt.Errorf("SNAP 0x%x body: %w", hdr.Zxid, err)
		}
		switch {
		case p.Type == quorum.SnapChunk:
			if p.Zxid != hdr.Zxid {
				return zab.Message{}, fmt.Errorf("%w: SNAPCHUNK of 0x%x inside the stream of SNAP 0x%x", quorum.ErrMalformed, p.Zxid, hdr.Zxid)
			}
			chunks++
			m, done, err := spool.Chunk(p.Data)
			if err != nil {
				return zab.Message{}, fmt.Errorf("%w: SNAP 0x%x: %w", quorum.ErrMalformed, hdr.Zxid, err)
			}
			if done {
				return t.checkStreamedSnap(l.peer, m, chunks-1, between)
			}
		case urgent(p.Type):
			l.mu.Lock()
			msgs, err := l.link.Decode(p)
			l.mu.Unlock()
			if err != nil {
				return zab.Message{}, err
			}
			between++
			for _, m := range msgs {
				if !l.deliver(m) {
					return zab.Message{}, errors.New("closing")
				}
			}
		default:
			return zab.Message{}, fmt.Errorf("%w: %s inside the stream of SNAP 0x%x", quorum.ErrMalformed, p.Type, hdr.Zxid)
		}
	}
}

// checkStreamedSnap reads a spooled SNAP body through
// quorum.CopySnapshotBody, the check a raw body gets as it arrives, and
// logs it; on failure the spool file is removed.
func (t *Transport) checkStreamedSnap(peer int64, m zab.Message, chunks, between int) (zab.Message, error) {
	s := m.Snapshot.(*netstub.SpooledSnapshot)
	sum, err := func() (quorum.SnapSummary, error) {
		f, err := s.Open()
		if err != nil {
			return quorum.SnapSummary{}, err
		}
		defer f.Close()
		sum, err := quorum.CopySnapshotBody(nil, bufio.NewReaderSize(f, bufSize), quorum.SnapLimits{MaxBytes: t.cfg.MaxSnapshot, MaxField: t.cfg.MaxPacket})
		if err == nil && sum.Bytes != s.Size() {
			err = fmt.Errorf("%w: %d bytes after the body", quorum.ErrMalformed, s.Size()-sum.Bytes)
		}
		return sum, err
	}()
	if err != nil {
		_ = s.Close()
		return zab.Message{}, fmt.Errorf("SNAP 0x%x streamed body: %w", m.Zxid, err)
	}
	t.log.Info("received SNAP", "peer", peer, "zxid", fmt.Sprintf("0x%x", m.Zxid), "bytes", sum.Bytes, "nodes", sum.Nodes,
		"sessions", len(sum.Sessions), "streamed", true, "chunks", chunks, "packets_between", between)
	return m, nil
}

// admitNonce applies the duplicate-id rule to a learner whose first
// packet carries a hello (a ZooKeeper learner has no nonce: nothing to
// check) and reports whether to go on with the connection. Proof of two
// live processes is logged at Error and closes the connection of the
// other one.
func (t *Transport) admitNonce(sid int64, first *quorum.Packet, remote string) bool {
	h, ok := quorum.PacketHello(first)
	if !ok || h.Nonce == 0 {
		return true
	}
	nonce := uint64(h.Nonce)
	t.mu.Lock()
	v, pair := t.dup.Admit(sid, nonce, remote, time.Now())
	var other *qLink
	if v == netstub.DupDetected {
		for _, c := range t.zk.All() {
			if c.Link.Side() == zklink.LeaderSide && c.Peer() == sid {
				other = t.ql[c]
			}
		}
	}
	t.mu.Unlock()
	switch v {
	case netstub.DupAccept:
		return true
	case netstub.DupCleared:
		t.log.Warn(fmt.Sprintf("only one server with id %d was seen for %v: accepting its connections again", sid, t.dup.Quiet()),
			"peer", sid, "remote", remote, "nonce", netstub.FormatNonce(nonce))
		return true
	case netstub.DupDetected:
		t.log.Error(fmt.Sprintf("two servers are running with id %d (from %s and %s): fix myid", sid, pair[0], pair[1]),
			"peer", sid, "remote", remote)
		if other != nil {
			other.close(false)
		}
	default:
		t.log.Debug("refused learner connection: two servers are running with its id", "peer", sid, "remote", remote)
	}
	return false
}
