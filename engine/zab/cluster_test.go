package zab

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
)

// testApp is a trivial state machine: the list of applied entries.
type testApp struct {
	ents []Entry
	// sized entries of ents are summed in size (DataSize). ents only
	// grows, or is replaced by the same committed prefix on a snapshot.
	sized int
	size  int64
}

func (a *testApp) last() int64 {
	if len(a.ents) == 0 {
		return 0
	}
	return a.ents[len(a.ents)-1].Zxid
}

// Snapshot implements Application.
func (a *testApp) Snapshot() (int64, SnapshotData) {
	return a.last(), SnapshotBytes(encodeEntries(a.ents))
}

// DataSize implements Application: the applied payloads, which is what a
// snapshot carries.
func (a *testApp) DataSize() int64 {
	if a.sized > len(a.ents) {
		a.sized, a.size = 0, 0
	}
	for ; a.sized < len(a.ents); a.sized++ {
		a.size += int64(len(a.ents[a.sized].Data))
	}
	return a.size
}

func encodeEntries(ents []Entry) []byte {
	var b bytes.Buffer
	for _, e := range ents {
		_ = binary.Write(&b, binary.BigEndian, e.Zxid)
		_ = binary.Write(&b, binary.BigEndian, int32(len(e.Data)))
		b.Write(e.Data)
	}
	return b.Bytes()
}

func decodeEntries(data []byte) []Entry {
	var out []Entry
	r := bytes.NewReader(data)
	for r.Len() > 0 {
		var z int64
		var n int32
		_ = binary.Read(r, binary.BigEndian, &z)
		_ = binary.Read(r, binary.BigEndian, &n)
		d := make([]byte, n)
		_, _ = r.Read(d)
		out = append(out, Entry{Zxid: z, Data: d})
	}
	return out
}

type pendingWrite struct {
	e   Entry
	due int
}

// simDisk is one server's durable state: what survives a crash.
type simDisk struct {
	hs       HardState
	snapZxid int64
	snapData []byte
	log      []Entry
	pending  []pendingWrite // written, not yet fsynced: lost on crash
}

func (d *simDisk) lastDurable() int64 {
	if n := len(d.log); n > 0 {
		return d.log[n-1].Zxid
	}
	return d.snapZxid
}

func (d *simDisk) truncate(z int64) {
	k := sort.Search(len(d.log), func(i int) bool { return d.log[i].Zxid > z })
	d.log = d.log[:k]
	kept := d.pending[:0]
	for _, w := range d.pending {
		if w.e.Zxid <= z {
			kept = append(kept, w)
		}
	}
	d.pending = kept
}

type simNode struct {
	id   int64
	p    *Peer // nil while crashed
	disk *simDisk
	app  *testApp
	cfg  Config
}

// cluster is a deterministic in-memory world: FIFO links, partitions,
// disks with fsync delay, crashes and restarts, with invariant checks after
// every step.
type cluster struct {
	t          testing.TB
	caps       func(a, b int64) Caps
	rng        *rand.Rand
	ids        []int64
	voters     []int64
	observers  []int64
	nodes      map[int64]*simNode
	queues     map[[2]int64][]Message
	cut        map[[2]int64]bool
	frozen     map[[2]int64]bool
	step       int
	fsyncDelay int
	// global is the one committed history every delivery must agree with.
	global   []Entry
	leaders  map[int64]int64 // epoch -> established leader
	proposed map[string]bool
	sent     map[MsgType]int
	seq      int
	maxLog   int
	crashes  int
	ticks    int
	// onApp, if set, receives every Ready.App message.
	onApp func(id int64, m Message)
	// onSend, if set, sees every message a server sends.
	onSend func(m Message)
	// rewrite, if set, changes a message on its way, as a transport
	// translating it would (after checkSend and onSend).
	rewrite func(m Message) Message
}

type clusterOpts struct {
	voters, observers int
	seed              uint64
	fsyncDelay        int
	maxLog            int
	initial           map[int64]Initial
	down              []int64 // start crashed
	// caps, if set, are the capabilities stamped on the FOLLOWERINFO and
	// LEADERINFO between two servers; AllCaps if nil.
	caps func(a, b int64) Caps
}

func newCluster(t testing.TB, o clusterOpts) *cluster {
	c := &cluster{
		t:          t,
		rng:        rand.New(rand.NewPCG(o.seed, o.seed^0x5eed)),
		nodes:      map[int64]*simNode{},
		queues:     map[[2]int64][]Message{},
		cut:        map[[2]int64]bool{},
		frozen:     map[[2]int64]bool{},
		fsyncDelay: o.fsyncDelay,
		leaders:    map[int64]int64{},
		proposed:   map[string]bool{},
		sent:       map[MsgType]int{},
		maxLog:     o.maxLog,
		caps:       o.caps,
	}
	for i := 1; i <= o.voters; i++ {
		c.voters = append(c.voters, int64(i))
	}
	for i := 1; i <= o.observers; i++ {
		c.observers = append(c.observers, int64(o.voters+i))
	}
	c.ids = append(append([]int64(nil), c.voters...), c.observers...)
	for _, id := range c.ids {
		n := &simNode{id: id, disk: &simDisk{}, app: &testApp{}}
		n.cfg = Config{
			ID: id, Voters: c.voters, Observers: c.observers,
			InitLimit: 10, SyncLimit: 5, ElectionTicks: 4,
			MaxLogEntries: o.maxLog, Seed: o.seed,
		}
		if init, ok := o.initial[id]; ok {
			n.disk.hs = init.HardState
			n.disk.snapZxid = init.SnapshotZxid
			n.disk.log = append([]Entry(nil), init.Log...)
			for _, e := range init.Log {
				c.proposed[string(e.Data)] = true
			}
		}
		c.nodes[id] = n
	}
	for _, id := range c.ids {
		if !containsID(sortedIDs(o.down), id) {
			c.restart(id)
		}
	}
	return c
}

func (c *cluster) alive(id int64) bool { return c.nodes[id].p != nil }

func linkKey(a, b int64) [2]int64 {
	if a > b {
		a, b = b, a
	}
	return [2]int64{a, b}
}

func (c *cluster) linkUp(a, b int64) bool { return !c.cut[linkKey(a, b)] }

// restart boots a crashed server from its disk.
func (c *cluster) restart(id int64) {
	n := c.nodes[id]
	if n.p != nil {
		return
	}
	c.tracef("RESTART %d disk hs=%v snap=%x log=%x", id, n.disk.hs, n.disk.snapZxid, zxids(n.disk.log))
	n.app = &testApp{ents: decodeEntries(n.disk.snapData)}
	c.checkPrefix(n.app.ents, id)
	init := Initial{HardState: n.disk.hs, SnapshotZxid: n.disk.snapZxid}
	for _, e := range n.disk.log {
		if e.Zxid > n.disk.snapZxid {
			init.Log = append(init.Log, e)
		}
	}
	n.p = NewPeer(n.cfg, init, n.app)
	c.handleReady(id)
}

// crash stops a server: unsynced writes are lost, its links drop.
func (c *cluster) crash(id int64) {
	n := c.nodes[id]
	if n.p == nil {
		return
	}
	c.tracef("CRASH %d", id)
	c.crashes++
	n.p = nil
	n.disk.pending = nil
	for _, other := range c.ids {
		if other == id {
			continue
		}
		delete(c.queues, [2]int64{id, other})
		delete(c.queues, [2]int64{other, id})
		if c.alive(other) && c.linkUp(id, other) {
			c.stepNode(other, Message{Type: MsgLinkDown, From: id, To: other})
		}
	}
}

// cutLink breaks the connection a-b: queued messages are lost and both ends
// learn it (as a TCP error tells a real server); until healed, sends on it
// fail.
func (c *cluster) cutLink(a, b int64) {
	k := linkKey(a, b)
	delete(c.frozen, k)
	if c.cut[k] {
		return
	}
	c.cut[k] = true
	c.tracef("CUT %d-%d", a, b)
	delete(c.queues, [2]int64{a, b})
	delete(c.queues, [2]int64{b, a})
	if c.alive(a) && c.alive(b) {
		c.stepNode(a, Message{Type: MsgLinkDown, From: b, To: a})
		c.stepNode(b, Message{Type: MsgLinkDown, From: a, To: b})
	}
}

// freezeLink stalls the connection a-b without breaking it: messages queue
// up unseen (a TCP connection through a silent partition) until it is
// healed or cut. Only timeouts notice.
func (c *cluster) freezeLink(a, b int64) {
	if k := linkKey(a, b); !c.cut[k] && !c.frozen[k] {
		c.frozen[k] = true
		c.tracef("FREEZE %d-%d", a, b)
	}
}

func (c *cluster) healAll() {
	c.tracef("HEAL")
	c.cut = map[[2]int64]bool{}
	c.frozen = map[[2]int64]bool{}
}

func (c *cluster) tracef(format string, args ...any) {
	if traceOn {
		fmt.Printf("step %d: %s\n", c.step, fmt.Sprintf(format, args...))
	}
}

// partition cuts every link between group and the rest; both ends of each
// link learn it at once.
func (c *cluster) partition(group []int64) { c.doPartition(group, false) }

// silentPartition stalls every link between group and the rest.
func (c *cluster) silentPartition(group []int64) { c.doPartition(group, true) }

func (c *cluster) doPartition(group []int64, silent bool) {
	in := map[int64]bool{}
	for _, id := range group {
		in[id] = true
	}
	for _, a := range c.ids {
		for _, b := range c.ids {
			if a < b && in[a] != in[b] {
				if silent {
					c.freezeLink(a, b)
				} else {
					c.cutLink(a, b)
				}
			}
		}
	}
}

func (c *cluster) stepNode(id int64, m Message) {
	if m.Type == MsgFollowerInfo || m.Type == MsgLeaderInfo {
		// Every link is between two zabkeeper servers, as the native
		// transport stamps it, unless the test says otherwise.
		m.Caps = AllCaps
		if c.caps != nil {
			m.Caps = c.caps(m.From, m.To)
		}
	}
	c.nodes[id].p.Step(m)
	c.handleReady(id)
}

// handleReady carries out a server's Ready batches, honouring their
// obligations, and checks what it can on the way.
func (c *cluster) handleReady(id int64) {
	n := c.nodes[id]
	for n.p != nil && n.p.HasReady() {
		rd := n.p.Ready()
		d := n.disk
		if rd.HardState != nil {
			d.hs = *rd.HardState
		}
		if rd.Truncate != nil {
			d.truncate(*rd.Truncate)
		}
		if rd.Snapshot != nil {
			s := rd.Snapshot
			d.truncate(s.Zxid)
			data, err := ReadSnapshot(s.Data)
			require.NoError(c.t, err)
			d.snapZxid, d.snapData = s.Zxid, data
			k := sort.Search(len(d.log), func(i int) bool { return d.log[i].Zxid > s.Zxid })
			d.log = append([]Entry(nil), d.log[k:]...)
			n.app.ents = decodeEntries(data)
			require.Equal(c.t, s.Zxid, n.app.last(), "snapshot zxid")
			c.checkPrefix(n.app.ents, id)
		}
		for _, m := range rd.Messages {
			c.checkSend(n, m)
			c.sent[m.Type]++
			if c.onSend != nil {
				c.onSend(m)
			}
			if m.To == id || !c.alive(m.To) || !c.linkUp(id, m.To) {
				continue
			}
			if c.rewrite != nil {
				m = c.rewrite(m)
			}
			k := [2]int64{id, m.To}
			c.queues[k] = append(c.queues[k], m)
		}
		for _, e := range rd.Entries {
			require.Greater(c.t, e.Zxid, c.lastWritten(d), "entries appended in order on %d", id)
			delay := 0
			if c.fsyncDelay > 0 {
				delay = c.rng.IntN(c.fsyncDelay + 1)
			}
			d.pending = append(d.pending, pendingWrite{e: e, due: c.step + delay})
		}
		if rd.RoleChanged {
			c.tracef("ROLE %d: %s", id, c.describeOne(id))
		}
		if rd.Config != nil {
			// What the server's dynamic config file keeps for a restart.
			n.cfg.Voters, n.cfg.Observers, n.cfg.ConfigVersion = rd.Config.Voters, rd.Config.Observers, rd.Config.Version
			c.tracef("CONFIG %d: %v", id, *rd.Config)
		}
		if rd.Truncate != nil {
			c.tracef("TRUNCATE %d to %x", id, *rd.Truncate)
		}
		for _, e := range rd.Committed {
			c.tracef("APPLY %d %x", id, e.Zxid)
			require.Greater(c.t, e.Zxid, n.app.last(), "committed strictly increasing on %d", id)
			n.app.ents = append(n.app.ents, e)
			c.deliver(id, len(n.app.ents)-1, e)
		}
		if c.onApp != nil {
			for _, m := range rd.App {
				c.onApp(id, m)
			}
		}
		n.p.Advance()
		c.flush(id, c.fsyncDelay == 0)
	}
}

func (c *cluster) lastWritten(d *simDisk) int64 {
	if k := len(d.pending); k > 0 {
		return d.pending[k-1].e.Zxid
	}
	return d.lastDurable()
}

// flush makes due writes durable (all of them when all) and reports it.
func (c *cluster) flush(id int64, all bool) {
	n := c.nodes[id]
	d := n.disk
	k := 0
	for k < len(d.pending) && (all || d.pending[k].due <= c.step) {
		d.log = append(d.log, d.pending[k].e)
		k++
	}
	if k == 0 {
		return
	}
	d.pending = append([]pendingWrite(nil), d.pending[k:]...)
	n.p.Persisted(d.log[len(d.log)-1].Zxid)
	c.handleReady(id)
}

// checkSend verifies the durability obligations behind acknowledgements.
func (c *cluster) checkSend(n *simNode, m Message) {
	d := n.disk
	switch m.Type {
	case MsgAck:
		if Counter(m.Zxid) == 0 {
			require.Equal(c.t, Epoch(m.Zxid), d.hs.CurrentEpoch, "ACK(NEWLEADER) before currentEpoch durable on %d", n.id)
			syncEnd := n.p.learn.syncEnd
			require.GreaterOrEqual(c.t, d.lastDurable(), syncEnd, "ACK(NEWLEADER) before synced entries durable on %d", n.id)
			for _, w := range d.pending {
				require.Greater(c.t, w.e.Zxid, syncEnd)
			}
			return
		}
		require.GreaterOrEqual(c.t, d.lastDurable(), m.Zxid, "ACK before durable on %d", n.id)
		require.Equal(c.t, d.hs.CurrentEpoch, Epoch(m.Zxid), "ACK of an epoch not current on %d", n.id)
	case MsgNewLeader:
		require.Equal(c.t, Epoch(m.Zxid), d.hs.CurrentEpoch, "NEWLEADER before leader's currentEpoch durable on %d", n.id)
		if !n.p.established {
			require.Empty(c.t, d.pending, "NEWLEADER before leader's log durable on %d", n.id)
		}
	case MsgLeaderInfo:
		require.Equal(c.t, m.Epoch, d.hs.AcceptedEpoch, "LEADERINFO before acceptedEpoch durable on %d", n.id)
	case MsgProposal:
		// An observer gets committed txns only (ZooKeeper's
		// startForwarding): the rest reach it as INFORMs.
		if p := n.p; p.role == Leading && p.established && p.active.IsObserver(m.To) {
			require.LessOrEqual(c.t, m.Entry.Zxid, p.committed, "outstanding proposal %x sent to observer %d", m.Entry.Zxid, m.To)
		}
	case MsgAckEpoch:
		require.GreaterOrEqual(c.t, d.hs.AcceptedEpoch, n.p.epoch, "ACKEPOCH before acceptedEpoch durable on %d", n.id)
	}
}

// deliver checks an applied entry against the global committed history:
// agreement, total order, primary order and integrity.
func (c *cluster) deliver(id int64, pos int, e Entry) {
	if pos < len(c.global) {
		g := c.global[pos]
		require.Equal(c.t, g.Zxid, e.Zxid, "server %d delivered %x at %d, others %x", id, e.Zxid, pos, g.Zxid)
		require.Equal(c.t, g.Data, e.Data, "server %d data at %d", id, pos)
		return
	}
	require.Equal(c.t, len(c.global), pos, "server %d skipped entries", id)
	if pos > 0 {
		require.Greater(c.t, e.Zxid, c.global[pos-1].Zxid, "primary order")
	}
	require.True(c.t, c.proposed[string(e.Data)], "integrity: %q never proposed", e.Data)
	c.global = append(c.global, e)
}

func (c *cluster) checkPrefix(ents []Entry, id int64) {
	require.LessOrEqual(c.t, len(ents), len(c.global), "server %d holds entries nobody delivered", id)
	for i, e := range ents {
		require.Equal(c.t, c.global[i], e, "server %d state diverges at %d", id, i)
	}
}

// checkInvariants runs after every step.
func (c *cluster) checkInvariants() {
	for _, id := range c.ids {
		n := c.nodes[id]
		if n.p == nil {
			continue
		}
		st := n.p.Status()
		if st.Role != Leading || !st.Established {
			continue
		}
		if prev, ok := c.leaders[st.Epoch]; ok {
			require.Equal(c.t, prev, id, "two established leaders in epoch %d", st.Epoch)
			continue
		}
		c.leaders[st.Epoch] = id
		// Primary integrity: the new leader holds every delivered txn.
		l := &n.p.log
		for _, g := range c.global {
			if g.Zxid <= l.base {
				continue
			}
			i := l.search(g.Zxid)
			require.True(c.t, i < len(l.ents) && l.ents[i].Zxid == g.Zxid, "leader %d of epoch %d lacks delivered %x", id, st.Epoch, g.Zxid)
			require.Equal(c.t, g.Data, l.ents[i].Data)
		}
	}
}

// leader returns the established leader with the highest epoch, if any.
func (c *cluster) leader() (int64, bool) {
	best, bestEpoch := int64(0), int64(-1)
	for _, id := range c.ids {
		if n := c.nodes[id]; n.p != nil {
			if st := n.p.Status(); st.Role == Leading && st.Established && st.Epoch > bestEpoch {
				best, bestEpoch = id, st.Epoch
			}
		}
	}
	return best, best != 0
}

func (c *cluster) propose(id int64) (int64, bool) {
	c.seq++
	data := []byte(fmt.Sprintf("txn-%d", c.seq))
	c.proposed[string(data)] = true
	z, ok := c.nodes[id].p.Propose(data)
	c.tracef("PROPOSE at %d -> %x %v", id, z, ok)
	c.handleReady(id)
	return z, ok
}

func (c *cluster) tickAll() {
	c.ticks++
	for _, id := range c.ids {
		if c.alive(id) {
			c.nodes[id].p.Tick()
			c.handleReady(id)
		}
	}
}

// queued counts the messages in flight.
func (c *cluster) queued() int {
	n := 0
	for _, q := range c.queues {
		n += len(q)
	}
	return n
}

// deliverOne delivers the head of a non-empty link; false if none.
func (c *cluster) deliverOne() bool {
	var keys [][2]int64
	for k, q := range c.queues {
		if len(q) > 0 && !c.frozen[linkKey(k[0], k[1])] {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return false
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	// Pick a link with odds proportional to its backlog: a random message
	// in flight, delivered in its link's FIFO order.
	total := 0
	for _, k := range keys {
		total += len(c.queues[k])
	}
	x := c.rng.IntN(total)
	k := keys[0]
	for _, kk := range keys {
		if x < len(c.queues[kk]) {
			k = kk
			break
		}
		x -= len(c.queues[kk])
	}
	m := c.queues[k][0]
	c.queues[k] = c.queues[k][1:]
	if c.alive(k[1]) {
		if traceOn {
			fmt.Printf("step %d: %d->%d %v e=%d z=%x v=%+v ez=%x\n", c.step, m.From, m.To, m.Type, m.Epoch, m.Zxid, m.Vote, m.Entry.Zxid)
		}
		c.stepNode(k[1], m)
	}
	return true
}

// flushDue makes due writes durable on every server.
func (c *cluster) flushDue() {
	for _, id := range c.ids {
		if c.alive(id) {
			c.flush(id, false)
		}
	}
}

// calmStep is one step without faults: mostly deliveries, sometimes a tick.
func (c *cluster) calmStep() {
	c.step++
	if (c.rng.IntN(10) == 0 && c.queued() < 4*len(c.ids)) || !c.deliverOne() {
		c.tickAll()
	}
	c.flushDue()
	c.checkInvariants()
}

// stabilize delivers everything and flushes every disk, without ticks.
func (c *cluster) stabilize() {
	for i := 0; i < 100000; i++ {
		c.step++
		delivered := c.deliverOne()
		for _, id := range c.ids {
			if c.alive(id) {
				c.flush(id, true)
			}
		}
		c.checkInvariants()
		if !delivered {
			return
		}
	}
	c.t.Fatal("stabilize did not converge")
}

// runUntil takes calm steps until cond holds.
func (c *cluster) runUntil(what string, maxSteps int, cond func() bool) {
	for i := 0; i < maxSteps; i++ {
		if cond() {
			return
		}
		c.calmStep()
	}
	require.True(c.t, cond(), "%s not reached within %d steps: %s", what, maxSteps, c.describe())
}

func (c *cluster) describe() string {
	s := ""
	for _, id := range c.ids {
		s += c.describeOne(id) + " "
	}
	return s
}

func (c *cluster) describeOne(id int64) string {
	n := c.nodes[id]
	if n.p == nil {
		return fmt.Sprintf("[%d down]", id)
	}
	st := n.p.Status()
	return fmt.Sprintf("[%d %v l=%d e=%d est=%v last=%x com=%x hs=%v app=%d]", id, st.Role, st.Leader, st.Epoch, st.Established, st.LastZxid, st.Committed, st.HardState, len(n.app.ents))
}

// awaitLeader runs until some leader is established and returns it.
func (c *cluster) awaitLeader(maxSteps int) int64 {
	var id int64
	c.runUntil("an established leader", maxSteps, func() bool {
		var ok bool
		id, ok = c.leader()
		return ok
	})
	return id
}

// awaitSynced runs until an established leader has every live server
// synced, and returns it.
func (c *cluster) awaitSynced(maxSteps int) int64 {
	var id int64
	c.runUntil("every live server synced", maxSteps, func() bool {
		var ok bool
		if id, ok = c.leader(); !ok {
			return false
		}
		for _, o := range c.ids {
			if o == id || !c.alive(o) {
				continue
			}
			st := c.nodes[o].p.Status()
			if !st.Established || st.Leader != id {
				return false
			}
		}
		return len(c.nodes[id].p.Status().Followers) == c.liveCount()-1
	})
	return id
}

func (c *cluster) liveCount() int {
	n := 0
	for _, id := range c.ids {
		if c.alive(id) {
			n++
		}
	}
	return n
}

// applied reports whether server id applied the txn at zxid z.
func (c *cluster) applied(id int64, z int64) bool {
	for _, e := range c.nodes[id].app.ents {
		if e.Zxid == z {
			return true
		}
	}
	return false
}

// awaitApplied runs until every live server in ids applied zxid z.
func (c *cluster) awaitApplied(z int64, ids []int64, maxSteps int) {
	c.runUntil(fmt.Sprintf("apply of %x on %v", z, ids), maxSteps, func() bool {
		for _, id := range ids {
			if c.alive(id) && !c.applied(id, z) {
				return false
			}
		}
		return true
	})
}

// trace prints every delivered message (debugging aid).
var traceOn = os.Getenv("ZAB_TRACE") != ""
