package zab

// Peer is one server's ZAB state machine. It is not safe for concurrent use.
type Peer struct {
	// TODO(zab helper): state.
}

// NewPeer returns a Peer starting in election (Looking) from the durable
// state init. app supplies snapshots for SNAP syncs.
func NewPeer(cfg Config, init Initial, app Application) *Peer {
	panic("zab: not implemented")
}

// Tick advances logical time by one tick: election rounds, heartbeats,
// initLimit and syncLimit timeouts.
func (p *Peer) Tick() { panic("zab: not implemented") }

// Step handles one message from another server (or MsgLinkDown).
func (p *Peer) Step(m Message) { panic("zab: not implemented") }

// Propose appends data as the next txn of the established leader's epoch
// and broadcasts it. It returns the zxid, or false when this server is not an
// established leader or the epoch's counter is exhausted (which forces a new
// election).
func (p *Peer) Propose(data []byte) (int64, bool) { panic("zab: not implemented") }

// SendApp queues an application payload for server to (the leader, from a
// learner; a synced learner, from the leader). False when there is no such
// established link.
func (p *Peer) SendApp(to int64, payload []byte) bool { panic("zab: not implemented") }

// Persisted reports that every entry handed out in Ready.Entries up to zxid
// is durable.
func (p *Peer) Persisted(zxid int64) { panic("zab: not implemented") }

// HasReady reports whether Ready has work.
func (p *Peer) HasReady() bool { panic("zab: not implemented") }

// Ready returns the pending batch; see Ready's obligations.
func (p *Peer) Ready() Ready { panic("zab: not implemented") }

// Advance acknowledges the batch returned by Ready.
func (p *Peer) Advance() { panic("zab: not implemented") }

// Status returns the current protocol state.
func (p *Peer) Status() Status { panic("zab: not implemented") }
